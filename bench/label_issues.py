"""Suspected label errors: how many planted wrong labels `trainwise run` finds among its
held-out rows, beside cleanlab's own tutorial workflow on the same rows.

    python bench/label_issues.py [--tasks digits mnist1d] [--noise 0 0.05 0.1] [--threads 1]

A share of every row's label (train, validation and test alike) is moved to another class,
uniformly. `trainwise.run(data=(X, noisy_y))` with its defaults trains and evaluates; its
label_issues.csv lists the held-out rows it suspects. Scored on the held-out rows only:
precision (suspects whose label was planted wrong) and recall (planted wrong labels found).
Baseline: cleanlab's tutorial workflow, out-of-sample probabilities from 5-fold
cross_val_predict of a scikit-learn LogisticRegression on all rows, then
find_label_issues with its defaults, scored on the same held-out rows. Torch threads are
pinned (--threads) so that a busy machine does not swing the runs.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _record  # noqa: E402


def load(task: str) -> tuple[np.ndarray, np.ndarray]:
    if task == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x.astype(np.float32), y.astype(np.int64)
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    # (N, T, C) = (N, 40, 1), arrays' convention for sequences: the baseline is the 1-D CNN the
    # built-in source trains (as flat (N, 40) vectors it would be an MLP at ~55% accuracy)
    return x[:, :, None], np.concatenate([data["y"], data["y_test"]]).astype(np.int64)


def plant(y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(y), int(round(share * len(y))), replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, y.max() + 1, len(flipped))) % (y.max() + 1)
    return noisy, np.isin(np.arange(len(y)), flipped)


def scores(flagged: set[int], held_out: np.ndarray, wrong: np.ndarray) -> tuple[int, str, str]:
    planted = {int(i) for i in held_out if wrong[i]}
    hits = len(flagged & planted)
    precision = f"{hits / len(flagged):.0%}" if flagged else "-"
    recall = f"{hits / len(planted):.0%}" if planted else "-"
    return len(planted), precision, recall


def trainwise_suspects(x: np.ndarray, noisy: np.ndarray, seed: int) -> tuple[set, np.ndarray,
                                                                            str, float]:
    import trainwise

    start = time.perf_counter()
    result = trainwise.run(data=(x, noisy), overrides=[f"run.seed={seed}"], report=False)
    seconds = time.perf_counter() - start
    folder = Path(result.path)
    with np.load(folder / "split.npz") as split:
        held_out = np.concatenate([split["val"], split["test"]])
    flagged = set()
    if (folder / "label_issues.csv").exists():
        with open(folder / "label_issues.csv", encoding="utf-8") as handle:
            # arrays keep their order: the source row is the position split.npz records
            flagged = {int(row["source_row_0based"]) for row in csv.DictReader(handle)}
    severity = next((f.severity.value for f in result.findings if f.code == "label_issues"),
                    "none")
    return flagged, held_out, severity, seconds


def cleanlab_suspects(x: np.ndarray, noisy: np.ndarray, held_out: np.ndarray,
                      seed: int) -> tuple[set, float]:
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probs = cross_val_predict(model, x.reshape(len(x), -1), noisy, cv=5, method="predict_proba")
    issues = find_label_issues(noisy, probs)
    seconds = time.perf_counter() - start
    return {int(i) for i in held_out if issues[i]}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.05, 0.1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = ["| task | planted share | held-out rows | planted wrong among them | method | "
             "suspects | precision | recall | finding | seconds |", "|---|---|---|---|---|---|"
             "---|---|---|---|"]
    for task in args.tasks:
        x, y = load(task)
        for share in args.noise:
            noisy, wrong = plant(y, share, args.seed)
            flagged, held_out, severity, seconds = trainwise_suspects(x, noisy, args.seed)
            planted, precision, recall = scores(flagged, held_out, wrong)
            lines.append(f"| {task} | {share:.0%} | {len(held_out)} | {planted} | trainwise run "
                         f"| {len(flagged)} | {precision} | {recall} | {severity} | "
                         f"{seconds:.0f} (whole run) |")
            flagged, seconds = cleanlab_suspects(x, noisy, held_out, args.seed)
            _, precision, recall = scores(flagged, held_out, wrong)
            lines.append(f"| {task} | {share:.0%} | {len(held_out)} | {planted} | cleanlab "
                         f"tutorial (5-fold logistic regression) | {len(flagged)} | "
                         f"{precision} | {recall} | - | {seconds:.0f} |")
            print(lines[-2], lines[-1], sep="\n", flush=True)
    body = (f"Command: `python bench/label_issues.py --tasks {' '.join(args.tasks)} --noise "
            f"{' '.join(str(n) for n in args.noise)} --threads {args.threads}` (seed "
            f"{args.seed}); see the script's docstring.\n\n" + "\n".join(lines))
    _record.append("Suspected label errors: planted wrong labels found in held-out rows", body)
    print(body)


if __name__ == "__main__":
    main()
