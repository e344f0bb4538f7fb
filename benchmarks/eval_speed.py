"""Speed of one full TOFU evaluation (hard splits included): questions per second, and the share of
the time spent generating (for ROUGE), measured in one run.

    python benchmarks/eval_speed.py [--profile small] [--split forget10] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--split", default="forget10")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from ofmu_ray.families.tofu.evaluate import evaluate_model
    from ofmu_ray.families.tofu.generate import HARD_SPLITS
    from ofmu_ray.families.tofu.prepare import prepare_synth_tofu
    from ofmu_ray.metrics.accuracy import greedy_for_rows
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer

    prepared = prepare_synth_tofu(args.profile)
    data, model_dir = prepared.data(), prepared.model_dir("target")
    model, tok = load_causal_lm(model_dir), load_tokenizer(model_dir)
    evaluate_model(model, tok, data, args.split)  # warm-up: first calls pay for allocations

    start = time.perf_counter()
    evaluate_model(model, tok, data, args.split)
    total = time.perf_counter() - start

    generated = [data[s] for s in (args.split, "retain_perturbed", "real_authors", "world_facts")]
    start = time.perf_counter()
    for rows in generated:  # the same generation calls the evaluation makes
        greedy_for_rows(model, tok, rows)
    generation = time.perf_counter() - start

    splits = [args.split, "retain_perturbed", "real_authors", "world_facts", args.split.replace("forget", "holdout"),
              *(f"{args.split}_{h}" for h in HARD_SPLITS), *(f"retain_perturbed_{h}" for h in HARD_SPLITS)]
    questions = sum(len(data[s]) for s in splits if s in data)
    report = {"profile": args.profile, "split": args.split, "seconds": total, "questions": questions,
              "questions_per_second": questions / total, "generation_share": generation / total}
    print(json.dumps(report, indent=2) if args.json else
          f"{questions} questions in {total:.1f} s ({questions / total:.0f}/s), "
          f"{100 * generation / total:.0f}% of it generating")
    return 0


if __name__ == "__main__":
    sys.exit(main())
