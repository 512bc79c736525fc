"""Overhead of trainwise's monitoring: epoch time against a plain PyTorch loop.

    PYTHONPATH=src /tmp/peers/bin/python bench/overhead.py [--rounds 25] [--peer-rounds 7]

Same model and data for everyone: the MNIST-1D paper's CNN (5,210 parameters), batch 100,
AdamW 1e-2, one evaluation on the 1,000 test sequences per epoch, torch pinned to 1 thread.
Contenders: a plain loop; `trainwise.fit` with every monitor on (per-step loss, gradient
norm, lr and throughput with one device->host transfer every 10 steps, per-layer norms every
50 steps, confidence histogram, ECE and reliability bins per epoch, history.jsonl,
TensorBoard events, best-weight tracking); the plain loop plus `trainwise.Monitor`'s three
lines; PyTorch Lightning's Trainer; fastai's Learner. Then the plain loop, `fit` and the
Monitor on a model with 50x the parameters (204 channels: 261,574).

All contenders run in one process, so run this with a Python that has lightning and fastai
(and the same torch); the ones it lacks are left out. Every contender trains 1 warm-up epoch
and E timed ones per round. The plain loop, fit and the Monitor take turns batch by batch in
threads (bench/_lockstep.py): the load of this shared machine moves one epoch's CPU time by
+-30%, more than the few percent measured here, and taking turns makes every contender sample
the same load. Lightning and fastai (their loops cannot hand over the turn) run in rounds one
after another, in an order rotated every round, beside the plain loop. Headline: the median
over rounds of the CPU-time ratio to the plain loop of the same round, with its standard
error; beside it the ratio of best (least disturbed) epochs. Each contender runs with
PYTORCH_NVML_BASED_CUDA_CHECK as its own imports leave it (see `environments`). Targets
(issue 5): trainwise <= 1.10x on the small model, <= 1.03x on the 50x one. Appends the tables
to docs/benchmarks.md. The Python used here (PYTHONPATH=src so trainwise imports from the
tree): a venv with torch 2.14.1, lightning, fastai, mnist1d, lightning-fabric and tensorboard.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _lockstep import loader_like, run_in_turns  # noqa: E402
from _overhead_loops import BATCH, CONTENDERS, IMPORTS, VAL_BATCH, Clock, model  # noqa: E402
from _record import append  # noqa: E402

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
ENVIRONMENT: dict[str, str | None] = {}  # contender: NVML_CHECK as its imports leave it
START_ENVIRONMENT = dict(os.environ)  # before Lightning or fastai is imported here
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


def set_environment(name: str) -> None:
    os.environ.pop(NVML_CHECK, None)
    if ENVIRONMENT.get(name) is not None:
        os.environ[NVML_CHECK] = ENVIRONMENT[name]  # type: ignore[assignment]


def environments(names: list[str]) -> dict[str, str | None]:
    """PYTORCH_NVML_BASED_CUDA_CHECK as each contender's own imports leave it (a fresh process
    each). Importing Lightning sets it; then, with CUDA never initialised, torch loads NVML on
    every torch.cuda.is_available(), which Adam and AdamW call every step (~80 us on this
    machine). All contenders share this process, so without this a plain loop would pay for
    the Lightning that the others imported."""
    found = {}
    for name in names:
        code = (f"import os, {', '.join(IMPORTS[name])}; "
                f"print(os.environ.get('{NVML_CHECK}', ''))")
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True, env=START_ENVIRONMENT).stdout.strip().splitlines()
        found[name] = output[-1] if output and output[-1] else None
    return found


def measure(name: str, channels: int, epochs: int,
            data: tuple[DataLoader, DataLoader]) -> dict[str, list[float]]:
    """Wall and process CPU seconds of each timed epoch (the first epoch warms up)."""
    gc.collect()  # garbage of the previous contender is not this one's cost
    set_environment(name)
    clock = Clock()
    CONTENDERS[name](model(channels), *data, 1 + epochs, clock)
    return {kind: values[1:] for kind, values in clock.epochs().items()}


def measure_in_turns(names: list[str], channels: int, epochs: int,
                     data: tuple[DataLoader, DataLoader],
                     seed: int) -> dict[str, dict[str, list[float]]]:
    """Thread CPU seconds of each timed epoch, the contenders taking turns batch by batch.

    Threads share os.environ, so all run with the plain loop's: fit itself removes the NVML
    check for its training on the CPU (loop.cheap_cuda_checks; tests/test_loop.py)."""
    gc.collect()
    set_environment("plain")
    train, val = data
    seconds: dict[str, dict[str, list[float]]] = {}

    def job(name: str):
        def run(collate) -> None:
            clock = Clock(cpu=time.thread_time)  # in the contender's own thread
            CONTENDERS[name](model(channels), loader_like(train, collate), val, 1 + epochs,
                             clock)
            seconds[name] = {"cpu": clock.epochs()["cpu"][1:]}
        return run

    run_in_turns({name: job(name) for name in names}, seed)
    return seconds


def run_rounds(names: list[str], channels: int, epochs: int, rounds: int,
               data: tuple[DataLoader, DataLoader],
               in_turns: bool) -> dict[str, dict[str, list[float]]]:
    """{contender: {"wall": every timed epoch (one after another only), "cpu": ...,
    "cpu_ratio": one per round}}."""
    results: dict[str, dict[str, list[float]]] = {
        n: {"wall": [], "cpu": [], "cpu_ratio": []} for n in names}
    for number in range(rounds):
        if in_turns:
            seconds = measure_in_turns(names, channels, epochs, data, seed=number)
        else:
            order = names[number % len(names):] + names[: number % len(names)]
            seconds = {name: measure(name, channels, epochs, data) for name in order}
        plain = statistics.median(seconds["plain"]["cpu"])
        for name in names:
            results[name]["wall"] += seconds[name].get("wall", [])
            results[name].setdefault("thread", []).extend(seconds[name].get("thread", []))
            results[name]["cpu"] += seconds[name]["cpu"]
            results[name]["cpu_ratio"].append(statistics.median(seconds[name]["cpu"]) / plain)
        print(f"channels {channels}, round {number + 1}, CPU ms/epoch: " + ", ".join(
            f"{n} {statistics.median(seconds[n]['cpu']) * 1000:.0f}" for n in names), flush=True)
    return results


def table(results: dict[str, dict[str, list[float]]], channels: int) -> str:
    """Median of the per-round CPU ratios with its standard error (1.25 sd / sqrt(rounds)), and
    the ratio of best epochs (the least disturbed: interference only ever adds time); wall
    time only where contenders ran one after another (in turns, it counts the others' turns)."""
    labels = {"plain": "plain PyTorch loop", "fit": "trainwise.fit, all monitoring on",
              "monitor": "plain loop + trainwise.Monitor", "lightning": "Lightning Trainer",
              "fastai": "fastai Learner"}
    best_plain = {kind: min(results["plain"][kind], default=0) for kind in ("wall", "cpu")}
    lines = ["| contender | rounds | median CPU ratio +- s.e. (min-max) | median CPU ms/epoch | "
             "best CPU ms/epoch (ratio) | best wall ms/epoch (ratio) | target |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ratios = r["cpu_ratio"]
        if not ratios:  # a contender given no rounds (--peer-rounds 0) or not installed
            continue
        error = 1.25 * statistics.stdev(ratios) / len(ratios) ** 0.5 if len(ratios) > 1 else 0
        cpu = min(r["cpu"])
        wall = (f"{min(r['wall']) * 1000:.0f} ({min(r['wall']) / best_plain['wall']:.2f}x)"
                if r["wall"] else "")
        target = f"<= {TARGETS[channels]:.2f}x" if name in OURS else ""
        lines.append(
            f"| {labels[name]} | {len(ratios)} | {statistics.median(ratios):.3f}x +- {error:.3f} "
            f"({min(ratios):.2f}-{max(ratios):.2f}) | {statistics.median(r['cpu']) * 1000:.0f} | "
            f"{cpu * 1000:.0f} ({cpu / best_plain['cpu']:.2f}x) | {wall} | {target} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=25, help="plain / fit / Monitor in turns")
    parser.add_argument("--peer-rounds", type=int, default=7,
                        help="all five contenders, one after another")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--large-rounds", type=int, default=9)
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
    ours = ["plain", "fit", "monitor"]
    ENVIRONMENT.update(environments(ours + peers))
    print(f"{NVML_CHECK} per contender: {ENVIRONMENT}", flush=True)
    for name in ours + peers:  # a first pass warms every import
        measure(name, SMALL, 1, data)
    sections = [
        (SMALL, args.epochs, "in turns", run_rounds(ours, SMALL, args.epochs, args.rounds, data,
                                                    in_turns=True)),
        (LARGE, args.large_epochs, "in turns",
         run_rounds(ours, LARGE, args.large_epochs, args.large_rounds, data, in_turns=True))]
    if peers:
        sections.insert(1, (SMALL, args.epochs, "one after another", run_rounds(
            ours + peers, SMALL, args.epochs, args.peer_rounds, data, in_turns=False)))
    body = [f"`PYTHONPATH=src {Path(sys.executable).name} bench/overhead.py --rounds "
            f"{args.rounds} --peer-rounds {args.peer_rounds} --epochs {args.epochs} "
            f"--large-rounds {args.large_rounds} --large-epochs {args.large_epochs}` (torch "
            f"{torch.__version__}; {', '.join(peers) or 'no Lightning/fastai in this Python'})",
            "", f"{NVML_CHECK} as each contender's imports leave it: {ENVIRONMENT}", ""]
    titles = {SMALL: "MNIST-1D CNN, 5,210 parameters",
              LARGE: "the same CNN with 204 channels, 261,574 parameters (50x)"}
    how = {"in turns": "in threads taking turns batch by batch (bench/_lockstep.py), thread "
                       "CPU time", "one after another": "one after another in an order rotated "
                       "every round, process CPU time (Lightning and fastai cannot take turns)"}
    for channels, epochs, mode, result in sections:
        body += [f"**{titles[channels]}**, batch 100, {epochs} timed epochs per contender and "
                 f"round, {how[mode]}; ratios to the plain loop of the same round:", "",
                 table(result, channels), ""]
    if peers:  # what taking turns leaves out: the CPU time of background threads
        one_by_one = sections[1][3]
        shares = {name: 1 - sum(one_by_one[name]["thread"]) / sum(one_by_one[name]["cpu"])
                  for name in ours}
        body += ["Background threads' share of each contender's process CPU time (one after "
                 "another; not counted in turns): " + ", ".join(
                     f"{name} {share:.1%}" for name, share in shares.items()), ""]
    text = "\n".join(body)
    print(text)
    if not args.no_record:
        append("Monitoring overhead (issue 5)", text)


if __name__ == "__main__":
    main()
