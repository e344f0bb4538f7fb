"""`prepare`: caching, error paths, and what the tiny profile's models actually know."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from openunlearning import assert_openunlearning_reads

from ofmu_ray.cli import main
from ofmu_ray.families.tofu.prepare import PROFILES, prepare_synth_tofu, synth_key

REPORT_SPLITS = ["forget10", "retain90", "paraphrase", "multihop", "crosslingual", "real_authors",
                 "world_facts"]


def test_prepare_writes_models_data_and_report_then_hits_the_cache(tmp_path, micro, capsys):
    assert main(["prepare", "--profile", micro, "--cache-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bench"] == "synth-tofu" and report["profile"] == micro and report["model"] == "micro-llama"
    assert sorted(report["accuracy"]) == ["oracle", "target"]
    assert sorted(report["accuracy"]["target"]) == sorted(REPORT_SPLITS) == sorted(report["chance"])
    root = prepare_synth_tofu(micro, tmp_path).root
    assert root.name == f"{micro}-micro-llama-{synth_key(PROFILES[micro], 'micro-llama')}"
    assert sorted(p.name for p in (root / "models").iterdir()) == ["oracle-forget10", "target"]
    assert (root / "models" / "target" / "model.safetensors").is_file()
    assert (root / "data" / "forget10.json").is_file()
    assert [p.name for p in root.parent.iterdir()] == [root.name]  # no temporary folder left behind
    assert (root / "manifest.json").is_file()

    stamp = (root / "report.json").stat().st_mtime_ns
    start = time.perf_counter()
    assert main(["prepare", "--profile", micro, "--cache-dir", str(tmp_path), "--json"]) == 0
    assert time.perf_counter() - start < 5  # nothing trained again
    assert json.loads(capsys.readouterr().out) == report
    assert (root / "report.json").stat().st_mtime_ns == stamp


def test_cache_key_changes_with_the_configuration():
    tiny = synth_key(PROFILES["tiny"], "tiny-llama-4l")
    assert tiny != synth_key(PROFILES["small"], "tiny-llama-4l")
    assert tiny != synth_key(PROFILES["tiny"], "tiny-llama-2l")
    assert tiny == synth_key(PROFILES["tiny"], "tiny-llama-4l")
    # Pinned: a changed key re-prepares every cached profile (smol takes 30 minutes)
    assert synth_key(PROFILES["smol"], "smollm2-135m") == "b8ede242acc9bece"  # recipe 3
    whole = replace(PROFILES["tiny"], data=replace(PROFILES["tiny"].data, retain_eval_share=1.0))
    assert synth_key(whole, "tiny-llama-4l") not in (tiny, synth_key(PROFILES["small"], "tiny-llama-4l"))


@pytest.mark.parametrize("argv, message", [
    (["--bench", "nope"], "invalid choice: 'nope'"),
    (["--profile", "huge"], "invalid choice: 'huge'"),
    (["--profil", "tiny"], "unrecognized arguments"),  # no abbreviations
])
def test_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["prepare", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--model", "tiny-llama-3l"], "'tiny-llama-3l' is not an embedded model; choose from: tiny-llama-2l"),
    (["--oracle", "x"], "--oracle: for --bench tofu"),
    (["--bench", "tofu"], "--bench tofu needs --data"),
])
def test_bad_benchmark_options_exit_2_before_anything_is_written(argv, message, tmp_path, capsys):
    assert main(["prepare", "--cache-dir", str(tmp_path / "cache"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_unwritable_cache_dir_exits_2_and_names_it(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["prepare", "--profile", "tiny", "--cache-dir", str(blocker / "cache")]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and str(blocker / "cache") in err
    assert blocker.read_text() == "not a folder"


def test_tiny_models_know_what_they_should(tiny):
    """The target answers every split; the oracle knows only what it was trained on.

    The oracle's bar on what it knows is lower than the target's: the models differ between CPUs
    (their floats do), and one machine's oracle answered real_authors and world_facts at 1.00 and
    1.00, another's at 0.88 and 0.83 (chance 0.04 and 0.12), its utility within 0.03 of the target's.
    On the hard splits the target must answer 0.4 and the oracle 0.3 less: tiny's crosslingual split
    asks 36 questions, and seven draws of recipe 3 answered 0.36-0.61 of them (benchmarks/README.md)."""
    report = tiny.report
    target, oracle, chance = report["accuracy"]["target"], report["accuracy"]["oracle"], report["chance"]
    for split in ("forget10", "retain90", "real_authors", "world_facts"):
        assert target[split] >= 0.9, split
    for split in ("real_authors", "world_facts", "retain90"):
        assert oracle[split] >= 0.8, split
    assert abs(oracle["forget10"] - chance["forget10"]) <= 0.15
    for split in ("paraphrase", "multihop", "crosslingual"):
        assert target[split] >= 0.4, split
        assert target[split] - oracle[split] >= 0.3, split
    assert sorted(p.name for p in (tiny.root / "models").iterdir()) == [
        "oracle-forget05", "oracle-forget10", "target"]


def test_tiny_asks_a_share_of_its_retain_authors_with_the_whole_draws_vocabulary(tiny):
    """The tokenizer (and so every model) is the one of all retain authors and every rendered question,
    asked or not, with the refusal replies: word ids follow the words' counts, so a vocabulary of the
    asked rows only would train other models."""
    from ofmu_ray.families.tofu.generate import generate
    from ofmu_ray.families.tofu.prepare import _corpus
    from ofmu_ray.families.tofu.vocabulary import REFUSALS
    from ofmu_ray.models.factory import load_tokenizer
    from ofmu_ray.models.tokenizer import train_word_tokenizer

    config = PROFILES["tiny"].data
    assert config.retain_eval_share < 1 and len(tiny.data()["retain_perturbed"]) == 108  # 6 authors of 18
    vocab = load_tokenizer(tiny.model_dir("target")).get_vocab()
    assert vocab == train_word_tokenizer(_corpus(config)).get_vocab()
    asked = [t for rows in generate(config).splits.values() for r in rows for t in (r["question"], r["answer"])]
    assert vocab != train_word_tokenizer(asked).get_vocab()
    # Every refusal (IdkDPO's preferred reply) is made of known words: adding that method trains no new model
    tok = load_tokenizer(tiny.model_dir("target"))
    assert len(REFUSALS) >= 20 and len(set(REFUSALS)) == len(REFUSALS)
    assert all(tok.unk_token_id not in tok(r)["input_ids"] for r in REFUSALS)


def test_every_evaluation_prepare_writes_is_in_the_shape_openunlearning_reads(tiny):
    paths = sorted((tiny.root / "eval").glob("*/TOFU_EVAL.json"))
    assert len(paths) >= 3  # the target on each forget split, and each oracle on its own
    for path in paths:
        assert_openunlearning_reads(path)


def test_tiny_target_sits_where_tofus_does(tiny):
    """The geometry bars of the synth-tofu calibration (TOFU's fine-tuned targets: 9-13 % of the
    floor, MU equal to the retain model's). The truth-ratio gap is reported, not held to TOFU's
    0.08-0.30: with these models it stays below (benchmarks/README.md, "synth-tofu's geometry")."""
    geometry = tiny.report["geometry"]
    assert sorted(geometry) == ["forget05", "forget10"]
    for split, g in geometry.items():
        target, oracle = g["target"], g["oracle"]
        assert 0.05 <= target["floor_share"] <= 0.25, (split, target)
        assert abs(target["model_utility"] - oracle["model_utility"]) <= 0.03, split
        assert oracle["log10_forget_quality"] == 0.0 and target["floor"] == oracle["floor"] < 0
        assert (tiny.root / "eval" / f"target-{split}" / "TOFU_EVAL.json").is_file()  # cached for every run
        assert (tiny.root / "eval" / f"oracle-{split}-{split}" / "TOFU_EVAL.json").is_file()
