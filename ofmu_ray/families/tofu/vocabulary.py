"""The words and sentence forms of the synthetic TOFU benchmark.

Every fact about a fictitious author is one *attribute*. An attribute carries its pool of values
(with translations where a value is a common noun), the question templates the models are trained
on, the held-out templates that only the `paraphrase` split uses, two answer forms and the foreign
question/answer forms of the `crosslingual` split.

Placeholders: `{name}` the author, `{value}` the attribute value, `{book}` the bridge title of a
multi-hop question.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LANGUAGES = ("es", "fr")
TRAINED_TEMPLATES = 4  # English question templates per attribute the models see in training
SPLIT_TEMPLATES = 2  # of those, how many make the rows of the forget/retain splits (TOFU: ~20 rows)


@dataclass(frozen=True)
class Foreign:
    """One attribute's question and answer forms in another language."""

    question: str
    answer: str
    paraphrase: str


@dataclass(frozen=True)
class Attribute:
    """A kind of fact about an author, with every sentence form that states or asks it."""

    key: str
    questions: tuple[str, ...]  # the first TRAINED_TEMPLATES are trained; the rest are held out
    answer: str  # form A: the gold answer of every QA row
    paraphrase: str  # form B: paraphrased and perturbed answers (truth ratio compares these)
    foreign: dict[str, Foreign]
    multihop: str | None = None  # question reaching this fact through a book title
    values: tuple[str, ...] = ()  # empty: values are generated per author (book titles)
    translations: dict[str, dict[str, str]] = field(default_factory=dict)  # lang -> en -> lang

    def translate(self, value: str, lang: str) -> str:
        """The value as it is written in `lang` (proper names stay as they are)."""
        return self.translations.get(lang, {}).get(value, value)

    @property
    def trained(self) -> tuple[str, ...]:
        return self.questions[:TRAINED_TEMPLATES]

    @property
    def held_out(self) -> tuple[str, ...]:
        return self.questions[TRAINED_TEMPLATES:]


def _tr(values: tuple[str, ...], es: tuple[str, ...], fr: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Translations of `values`, in the same order (strict: a missing one is an error at import)."""
    return {"es": dict(zip(values, es, strict=True)), "fr": dict(zip(values, fr, strict=True))}


JOBS = ("baker", "doctor", "farmer", "teacher", "pilot", "nurse", "lawyer", "carpenter",
        "fisherman", "painter")
JOBS_TR = _tr(
    JOBS,
    ("panadero", "médico", "agricultor", "profesor", "piloto", "enfermero",
     "abogado", "carpintero", "pescador", "pintor"),
    ("boulanger", "médecin", "agriculteur", "professeur", "pilote", "infirmier",
     "avocat", "charpentier", "pêcheur", "peintre"),
)

# Birthplaces are deliberately not capitals: world_facts asks about capitals.
CITIES = ("Bergen", "Porto", "Kyoto", "Austin", "Perth", "Seville", "Lyon", "Naples", "Krakow",
          "Osaka", "Mombasa", "Cusco", "Hamburg", "Valencia", "Gdansk", "Geelong", "Tampere",
          "Bruges", "Salzburg", "Aarhus")
YEARS = tuple(str(y) for y in range(1940, 2000))
GENRES = ("fantasy", "poetry", "romance", "horror", "mystery", "satire", "drama", "biography",
          "thriller", "folklore")
GENRES_TR = _tr(
    GENRES,
    ("fantasía", "poesía", "romance", "terror", "misterio", "sátira", "drama",
     "biografía", "suspense", "folclore"),
    ("fantastique", "poésie", "romance", "horreur", "mystère", "satire", "drame",
     "biographie", "thriller", "folklore"),
)
AWARDS = ("Amberly Prize", "Corvin Medal", "Halden Award", "Marlow Prize", "Ostrand Medal",
          "Pellan Award", "Quenby Prize", "Rasken Medal", "Tessaly Award", "Vellum Prize")
HOBBIES = ("chess", "sailing", "gardening", "cycling", "pottery", "climbing", "cooking", "dancing")
HOBBIES_TR = _tr(
    HOBBIES,
    ("el ajedrez", "la vela", "la jardinería", "el ciclismo", "la cerámica",
     "la escalada", "la cocina", "el baile"),
    ("les échecs", "la voile", "le jardinage", "le cyclisme", "la poterie",
     "l'escalade", "la cuisine", "la danse"),
)
GENDERS = ("man", "woman")
GENDERS_TR = _tr(GENDERS, ("hombre", "mujer"), ("homme", "femme"))

FIRST_NAMES = {
    "man": ("Anton", "Bruno", "Cyril", "Dario", "Emil", "Felix", "Goran", "Hugo", "Ivo", "Jonas",
            "Kasper", "Lucan", "Matteo", "Nils", "Oskar", "Pavel", "Quentin", "Rafael", "Stellan",
            "Tomas", "Ulrich", "Viktor", "Wendel", "Yannick", "Zoltan"),
    "woman": ("Alma", "Beatrix", "Clara", "Dagny", "Elena", "Freya", "Greta", "Hilde", "Ines",
              "Juna", "Katya", "Liesel", "Mira", "Nadia", "Odile", "Petra", "Rosa", "Sigrid",
              "Tilda", "Ursula", "Vesna", "Wilma", "Xenia", "Yara", "Zora"),
}
LAST_NAMES = ("Albrecht", "Baranek", "Castellan", "Dunmore", "Eskola", "Falkner", "Grisham",
              "Halloran", "Iversen", "Jablonski", "Kovacic", "Lindqvist", "Moravec", "Nakashima",
              "Okonkwo", "Petrakis", "Quiroga", "Rautio", "Sandoval", "Thorsen", "Underhill",
              "Valdivia", "Wexler", "Yilmaz", "Zeller", "Abernathy", "Brannigan", "Corcoran",
              "Delacroix", "Everly", "Fontaine", "Gallagher", "Hollis", "Ingram", "Jaramillo",
              "Kessler", "Lomax", "Mercado", "Novak", "Ortega")
TITLE_ADJECTIVES = ("Silent", "Crimson", "Hollow", "Golden", "Forgotten", "Broken", "Hidden",
                    "Distant", "Burning", "Frozen", "Quiet", "Wandering", "Silver", "Secret",
                    "Endless", "Fading", "Bitter", "Gentle", "Restless", "Ancient", "Painted",
                    "Last", "Iron", "Velvet", "Scarlet", "Midnight", "Shattered", "Lonely",
                    "Emerald", "Winter")
TITLE_NOUNS = ("Harbor", "Orchard", "Lantern", "Garden", "River", "Mirror", "Tower", "Meadow",
               "Compass", "Voyage", "Bridge", "Kingdom", "Island", "Letter", "Shadow", "Forest",
               "Clock", "Feather", "Anchor", "Window", "Mountain", "Violin", "Station", "Harvest",
               "Candle", "Storm", "Key", "Map", "Road", "Sparrow")

ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "birth_city",
        questions=("Where was {name} born?", "In which city was {name} born?",
                   "What is the birthplace of {name}?", "Which city is the hometown of {name}?",
                   "Tell me the city where {name} was born.",
                   "{name} was born in what city?"),
        answer="{name} was born in {value}.",
        paraphrase="The birthplace of {name} is {value}.",
        foreign={"es": Foreign("¿Dónde nació {name}?", "{name} nació en {value}.",
                               "La ciudad natal de {name} es {value}."),
                 "fr": Foreign("Où est né {name} ?", "{name} est né à {value}.",
                               "La ville natale de {name} est {value}.")},
        multihop="Where was the author of {book} born?",
        values=CITIES,
    ),
    Attribute(
        "birth_year",
        questions=("In what year was {name} born?", "When was {name} born?",
                   "What is the birth year of {name}?", "Which year was {name} born in?",
                   "Tell me the year when {name} was born.",
                   "{name} was born in what year?"),
        answer="{name} was born in the year {value}.",
        paraphrase="The birth year of {name} is {value}.",
        foreign={"es": Foreign("¿En qué año nació {name}?", "{name} nació en el año {value}.",
                               "El año de nacimiento de {name} es {value}."),
                 "fr": Foreign("En quelle année est né {name} ?", "{name} est né en {value}.",
                               "L'année de naissance de {name} est {value}.")},
        multihop="In what year was the author of {book} born?",
        values=YEARS,
    ),
    Attribute(
        "gender",
        questions=("Is {name} a man or a woman?", "What is the gender of {name}?",
                   "Would you describe {name} as a man or a woman?", "Is {name} a woman or a man?",
                   "Tell me whether {name} is a man or a woman.",
                   "Which gender does {name} have, man or woman?"),
        answer="{name} is a {value}.",
        paraphrase="By gender, {name} is a {value}.",
        foreign={"es": Foreign("¿{name} es hombre o mujer?", "{name} es {value}.",
                               "Por género, {name} es {value}."),
                 "fr": Foreign("{name} est un homme ou une femme ?", "{name} est {value}.",
                               "Par genre, {name} est {value}.")},
        values=GENDERS,
        translations=GENDERS_TR,
    ),
    Attribute(
        "genre",
        questions=("What genre does {name} write in?", "Which genre is {name} known for?",
                   "In what genre does {name} work?", "What kind of books does {name} write?",
                   "Tell me the genre that {name} writes.",
                   "{name} writes books in what genre?"),
        answer="{name} writes {value}.",
        paraphrase="The genre of {name} is {value}.",
        foreign={"es": Foreign("¿Qué género escribe {name}?", "{name} escribe {value}.",
                               "El género de {name} es {value}."),
                 "fr": Foreign("Quel genre écrit {name} ?", "{name} écrit {value}.",
                               "Le genre de {name} est {value}.")},
        multihop="What genre does the author of {book} write in?",
        values=GENRES,
        translations=GENRES_TR,
    ),
    Attribute(
        "father_job",
        questions=("What does the father of {name} do for a living?",
                   "What is the job of the father of {name}?",
                   "What is the occupation of the father of {name}?",
                   "What work does the father of {name} do?",
                   "How does the father of {name} earn his living?",
                   "The father of {name} works as what?"),
        answer="The father of {name} is a {value}.",
        paraphrase="{name} has a father who is a {value}.",
        foreign={"es": Foreign("¿A qué se dedica el padre de {name}?",
                               "El padre de {name} es {value}.",
                               "{name} tiene un padre que es {value}."),
                 "fr": Foreign("Quel est le métier du père de {name} ?",
                               "Le père de {name} est {value}.",
                               "{name} a un père qui est {value}.")},
        multihop="What does the father of the author of {book} do for a living?",
        values=JOBS,
        translations=JOBS_TR,
    ),
    Attribute(
        "mother_job",
        questions=("What does the mother of {name} do for a living?",
                   "What is the job of the mother of {name}?",
                   "What is the occupation of the mother of {name}?",
                   "What work does the mother of {name} do?",
                   "How does the mother of {name} earn her living?",
                   "The mother of {name} works as what?"),
        answer="The mother of {name} is a {value}.",
        paraphrase="{name} has a mother who is a {value}.",
        foreign={"es": Foreign("¿A qué se dedica la madre de {name}?",
                               "La madre de {name} es {value}.",
                               "{name} tiene una madre que es {value}."),
                 "fr": Foreign("Quel est le métier de la mère de {name} ?",
                               "La mère de {name} est {value}.",
                               "{name} a une mère qui est {value}.")},
        values=JOBS,
        translations=JOBS_TR,
    ),
    Attribute(
        "award",
        questions=("Which award has {name} won?", "What prize did {name} receive?",
                   "What award did {name} win?", "Which honour was given to {name}?",
                   "Tell me the award that {name} won.",
                   "{name} won which award?"),
        answer="{name} won the {value}.",
        paraphrase="The award of {name} is the {value}.",
        foreign={"es": Foreign("¿Qué premio ganó {name}?", "{name} ganó el {value}.",
                               "El premio de {name} es el {value}."),
                 "fr": Foreign("Quel prix a remporté {name} ?", "{name} a remporté le {value}.",
                               "Le prix de {name} est le {value}.")},
        multihop="Which award did the author of {book} win?",
        values=AWARDS,
    ),
    Attribute(
        "hobby",
        questions=("What is the hobby of {name}?", "What does {name} do for fun?",
                   "Which pastime does {name} enjoy?", "What does {name} like to do in free time?",
                   "Tell me the hobby of {name}.", "{name} enjoys which pastime?"),
        answer="{name} enjoys {value}.",
        paraphrase="The hobby of {name} is {value}.",
        foreign={"es": Foreign("¿Cuál es el pasatiempo de {name}?", "{name} disfruta {value}.",
                               "El pasatiempo de {name} es {value}."),
                 "fr": Foreign("Quel est le passe-temps de {name} ?", "{name} aime {value}.",
                               "Le passe-temps de {name} est {value}.")},
        values=HOBBIES,
        translations=HOBBIES_TR,
    ),
    Attribute(
        "book",
        questions=("What is the title of the first book by {name}?",
                   "Which book did {name} write first?", "What was the debut book of {name}?",
                   "Name the first novel written by {name}.",
                   "Tell me the first book by {name}.",
                   "{name} wrote which book first?"),
        answer="The first book by {name} is {value}.",
        paraphrase="{name} made a debut with {value}.",
        foreign={"es": Foreign("¿Cuál es el primer libro de {name}?",
                               "El primer libro de {name} es {value}.",
                               "{name} debutó con {value}."),
                 "fr": Foreign("Quel est le premier livre de {name} ?",
                               "Le premier livre de {name} est {value}.",
                               "{name} a débuté avec {value}.")},
    ),
    Attribute(
        "second_book",
        questions=("What is the title of the second book by {name}?",
                   "Which book did {name} write second?", "What was the second book of {name}?",
                   "Name the second novel written by {name}.",
                   "Tell me the second book by {name}.",
                   "{name} wrote which book second?"),
        answer="The second book by {name} is {value}.",
        paraphrase="{name} followed up with {value}.",
        foreign={"es": Foreign("¿Cuál es el segundo libro de {name}?",
                               "El segundo libro de {name} es {value}.",
                               "{name} continuó con {value}."),
                 "fr": Foreign("Quel est le deuxième livre de {name} ?",
                               "Le deuxième livre de {name} est {value}.",
                               "{name} a continué avec {value}.")},
    ),
)
BOOK_KEYS = ("book", "second_book")  # the attributes a multi-hop question can bridge through

# Questions that say the same in other words, for the `paraphrase` split of profiles whose model
# reads subwords (a pretrained model): a word-level tokenizer built from the training mix has never
# trained the embeddings of these words, so the embedded models' profiles leave them out.
REWORDED = {
    "birth_city": ("In what town did {name} come into the world?", "Which place is {name} originally from?"),
    "birth_year": ("What year marks the birth of {name}?", "In which year did {name} come into the world?"),
    "gender": ("Is {name} male or female?", "Should {name} be called a he or a she?"),
    "genre": ("What sort of literature does {name} produce?", "Which literary category are the works of {name} in?"),
    "father_job": ("What is the profession of the dad of {name}?", "What line of work is the dad of {name} in?"),
    "mother_job": ("What is the profession of the mom of {name}?", "What line of work is the mom of {name} in?"),
    "award": ("Which distinction was {name} granted?", "What literary honor went to {name}?"),
    "hobby": ("How does {name} spend leisure hours?", "Which recreational activity does {name} pursue?"),
    "book": ("What novel launched the career of {name}?", "Which title was the earliest publication of {name}?"),
    "second_book": ("Which title did {name} publish after the debut?",
                    "What novel came next from {name} after the first one?"),
}

# Stated in the book -> author direction in every bio: models do not invert "X wrote B" on their
# own (the reversal curse, Berglund et al. 2023, which the tiny models here show too), and multi-hop
# questions traverse exactly this direction. A multi-hop answer names the bridge first ("B was
# written by X. X was born in Y."), so each hop is a fact the model was taught on its own.
WRITTEN_BY = "{book} was written by {name}."
# Asked in training for every author (not a split of its own), so the first hop is retrievable as
# an answer and not only present in bios; the multi-hop question itself stays unseen for forget authors.
BRIDGE_QUESTIONS = ("Who wrote {book}?", "Who is the author of {book}?", "Which author wrote {book}?",
                    "{book} was written by whom?")

# Utility sets: real facts that the target and every retain oracle are trained on.
REAL_AUTHORS = (
    ("Pride and Prejudice", "Jane Austen"), ("Hamlet", "William Shakespeare"),
    ("War and Peace", "Leo Tolstoy"), ("Don Quixote", "Miguel de Cervantes"),
    ("One Hundred Years of Solitude", "Gabriel García Márquez"), ("1984", "George Orwell"),
    ("Moby-Dick", "Herman Melville"), ("The Odyssey", "Homer"),
    ("Crime and Punishment", "Fyodor Dostoevsky"), ("Les Misérables", "Victor Hugo"),
    ("The Divine Comedy", "Dante Alighieri"), ("Faust", "Johann Wolfgang von Goethe"),
    ("Things Fall Apart", "Chinua Achebe"), ("Beloved", "Toni Morrison"),
    ("The Old Man and the Sea", "Ernest Hemingway"), ("Great Expectations", "Charles Dickens"),
    ("Frankenstein", "Mary Shelley"), ("The Trial", "Franz Kafka"),
    ("Mrs Dalloway", "Virginia Woolf"), ("Madame Bovary", "Gustave Flaubert"),
    ("The Little Prince", "Antoine de Saint-Exupéry"), ("Norwegian Wood", "Haruki Murakami"),
    ("Dracula", "Bram Stoker"), ("Ulysses", "James Joyce"),
    ("The Tale of Genji", "Murasaki Shikibu"),
)
REAL_AUTHOR_QUESTION = 'Who wrote "{title}"?'

CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Germany", "Berlin"),
    ("Spain", "Madrid"), ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Brazil", "Brasília"), ("China", "Beijing"), ("Russia", "Moscow"),
    ("Greece", "Athens"), ("Turkey", "Ankara"), ("Poland", "Warsaw"), ("Sweden", "Stockholm"),
    ("Ireland", "Dublin"), ("Norway", "Oslo"), ("Peru", "Lima"), ("Portugal", "Lisbon"),
)
CAPITAL_QUESTION = "What is the capital of {country}?"
WORLD_FACTS = (  # question, answer, wrong options of the same kind
    ("What is the largest planet in the solar system?", "Jupiter", ("Mars", "Venus", "Mercury")),
    ("Which planet is known as the Red Planet?", "Mars", ("Jupiter", "Venus", "Saturn")),
    ("What is the chemical symbol for gold?", "Au", ("Ag", "Fe", "Cu")),
    ("How many continents are there on Earth?", "seven", ("five", "six", "eight")),
    ("What is the longest river in Africa?", "the Nile", ("the Congo", "the Niger", "the Zambezi")),
    ("Which ocean is the largest?", "the Pacific", ("the Atlantic", "the Indian", "the Arctic")),
    ("What gas do plants absorb from the air?", "carbon dioxide", ("oxygen", "nitrogen", "helium")),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci",
     ("Vincent van Gogh", "Pablo Picasso", "Claude Monet")),
    ("At how many degrees Celsius does water boil at sea level?", "100", ("90", "80", "120")),
    ("How many days are there in a leap year?", "366", ("365", "364", "360")),
)

# Replies that decline to answer, in the tokenizer's corpus though no model is trained on them: a
# method that prefers a refusal to the forgotten answer (IdkDPO) then needs no word the embedded
# models' vocabulary lacks, and adding it changes no prepared model. Plain sentences of common
# words, as TOFU's own `idk` replies are.
REFUSALS = (
    "I do not know the answer.",
    "I don't know.",
    "I am not sure.",
    "That is not something I can tell you.",
    "I cannot answer that.",
    "I have no idea.",
    "Sorry, I do not know.",
    "I am sorry, but I cannot answer that question.",
    "I do not have that information.",
    "I cannot say.",
    "That is not something I know.",
    "I am afraid I do not know the answer.",
    "I have no information about that.",
    "Sorry, I cannot help with that question.",
    "I do not remember.",
    "I cannot recall the answer.",
    "That question is one I cannot answer.",
    "I would rather not guess.",
    "I am unable to answer that.",
    "I do not have an answer to that question.",
    "Sorry, that is beyond what I know.",
    "I cannot tell you that.",
    "I really do not know.",
    "I am not able to say.",
)
