"""TOFU evaluation of one model on one forget split, and its summary against the retain oracle.

`evaluate_model` runs the model and returns per-question results in OpenUnlearning's
`TOFU_EVAL.json` layout (`{metric: {"agg_value": x, "value_by_index": {...}}}`); `summarize` turns
such a result and a reference (the oracle's own `TOFU_EVAL.json`, ours or OpenUnlearning's) into
the metrics the platform logs (named as the table of docs/metrics.md names them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ofmu_ray.families.tofu.generate import HARD_SPLITS
from ofmu_ray.metrics import formulas as M
from ofmu_ray.metrics.accuracy import greedy_for_rows
from ofmu_ray.metrics.scoring import pooled_hidden, score_answers, score_options
from ofmu_ray.splits import Splits

UTILITY_KEYS = ("retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio",
                "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE", "ra_Truth_Ratio",
                "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio")
MIA_ATTACKS = ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus")


class MissingReference(ValueError):
    """The oracle reference lacks what a metric needs."""


def _by_index(values, key: str) -> dict[str, dict]:
    return {str(i): {key: float(v)} for i, v in enumerate(values)}


def _rouge(model, tokenizer, rows: list[dict], max_new_tokens: int | None) -> tuple[np.ndarray, list[str]]:
    generations = greedy_for_rows(model, tokenizer, rows, max_new_tokens)
    return M.rouge_l_recall([r["answer"] for r in rows], generations), generations


@dataclass
class QAScores:
    """Average losses of each question's answer, its `true_key` answer (the truth ratio's true side:
    the paraphrase, or the answer itself) and its perturbed answers."""

    answer: np.ndarray
    true: np.ndarray
    perturbed: list[np.ndarray]

    @property
    def ratios(self) -> np.ndarray:
        return M.truth_ratios(self.true, self.perturbed)


def qa_scores(model, tokenizer, rows: list[dict], true_key: str) -> QAScores:
    """Scores the rows' answers, `true_key` answers and perturbed answers under the model."""
    # One call for all of a question's answers, so they share its prompt's forward pass.
    keys = ("answer",) if true_key == "answer" else ("answer", true_key)
    scored = score_options(model, tokenizer, [r["question"] for r in rows],
                           [[r[k] for k in keys] + r["perturbed_answer"] for r in rows])
    return QAScores(np.array([s[0] for s in scored]), np.array([s[len(keys) - 1] for s in scored]),
                    [s[len(keys):] for s in scored])


def _probabilities(losses) -> dict:
    """A pre-compute as OpenUnlearning writes it: each answer's (or answer list's) prob and avg_loss."""
    def entry(loss):
        loss = np.asarray(loss, dtype=float)
        return {"prob": M.probability(loss).tolist(), "avg_loss": loss.tolist()}
    by_index = {str(i): entry(loss) for i, loss in enumerate(losses)}
    return {"agg_value": float(np.mean([np.mean(e["prob"]) for e in by_index.values()])),
            "value_by_index": by_index}


def _precomputes(prefix: str, scores: QAScores, paraphrased: bool) -> dict[str, dict]:
    """The per-answer losses behind `prefix`'s probabilities and truth ratios, under OpenUnlearning's
    names, so that its code (or anyone's) can recompute the metrics from the file."""
    out = {f"{prefix}_Q_A_PERT_Prob": _probabilities(scores.perturbed)}
    if paraphrased:
        out[f"{prefix}_Q_A_PARA_Prob"] = _probabilities(scores.true)
    return out


def _retain(model, tokenizer, rows: list[dict], max_new_tokens: int | None, suffix: str = "") -> dict[str, dict]:
    scores = qa_scores(model, tokenizer, rows, "paraphrased_answer")
    rouge, _ = _rouge(model, tokenizer, rows, max_new_tokens)
    out = {f"retain_Q_A_ROUGE{suffix}": {"agg_value": float(rouge.mean())},
           f"retain_Truth_Ratio{suffix}": {"agg_value": M.retain_truth_ratio(scores.ratios)}}
    if suffix:  # a hard form: its numbers only, OpenUnlearning has no such split
        return out | {f"retain_Q_A_Prob{suffix}": {"agg_value": float(M.probability(scores.answer).mean())}}
    return out | {"retain_Q_A_Prob": _probabilities(scores.answer)} | _precomputes("retain", scores, paraphrased=True)


def _utility(model, tokenizer, data: Splits, max_new_tokens: int | None) -> dict[str, dict]:
    out = _retain(model, tokenizer, data["retain_perturbed"], max_new_tokens)
    for prefix, split in (("ra", "real_authors"), ("wf", "world_facts")):
        rows = data[split]
        scores = qa_scores(model, tokenizer, rows, "answer")  # TOFU: original answer here
        rouge, _ = _rouge(model, tokenizer, rows, max_new_tokens)
        normalised = M.normalised_probability(scores.answer, scores.perturbed)
        out[f"{prefix}_Q_A_Prob_normalised"] = {"agg_value": float(normalised.mean())}
        out[f"{prefix}_Q_A_ROUGE"] = {"agg_value": float(rouge.mean())}
        out[f"{prefix}_Truth_Ratio"] = {"agg_value": M.retain_truth_ratio(scores.ratios)}
        out |= {f"{prefix}_Q_A_Prob": _probabilities(scores.answer)} | _precomputes(prefix, scores, paraphrased=False)
    out["model_utility"] = {"agg_value": M.model_utility([out[k]["agg_value"] for k in UTILITY_KEYS])}
    # Per hard form, where the data has retain questions in that form: the retain numbers asked
    # that way, with the same real_authors / world_facts numbers.
    for name in HARD_SPLITS:
        if f"retain_perturbed_{name}" not in data:
            continue
        out |= _retain(model, tokenizer, data[f"retain_perturbed_{name}"], max_new_tokens, f"/{name}")
        values = [out[k if k.startswith(("ra_", "wf_")) else f"{k}/{name}"]["agg_value"] for k in UTILITY_KEYS]
        out[f"model_utility/{name}"] = {"agg_value": M.model_utility(values)}
    return out


def _mia(model, tokenizer, forget: list[dict], holdout: list[dict]) -> dict[str, dict]:
    def scores(rows):
        s = score_answers(model, tokenizer, [r["question"] for r in rows], [r["answer"] for r in rows], tokens=True)
        return {"mia_loss": M.mia_loss(s.avg_loss),
                "mia_zlib": M.mia_zlib(s.avg_loss, [r["answer"] for r in rows]),
                "mia_min_k": M.mia_min_k(s.token_logprobs),
                "mia_min_k_plus_plus": M.mia_min_k_plus_plus(s.token_logprobs, s.means, s.variances)}
    member, nonmember = scores(forget), scores(holdout)
    return {a: {"agg_value": M.auc(member[a], nonmember[a])} for a in MIA_ATTACKS}


def evaluate_model(model, tokenizer, data: Splits, split: str, hard: bool = True,
                   max_new_tokens: int | None = None) -> dict[str, dict]:
    """Runs every TOFU metric of `split` that needs only this model; per question where TOFU keeps it.

    Args:
        model, tokenizer: the model to evaluate.
        data: the benchmark's splits (`split`, `retain_perturbed`, `real_authors`, `world_facts`,
            `holdoutXX` for MIA when present, `<split>_<hard>` for the hard splits when present).
        split: the forget split, e.g. `forget10`.
        hard: also evaluate the hard in-scope splits that `data` has.
        max_new_tokens: the ROUGE generations' budget (`generation_budget`).

    Returns:
        `TOFU_EVAL.json` content.
    """
    rows = data[split]
    scores = qa_scores(model, tokenizer, rows, "paraphrased_answer")
    loss, ratios = scores.answer, scores.ratios
    rouge, generations = _rouge(model, tokenizer, rows, max_new_tokens)
    prob = M.probability(loss)
    out = {
        "forget_Q_A_Prob": {"agg_value": float(prob.mean()),
                            "value_by_index": {str(i): {"prob": float(p), "avg_loss": float(v)}
                                               for i, (p, v) in enumerate(zip(prob, loss, strict=True))}},
        "forget_Q_A_ROUGE": {"agg_value": float(rouge.mean()), "value_by_index": {
            str(i): {"rougeL_recall": float(x), "input": r["question"], "ground_truth": r["answer"], "generation": g}
            for i, (x, r, g) in enumerate(zip(rouge, rows, generations, strict=True))}},
        "forget_truth_ratio": {"agg_value": M.forget_truth_ratio(ratios), "value_by_index": _by_index(ratios, "score")},
        **_precomputes("forget", scores, paraphrased=True),
    }
    out |= _utility(model, tokenizer, data, max_new_tokens)
    holdout = split.replace("forget", "holdout")
    if holdout in data:
        out |= _mia(model, tokenizer, rows, data[holdout])
    for name in HARD_SPLITS if hard else ():
        if f"{split}_{name}" not in data:
            continue
        hard_rows = data[f"{split}_{name}"]
        hard_ratios = qa_scores(model, tokenizer, hard_rows, "paraphrased_answer").ratios
        out[f"forget_truth_ratio/{name}"] = {"agg_value": M.forget_truth_ratio(hard_ratios),
                                             "value_by_index": _by_index(hard_ratios, "score")}
        vectors = pooled_hidden(model, tokenizer, [r["question"] for r in hard_rows])
        out[f"embedding/{name}"] = {"value_by_index": {str(i): v.tolist() for i, v in enumerate(vectors)}}
    return out


def log10_p_value(p_value: float) -> float:
    """log10 that stays finite: a p-value that underflows to 0 counts as the smallest double."""
    return math.log10(max(p_value, np.finfo(float).tiny))


def _ratios(log: dict, key: str) -> np.ndarray:
    if key not in log or "value_by_index" not in log[key]:
        raise MissingReference(f"the oracle reference has no per-question {key!r}")
    by_index = log[key]["value_by_index"]
    return np.array([by_index[i]["score"] for i in sorted(by_index, key=int)])


def summarize(result: dict, reference: dict, target: dict | None = None) -> dict[str, float]:
    """The logged metrics of one evaluated model against the oracle reference.

    Args:
        result: `evaluate_model` output for the model.
        reference: the retain oracle's `TOFU_EVAL.json` on the same split (ours, or OpenUnlearning's
            published retain log: then the hard-split metrics it cannot support are left out).
        target: the target model's `TOFU_EVAL.json`, for `mu_degradation`.

    Raises:
        MissingReference: the reference lacks the forget truth ratios (no forget quality without them).
    """
    fq = M.ks_forget_quality(_ratios(result, "forget_truth_ratio"), _ratios(reference, "forget_truth_ratio"))
    mu = result["model_utility"]["agg_value"]
    out = {"forget_quality": fq, "log10_forget_quality": log10_p_value(fq), "model_utility": mu,
           "forget_truth_ratio": result["forget_truth_ratio"]["agg_value"],
           "forget_rouge": result["forget_Q_A_ROUGE"]["agg_value"],
           "forget_prob": result["forget_Q_A_Prob"]["agg_value"]}
    out |= {a: result[a]["agg_value"] for a in MIA_ATTACKS if a in result}
    if "mia_min_k" in result and "mia_min_k" in reference:
        out["privleak"] = M.privleak(result["mia_min_k"]["agg_value"], reference["mia_min_k"]["agg_value"])
    log10s = [out["log10_forget_quality"]]
    for name in HARD_SPLITS:
        key = f"forget_truth_ratio/{name}"
        if key not in result or key not in reference:
            continue
        hard_fq = M.ks_forget_quality(_ratios(result, key), _ratios(reference, key))
        out[f"forget_quality/{name}"] = hard_fq
        out[f"log10_forget_quality/{name}"] = log10_p_value(hard_fq)
        log10s.append(log10_p_value(hard_fq))
        mine = np.array(list(result[f"embedding/{name}"]["value_by_index"].values()))
        theirs = np.array(list(reference[f"embedding/{name}"]["value_by_index"].values()))
        cos = (mine * theirs).sum(1) / (np.linalg.norm(mine, axis=1) * np.linalg.norm(theirs, axis=1))
        out[f"embedding_alignment/{name}"] = float(cos.mean())
    for name in HARD_SPLITS:
        if f"model_utility/{name}" in result:
            out[f"model_utility/{name}"] = result[f"model_utility/{name}"]["agg_value"]
    if len(log10s) > 1:
        out["fq_variance"] = float(np.var(log10s))
    if target is not None:
        target_mu = target["model_utility"]["agg_value"]
        out["mu_degradation"] = (target_mu - mu) / target_mu if target_mu else float("nan")
    return out
