"""Cost of each unlearning method per forget batch, as ratios to one GradAscent update.

Run on the tiny synth-tofu target (prepared on first use). Each entry runs in its own process so
that its peak memory (max RSS above the loaded model) is its own. For OFMU the time of whole outer
iterations is divided by the forget batches they consume (`OFMU.cycle`: T + S per iteration, one
fewer with `outer_point=last_inner`).

    python benchmarks/method_cost.py [--json] [--iterations N] [--batch-size B]

`ofmu` is OFMU with exact maths and default hyper-parameters (AdamW, `outer_point=after_inner`);
`ofmu:<hessian>` each `hessian` option, `ofmu:last_inner` the cheaper outer point. The report names
the fastest option and what it drops (`DROPS`), and the fastest that keeps the beta-term of the
outer Hessian.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from ofmu_ray.methods.ofmu import HESSIANS

METHODS = ("gradascent", "graddiff", "npo", "simnpo", "rmu")
DROPS = {"exact": "nothing", "no_third": "the third-order terms (curvature of the curvature)",
         "forget_only": "the beta-term of the outer Hessian", "finite_diff": "nothing (central differences)",
         "finite_diff_forget": "the beta-term of the outer Hessian (and differences inside)"}
KEEPS_BETA = ("exact", "no_third", "finite_diff")


def _entries() -> dict[str, tuple[str, dict]]:
    out = {m: (m, {}) for m in METHODS}
    out |= {f"ofmu:{h}": ("ofmu", {"hessian": h}) for h in HESSIANS}
    return out | {"ofmu:last_inner": ("ofmu", {"outer_point": "last_inner"})}


def measure(method: str, overrides: dict, iterations: int, batch_size: int) -> dict:
    """Seconds per forget batch and peak RSS growth (MiB) of `iterations` timed updates."""
    import torch

    from ofmu_ray.families.tofu.prepare import prepare_synth_tofu
    from ofmu_ray.methods import build_config, get_method
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.train.task import batches

    prepared = prepare_synth_tofu("tiny", progress=False)
    data = prepared.data()
    model_dir = prepared.model_dir("target")
    tok, model = load_tokenizer(model_dir), load_causal_lm(model_dir)
    cls = get_method(method)
    cfg = build_config(method, overrides)
    reference = load_causal_lm(model_dir).eval().requires_grad_(False) if cls.needs_reference else None
    instance = cls(model, cfg, reference)
    forget = batches(tok, data["forget10"], batch_size, seed=0)
    retain = batches(tok, data["retain90"], batch_size, seed=1)
    per_iteration = instance.cycle
    for _ in range(per_iteration):  # warm-up: first calls pay for allocations and kernel choice
        instance.step(next(forget), next(retain))
    torch.manual_seed(0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for _ in range(iterations * per_iteration):
        instance.step(next(forget), next(retain))
    seconds = (time.perf_counter() - start) / (iterations * per_iteration)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds_per_batch": seconds, "peak_rss_growth_mib": max(peak - rss_before, 0) / 1024,
            "peak_rss_mib": peak / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--iterations", type=int, default=4, help="timed updates (OFMU: outer iterations)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one entry in this process
    args = parser.parse_args(argv)
    entries = _entries()
    if args.one:
        method, overrides = entries[args.one]
        print(json.dumps(measure(method, overrides, args.iterations, args.batch_size)))
        return 0
    from ofmu_ray.families.tofu.prepare import prepare_synth_tofu

    prepare_synth_tofu("tiny")  # once, with a progress bar, before the timed subprocesses
    results = {}
    for name in entries:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--iterations", str(args.iterations),
                              "--batch-size", str(args.batch_size)], capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:<18} {results[name]['seconds_per_batch'] * 1000:8.1f} ms/batch", file=sys.stderr)
    ga = results["gradascent"]
    ratio = {name.removeprefix("ofmu:exact").replace("ofmu:", "ofmu_") or "ofmu":
             r["seconds_per_batch"] / ga["seconds_per_batch"] for name, r in results.items()}
    ratio = {("ofmu" if k == "" else k): v for k, v in ratio.items()}
    hessian_ratio = {h: results[f"ofmu:{h}"]["seconds_per_batch"] / results["ofmu:exact"]["seconds_per_batch"]
                     for h in HESSIANS}
    fastest = min(HESSIANS, key=hessian_ratio.get)
    fastest_with_beta = min(KEEPS_BETA, key=hessian_ratio.get)
    report = {
        "ratio_to_gradascent": {m: ratio[m] for m in METHODS}
        | {"ofmu": results["ofmu:exact"]["seconds_per_batch"] / ga["seconds_per_batch"],
           "ofmu_fastest": results[f"ofmu:{fastest}"]["seconds_per_batch"] / ga["seconds_per_batch"]},
        "hessian_ratio_to_exact": hessian_ratio,
        "fastest_hessian": fastest,
        "fastest_hessian_drops": DROPS[fastest],
        "fastest_hessian_keeping_beta": fastest_with_beta,
        "last_inner_ratio_to_after_inner": results["ofmu:last_inner"]["seconds_per_batch"]
        / results["ofmu:exact"]["seconds_per_batch"],
        "memory_ratio_to_gradascent": {n: r["peak_rss_mib"] / ga["peak_rss_mib"] for n, r in results.items()},
        "seconds_per_batch": {n: r["seconds_per_batch"] for n, r in results.items()},
        "batch_size": args.batch_size,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, value in report["ratio_to_gradascent"].items():
            print(f"{name:<14} {value:6.2f}x gradascent")
        for name, value in hessian_ratio.items():
            print(f"hessian={name:<12} {value:6.2f}x exact  (drops {DROPS[name]})")
        print(f"outer_point=last_inner {report['last_inner_ratio_to_after_inner']:6.2f}x after_inner")
    return 0


if __name__ == "__main__":
    sys.exit(main())
