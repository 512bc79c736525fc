"""The oracle for bench/tune_vs_oracle.py: full runs on a 17-point log grid of peak lrs.

    python bench/tune_oracle.py [--tasks digits mnist1d friedman] [--schedule onecycle]

Grid 10^(k/4), k = -16..0 (1e-4 .. 1), the task's oracle seeds (3-10), each a full run
exactly as the task trains (bench/tune_tasks.py: the recipe's fit loop, or for the anchor
tasks the anchors' own plain loop). --schedule defaults to each task's own. Results are
cached in bench/tune_oracle.json by task, schedule and seed, because the grid is the slow
part (MNIST-1D: 51 runs of ~12 s on one thread). --compare-anchor prints the anchor tasks'
oracle beside /work/shared/bench/results_lr_finders.md's (seeds 0, 1, 2).

--horizon runs the same grid cut to the short runs' length (`short_run_epochs`) and appends
to docs/benchmarks.md where the loss is lowest after a short run and after the whole run:
the evidence for `horizon_factor` (src/trainwise/tune/search.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from _record import append
from tune_tasks import TASKS, Task, oracle_run

from trainwise.config import TuneConfig
from trainwise.tune.search import horizon_factor, short_run_epochs

CACHE = Path(__file__).resolve().parent / "tune_oracle.json"
GRID_K = list(range(-16, 1))  # lr = 10^(k/4): 17 points, 1.78x apart


def _key(task: Task, schedule: str) -> str:
    return f"{task.name} | {task.describe} | {schedule}"


def load_cache() -> dict:
    return json.loads(CACHE.read_text()) if CACHE.exists() else {}


def oracle(task: Task, schedule: str | None = None, verbose: bool = True) -> dict:
    """{"lrs": [17 lrs], "losses": [[loss per seed] per lr], "seconds": {seed: s}}; the seeds
    are task.oracle_seeds; only seeds missing from the cache are trained."""
    schedule = schedule or task.schedule
    lrs = [10 ** (k / 4) for k in GRID_K]
    entry = load_cache().get(_key(task, schedule), {"by_seed": {}, "seconds": {}})
    for seed in task.oracle_seeds:
        if str(seed) in entry["by_seed"]:
            continue
        started, losses = time.perf_counter(), []
        for lr in lrs:
            losses.append(oracle_run(task, lr, seed, schedule))
            if verbose:
                print(f"  oracle {task.name} {schedule} seed {seed} lr {lr:.2e}: "
                      f"{losses[-1]:.4f}", flush=True)
        entry["by_seed"][str(seed)] = [v if np.isfinite(v) else None for v in losses]
        entry["seconds"][str(seed)] = time.perf_counter() - started
        cache = load_cache()  # another process may have added a task meanwhile
        cache[_key(task, schedule)] = entry
        CACHE.write_text(json.dumps(cache, indent=1))
    by_seed = [entry["by_seed"][str(seed)] for seed in task.oracle_seeds]
    return {"lrs": lrs, "losses": [list(row) for row in zip(*by_seed, strict=True)],
            "seconds": entry["seconds"], "seeds": list(task.oracle_seeds)}


def at_lr(task: Task, lr: float, schedule: str | None = None) -> list[float]:
    """The oracle's loss at one off-grid lr: a full run per oracle seed, exactly as the grid's
    (paired with it by seed), so a pick is scored by its own runs rather than interpolated
    between grid points. Cached in bench/tune_oracle.json beside the grid, by lr (6 digits)."""
    schedule = schedule or task.schedule
    key, name = _key(task, schedule) + " | at lr", f"{lr:.6g}"
    entry = load_cache().get(key, {}).get(name, {})
    missing = [seed for seed in task.oracle_seeds if str(seed) not in entry]
    for seed in missing:
        value = oracle_run(task, float(name), seed, schedule)
        entry[str(seed)] = value if np.isfinite(value) else None
    if missing:
        cache = load_cache()
        cache.setdefault(key, {})[name] = entry
        CACHE.write_text(json.dumps(cache, indent=1))
    return [np.inf if entry[str(s)] is None else entry[str(s)] for s in task.oracle_seeds]


def loss_matrix(result: dict) -> np.ndarray:
    """The oracle's losses, (lrs, seeds); a diverged run (None) is +inf."""
    return np.array([[np.inf if v is None else v for v in row] for row in result["losses"]])


def mean_curve(result: dict) -> tuple[np.ndarray, np.ndarray]:
    """(log10 lrs, mean val loss over seeds); a diverged seed counts as +inf."""
    return np.log10(result["lrs"]), loss_matrix(result).mean(axis=1)


ANCHOR_RESULTS = Path("/work/shared/bench/results_lr_finders.md")


def anchor_table(name: str) -> dict[int, float]:
    """{k: mean val loss} from the anchors' "Oracle table (<name>)" in results_lr_finders.md."""
    text = ANCHOR_RESULTS.read_text().split(f"Oracle table ({name}):")[1].split("\n## ")[0]
    rows = [line.split("|") for line in text.splitlines() if line.startswith(("| -", "| 0"))]
    return {int(r[1].split()[0]): float(r[3]) for r in rows}


def compare_anchor() -> None:
    """Our anchor-task oracle at its seeds 0, 1, 2 beside the anchors' own table (the same
    loop and seeds, so equal up to float nondeterminism), and at all our seeds."""
    for name, theirs in (("digits-anchor", "digits"), ("mnist1d-anchor", "mnist1d")):
        table, result = anchor_table(theirs), oracle(TASKS[name](), verbose=False)
        print(f"{name}: lr | ours, seeds 0-2 | theirs, seeds 0-2 | ours, seeds {result['seeds']}")
        for k, lr, row in zip(GRID_K, result["lrs"], result["losses"], strict=True):
            ours = [np.inf if v is None else v for v in row]
            print(f"  {lr:.2e} | {np.mean(ours[:3]):.4f} | {table[k]:.4f} | {np.mean(ours):.4f}")


def horizon(names: list[str]) -> None:
    """Best lr after a short run vs after the whole run, same loop and seeds; at a constant
    lr, horizon_factor predicts their ratio as sqrt(short epochs / epochs)."""
    lines = ["| task | schedule | short run | best lr, short run | best lr, whole run | ratio "
             "| sqrt(epoch ratio) | grid lrs within 5%: short / whole |", "|---|" + "---|" * 7]
    for name in names:
        task = TASKS[name]()
        epochs = short_run_epochs(TuneConfig(), task.epochs, len(task.train_loader(0)),
                                  task.schedule == "constant")
        short = dataclasses.replace(task, epochs=epochs, describe=task.describe +
                                    f"; cut to {epochs} epochs (short-run horizon)")
        bests, bands = [], []
        for t in (short, task):
            x, y = mean_curve(oracle(t))
            bests.append(10 ** x[np.argmin(y)])
            bands.append(", ".join(f"{10 ** a:.2g}" for a, b in zip(x, y, strict=True)
                                   if b <= 1.05 * y.min()))
        lines.append(f"| {task.name} | {task.schedule} | {epochs} of {task.epochs} epochs | "
                     f"{bests[0]:.3g} | {bests[1]:.3g} | {bests[1] / bests[0]:.2f} | "
                     f"{horizon_factor(epochs, task.epochs):.2f} | {bands[0]} / {bands[1]} |")
    body = (f"Command: `python bench/tune_oracle.py --horizon --tasks {' '.join(names)}`. "
            "Mean final validation loss over the task's oracle seeds on the 17-point grid, "
            "once for runs as long as `trainwise tune`'s short runs (the schedule compressed "
            "into them) and once for the whole run (bench/tune_tasks.py). Grid step 1.78x, "
            "so each best is located to within about 1.33x.\n\n" + "\n".join(lines))
    print(body)
    append("Short-run horizon: best lr after a short run vs the whole run (issue 6)", body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--schedule", default=None, choices=["onecycle", "constant"])
    parser.add_argument("--compare-anchor", action="store_true")
    parser.add_argument("--horizon", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.horizon:
        horizon(args.tasks)
        return
    if args.compare_anchor:
        compare_anchor()
        return
    for name in args.tasks:
        result = oracle(TASKS[name](), args.schedule)
        x, y = mean_curve(result)
        print(f"{name}: best lr 10^{x[np.argmin(y)]:.2f}, loss {y.min():.4f}, "
              f"{sum(result['seconds'].values()):.0f} s")


if __name__ == "__main__":
    main()
