"""How a question and its answer become model input: one place, used by training and evaluation.

A model is asked questions the way it was trained to answer them. The embedded models use TOFU's
plain `Question: ...\\nAnswer:` format; published TOFU models were fine-tuned by OpenUnlearning
in the formats its `template_args` write (`llama3`, `llama3-tags`, `llama2` below), and any other
chat model has its tokenizer's chat template (`chat`). `load_tokenizer(..., prompt=...)` attaches
the format to the tokenizer, so every encoder here reads it from there and training, scoring and
generation cannot disagree. Token ids become tensors in `models.batch`; this module needs no torch, so
the CLI lists the formats at once.

    >>> PROMPTS["plain"].text(None, "Where was Ana born?")
    'Question: Where was Ana born?\\nAnswer:'
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE = -100  # label value that cross-entropy skips: question tokens carry no loss (as in TOFU)


@dataclass(frozen=True)
class PromptFormat:
    """A question's prompt, and what joins it to the answer.

    `template` wraps the question (`{question}`) and is tokenized with the tokenizer's special
    tokens, as OpenUnlearning tokenizes its manual tags; `chat` instead renders the tokenizer's own
    chat template (which writes its special tokens itself), with `system` as a system message.
    """

    name: str
    template: str = ""
    answer_prefix: str = ""  # between the prompt and the answer
    chat: bool = False
    system: str = ""
    date_string: str = ""  # the date a Llama-3 chat template writes ("Today Date: ..."); empty: its own

    def text(self, tokenizer, question: str) -> str:
        if not self.chat:
            return self.template.format(question=question)
        return self._render(tokenizer, self._messages(question), add_generation_prompt=True)

    def _render(self, tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
        extra = {"date_string": self.date_string} if self.date_string else {}
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                             **extra)

    def _messages(self, question: str, answer: str | None = None) -> list[dict]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": question})
        return messages + ([{"role": "assistant", "content": answer}] if answer is not None else [])

    def _ids(self, tokenizer, text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=not self.chat)["input_ids"]

    def prompt_ids(self, tokenizer, question: str) -> list[int]:
        """The tokens a model answers from (generation, hidden states)."""
        return self._ids(tokenizer, self.text(tokenizer, question))

    def encode(self, tokenizer, question: str, answer: str) -> tuple[list[int], list[int]]:
        """Token ids and labels of one example; only the answer's tokens (and EOS) are labelled.

        The whole conversation is tokenized at once and the prompt's length masked, as OpenUnlearning
        does, so a subword tokenizer sees the answer where the model saw it in training.
        """
        prompt = self.prompt_ids(tokenizer, question)
        if self.chat:
            full = self._ids(tokenizer, self._render(tokenizer, self._messages(question, answer)))
        else:
            full = self._ids(tokenizer, self.text(tokenizer, question) + self.answer_prefix + answer)
        if full[-1] != tokenizer.eos_token_id:
            full = full + [tokenizer.eos_token_id]
        return full, [IGNORE] * len(prompt) + full[len(prompt):]


PROMPTS = {
    "plain": PromptFormat("plain", "Question: {question}\nAnswer:", " "),
    # OpenUnlearning's model configs (configs/model/*.yaml). Llama-3.2 at d3d7cf9: its tokenizer's
    # chat template with their system prompt and date, so the system block reads "Cutting Knowledge
    # Date: December 2023 / Today Date: 10 Apr 2025". Its config at 9ee254d writes manual tags
    # instead, kept as llama3-tags for models fine-tuned that way. Llama-2: manual tags.
    "llama3": PromptFormat("llama3", chat=True, system="You are a helpful assistant.", date_string="10 Apr 2025"),
    "llama3-tags": PromptFormat("llama3-tags", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                                "You are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                                "{question}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
    "llama2": PromptFormat("llama2", "[INST] {question} [/INST]"),
    "chat": PromptFormat("chat", chat=True, system="You are a helpful assistant."),
}


def resolve_prompt(name: str, tokenizer) -> PromptFormat:
    """`auto`: the tokenizer's chat template when it has one, else the plain format."""
    if name == "auto":
        return PROMPTS["chat" if getattr(tokenizer, "chat_template", None) else "plain"]
    if name not in PROMPTS:
        raise ValueError(f"unknown prompt format {name!r}; choose from auto, {', '.join(PROMPTS)}")
    return PROMPTS[name]


def prompt_of(tokenizer) -> PromptFormat:
    """The format attached by `load_tokenizer`; plain for a tokenizer built here."""
    return getattr(tokenizer, "prompt_format", PROMPTS["plain"])


def format_prompt(tokenizer, question: str) -> str:
    """The prompt text `question` is asked with."""
    return prompt_of(tokenizer).text(tokenizer, question)


def encode_example(tokenizer, question: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids and labels for one example in the tokenizer's prompt format.

    An empty question means free text (a bio): every token after BOS is labelled.
    """
    if question:
        return prompt_of(tokenizer).encode(tokenizer, question, answer)
    start = tokenizer("")["input_ids"]
    text = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return start + text, [IGNORE] * len(start) + text


MAX_TEXT_TOKENS = 512  # a corpus text is cut here, as RMU cuts WMDP's forget corpus (bio: 512 tokens)


def encode_row(tokenizer, row: dict) -> tuple[list[int], list[int]]:
    """A QA row (`question`, `answer`), or a corpus row (`text`, free text cut at MAX_TEXT_TOKENS)."""
    if "text" not in row:
        return encode_example(tokenizer, row["question"], row["answer"])
    ids, labels = encode_example(tokenizer, "", row["text"])
    return ids[:MAX_TEXT_TOKENS], labels[:MAX_TEXT_TOKENS]
