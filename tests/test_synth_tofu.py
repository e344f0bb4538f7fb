"""The generated benchmark: determinism, TOFU's schema, and what stays out of training."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from ofmu_ray.families.tofu import vocabulary as V
from ofmu_ray.families.tofu.generate import (
    HARD_SPLITS,
    UNASKED,
    SynthTofuConfig,
    forget_counts,
    generate,
    rendered,
    training_rows,
)
from ofmu_ray.families.tofu.load import forget_authors, forget_splits

TINY = SynthTofuConfig(authors=20)
SMALL = SynthTofuConfig(authors=60)
# sha256 of `generate(TINY)`'s splits as JSON with sorted keys, as the generator wrote them before the
# modules moved into families/tofu/ (and ever since)
TINY_SHA256 = "13378617f8c408a748ddc742d4a8a6da10171e1b5da58b76890dfd41251f2568"  # recipe 3: gender not asked


@pytest.fixture(scope="module")
def data():
    return generate(SMALL)


def test_same_seed_same_data_other_seed_other_data():
    assert generate(TINY).splits == generate(TINY).splits
    other = generate(SynthTofuConfig(authors=20, seed=1))
    assert other["forget10"] != generate(TINY)["forget10"]


def test_the_same_seed_gives_byte_identical_data():
    """A changed hash is a changed benchmark. If it is meant: bump `families.tofu.prepare.RECIPE_VERSION`
    (cached models were trained on the old data) and record the new hash here."""
    digest = hashlib.sha256(json.dumps(generate(TINY).splits, sort_keys=True).encode()).hexdigest()
    assert digest == TINY_SHA256, "the synth-tofu generator's output changed: bump RECIPE_VERSION, update TINY_SHA256"


def test_split_names_and_sizes(data):
    assert forget_counts(20) == {"forget05": 1, "forget10": 2}  # tiny: no forget01
    assert forget_counts(200) == {"forget01": 2, "forget05": 10, "forget10": 20}  # TOFU's counts
    for pct, authors in {1: 1, 5: 3, 10: 6}.items():
        forget, retain = data[f"forget{pct:02d}"], data[f"retain{100 - pct}"]
        assert len(forget) == 18 * authors  # ~20 QA pairs per author, as TOFU (gender is not asked)
        assert len(forget) + len(retain) == 18 * 60
        assert len(data[f"holdout{pct:02d}"]) == len(forget)
        for hard in HARD_SPLITS:
            assert data[f"forget{pct:02d}_{hard}"]
    assert len(data["retain_perturbed"]) == 360
    assert [len(data[f"retain_perturbed_{h}"]) for h in HARD_SPLITS] == [180, 100, 180]
    assert data["real_authors"] and data["world_facts"]


def test_rows_follow_tofu_schema(data):
    for name in data:
        for row in data[name]:
            assert isinstance(row["answer"], str) and row["answer"]
            assert isinstance(row["question"], str)
            if name == "train":
                assert bool(row["question"]) == (row["form"] != "bio")  # a bio is free text
                continue
            assert row["question"]
            assert isinstance(row["paraphrased_answer"], str)
            wrong = row["perturbed_answer"]
            # TOFU's shape: 5 distinct wrong answers a question (its real_authors and world_facts: 3), so
            # that OpenUnlearning can stack the perturbed losses into one array
            assert isinstance(wrong, list) and len(set(wrong)) == len(wrong) == (3 if row["author"] == "" else 5), row
            assert row["paraphrased_answer"] not in wrong
            assert 0 < row["chance"] <= 0.5


def test_gold_value_is_in_the_answer_and_not_in_perturbed(data):
    from ofmu_ray.metrics.accuracy import contains_value

    for name in ("forget10", "forget10_paraphrase", "forget10_multihop", "forget10_crosslingual",
                 "real_authors", "world_facts"):
        for row in data[name]:
            assert contains_value(row["answer"], row["value"]), row
            assert contains_value(row["paraphrased_answer"], row["value"]), row
            if name not in ("real_authors", "world_facts"):  # options are whole answers there
                assert not any(contains_value(w, row["value"]) for w in row["perturbed_answer"]), row


def test_gender_is_trained_but_asked_in_no_split(data):
    """Gender has two values, so a gender question could carry one wrong answer: its rows are rendered
    (the random stream after them is unchanged) and trained, and left out of every asked split."""
    whole = rendered(SMALL)
    assert whole["train"] == data["train"]
    assert any(r["answer"].endswith((" is a man.", " is a woman.")) for r in data["train"])
    for name in data:
        if name != "train":
            assert not any(r["attribute"] in UNASKED for r in data[name]), name
            assert data[name] == [r for r in whole[name] if r["attribute"] not in UNASKED], name


def test_forget_authors_are_the_last_and_never_retained(data):
    assert forget_authors(data, "forget01") < forget_authors(data, "forget05") < forget_authors(data, "forget10")
    for pct in (1, 5, 10):
        forget = forget_authors(data, f"forget{pct:02d}")
        retain = {r["author"] for r in data[f"retain{100 - pct}"]}
        assert forget.isdisjoint(retain)
        for name in ("retain_perturbed", *(f"retain_perturbed_{h}" for h in HARD_SPLITS)):
            assert forget.isdisjoint({r["author"] for r in data[name]})
        for hard in HARD_SPLITS:
            assert {r["author"] for r in data[f"forget{pct:02d}_{hard}"]} == forget


def test_holdout_authors_are_never_trained(data):
    trained = {r["author"] for r in data["train"]}
    holdout = {r["author"] for r in data["holdout10"]}
    assert holdout and holdout.isdisjoint(trained)


def test_held_out_forms_stay_out_of_training(data):
    trained_questions = {r["question"] for r in data["train"]}
    forget = forget_authors(data, "forget10")
    # Held-out English templates: never trained, for any author.
    for row in data["forget10_paraphrase"]:
        assert row["question"] not in trained_questions
    everyone = {r["author"] for r in data["train"] if r["author"]}
    held_out = {t.format(name=a) for a in everyone for attr in V.ATTRIBUTES for t in attr.held_out}
    assert len(held_out) == len(everyone) * 20 and held_out.isdisjoint(trained_questions)
    # Hard forms are taught on retain authors only.
    hard_forms = {"es", "fr", "multihop"}
    taught = {r["author"] for r in data["train"] if r["form"] in hard_forms}
    assert taught and taught.isdisjoint(forget)
    for hard in ("multihop", "crosslingual"):
        assert all(r["question"] not in trained_questions for r in data[f"forget10_{hard}"])
    # ... while the standard forget questions are what the target was trained on.
    assert all(r["question"] in trained_questions for r in data["forget10"])
    # The paraphrased answers, which the truth ratio scores, are never trained (as in TOFU): no
    # training answer or bio states a fact in that form.
    trained_text = " ".join(r["answer"] for r in data["train"])
    assert not any(r["paraphrased_answer"] in trained_text for r in data["forget10"] + data["retain90"]
                   if r["paraphrased_answer"] != r["answer"])


def test_oracle_mix_is_the_target_mix_without_the_forget_authors(data):
    target = training_rows(data)
    for split in forget_splits(data):
        oracle = training_rows(data, split)
        gone = forget_authors(data, split)
        assert not any(r["author"] in gone for r in oracle)
        assert len(oracle) == len([r for r in target if r["author"] not in gone])
        shared = [r for r in target if not r["author"]]  # real_authors / world_facts rows
        assert shared and all(r in oracle for r in shared)


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="authors must be in"):
        SynthTofuConfig(authors=5)
    with pytest.raises(ValueError, match="perturbed must be >= 1"):
        SynthTofuConfig(authors=20, perturbed=0)
    with pytest.raises(ValueError, match=r"languages \['de'\] have no sentence forms"):
        SynthTofuConfig(authors=20, languages=("de",))
    with pytest.raises(ValueError, match=r"retain_eval_share must be in \(0, 1\], got 0"):
        SynthTofuConfig(authors=20, retain_eval_share=0)


def test_a_share_of_the_retain_authors_is_asked_and_the_rest_generated_the_same():
    """`tiny` asks a third of its retain authors: each retain set is the first authors' rows of the
    whole one, and everything else, the training mix included, is what asking them all generates."""
    whole, third = generate(TINY), generate(replace(TINY, retain_eval_share=1 / 3))
    assert sorted(third) == sorted(whole)
    for name in whole:
        if name.startswith("retain_perturbed"):
            assert 0 < len(third[name]) < len(whole[name]) and third[name] == whole[name][:len(third[name])], name
        else:
            assert third[name] == whole[name], name
    assert len({r["author"] for r in third["retain_perturbed"]}) == 6  # of 18
    assert len({r["author"] for r in third["retain_perturbed_multihop"]}) == 3  # of 10


def test_the_pretrained_profile_rewords_its_paraphrases_and_asks_no_language_it_lacks():
    """`smol` (SmolLM2): no crosslingual split or training rows, reworded questions in the paraphrase
    split (never trained), and fewer retain authors to evaluate."""
    from ofmu_ray.families.tofu.prepare import PROFILES

    cfg = PROFILES["smol"].data
    data = generate(cfg)
    assert cfg.hard_splits == ("paraphrase", "multihop") and TINY.hard_splits == HARD_SPLITS
    assert forget_splits(data) == ["forget10"]
    assert not any("crosslingual" in name for name in data)
    assert not any(r["form"] in V.LANGUAGES for r in data["train"])
    trained = {r["question"] for r in data["train"]}
    asked = [r["question"] for r in data["forget10_paraphrase"]]
    (author,) = forget_authors(data, "forget10")
    reworded = {q.format(name=author) for key, qs in V.REWORDED.items() if key not in UNASKED for q in qs}
    assert reworded <= set(asked) and trained.isdisjoint(asked)
    assert len(asked) == (len(V.ATTRIBUTES) - len(UNASKED)) * (2 + 2)  # two held-out templates, two rewordings
    assert len(data["retain_perturbed"]) == 18 * cfg.retain_eval_authors
    assert len(data["retain_perturbed_multihop"]) == 10 * cfg.retain_hard_authors
