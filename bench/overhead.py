"""Overhead of trainwise's monitoring: epoch time against a plain PyTorch loop.

    PYTHONPATH=src /tmp/peers/bin/python bench/overhead.py [--rounds 9] [--epochs 3]

Same model and data for everyone: the MNIST-1D paper's CNN (5,210 parameters), batch 100,
AdamW 1e-2, one evaluation on the 1,000 test sequences per epoch, torch pinned to 1 thread.
Contenders: a plain loop; `trainwise.fit` with every monitor on (per-step loss, gradient
norm, lr and throughput with one device->host transfer every 10 steps, per-layer norms every
50 steps, confidence histogram, ECE and reliability bins per epoch, history.jsonl,
TensorBoard events, best-weight tracking); the plain loop plus `trainwise.Monitor`'s three
lines; PyTorch Lightning's Trainer; fastai's Learner. Then the plain loop, `fit` and the
Monitor on a model with 50x the parameters (204 channels: 261,574).

All contenders run in one process, so run this with a Python that has lightning and fastai
(and the same torch); the ones it lacks are left out. In each round every contender trains 1
warm-up epoch and E timed ones, in an order rotated every round. Headline: the best (least
disturbed) epoch of each contender over all rounds, as wall-clock and as process CPU time,
and the ratio of bests; on a machine shared with other work, interference only ever adds time,
so the minimum is the steadiest estimate of the cost itself. The median and range of the
per-round CPU ratios (to the plain loop of the same round) show the spread. Targets (issue 5):
trainwise <= 1.10x on the small model, <= 1.03x on the 50x one. Appends the tables to
docs/benchmarks.md. The Python used here (PYTHONPATH=src so trainwise imports from the tree):
a venv with torch 2.14.1, lightning, fastai, mnist1d, lightning-fabric and tensorboard.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import statistics
import sys
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _overhead_loops import BATCH, CONTENDERS, VAL_BATCH, Clock, model  # noqa: E402
from _record import append  # noqa: E402

SMALL, LARGE = 25, 204  # channels: 5,210 and 261,574 parameters (50.2x)
TARGETS = {SMALL: 1.10, LARGE: 1.03}
OURS = ("fit", "monitor")


def loaders() -> tuple[DataLoader, DataLoader]:
    """MNIST-1D as the paper generates it (4,000 train / 1,000 test sequences)."""
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())
    train = TensorDataset(torch.tensor(data["x"][:, None], dtype=torch.float32),
                          torch.tensor(data["y"]))
    val = TensorDataset(torch.tensor(data["x_test"][:, None], dtype=torch.float32),
                        torch.tensor(data["y_test"]))
    return (DataLoader(train, BATCH, shuffle=True, generator=torch.Generator().manual_seed(0)),
            DataLoader(val, VAL_BATCH))


def measure(name: str, channels: int, epochs: int,
            data: tuple[DataLoader, DataLoader]) -> dict[str, list[float]]:
    """Wall and CPU seconds of each timed epoch (the first epoch warms up)."""
    gc.collect()  # garbage of the previous contender is not this one's cost
    clock = Clock()
    CONTENDERS[name](model(channels), *data, 1 + epochs, clock)
    return {kind: values[1:] for kind, values in clock.epochs().items()}


def run_rounds(names: list[str], channels: int, epochs: int, rounds: int,
               data: tuple[DataLoader, DataLoader]) -> dict[str, dict[str, list[float]]]:
    """{contender: {"wall": every timed epoch, "cpu": ..., "cpu_ratio": one per round}}."""
    results: dict[str, dict[str, list[float]]] = {
        n: {"wall": [], "cpu": [], "cpu_ratio": []} for n in names}
    for number in range(rounds):
        order = names[number % len(names):] + names[: number % len(names)]
        seconds = {name: measure(name, channels, epochs, data) for name in order}
        plain = statistics.median(seconds["plain"]["cpu"])
        for name in names:
            results[name]["wall"] += seconds[name]["wall"]
            results[name]["cpu"] += seconds[name]["cpu"]
            results[name]["cpu_ratio"].append(statistics.median(seconds[name]["cpu"]) / plain)
        print(f"channels {channels}, round {number + 1}, CPU ms/epoch: " + ", ".join(
            f"{n} {statistics.median(seconds[n]['cpu']) * 1000:.0f}" for n in names), flush=True)
    return results


def table(results: dict[str, dict[str, list[float]]], channels: int) -> str:
    """Best epoch (the least disturbed by other work: interference only adds time) and the
    ratio of bests; then the median of per-round ratios and their range, for the spread."""
    labels = {"plain": "plain PyTorch loop", "fit": "trainwise.fit, all monitoring on",
              "monitor": "plain loop + trainwise.Monitor", "lightning": "Lightning Trainer",
              "fastai": "fastai Learner"}
    best_plain = {kind: min(results["plain"][kind]) for kind in ("wall", "cpu")}
    lines = ["| contender | best wall ms/epoch | ratio | best CPU ms/epoch | ratio | median of "
             "round CPU ratios (min-max) | target |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        target = f"<= {TARGETS[channels]:.2f}x" if name in OURS else ""
        wall, cpu = min(r["wall"]), min(r["cpu"])
        lines.append(
            f"| {labels[name]} | {wall * 1000:.1f} | {wall / best_plain['wall']:.3f}x | "
            f"{cpu * 1000:.1f} | {cpu / best_plain['cpu']:.3f}x | "
            f"{statistics.median(r['cpu_ratio']):.2f}x ({min(r['cpu_ratio']):.2f}-"
            f"{max(r['cpu_ratio']):.2f}) | {target} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--large-rounds", type=int, default=7)
    parser.add_argument("--large-epochs", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    peers = [n for n in ("lightning", "fastai") if importlib.util.find_spec(n) is not None]
    for name in peers:  # imported up front: fastai patches torch, every contender runs so
        __import__("fastai.basics" if name == "fastai" else name)
    data = loaders()
    for name in ["plain", "fit", "monitor", *peers]:  # a first pass warms every import
        measure(name, SMALL, 1, data)
    results = {SMALL: run_rounds(["plain", "fit", "monitor", *peers], SMALL, args.epochs,
                                 args.rounds, data),
               LARGE: run_rounds(["plain", "fit", "monitor"], LARGE, args.large_epochs,
                                 args.large_rounds, data)}
    body = [f"`{Path(sys.executable).name} bench/overhead.py --rounds {args.rounds} --epochs "
            f"{args.epochs} --large-rounds {args.large_rounds} --large-epochs "
            f"{args.large_epochs}` (torch {torch.__version__}; "
            f"{', '.join(peers) or 'no Lightning/fastai in this Python'})", ""]
    for channels, title in ((SMALL, "MNIST-1D CNN, 5,210 parameters"),
                            (LARGE, "the same CNN with 204 channels, 261,574 parameters (50x)")):
        epochs = args.epochs if channels == SMALL else args.large_epochs
        body += [f"**{title}**, batch 100, {epochs} timed epochs per round, ratios to the "
                 "plain loop:", "", table(results[channels], channels), ""]
    text = "\n".join(body)
    print(text)
    if not args.no_record:
        append("Monitoring overhead (issue 5)", text)


if __name__ == "__main__":
    main()
