"""WMDP-style benchmarks: hazardous knowledge removal scored by four-choice accuracy (Li et al. 2024,
"The WMDP Benchmark"), the methods unlearning from text corpora, not from the questions.

`synth-wmdp` is generated here (an invented restricted domain and a general one), its target and
oracle trained from scratch; `wmdp` is the user's questions, corpora and model. Modules: `generate`
(synth-wmdp's data), `load` (WMDP-schema files), `prepare`, `evaluate` (letter scoring as
lm-evaluation-harness does it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ofmu_ray.cache import Prepared
from ofmu_ray.errors import UsageError
from ofmu_ray.families.base import Family, PrepareRequest
from ofmu_ray.families.wmdp.generate import TOPIC
from ofmu_ray.families.wmdp.prepare import PROFILES
from ofmu_ray.train.attacks import ATTACKS, worst_case

if TYPE_CHECKING:
    from ofmu_ray.train.spec import RunSpec
    from ofmu_ray.train.task import Task


class WmdpFamily(Family):
    """WMDP-style: `forget_acc` on the topic (chance is the goal) and `utility_acc` on general questions."""

    name = "wmdp"
    label = "WMDP-style"
    benches = {"synth-wmdp": ("model",), "wmdp": ("data", "model")}
    default_splits = {"synth-wmdp": TOPIC, "wmdp": "bio"}
    modality = "corpus"  # text corpora (`methods.base.CORPUS`): no questions to answer with a refusal
    # whole corpora, not one forget split: the RMU release runs 150 batches of 4; measured on
    # synth-wmdp, RMU needs 50-60 batches of 16 to leave the topic and no method moves it in 20
    default_steps = 80
    default_methods = ("rmu", "npo", "simnpo", "graddiff", "ofmu")  # WMDP's own baseline and those that retain
    # closeness to chance, not raw forgetting: answering the topic worse than chance reveals the answer
    objectives = ("forget_closeness", "utility_acc")
    ideal_x = {"forget_closeness": 1.0, "forget_error": 1.0}
    allowed_objectives = ("forget_closeness", "forget_error", "utility_acc", "robust/forget_closeness",
                          "robust/forget_error")  # the worst over `--attacks`
    attacks = ATTACKS
    keep_best = ("forget_closeness", "utility_acc")
    result_files = ("MCQ_EVAL.json", "MCQ_SUMMARY.json")
    results_label = "per-question picks"
    profiles = PROFILES
    help = {
        "--bench": "synth-wmdp (generated), wmdp (--data, --model): hazardous-knowledge removal scored by "
                   "four-choice accuracy",
        "--profile": "synth-wmdp: 4, 8 or 24 compounds and as many towns",
        "--model": "synth-wmdp: an embedded model (default: the profile's); wmdp: the model to unlearn (a hub id "
                   "or a folder)",
        "--split": "wmdp: the topic, bio (default), cyber or chem (synth-wmdp: hazard)",
        "--data": "wmdp: hf:cais/wmdp or a folder (see docs/benchmarks/wmdp.md)",
    }

    def prepare(self, request: PrepareRequest, *, rebuild: bool = False, progress: bool = True) -> Prepared:
        from ofmu_ray.families.wmdp.prepare import prepare_synth_wmdp, prepare_wmdp

        split = request.split or self.default_splits[request.bench]
        if request.bench == "wmdp":
            return prepare_wmdp(split, request.data, request.model, request.cache_dir, rebuild=rebuild)
        if split != TOPIC:
            raise UsageError(f"synth-wmdp has one topic to forget, {TOPIC!r}; got --split {split}")
        return prepare_synth_wmdp(request.profile, request.cache_dir, request.model, rebuild=rebuild,
                                  progress=progress)

    def references(self, prepared: Prepared, split: str, dtype: str, attacks: tuple[str, ...] = (),
                   attack_settings: dict | None = None) -> dict[str, dict[str, float]]:
        """The target's (and synth-wmdp's oracle's) accuracies, as prepared; with `attacks`, the attacked
        target's and oracle's metrics (`attacks.reference`), cached, and the target's worst case."""
        from ofmu_ray.families.wmdp.evaluate import summarize_mcq

        report = prepared.report
        points = {who: summarize_mcq(acc, report) for who, acc in report["metrics"].items()
                  if who in ("target", "oracle")}
        if attacks:
            from ofmu_ray.families.wmdp.attacks import ROBUST_METRICS, reference

            scores = reference(prepared, attacks, self.attack_config(attack_settings))["target"]
            points["target"] |= worst_case(scores, attacks, ROBUST_METRICS)
        return points

    def forget_rows(self, prepared: Prepared, split: str) -> int:
        return len(prepared.data()["forget_corpus"])

    def make_task(self, spec: RunSpec, device) -> Task:
        from ofmu_ray.families.wmdp.evaluate import evaluate_loaded_mcq
        from ofmu_ray.train.task import causal_lm_task

        prepared = Prepared(Path(spec.prepared_root))
        data = prepared.data()

        def attack(model, tok) -> dict:
            from ofmu_ray.families.wmdp.attacks import attack

            return attack(model, tok, data, prepared.report["reference_forget_acc"], tuple(spec.attacks.split(",")),
                          self.attack_config(spec.attack_settings))

        return causal_lm_task(spec, prepared.model_dir("target"), prepared.prompt, data["forget_corpus"],
                              data["retain_corpus"], device,
                              lambda model, tok: evaluate_loaded_mcq(prepared, model, tok, data), self.result_files,
                              attack if spec.attacks else None)

    def evaluate(self, prepared: Prepared, which: str, *, split: str, retain_logs: str | None = None,
                 dtype: str = "fp32") -> tuple[dict, dict | None]:
        from ofmu_ray.families.wmdp.evaluate import evaluate_prepared_mcq

        return evaluate_prepared_mcq(prepared, which, dtype)

    def print_report(self, prepared: Prepared) -> None:
        report = prepared.report
        sizes = ", ".join(f"{k} {v}" for k, v in report["sizes"].items())
        print(f"{report['bench']} / {report['split']} / {report['model']}: prepared in {report['seconds']} s ({sizes})")
        print(f"{'model':<8}{'forget_acc':>12}{'utility_acc':>13}")
        for name, acc in report["metrics"].items():
            print(f"{name:<8}{acc['forget_acc']:>12.3f}{acc['utility_acc']:>13.3f}")
        print(f"chance: {report['reference_forget_acc']:.3f} (the forget_acc a method is measured against)")


WMDP = WmdpFamily()
