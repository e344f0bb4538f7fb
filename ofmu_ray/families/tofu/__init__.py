"""TOFU-style benchmarks: question answering about fictitious authors, measured against a retain oracle
(Maini et al. 2024, "TOFU"; metrics as OpenUnlearning computes them).

`synth-tofu` is generated here, its target and oracles trained from scratch; `tofu` is the user's
TOFU data with the TOFU-finetuned target and its retain model (or that model's evaluation log).
Modules: `vocabulary` and `generate` (synth-tofu's data), `load` (TOFU-schema files, TOFU's split
names), `prepare`, `evaluate` (one model's TOFU metrics), `oracle` (the retain oracle's cached
reference, and evaluating prepared models against it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ofmu_ray.cache import Prepared
from ofmu_ray.config import MODELS
from ofmu_ray.errors import UsageError
from ofmu_ray.families.base import Family, PrepareRequest
from ofmu_ray.families.tofu.prepare import PROFILES
from ofmu_ray.train.attacks import ATTACKS, ROBUST_KEY, worst_case

if TYPE_CHECKING:
    from ofmu_ray.train.spec import RunSpec
    from ofmu_ray.train.task import Task


class TofuFamily(Family):
    """TOFU-style: forget quality (a KS test of truth ratios against the oracle's) and model utility."""

    name = "tofu"
    label = "TOFU-style"
    benches = {"synth-tofu": ("model",), "tofu": ("data", "model", "oracle", "retain_logs", "prompt", "max_new_tokens")}
    default_splits = {"synth-tofu": "forget10", "tofu": "forget10"}
    modality = "qa"  # question-answer rows (`methods.base.QA`)
    default_steps = 20
    default_epochs = 10.0  # OpenUnlearning's budget on every TOFU split
    default_methods = ("gradascent", "graddiff", "npo", "simnpo", "rmu", "ofmu")
    objectives = ("log10_forget_quality", "model_utility")  # FQ saturates at a floor: its log is what moves
    ideal_x = {"log10_forget_quality": 0.0}  # p = 1: indistinguishable from the retain oracle
    measurable_below = {"log10_forget_quality": -1.3010299956639813}  # log10 0.05, NPO's bar for "forgotten"
    allowed_objectives = (*objectives, "robust/log10_forget_quality")  # the worst over `--attacks`
    attacks = ATTACKS
    keep_best = ("log10_forget_quality", "model_utility")
    result_files = ("TOFU_EVAL.json", "TOFU_SUMMARY.json")
    results_label = "per-question results"
    seed_metrics = ("forget_quality/multihop", "model_utility/multihop")  # the hard split chaining two facts
    profiles = PROFILES
    help = {
        "--bench": "synth-tofu: generated, models trained here; tofu: your data and models (--data, --model)",
        "--profile": "synth-tofu: tiny ~20 authors (tests); small 60 (demo); full 200 (TOFU's size); smol 10, "
                     "fine-tuned from SmolLM2-135M-Instruct",
        "--model": f"synth-tofu: an embedded model ({', '.join(MODELS)}) or smollm2-135m (default: the profile's); "
                   "tofu: the TOFU-finetuned target (a hub id, a folder, or smollm2-135m: a pretrained chat model "
                   "installed offline)",
        "--split": "forget split: forget01, forget05 or forget10 (default)",
        "--data": "tofu: hf:locuslab/TOFU or a folder of TOFU-schema files",
        "--oracle": "tofu: the retain model of --split (hub id or folder)",
        "--retain-logs": "an OpenUnlearning TOFU_EVAL.json of the retain model, instead of the oracle",
        "--prompt": "tofu: the prompt format the models were fine-tuned with (auto: the tokenizer's chat template "
                    "if it has one, else plain 'Question: ... Answer:'; OpenUnlearning's TOFU models: llama3 or "
                    "llama2)",
        "--max-new-tokens": "tofu: the ROUGE generations' budget (default 200, OpenUnlearning's; answer: the longest "
                            "gold answer + 4, as synth-tofu)",
    }

    def accepts(self, bench: str, option: str, command: str) -> bool:
        # a published retain log can stand in for a synth-tofu oracle in `eval` too
        return super().accepts(bench, option, command) or (option == "retain_logs" and command == "eval")

    def prepare(self, request: PrepareRequest, *, rebuild: bool = False, progress: bool = True) -> Prepared:
        from ofmu_ray.families.tofu.prepare import parse_max_new_tokens, prepare_synth_tofu, prepare_tofu

        if request.bench == "tofu":
            return prepare_tofu(request.data, request.split or self.default_splits["tofu"], request.model,
                                request.oracle, request.retain_logs, request.prompt, request.cache_dir,
                                parse_max_new_tokens(request.max_new_tokens), rebuild=rebuild)
        return prepare_synth_tofu(request.profile, request.cache_dir, request.model, rebuild=rebuild,
                                  progress=progress)

    def data_summary(self, request: PrepareRequest) -> dict | None:
        """Real TOFU data alone (no `--model` yet): its splits and their sizes."""
        if request.bench != "tofu" or request.model is not None:
            return None
        if request.data is None:
            raise UsageError("--bench tofu needs --data hf:locuslab/TOFU or --data DIR")
        from ofmu_ray.families.tofu.load import load_tofu

        data = load_tofu(request.data)
        return {"bench": "tofu", "data": request.data, "splits": {name: len(data[name]) for name in data}}

    def references(self, prepared: Prepared, split: str, dtype: str, attacks: tuple[str, ...] = (),
                   attack_settings: dict | None = None) -> dict[str, dict[str, float]]:
        """The oracle's and the target's evaluations of `split`, and with `attacks` the attacked
        target's and oracle's (`attacks.reference`), cached in the prepared folder; the target's and
        (unless a retain log stands in for it) the oracle's metrics."""
        from ofmu_ray.families.tofu.evaluate import summarize
        from ofmu_ray.families.tofu.oracle import cached_eval, references

        data = prepared.data()
        reference, target = references(prepared, split, data, None, dtype)
        points = {"target": summarize(target, reference, target)}
        if not prepared.retain_logs(split):
            oracle = cached_eval(prepared, f"oracle-{split}", split, data, dtype)
            points["oracle"] = summarize(oracle, reference, target)
        if attacks:
            from ofmu_ray.families.tofu.attacks import reference as attacked

            if prepared.retain_logs(split):
                raise UsageError("--attacks needs the retain oracle as a model (--oracle), not its retain log: "
                                 "the relearning reference fine-tunes it")
            scores = attacked(prepared, split, attacks, self.attack_config(attack_settings), data)["target"]
            points["target"] |= worst_case(scores, attacks, ("log10_forget_quality",))
        return points

    def floors(self, prepared: Prepared, split: str, attacks: tuple[str, ...] = ()) -> dict[str, float]:
        """The log10 forget-quality floor of the forget split and of each hard split (the smallest KS
        p-value for that many questions): a front's reference point."""
        from ofmu_ray.families.tofu.generate import HARD_SPLITS
        from ofmu_ray.metrics.formulas import log10_fq_floor

        data = prepared.data()
        out = {"": log10_fq_floor(len(data[split]))}
        out |= {f"/{h}": log10_fq_floor(len(data[f"{split}_{h}"])) for h in HARD_SPLITS if f"{split}_{h}" in data}
        if attacks:
            from ofmu_ray.families.tofu.attacks import half_floor

            out[ROBUST_KEY] = half_floor(data[split])
        return out

    def forget_rows(self, prepared: Prepared, split: str) -> int:
        from ofmu_ray.families.tofu.load import forget_splits

        data = prepared.data()
        if split not in forget_splits(data):
            raise UsageError(f"unknown split {split!r}; this benchmark has: {', '.join(forget_splits(data))}")
        return len(data[split])

    def make_task(self, spec: RunSpec, device) -> Task:
        from ofmu_ray.families.tofu.load import retain_split
        from ofmu_ray.families.tofu.oracle import evaluate_loaded
        from ofmu_ray.train.task import causal_lm_task

        prepared = Prepared(Path(spec.prepared_root))
        data = prepared.data()

        def attack(model, tok) -> dict:
            from ofmu_ray.families.tofu.attacks import attack
            from ofmu_ray.families.tofu.oracle import references

            oracle = references(prepared, spec.split, data, None, spec.dtype)[0]
            return attack(model, tok, data, spec.split, oracle, tuple(spec.attacks.split(",")),
                          self.attack_config(spec.attack_settings))

        return causal_lm_task(
            spec, prepared.model_dir("target"), prepared.prompt, data[spec.split], data[retain_split(spec.split)],
            device, lambda model, tok: evaluate_loaded(prepared, spec.split, model, tok, data, spec.dtype),
            self.result_files, attack if spec.attacks else None, refusal_replies(spec))

    def evaluate(self, prepared: Prepared, which: str, *, split: str, retain_logs: str | None = None,
                 dtype: str = "fp32") -> tuple[dict, dict | None]:
        from ofmu_ray.families.tofu.oracle import evaluate

        return evaluate(prepared, split, which, retain_logs, dtype)

    def print_report(self, prepared: Prepared) -> None:
        report = prepared.report
        if report["bench"] == "tofu":
            print(f"tofu: {report['model']} (oracle {report['oracle']}, prompt {report['prompt']}), "
                  f"{len(report['splits'])} splits from {report['data']}")
            return
        acc, chance = report["accuracy"], report["chance"]
        print(f"{report['bench']} / {report['profile']} / {report['model']}: prepared in {report['seconds']} s "
              f"(oracle = retain model of {report['oracle_split']})")
        print(f"{'split':<14}{'target':>8}{'oracle':>8}{'chance':>8}")
        for split in chance:
            print(f"{split:<14}{acc['target'][split]:>8.3f}{acc['oracle'][split]:>8.3f}{chance[split]:>8.3f}")
        print("geometry (TOFU's fine-tuned targets: 9-13 % of the floor, truth ratio ~0.16 below the oracle's)")
        print(f"{'split':<10}{'model':<8}{'log10 FQ':>9}{'floor':>9}{'share':>7}{'truth ratio':>12}{'MU':>7}")
        for split, roles in report.get("geometry", {}).items():
            for role, g in roles.items():
                print(f"{split:<10}{role:<8}{g['log10_forget_quality']:>9.2f}{g['floor']:>9.2f}"
                      f"{g['floor_share']:>7.1%}{g['forget_truth_ratio']:>12.3f}{g['model_utility']:>7.3f}")


def refusal_replies(spec: RunSpec) -> list[str] | tuple[str, ...] | None:
    """The refusal replies a run's forget batches draw from, when its method prefers refusals (IdkDPO):
    the file its `refusals` setting names, else synth-tofu's own (`vocabulary.REFUSALS`, used for real
    TOFU data too); None for every other method."""
    from ofmu_ray.methods import build_config, get_method

    if not get_method(spec.method).needs_refusals:
        return None
    path = build_config(spec.method, spec.overrides).refusals
    if path:
        from ofmu_ray.methods.preference import read_refusals

        return read_refusals(path)
    from ofmu_ray.families.tofu.vocabulary import REFUSALS

    return REFUSALS


TOFU = TofuFamily()
