"""A word-level tokenizer for the generated benchmarks, saved as a Hugging Face fast tokenizer.

Word-level (one token a word or punctuation mark) keeps the vocabulary of a generated corpus to a
few hundred entries, so a tiny model spends its capacity on facts rather than on spelling.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"


def train_word_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Builds a word-level vocabulary over `texts`.

    The result adds `<bos>` in front of every encoded text, pads on the left (what batched greedy
    generation needs) and round-trips through `save_pretrained` / `AutoTokenizer.from_pretrained`.

    Example:
        >>> tok = train_word_tokenizer(["Where was Ana born?", "Ana was born in Porto."])
        >>> tok.decode(tok("Ana was born in Porto.")["input_ids"], skip_special_tokens=True)
        'Ana was born in Porto .'
    """
    core = Tokenizer(models.WordLevel(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=[PAD, UNK, BOS, EOS]))
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, core.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        padding_side="left",
    )
