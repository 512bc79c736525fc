"""Small data: how stable `trainwise run`'s tuned learning rate is on a 150-row table, and what
5-fold cross-validation says beside the one split's test score (audit s11 M1, M5).

    python bench/small_data.py [--seeds 0 1 2 3 4] [--threads 1]

Data: scikit-learn's iris (150 rows, 4 features, 3 classes), passed as arrays. Per seed
(run.seed: the split and the training), three runs with the defaults:
- `tune`: the whole method (range test, short runs on the 12-24 validation rows);
- `range test only` (tune.short_runs = false): the range test's point, the baseline the short
  runs must not scatter beyond on so few validation rows;
- `5 folds` (split.num_folds = 5): the crossval stage's mean and spread of the validation
  accuracy beside the run's own test accuracy.
Printed and appended to docs/benchmarks.md: the chosen lr per seed and its spread (max / min
over seeds) for both, test accuracy, and the cross-validation figures. Torch threads are
pinned (--threads): a busy machine must not swing small runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_iris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _record  # noqa: E402

import trainwise  # noqa: E402


def _run(x: np.ndarray, y: np.ndarray, seed: int, threads: int, out: str,
         *extra: str) -> dict:
    result = trainwise.run(data=(x, y), report=False, overrides=[
        f"run.seed={seed}", f"run.threads={threads}", f'run.out_dir="{out}"', *extra])
    meta = json.loads((result.path / "meta.json").read_text())
    return {"lr": result.lr, "test": (result.test or {}).get("test_accuracy"),
            "cv": meta.get("cross_validation")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load_iris(return_X_y=True)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in args.seeds:
            tuned = _run(x, y, seed, args.threads, out)
            point = _run(x, y, seed, args.threads, out, "tune.short_runs=false")
            folds = _run(x, y, seed, args.threads, out, "split.num_folds=5")
            rows.append((seed, tuned, point, folds))
            print(seed, tuned["lr"], point["lr"], tuned["test"], folds["cv"]["mean"])
    body = _table(rows)
    print(body)
    _record.append("Small data: tuned lr and 5-fold cross-validation on iris (150 rows)", body)


def _table(rows: list) -> str:
    lines = [
        "Command: `python bench/small_data.py --seeds "
        + " ".join(str(r[0]) for r in rows) + "` (iris as arrays, defaults otherwise).", "",
        "| seed | tune lr | range-test lr | test acc (tune) | 5-fold val acc mean +- sd "
        "(min-max) | its fold 0 test acc |", "|---|---|---|---|---|---|"]
    for seed, tuned, point, folds in rows:
        cv = folds["cv"]
        scores = [f["val_accuracy"] for f in cv["folds"]]
        lines.append(f"| {seed} | {tuned['lr']:.3g} | {point['lr']:.3g} | {tuned['test']:.1%} | "
                     f"{cv['mean']:.1%} +- {100 * cv['std']:.1f} ({min(scores):.1%}-"
                     f"{max(scores):.1%}) | {folds['test']:.1%} |")
    tuned_lrs = [r[1]["lr"] for r in rows]
    point_lrs = [r[2]["lr"] for r in rows]
    lines += ["", f"Spread of the chosen lr over seeds (max / min): tune "
              f"{max(tuned_lrs) / min(tuned_lrs):.1f}x, range test alone "
              f"{max(point_lrs) / min(point_lrs):.1f}x."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
