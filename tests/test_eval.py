"""TOFU metrics on hand-made numbers, and the evaluation of the tiny target and oracle."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest

from ofmu_ray.cli import main
from ofmu_ray.families.tofu.oracle import cached_eval, evaluate
from ofmu_ray.metrics import formulas as M


def test_truth_ratio_and_its_two_aggregations():
    true_loss = np.array([1.0, 2.0])
    perturbed = [np.array([1.0, 3.0]), np.array([1.0])]  # mean losses 2.0 and 1.0
    ratios = M.truth_ratios(true_loss, perturbed)
    np.testing.assert_allclose(ratios, [math.exp(-1.0), math.exp(1.0)])
    assert M.forget_truth_ratio(ratios) == pytest.approx(math.exp(-1.0))  # min(R, 1/R) both e^-1
    assert M.retain_truth_ratio(ratios) == pytest.approx((1 - math.exp(-1.0) + 0.0) / 2)


def _openunlearning_truth_ratio(true_loss: float, perturbed_losses: list[float]) -> float:
    """The truth ratio as OpenUnlearning's memorization.py writes it (written out here, not imported)."""
    p_true = math.exp(-true_loss)
    p_pert = math.exp(-sum(perturbed_losses) / len(perturbed_losses))
    return p_pert / (p_true + 1e-10)


def test_truth_ratios_match_openunlearning_on_a_collapsed_model():
    """Parity (issue 23): a collapsed model (p_true < 1e-10) gets OpenUnlearning's guarded ratios,
    and its forget quality falls to the floor, where the unguarded p_pert / p_true would not."""
    rng = np.random.default_rng(0)
    n = 400  # TOFU's forget10
    oracle_true, oracle_pert = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, (n, 5))
    collapsed_true, collapsed_pert = rng.uniform(35, 45, n), rng.uniform(35, 45, (n, 5))  # p_true < 1e-15
    oracle = M.truth_ratios(oracle_true, list(oracle_pert))
    collapsed = M.truth_ratios(collapsed_true, list(collapsed_pert))
    for mine, true, pert in ((oracle, oracle_true, oracle_pert), (collapsed, collapsed_true, collapsed_pert)):
        expected = [_openunlearning_truth_ratio(t, list(p)) for t, p in zip(true, pert, strict=True)]
        np.testing.assert_allclose(mine, expected, rtol=1e-12)
    expected_forget = np.mean([min(r, 1 / (r + 1e-10)) for r in collapsed])
    assert M.forget_truth_ratio(collapsed) == pytest.approx(expected_forget, rel=1e-12)
    assert M.forget_truth_ratio(collapsed) < 1e-4  # the unguarded ratios average about 0.3 here
    fq = M.ks_forget_quality(collapsed, oracle)
    assert math.log10(fq) == pytest.approx(M.log10_fq_floor(n), rel=1e-6)
    unguarded = np.exp(collapsed_true - collapsed_pert.mean(1))
    assert math.log10(M.ks_forget_quality(unguarded, oracle)) > M.log10_fq_floor(n) / 2


def test_probability_and_its_normalisation_over_options():
    np.testing.assert_allclose(M.probability(np.array([0.0, math.log(2)])), [1.0, 0.5])
    p = M.normalised_probability(np.array([math.log(2)]), [np.array([math.log(4), math.log(4)])])
    assert p[0] == pytest.approx(0.5 / (0.5 + 0.25 + 0.25))


def test_model_utility_is_a_harmonic_mean_that_any_zero_sinks():
    assert M.model_utility([1.0, 0.5]) == pytest.approx(2 / (1 + 2))
    assert M.model_utility([0.9, 0.0, 0.8]) == 0.0


def test_rouge_l_recall():
    got = M.rouge_l_recall(["The author was born in Porto", "a b"], ["The author was born in Lima", "x"])
    np.testing.assert_allclose(got, [5 / 6, 0.0])


@pytest.mark.parametrize("n, floor", [(400, 1.06e-239), (200, 1.94e-119), (40, 1.86e-23)])
def test_forget_quality_floor_at_complete_separation(n, floor):
    fq = M.ks_forget_quality(np.arange(n, dtype=float), np.arange(n, dtype=float) + n)
    assert fq == pytest.approx(floor, rel=0.01)
    assert M.ks_forget_quality(np.arange(n, dtype=float), np.arange(n, dtype=float)) == 1.0


def test_auc_and_privleak():
    assert M.auc(np.array([0.1, 0.2]), np.array([0.8, 0.9])) == 1.0  # members: lower loss
    assert M.auc(np.array([0.8, 0.9]), np.array([0.1, 0.2])) == 0.0
    assert M.auc(np.array([0.1, 0.5]), np.array([0.5, 0.9])) == pytest.approx(0.875)  # a tie counts half
    assert M.privleak(1.0, 0.5) == pytest.approx(-100.0)
    assert M.privleak(0.5, 0.5) == 0.0


def test_mia_scores():
    lps = [np.log(np.array([0.5, 0.25, 0.125, 1.0, 1.0]))]
    # k = 0.4 of 5 tokens -> the 2 lowest: log(1/8), log(1/4)
    assert M.mia_min_k(lps)[0] == pytest.approx(-(math.log(0.125) + math.log(0.25)) / 2)
    z = M.mia_min_k_plus_plus([np.array([-1.0, -3.0])], [np.array([-1.0, -1.0])], [np.array([4.0, 1e-9])])
    assert z[0] == pytest.approx(2 / math.sqrt(1e-6))  # variance clamped at 1e-6; k*2 -> 1 token
    assert M.mia_zlib(np.array([2.0]), ["abc"])[0] == pytest.approx(2.0 / len(zlib.compress(b"abc")))


def test_tiny_oracle_is_its_own_reference_and_the_target_is_far_from_it(tiny):
    oracle, _ = evaluate(tiny, "forget10", "oracle")
    target, _ = evaluate(tiny, "forget10", "target")
    assert oracle["forget_quality"] == 1.0 and oracle["privleak"] == 0.0
    assert target["forget_quality"] < 0.01
    assert abs(target["model_utility"] - oracle["model_utility"]) <= 0.1
    for hard in ("paraphrase", "multihop", "crosslingual"):
        assert oracle[f"forget_quality/{hard}"] == 1.0 and oracle[f"embedding_alignment/{hard}"] == pytest.approx(1.0)
        assert target[f"forget_quality/{hard}"] < oracle[f"forget_quality/{hard}"]
        assert target[f"embedding_alignment/{hard}"] < 1.0
    assert target["fq_variance"] > 0 and target["mu_degradation"] == 0.0
    for hard in ("paraphrase", "multihop", "crosslingual"):  # retained knowledge, asked in each form
        assert 0.3 < oracle[f"model_utility/{hard}"] <= 1 and 0.3 < target[f"model_utility/{hard}"] <= 1
    assert target["mia_min_k"] > oracle["mia_min_k"] and target["privleak"] < 0


def test_tofu_eval_holds_openunlearnings_precomputes_and_they_give_its_ratios(tiny):
    """Each answer's prob and avg_loss are in TOFU_EVAL.json under OpenUnlearning's names (lists for
    the perturbed answers), and its truth ratios recomputed from them are the file's."""
    from ofmu_ray.families.tofu.evaluate import evaluate_model
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.splits import Splits

    data = tiny.data()
    small = Splits({name: data[name][:6] for name in data})
    model, tok = load_causal_lm(tiny.model_dir("target")), load_tokenizer(tiny.model_dir("target"), "plain")
    result = json.loads(json.dumps(evaluate_model(model, tok, small, "forget10", hard=False)))
    para, pert = result["forget_Q_A_PARA_Prob"]["value_by_index"], result["forget_Q_A_PERT_Prob"]["value_by_index"]
    assert len(pert["0"]["avg_loss"]) == len(small["forget10"][0]["perturbed_answer"])
    for i, score in result["forget_truth_ratio"]["value_by_index"].items():
        assert pert[i]["prob"] == pytest.approx([math.exp(-x) for x in pert[i]["avg_loss"]])
        assert score["score"] == pytest.approx(_openunlearning_truth_ratio(para[i]["avg_loss"], pert[i]["avg_loss"]))
    for prefix in ("retain", "ra", "wf"):
        assert {f"{prefix}_Q_A_Prob", f"{prefix}_Q_A_PERT_Prob"} <= set(result)
    assert "retain_Q_A_PARA_Prob" in result and "ra_Q_A_PARA_Prob" not in result  # ra/wf: original answers


def test_oracle_reference_is_cached_and_never_recomputed(tiny):
    cached_eval(tiny, "oracle-forget10", "forget10")
    path = tiny.root / "eval" / "oracle-forget10-forget10" / "TOFU_EVAL.json"
    stamp = path.stat().st_mtime_ns
    evaluate(tiny, "forget10", "target")
    assert path.stat().st_mtime_ns == stamp


def test_cli_eval_writes_openunlearning_files_and_takes_retain_logs(tiny, cache_dir, tmp_path, capsys):
    argv = ["eval", "--profile", "tiny", "--cache-dir", cache_dir, "--split", "forget10"]
    assert main([*argv, "--evaluate", "oracle", "--out", str(tmp_path / "oracle"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    log = json.loads((tmp_path / "oracle" / "TOFU_EVAL.json").read_text())
    assert len(log["forget_truth_ratio"]["value_by_index"]) == 36
    assert json.loads((tmp_path / "oracle" / "TOFU_SUMMARY.json").read_text()) == summary
    # A published retain log stands in for the oracle: the same numbers when it is the same oracle.
    retain_logs = ["--retain-logs", str(tmp_path / "oracle" / "TOFU_EVAL.json")]
    assert main([*argv, "--evaluate", "target", "--out", str(tmp_path / "t"), "--json", *retain_logs]) == 0
    with_logs = json.loads(capsys.readouterr().out)
    assert with_logs == json.loads(json.dumps(evaluate(tiny, "forget10", "target")[0]))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main([*argv, "--evaluate", "target", "--retain-logs", str(bad)]) == 2
    assert "no per-question 'forget_truth_ratio'" in capsys.readouterr().err
    assert main([*argv, "--evaluate", str(tmp_path / "nowhere")]) == 2
    assert main([*argv, "--split", "forget99"]) == 2


def _whole_sequences(model, tokenizer, questions, answers, tokens=False):
    """The scores as a plain loop writes them: every pair's whole sequence through the model alone."""
    import torch

    from ofmu_ray.metrics.scoring import AnswerScores
    from ofmu_ray.models.prompt import IGNORE, encode_example

    losses, logprobs, means, variances = [], [], [], []
    with torch.no_grad():
        for q, a in zip(questions, answers, strict=True):
            ids, labels = encode_example(tokenizer, q, a)
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
            target = torch.tensor(labels[1:])
            keep = (target != IGNORE).nonzero().squeeze(-1)
            token_lp = logp[keep, target[keep]]
            losses.append(float(-token_lp.mean()))
            p, lp = logp[keep[:-1]].exp(), logp[keep[:-1]]
            mu = (p * lp).sum(-1)
            logprobs.append(token_lp[:-1].numpy())
            means.append(mu.numpy())
            variances.append(((p * lp * lp).sum(-1) - mu * mu).numpy())
    return AnswerScores(np.array(losses), logprobs, means, variances) if tokens else AnswerScores(np.array(losses))


def _assert_close(mine, theirs, where=""):
    if isinstance(theirs, dict):
        assert mine.keys() == theirs.keys(), where
        for key in theirs:
            _assert_close(mine[key], theirs[key], f"{where}/{key}")
    elif isinstance(theirs, list):
        assert len(mine) == len(theirs), where
        for i, (m, t) in enumerate(zip(mine, theirs, strict=True)):
            _assert_close(m, t, f"{where}[{i}]")
    elif isinstance(theirs, float):
        assert mine == pytest.approx(theirs, rel=1e-4, abs=1e-5), where
    else:
        assert mine == theirs, where


def test_shared_prompt_scoring_gives_the_tofu_eval_of_whole_sequences(tiny, monkeypatch):
    """Scoring batches pairs and runs each prompt once for all its answers (issue 21's speed-up).
    The whole TOFU_EVAL.json it gives equals, to float tolerance, the one from scoring every pair's
    whole sequence alone, and so does each answer's token-level output, in the order asked."""
    from ofmu_ray.families.tofu import evaluate as E
    from ofmu_ray.metrics import scoring
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.splits import Splits

    model, tok = load_causal_lm(tiny.model_dir("target")), load_tokenizer(tiny.model_dir("target"), "plain")
    data = tiny.data()
    # Every split the evaluation reads, cut short: the reference runs one sequence at a time.
    small = Splits({name: data[name][:12] for name in data})
    shared = E.evaluate_model(model, tok, small, "forget10")
    monkeypatch.setattr(scoring, "score_answers", _whole_sequences)
    monkeypatch.setattr(E, "score_answers", _whole_sequences)
    _assert_close(shared, E.evaluate_model(model, tok, small, "forget10"))
    monkeypatch.undo()

    rows = data["retain_perturbed"][:24] + data["forget10"][:8]
    questions = [r["question"] for r in rows] * 2
    answers = [r["answer"] for r in rows] + [r["perturbed_answer"][0] for r in rows]
    batched = scoring.score_answers(model, tok, questions, answers, tokens=True)
    alone = _whole_sequences(model, tok, questions, answers, tokens=True)
    assert np.allclose(batched.avg_loss, alone.avg_loss, rtol=1e-5, atol=1e-6)
    for field in ("token_logprobs", "means", "variances"):
        for mine, theirs in zip(getattr(batched, field), getattr(alone, field), strict=True):
            assert np.allclose(mine, theirs, rtol=1e-4, atol=1e-5), field
