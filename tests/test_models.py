"""Tokenizer and model round trips through `from_pretrained`, prompt masking, greedy answers."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ofmu_ray.config import TinyLlamaSpec
from ofmu_ray.metrics.accuracy import contains_value, greedy_answers
from ofmu_ray.models.batch import collate, prompt_batch
from ofmu_ray.models.factory import build_tiny_llama, load_causal_lm, load_tokenizer
from ofmu_ray.models.prompt import IGNORE, PROMPTS, encode_example, format_prompt, resolve_prompt
from ofmu_ray.models.tokenizer import train_word_tokenizer

TEXTS = ["Where was Ana Lopez born?", "Ana Lopez was born in Porto.", "Der Ort ist Köln.",
         PROMPTS["plain"].template, "INST /INST < > user assistant"]


def test_tokenizer_round_trip(tmp_path):
    tok = train_word_tokenizer(TEXTS)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "Ana Lopez was born in Köln."
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again(text)["input_ids"][0] == again.bos_token_id
    assert again.decode(again(text)["input_ids"], skip_special_tokens=True) == "Ana Lopez was born in Köln ."
    assert again("Ana flew to Mars")["input_ids"].count(again.unk_token_id) == 3


def test_model_round_trip_is_safetensors_and_identical(tmp_path):
    tok = train_word_tokenizer(TEXTS)
    model = build_tiny_llama(TinyLlamaSpec(layers=2, hidden=32, intermediate=64, heads=2), tok).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.tensor([tok("Where was Ana Lopez born?")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert load_causal_lm(tmp_path).config.vocab_size == len(tok)
    assert load_tokenizer(tmp_path).padding_side == "left"


def test_only_answer_tokens_carry_loss():
    tok = train_word_tokenizer(TEXTS)
    ids, labels = encode_example(tok, "Where was Ana Lopez born?", "Ana Lopez was born in Porto.")
    prompt_len = len(tok(format_prompt(tok, "Where was Ana Lopez born?"))["input_ids"])
    assert labels[:prompt_len] == [IGNORE] * prompt_len
    assert labels[prompt_len:] == ids[prompt_len:] and labels[-1] == tok.eos_token_id
    bio_ids, bio_labels = encode_example(tok, "", "Ana Lopez was born in Porto.")
    assert bio_labels[0] == IGNORE and bio_labels[1:] == bio_ids[1:]  # free text: all but BOS
    batch = collate([(ids, labels), (bio_ids, bio_labels)], tok.pad_token_id)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, len(ids))
    assert batch["attention_mask"][1].sum() == len(bio_ids)


def test_batched_left_padded_greedy_equals_one_by_one():
    tok = train_word_tokenizer(TEXTS)
    model = build_tiny_llama(TinyLlamaSpec(layers=2, hidden=32, intermediate=64, heads=2), tok, seed=3)
    questions = ["Where was Ana Lopez born?", "Ana?", "Where was Ana Lopez born in Porto Köln?"]
    batched = greedy_answers(model, tok, questions, max_new_tokens=6)
    assert batched == [greedy_answers(model, tok, [q], max_new_tokens=6)[0] for q in questions]


def test_contains_value_matches_whole_words():
    assert contains_value("Wilma Everly is a woman .", "woman")
    assert not contains_value("Wilma Everly is a woman .", "man")
    assert contains_value("She won the Halden Award.", "halden award")
    assert not contains_value("born in 1967", "196")
    assert contains_value("Le passe-temps de X est l ' escalade .", "l'escalade")


def test_prompt_formats_follow_openunlearning_and_the_chat_template(tmp_path):
    tok = train_word_tokenizer(TEXTS)
    assert PROMPTS["llama2"].text(tok, "Who?") == "[INST] Who? [/INST]"
    assert PROMPTS["llama3-tags"].text(tok, "Who?").endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nWho?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    assert resolve_prompt("auto", tok).name == "plain"
    # llama3, as OpenUnlearning's Llama-3.2 config: the tokenizer's own template, given its system
    # prompt and the date it pins (a Llama-3 template writes it as "Today Date: ...")
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
                         "\n\n{% if m['role'] == 'system' %}Today Date: {{ date_string }}\n\n{% endif %}"
                         "{{ m['content'] }}<|eot_id|>{% endfor %}"
                         "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
    assert PROMPTS["llama3"].text(tok, "Who?") == (
        f"{tok.bos_token}<|start_header_id|>system<|end_header_id|>\n\nToday Date: 10 Apr 2025\n\n"
        "You are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")
    tok.chat_template = ("{% for m in messages %}< {{ m['role'] }} > {{ m['content'] }} {% endfor %}"
                         "{% if add_generation_prompt %}< assistant > {% endif %}")
    tok.save_pretrained(tmp_path)
    chat = load_tokenizer(tmp_path)  # auto: the tokenizer has a chat template
    assert chat.prompt_format.name == "chat"
    assert format_prompt(chat, "Who?") == "< system > You are a helpful assistant. < user > Who? < assistant > "
    ids, labels = encode_example(chat, "Where was Ana Lopez born?", "Ana Lopez was born in Porto.")
    answer = [t for t in labels if t != IGNORE]
    assert chat.decode(answer, skip_special_tokens=True) == "Ana Lopez was born in Porto ."
    assert answer[-1] == chat.eos_token_id and ids[: len(ids) - len(answer)] == chat.prompt_format.prompt_ids(
        chat, "Where was Ana Lopez born?")
    assert load_tokenizer(tmp_path, "llama2").prompt_format.name == "llama2"
    batch = prompt_batch(chat, ["Who?", "Where was Ana Lopez born?"])
    short = chat.prompt_format.prompt_ids(chat, "Who?")
    assert batch["input_ids"][0, -len(short):].tolist() == short and batch["attention_mask"][0].sum() == len(short)
