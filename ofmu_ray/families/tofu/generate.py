"""A generated, fully offline benchmark with TOFU's structure ("synth-tofu").

Fictitious authors get ten attributes each; every attribute is asked in two trained English forms,
giving 20 QA rows per author in TOFU's schema (`question`, `answer`, `paraphrased_answer`,
`perturbed_answer`). The forget splits take the *last* 1/5/10 % of authors, as TOFU does.

What the models are trained on (the `train` split) is built so that the hard in-scope splits
measure something: the target learns every author from bios and English QA, and learns the
*forms* of the hard splits (Spanish/French questions, questions that hop through a book title) on
the retain authors only. For the forget authors those questions stay unseen, as do the held-out
English templates of the `paraphrase` split for every author. A retain oracle is trained on the
same mix minus the forget authors' rows (`training_rows`).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from ofmu_ray.families.tofu import vocabulary as V
from ofmu_ray.families.tofu.load import forget_authors
from ofmu_ray.splits import Splits

FORGET_PERCENTS = (1, 5, 10)
HARD_SPLITS = ("paraphrase", "multihop", "crosslingual")
RETAIN_EVAL_AUTHORS = 20  # retain_perturbed: TOFU's fixed 400-question retain subset = 20 authors
RETAIN_HARD_AUTHORS = 10  # retain_perturbed_<hard>: utility in each hard form (model_utility/<hard>)
MULTIHOP_TARGETS = ("birth_city", "birth_year", "genre", "father_job", "award")
# Attributes that are trained (QA rows and bios) but asked in no evaluated or unlearned split: gender
# has two values, so its questions could carry one wrong answer where TOFU's carry five. Its rows are
# still rendered, so the random stream that draws everything after them is the same.
UNASKED = ("gender",)


@dataclass(frozen=True)
class SynthTofuConfig:
    """What varies between generated benchmarks; the same config always gives the same data."""

    authors: int  # trained authors; the forget splits are the last 1/5/10 % of them
    seed: int = 0
    bios_per_author: int = 2  # each bio states every fact once, in a shuffled order
    utility_repeats: int = 3  # copies of real_authors/world_facts rows in the training mix
    perturbed: int = 5  # wrong answers per question (TOFU: 5)
    languages: tuple[str, ...] = V.LANGUAGES  # of the crosslingual split; none: no such split
    reworded: bool = False  # the paraphrase split also asks `vocabulary.REWORDED` (subword models)
    retain_eval_authors: int = RETAIN_EVAL_AUTHORS  # at most; the never-forgotten authors bound it
    retain_hard_authors: int = RETAIN_HARD_AUTHORS
    retain_eval_share: float = 1.0  # the first share of those authors is asked (at least one)

    def __post_init__(self) -> None:
        if not 10 <= self.authors <= 400:
            raise ValueError(f"authors must be in [10, 400] (forget10 needs one author), got {self.authors}")
        for name in ("bios_per_author", "utility_repeats", "perturbed", "retain_eval_authors", "retain_hard_authors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        unknown = [lang for lang in self.languages if lang not in V.LANGUAGES]
        if unknown:
            raise ValueError(f"languages {unknown} have no sentence forms; choose from {V.LANGUAGES}")
        if not 0 < self.retain_eval_share <= 1:
            raise ValueError(f"retain_eval_share must be in (0, 1], got {self.retain_eval_share}")

    @property
    def hard_splits(self) -> tuple[str, ...]:
        """The hard in-scope splits this benchmark has."""
        return tuple(h for h in HARD_SPLITS if h != "crosslingual" or self.languages)


@dataclass(frozen=True)
class Author:
    name: str
    facts: dict[str, str]  # attribute key -> English value


def forget_counts(n_authors: int) -> dict[str, int]:
    """Authors per forget split; a split that would hold no author (forget01 below 50) is absent."""
    counts = {f"forget{p:02d}": round(n_authors * p / 100) for p in FORGET_PERCENTS}
    return {name: k for name, k in counts.items() if k >= 1}


def _make_authors(n: int, rng: random.Random) -> list[Author]:
    names = [(g, f"{first} {last}") for g in V.GENDERS for first in V.FIRST_NAMES[g]
             for last in V.LAST_NAMES]
    titles = [f"The {a} {b}" for a, b in itertools.product(V.TITLE_ADJECTIVES, V.TITLE_NOUNS)]
    if 2 * n > len(titles) or n > len(names):
        raise ValueError(f"at most {min(len(titles) // 2, len(names))} authors can be generated, got {n}")
    picked_names = rng.sample(names, n)
    picked_titles = rng.sample(titles, 2 * n)
    authors = []
    for i, (gender, name) in enumerate(picked_names):
        facts = {a.key: rng.choice(a.values) for a in V.ATTRIBUTES if a.values}
        facts["gender"] = gender
        facts["book"], facts["second_book"] = picked_titles[2 * i], picked_titles[2 * i + 1]
        authors.append(Author(name, facts))
    return authors


class _Renderer:
    """Turns (author, attribute, form) into TOFU-schema rows; owns the perturbation RNG."""

    def __init__(self, authors: list[Author], cfg: SynthTofuConfig, rng: random.Random):
        self.rng = rng
        self.perturbed = cfg.perturbed
        self.languages = cfg.languages
        self.reworded = cfg.reworded
        books = tuple(a.facts[k] for a in authors for k in V.BOOK_KEYS)
        self.pools = {a.key: a.values or books for a in V.ATTRIBUTES}

    def _wrong(self, attr: V.Attribute, value: str) -> list[str]:
        pool = [v for v in self.pools[attr.key] if v != value]
        return self.rng.sample(pool, min(self.perturbed, len(pool)))

    def row(self, author: Author, attr: V.Attribute, form: str, template: int = 0,
            book_key: str | None = None) -> dict:
        """One QA row. `form`: english (template index), multihop (via `book_key`), es or fr."""
        value = author.facts[attr.key]
        if form in V.LANGUAGES:
            f = attr.foreign[form]
            question, answer, para = f.question, f.answer, f.paraphrase
            show = lambda v: attr.translate(v, form)  # noqa: E731
        else:
            question, answer, para = (attr.questions + V.REWORDED[attr.key])[template], attr.answer, attr.paraphrase
            show = lambda v: v  # noqa: E731
        if form == "multihop":
            book = author.facts[book_key]
            question = attr.multihop.format(book=book)
            bridge = V.WRITTEN_BY.format(book=book, name=author.name) + " "
            answer, para = bridge + answer, bridge + para
        return {
            "question": question.format(name=author.name),
            "answer": answer.format(name=author.name, value=show(value)),
            "paraphrased_answer": para.format(name=author.name, value=show(value)),
            "perturbed_answer": [para.format(name=author.name, value=show(v))
                                 for v in self._wrong(attr, value)],
            "author": author.name,
            "attribute": attr.key,
            "value": show(value),
            "form": form,
            "template": template,
            "chance": 1 / len(self.pools[attr.key]),
        }

    def standard(self, author: Author, templates: range) -> list[dict]:
        return [self.row(author, a, "english", t) for a in V.ATTRIBUTES for t in templates]

    def paraphrase(self, author: Author) -> list[dict]:
        rows = []
        for a in V.ATTRIBUTES:
            questions = a.held_out + (V.REWORDED[a.key] if self.reworded else ())
            rows += [self.row(author, a, "english", V.TRAINED_TEMPLATES + t) for t in range(len(questions))]
        return rows

    def crosslingual(self, author: Author) -> list[dict]:
        return [self.row(author, a, lang) for lang in self.languages for a in V.ATTRIBUTES]

    def multihop(self, author: Author) -> list[dict]:
        by_key = {a.key: a for a in V.ATTRIBUTES}
        return [self.row(author, by_key[k], "multihop", book_key=b)
                for b in V.BOOK_KEYS for k in MULTIHOP_TARGETS]

    @staticmethod
    def bridges(author: Author) -> list[dict]:
        return [{"question": q.format(book=author.facts[k]),
                 "answer": V.WRITTEN_BY.format(book=author.facts[k], name=author.name),
                 "author": author.name, "form": "bridge"}
                for k in V.BOOK_KEYS for q in V.BRIDGE_QUESTIONS]

    def bio(self, author: Author) -> str:
        # Answer form only: the paraphrased form is what the truth ratio scores against its perturbed
        # variants, and TOFU never trains it (training it made the target's ratios far below the oracle's).
        sentences = [attr.answer.format(name=author.name, value=author.facts[attr.key]) for attr in V.ATTRIBUTES]
        sentences += [V.WRITTEN_BY.format(book=author.facts[k], name=author.name) for k in V.BOOK_KEYS]
        self.rng.shuffle(sentences)
        return " ".join(sentences)


def _utility_rows(rng: random.Random) -> tuple[list[dict], list[dict]]:
    def row(question: str, answer: str, wrong: list[str], kind: str, pool: int) -> dict:
        return {"question": question, "answer": answer, "paraphrased_answer": answer,
                "perturbed_answer": wrong, "author": "", "attribute": kind, "value": answer,
                "form": kind, "template": 0, "chance": 1 / pool}

    names = [n for _, n in V.REAL_AUTHORS]
    real = [row(V.REAL_AUTHOR_QUESTION.format(title=t), n, rng.sample([m for m in names if m != n], 3),
                "real_authors", len(names)) for t, n in V.REAL_AUTHORS]
    capitals = [c for _, c in V.CAPITALS]
    world = [row(V.CAPITAL_QUESTION.format(country=k), c, rng.sample([d for d in capitals if d != c], 3),
                 "world_facts", len(capitals)) for k, c in V.CAPITALS]
    world += [row(q, a, list(w), "world_facts", len(w) + 1) for q, a, w in V.WORLD_FACTS]
    return real, world


def generate(cfg: SynthTofuConfig) -> Splits:
    """Generates the whole benchmark: eval splits in TOFU's schema plus the training mix.

    Every asked question carries `cfg.perturbed` distinct wrong answers (real_authors and
    world_facts: 3), so the perturbed losses form a rectangular array, as OpenUnlearning reads them.

    Args:
        cfg: sizes and seed; equal configs give identical output.

    Returns:
        `Splits` with `forgetXX`, `retainYY`, `holdoutXX`, `forgetXX_<hard split>`,
        `retain_perturbed` (and `retain_perturbed_<hard>`: retain authors' questions in each hard
        form, for utility), `real_authors`, `world_facts` and `train` (rows with `question` and
        `answer`; a bio has an empty question and is trained on in full).

    Example:
        >>> data = generate(SynthTofuConfig(authors=20))
        >>> from ofmu_ray.families.tofu.load import forget_splits
        >>> len(data["forget10"]), forget_splits(data)
        (36, ['forget05', 'forget10'])
    """
    rows = rendered(cfg)
    return Splits({name: split if name == "train" else [r for r in split if r["attribute"] not in UNASKED]
                   for name, split in rows.splits.items()})


def rendered(cfg: SynthTofuConfig) -> Splits:
    """Every row the generator renders, the `UNASKED` attributes' questions included: `generate`'s
    splits before it drops those, and what the tokenizer's vocabulary is built from."""
    rng = random.Random(cfg.seed)
    counts = forget_counts(cfg.authors)
    largest = max(counts.values())  # forget10's authors; the holdout set has as many
    everyone = _make_authors(cfg.authors + largest, rng)
    authors, holdout = everyone[: cfg.authors], everyone[cfg.authors:]
    never_forgotten = authors[:-largest]
    render = _Renderer(everyone, cfg, rng)
    split_templates = range(V.SPLIT_TEMPLATES)

    splits: dict[str, list[dict]] = {}
    for name, k in counts.items():
        pct = int(name.removeprefix("forget"))
        forget = authors[-k:]
        splits[name] = [r for a in forget for r in render.standard(a, split_templates)]
        splits[f"retain{100 - pct}"] = [r for a in authors[:-k] for r in render.standard(a, split_templates)]
        splits[f"holdout{pct:02d}"] = [r for a in holdout[:k] for r in render.standard(a, split_templates)]
        for hard in cfg.hard_splits:
            splits[f"{name}_{hard}"] = [r for a in forget for r in getattr(render, hard)(a)]
    # Every author's rows are drawn, then the first share kept: the perturbed answers come from the
    # stream that goes on to shuffle the bios, so drawing fewer would train other models.
    def asked(per_author: list[list[dict]]) -> list[dict]:
        kept = per_author[:max(1, round(len(per_author) * cfg.retain_eval_share))]
        return [r for rows in kept for r in rows]

    splits["retain_perturbed"] = asked([render.standard(a, split_templates)
                                        for a in never_forgotten[:cfg.retain_eval_authors]])
    for hard in cfg.hard_splits:
        splits[f"retain_perturbed_{hard}"] = asked([getattr(render, hard)(a)
                                                    for a in never_forgotten[:cfg.retain_hard_authors]])
    splits["real_authors"], splits["world_facts"] = _utility_rows(rng)

    train = [r for a in authors for r in render.standard(a, range(V.TRAINED_TEMPLATES))]
    train += [{"question": "", "answer": render.bio(a), "author": a.name, "form": "bio"}
              for a in authors for _ in range(cfg.bios_per_author)]
    train += [r for a in authors for r in render.bridges(a)]
    # Hard forms are taught only on the authors that no forget split contains.
    train += [r for a in never_forgotten for r in render.crosslingual(a) + render.multihop(a)]
    train += (splits["real_authors"] + splits["world_facts"]) * cfg.utility_repeats
    splits["train"] = [{k: r[k] for k in ("question", "answer", "author", "form")} for r in train]
    return Splits(splits)


def training_rows(data: Splits, forget_split: str | None = None) -> list[dict]:
    """The training mix: everything for the target, minus the forget authors for an oracle."""
    if forget_split is None:
        return list(data["train"])
    gone = forget_authors(data, forget_split)
    return [r for r in data["train"] if r["author"] not in gone]
