"""How close can a choice made from ONE seed's short runs get to the grid oracle? A replay of
`trainwise tune`'s constant-lr rule, and of richer rules, on recorded short runs (issue 6:
"within 5% of the oracle's best in every seed", on the anchors' constant-lr tasks).

    python bench/tune_replay.py --collect --tasks mnist1d-anchor --seeds 500 510 [--every 6]
    python bench/tune_replay.py [--tasks digits-anchor mnist1d-anchor]

--collect records, per tune seed, what the short runs see: the range test as `tune` runs it
(3 seeds from the tune seed, the drop_last loader) and a constant-lr run as long as a short
run (`short_run_epochs`) at every lr of a 1.33x grid, the validation loss taken every
`--every` steps of the last epoch. It is a plain loop (seeded model, torch AdamW, shuffled
batches, the anchors' order of operations), not `fit`, so its numbers are close to, not
equal to, tune's own. Cached in bench/tune_replay.json by task and seed.

The replay scores each rule's lr on every recorded seed against the 20-seed oracle's mean
curve (bench/tune_oracle.json, linear in log lr between grid points, as tune_vs_oracle.py's
table):
- "tune's rule": search.py's candidates (the range's low end times the horizon factor up to
  its high end, as many as the range asks for), widened at an edge, `refine`, times the
  horizon factor; each candidate scored by the median of TAIL_EVALS evaluations;
- "dense grid": EVERY grid lr run (14 short runs, ~4.5x one plain run, beyond the 3x budget),
  a quadratic through the best and 2 neighbours a side on the 1.78x sub-grid: what far more
  short runs on the same seed buy;
- "dense grid, all evaluations": the same scored by the median of every recorded evaluation
  (collect with --every 2 for 18 per run).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from _record import append
from tune_oracle import mean_curve, oracle
from tune_tasks import TASKS, WEIGHT_DECAY, Task
from tune_vs_oracle import excess

from trainwise.config import TuneConfig
from trainwise.tune.candidates import beyond_edge, candidate_lrs, refine
from trainwise.tune.lr_range import lr_range_test
from trainwise.tune.search import (
    TAIL_EVALS,
    candidate_range,
    horizon_factor,
    short_run_epochs,
)

CACHE = Path(__file__).resolve().parent / "tune_replay.json"
GRID = {"mnist1d-anchor": range(-22, -8), "digits-anchor": range(-20, -4)}  # 10^(k/8)


def collect(name: str, seeds: list[int], every: int) -> None:
    task = TASKS[name]()
    epochs = short_run_epochs(TuneConfig(), task.epochs, len(task.train_loader(0)), True)
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    entry = cache.setdefault(f"{name} | every {every}", {"task": name, "epochs": epochs,
                                                         "every": every, "seeds": {}})
    for seed in seeds:
        rt = lr_range_test(task.model(seed), task.loss_fn, task.train_loader(seed, True),
                           task.make_optimizer, seeds=(seed, seed + 1, seed + 2))
        curves = {repr(10 ** (k / 8)): _short_run(task, 10 ** (k / 8), seed, epochs, every)
                  for k in GRID[name]}
        entry["seeds"][str(seed)] = {"range": [rt.lr_low, rt.lr_high, rt.lr], "curves": curves}
        print(f"  {name} seed {seed}: range {rt.lr_low:.3g}-{rt.lr_high:.3g}", flush=True)
        CACHE.write_text(json.dumps(cache))


def _short_run(task: Task, lr: float, seed: int, epochs: int, every: int) -> list[float] | None:
    """Validation losses every `every` steps of the last epoch (the last step included),
    oldest first; None when the training loss went non-finite."""
    torch.manual_seed(seed)
    model = task.make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    x, y = torch.as_tensor(task.x_train), torch.as_tensor(task.y_train)
    xv, yv = torch.as_tensor(task.x_val), torch.as_tensor(task.y_val)
    order = torch.Generator().manual_seed(seed)
    steps, evals = math.ceil(len(x) / task.batch_size), []
    for epoch in range(epochs):
        for i, idx in enumerate(torch.randperm(len(x), generator=order).split(task.batch_size)):
            model.train()
            optimizer.zero_grad()
            loss = task.loss_fn(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                return None
            loss.backward()
            optimizer.step()
            if epoch == epochs - 1 and (steps - 1 - i) % every == 0:
                model.eval()
                with torch.no_grad():
                    evals.append(float(task.loss_fn(model(xv), yv)))
    return evals


def _tail(evals: list[float], count: int | None) -> tuple[list[float], int]:
    """`count` (None: all) evaluations evenly spread over the recorded ones, the last
    included, and the stride between them in recorded evaluations."""
    stride = max(1, len(evals) // count) if count else 1
    return evals[::-1][::stride][:count or len(evals)], stride


def tune_rule(run: dict, factor: float, count: int) -> float:
    """search.py's constant-lr choice, candidates snapped to the recorded grid: its
    `candidate_range` for the recorded short runs' length, widened at an edge (not past the
    recorded grid), the refined pick times `factor` (horizon_factor at the scored
    evaluations' mean position)."""
    grid = sorted(float(k) for k in run["curves"])
    snap = lambda lr: min(grid, key=lambda g: abs(math.log(g / lr)))  # noqa: E731

    def score(lr: float) -> float:
        evals = run["curves"][repr(lr)]
        return float(np.median(_tail(evals, count)[0])) if evals else math.inf

    lrs = sorted({snap(lr) for lr in candidate_lrs(*run["candidate_range"])[0]})
    pairs = [(lr, score(lr)) for lr in lrs]
    for _ in range(TuneConfig().max_widenings):
        beyond = beyond_edge(pairs)
        if beyond is None or not grid[0] <= beyond <= grid[-1] or snap(beyond) in lrs:
            break
        lrs.append(snap(beyond))
        pairs.append((lrs[-1], score(lrs[-1])))
    return refine(pairs) * factor


def dense_rule(run: dict, factor: float, count: int | None) -> float:
    """Every lr of the 1.78x sub-grid; a quadratic in log lr through the best and 2
    neighbours a side (finite scores only), clipped to the best's neighbours; times
    `factor`."""
    grid = sorted(float(k) for k in run["curves"])[::2]  # the 1.78x sub-grid
    scores = [np.median(_tail(e, count)[0]) if (e := run["curves"][repr(lr)]) else np.inf
              for lr in grid]
    x = np.log10([lr for lr, v in zip(grid, scores, strict=True) if np.isfinite(v)])
    y = np.array([v for v in scores if np.isfinite(v)])
    best = int(np.argmin(y))
    window = slice(max(0, best - 2), best + 3)
    a, b, _ = np.polyfit(x[window], np.log(y[window]), 2)
    vertex = -b / (2 * a) if a > 0 else x[best]
    return 10 ** float(np.clip(vertex, x[max(0, best - 1)], x[min(len(x) - 1, best + 1)])) * factor


def _factor(task: Task, entry: dict, recorded: int, count: int | None) -> float:
    """horizon_factor at the mean position of the evaluations a rule scores, as search.py."""
    stride = max(1, recorded // count) if count else 1
    offsets = [entry["every"] * stride * i for i in range(count or recorded)]
    steps = len(task.train_loader(0))
    return horizon_factor(entry["epochs"] - float(np.mean(offsets)) / steps, task.epochs)


def replay(names: list[str]) -> None:
    cache = json.loads(CACHE.read_text())
    lines = ["| task | rule | short runs per seed | within 5% of the oracle's best | worst "
             "excess | per-seed lr (excess) | recorded |", "|---|---|---|---|---|---|---|"]
    for key, entry in cache.items():
        if entry["task"] not in names:
            continue
        task = TASKS[entry["task"]]()
        curve = mean_curve(oracle(task, verbose=False))
        runs = [{**run, "candidate_range": candidate_range(
            *run["range"][:2], "auto", entry["epochs"], task.epochs, constant=True)}
            for run in entry["seeds"].values()]
        recorded = len(next(e for e in runs[0]["curves"].values() if e))
        rules = {f"tune's rule (median of {TAIL_EVALS})": (tune_rule, TAIL_EVALS, "3-6"),
                 f"dense grid (median of {TAIL_EVALS})": (dense_rule, TAIL_EVALS, "14")}
        if recorded > TAIL_EVALS:
            rules[f"dense grid (median of all {recorded})"] = (dense_rule, None, "14")
        for rule, (pick, count, runs_per_seed) in rules.items():
            factor = _factor(task, entry, recorded, count)
            lrs = [pick(run, factor, count) for run in runs]
            ex = [excess(curve, lr) for lr in lrs]
            lines.append(f"| {task.name} | {rule} | {runs_per_seed} | "
                         f"{sum(e <= 0.05 for e in ex)}/{len(ex)} | {max(ex):+.1%} | "
                         + ", ".join(f"{lr:.3g} ({e:+.1%})" for lr, e in zip(lrs, ex, strict=True))
                         + f" | {key.split(' | ')[1]}, seeds {min(map(int, entry['seeds']))}-"
                         f"{max(map(int, entry['seeds']))} |")
    body = (f"Command: `python bench/tune_replay.py --tasks {' '.join(names)}` (recorded short "
            "runs in bench/tune_replay.json: a plain loop, per tune seed the range test and a "
            "3-epoch constant-lr run at every lr of a 1.33x grid; see the script's docstring). "
            "Scored against the 20-seed oracle as in tune_vs_oracle.py's table.\n\n"
            + "\n".join(lines))
    print(body)
    append("Replay: one seed's short runs against the oracle (issue 6)", body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", nargs="+", default=list(GRID), choices=list(GRID))
    parser.add_argument("--collect", action="store_true")
    parser.add_argument("--seeds", nargs="+", type=int, default=[500, 510, 520])
    parser.add_argument("--every", type=int, default=None,
                        help="steps between evaluations (default: TAIL_EVALS over the epoch)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.collect:
        for name in args.tasks:
            steps = len(TASKS[name]().train_loader(0))
            collect(name, args.seeds, args.every or max(1, steps // TAIL_EVALS))
        return
    replay(args.tasks)


if __name__ == "__main__":
    main()
