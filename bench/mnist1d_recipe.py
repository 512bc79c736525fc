"""`trainwise run` on the built-in MNIST-1D, several seeds: accuracy and time per stage.

    python bench/mnist1d_recipe.py [--seeds 0 1 2] [--threads 2]

Quality bar (issue 2): median test accuracy >= 96% over 3 seeds, whole recipe <= 180 s on a
2-core CPU. Prints our figure beside the published MNIST-1D table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from _record import append

import trainwise

PUBLISHED = {"logistic": 0.32, "MLP": 0.68, "CNN": 0.94, "GRU": 0.91, "human": 0.96}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in args.seeds:
            started = time.perf_counter()
            result = trainwise.run(overrides=[f"run.seed={seed}", f"run.out_dir=\"{out}\"",
                                              f"run.threads={args.threads}"])
            wall = time.perf_counter() - started
            rows.append((seed, result.test.get("test_accuracy", float("nan")), wall,
                         result.stage_seconds))
    table = ["| seed | test accuracy | wall s | " + " | ".join(rows[0][3]) + " |",
             "|---|---|---|" + "---|" * len(rows[0][3])]
    for seed, acc, wall, stages in rows:
        table.append(f"| {seed} | {acc:.2%} | {wall:.1f} | "
                     + " | ".join(f"{s:.1f}" for s in stages.values()) + " |")
    median_acc = statistics.median(r[1] for r in rows)
    max_wall = max(r[2] for r in rows)
    published = ", ".join(f"{k} {v:.0%}" for k, v in PUBLISHED.items())
    verdict = (f"Median test accuracy {median_acc:.2%} (target >= 96%: "
               f"{'met' if median_acc >= 0.96 else 'MISSED'}); slowest whole recipe "
               f"{max_wall:.0f} s (target <= 180 s: {'met' if max_wall <= 180 else 'MISSED'}).")
    body = "\n".join(table) + f"\n\nPublished MNIST-1D: {published}.\n\n{verdict}"
    print(body)
    append(f"MNIST-1D `trainwise run` ({len(rows)} seeds, {args.threads} threads)", body)


if __name__ == "__main__":
    main()
