"""Scale-out evidence (issue 7): 1 versus 2 processes, kill-and-resume timings, fuzz counts.

    python bench/scale_out.py [throughput] [resume] [fuzz] [--repeats 3] [--examples 2000]
                              [--no-record]

throughput: samples/s of `fit` on MNIST-1D (4000 training sequences, global batch 128) for the
  built-in CNN and a 50x larger one, on 1 process (1 thread), 1 process (2 threads) and 2 DDP
  processes (1 thread each, gloo). Scaling efficiency = 2-process / (2 x 1-process-1-thread).
  Steps are timed inside epochs (validation excluded), after 5 warm-up steps; median of repeats.
resume: an uninterrupted digits run, then the same run SIGKILLed while writing its 6th
  checkpoint and resumed with `trainwise run --resume`; checks the final weights are bitwise
  equal and reports each wall time.
fuzz: runs tests/test_fuzz.py with FUZZ_EXAMPLES=N and counts the inputs hypothesis tried.
Appends the results to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _record import append
from lightning_fabric import Fabric
from torch import nn

from trainwise.data.sources import load_mnist1d
from trainwise.data.tensors import Normaliser, to_loader
from trainwise.model.baselines import cnn1d
from trainwise.train.loop import fit

ROOT = Path(__file__).resolve().parent.parent
BATCH, WARMUP = 128, 5


class StepClock:
    """Per-step wall times inside epochs (on_step_end runs after every optimizer step)."""

    def __init__(self):
        self.times: list[tuple[int, float]] = []

    def on_step_end(self, state):
        self.times.append((state.epoch, time.perf_counter()))

    def seconds_per_step(self) -> float:
        gaps = [b - a for (ea, a), (eb, b) in zip(self.times, self.times[1:], strict=False)
                if ea == eb]
        return statistics.median(gaps[WARMUP:])


def _width_for(params: int) -> int:
    return min(range(32, 400), key=lambda w: abs(sum(p.numel() for p in cnn1d(1, 10, w)
                                                     .parameters()) - params))


def _measure(fabric: Fabric, width: int, epochs: int) -> float:
    data = load_mnist1d()
    x = Normaliser().fit_transform(data.x)
    torch.manual_seed(0)
    model = cnn1d(1, 10, width)
    clock = StepClock()
    fit(model, to_loader(x, data.y, BATCH, shuffle=True, seed=0),
        to_loader(x[:256], data.y[:256], 256, shuffle=False, seed=0),
        optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
        loss_fn=nn.CrossEntropyLoss(), max_epochs=epochs, fabric=fabric, callbacks=[clock],
        log_every=10)
    return BATCH / clock.seconds_per_step()  # global samples per second


def _two_processes(fabric: Fabric, width: int, epochs: int, out: str) -> None:
    torch.set_num_threads(1)
    rate = _measure(fabric, width, epochs)
    if fabric.global_rank == 0:
        Path(out).write_text(str(rate))


def throughput(repeats: int) -> str:
    base = sum(p.numel() for p in cnn1d(1, 10, 32).parameters())
    rows = ["| model | params | 1 proc x 1 thread | 1 proc x 2 threads | 2 procs x 1 thread "
            "| efficiency vs 1x1 | vs 1x2 |", "|---|---|---|---|---|---|---|"]
    for label, width, epochs in (("MNIST-1D CNN", 32, 2), ("CNN 50x", _width_for(50 * base), 1)):
        rates: dict[str, list[float]] = {"1x1": [], "1x2": [], "2x1": []}
        for _ in range(repeats):
            for key, threads in (("1x1", 1), ("1x2", 2)):
                torch.set_num_threads(threads)
                rates[key].append(_measure(Fabric(accelerator="cpu", devices=1), width, epochs))
            out = Path(tempfile.mkdtemp()) / "rate.txt"
            Fabric(accelerator="cpu", devices=2, strategy="ddp_fork").launch(
                _two_processes, width, epochs, str(out))
            rates["2x1"].append(float(out.read_text()))
        one, one2, two = (statistics.median(rates[k]) for k in ("1x1", "1x2", "2x1"))
        params = sum(p.numel() for p in cnn1d(1, 10, width).parameters())
        rows.append(f"| {label} (width {width}) | {params:,} | {one:,.0f} | {one2:,.0f} | "
                    f"{two:,.0f} | {two / (2 * one):.0%} | {two / one2:.0%} |")
        print(rows[-1], flush=True)
    torch.set_num_threads(1)
    return f"samples/s (global batch 128, median of {repeats})\n\n" + "\n".join(rows)


def resume() -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_resume as scenario  # the same settings and kill as the test
    import trainwise
    from trainwise.cli import main

    folder = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    reference = trainwise.run(overrides=scenario._settings(folder / "ref"), report=False)
    uninterrupted = time.perf_counter() - started
    started = time.perf_counter()
    process = scenario._fork(scenario._die_mid_save, folder / "killed")
    process.join()
    killed = time.perf_counter() - started
    path = scenario._the_run(folder / "killed")
    step = scenario._checkpoint_step(path)
    started = time.perf_counter()
    assert main(["run", "--resume", str(path), "--no-report"]) == 0
    resumed = time.perf_counter() - started
    scenario._assert_same_run(path, reference.path)  # raises unless bitwise equal
    return (f"| run | seconds |\n|---|---|\n| uninterrupted | {uninterrupted:.1f} |\n"
            f"| killed mid-save (exit {process.exitcode}, last complete checkpoint: step "
            f"{step}) | {killed:.1f} |\n| `trainwise run --resume` | {resumed:.1f} |\n\n"
            "Final weights (last.pt, best.pt) and every history row: bitwise equal to the "
            "uninterrupted run.")


def fuzz(examples: int) -> str:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_fuzz.py", "--hypothesis-show-statistics"],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "FUZZ_EXAMPLES": str(examples)})
    tried = sum(int(n) for n in re.findall(r"(\d+) passing, ", done.stdout))
    failing = sum(int(n) for n in re.findall(r"(\d+) failing, ", done.stdout))
    return (f"{tried:,} fuzzed inputs (FUZZ_EXAMPLES={examples} per test, 5 fuzz tests), "
            f"{failing} failing in this run (pytest exit code {done.returncode}).\n\n"
            "Failures the fuzzers found while they were written: 2, both in config.py and both "
            "fixed there (commit 61b889e), now regression tests in tests/test_fuzz.py:\n\n"
            "- an override into a section that is not a table (`from_dict({'data': None}, "
            "['data.source=...'])`) raised TypeError;\n"
            "- a config file that is not UTF-8 raised UnicodeDecodeError.\n\n"
            "The table loader (load_table / table_data) gave a TaskData or a DataError on every "
            "input.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("parts", nargs="*", default=["throughput", "resume", "fuzz"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    np.random.seed(0)
    sections = []
    if "throughput" in args.parts:
        sections.append("### 1 vs 2 processes on the CPU\n\n" + throughput(args.repeats))
    if "resume" in args.parts:
        sections.append("### Kill and resume\n\n" + resume())
    if "fuzz" in args.parts:
        sections.append("### Fuzzing\n\n" + fuzz(args.examples))
    body = "\n\n".join(sections)
    print(body)
    if not args.no_record:
        append("Scale-out: processes, resume, fuzzing", body)


if __name__ == "__main__":
    main()
