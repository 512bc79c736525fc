"""The check zoo through preflight: which broken setups are caught, and how long checks take.

    python bench/check_zoo.py [--repeats 3] [--no-recipe]

Prints (1) the detection table: every broken setup of trainwise.checks.zoo with the finding it
must raise and what preflight reported, every healthy one with what it reported (nothing is
the pass); (2) the seconds of preflight on each built-in baseline at realistic sizes; (3) the
seconds of `trainwise check` on the built-in MNIST-1D. Target (issue 4): preflight under 10 s
per built-in baseline on a 2-core CPU. Torch is pinned to 1 thread: the machine is shared, and
one thread is the honest floor. Appends the tables to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _record import append
from torch import nn

from trainwise.checks import preflight
from trainwise.checks._common import default_optimizer
from trainwise.checks.zoo import BROKEN_SETUPS, HEALTHY_SETUPS, Setup
from trainwise.checks.zoo_data import images, sequences, table, task_data, tokens
from trainwise.findings import Severity
from trainwise.model.baselines import build_model, loss_function
from trainwise.model.init import init_weights

THREADS = 1
TARGET_S = 10.0
# baseline -> (data kind, toy data at the sizes the issue names)
BASELINE_DATA = {
    "cnn1d": ("sequence", lambda: sequences(256, 40)),  # MNIST-1D-shaped (256, 1, 40)
    "mlp": ("table", lambda: table(256, 30)),  # 30 features
    "gru": ("sequence", lambda: sequences(256, 40)),
    "cnn2d": ("image", lambda: images(256, 28)),  # (256, 1, 28, 28)
    "embedding_pool": ("tokens", lambda: tokens(256, 64, vocab=1000)),  # (256, 64) ids
}


def _preflight(setup: Setup) -> tuple[list[str], float]:
    """(codes of the errors/warnings, seconds)."""
    started = time.perf_counter()
    findings = preflight(setup.model, setup.loss_fn, setup.x, setup.y, task=setup.task,
                         num_classes=setup.num_classes)
    seconds = time.perf_counter() - started
    return [f.code for f in findings if f.severity is not Severity.INFO], seconds


def detection_table() -> tuple[str, int, int]:
    """The markdown table, and (broken caught, healthy clean) counts."""
    rows = ["| setup | expected | got (errors and warnings) | caught? | s |",
            "|---|---|---|---|---|"]
    caught = clean = 0
    for registry in (BROKEN_SETUPS, HEALTHY_SETUPS):
        for name, make in registry.items():
            setup = make()
            got, seconds = _preflight(setup)
            if setup.expected is None:
                ok, clean = not got, clean + (not got)
                verdict = "clean" if ok else "FALSE ALARM"
            else:
                ok, caught = setup.expected in got, caught + (setup.expected in got)
                verdict = "yes" if ok else "MISSED"
            rows.append(f"| {name} | {setup.expected or '(healthy)'} | "
                        f"{', '.join(got) or '-'} | {verdict} | {seconds:.2f} |")
            print(rows[-1], flush=True)
    return "\n".join(rows), caught, clean


def _baseline_setup(name: str) -> Setup:
    kind, make = BASELINE_DATA[name]
    x, y = make()
    num_classes = int(y.max()) + 1
    torch.manual_seed(0)
    model = build_model(task_data(kind, x, y, num_classes=num_classes), name)
    init_weights(model, generator=torch.Generator().manual_seed(0))
    return Setup(model, loss_function("classification"), x, y, "classification",
                 num_classes, None)


def baseline_table(repeats: int) -> tuple[str, float]:
    """Median (and range) of `repeats` preflight runs per baseline; the slowest median."""
    rows = ["| baseline | input | params | preflight s (median) | min-max | problems |",
            "|---|---|---|---|---|---|"]
    slowest = 0.0
    for name in BASELINE_DATA:
        runs = [_preflight(_baseline_setup(name)) for _ in range(repeats)]
        times = [s for _, s in runs]
        setup = _baseline_setup(name)
        params = sum(p.numel() for p in setup.model.parameters())
        median = statistics.median(times)
        slowest = max(slowest, median)
        rows.append(f"| {name} | {tuple(setup.x.shape)} {str(setup.x.dtype)[6:]} | "
                    f"{params:,} | {median:.2f} | {min(times):.2f}-{max(times):.2f} | "
                    f"{', '.join(runs[0][0]) or 'none'} |")
        print(rows[-1], flush=True)
    return "\n".join(rows), slowest


def recipe_check() -> str:
    """`trainwise check` on the built-in MNIST-1D (data, split, model, preflight), as a user
    runs it: a fresh process, so the time includes imports and the first-optimizer cost.
    Run from a temporary folder: from bench/, bench/mnist1d.py would shadow the mnist1d
    package."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "trainwise.cli", "check", "--no-report",
                   "--set", f"run.out_dir=\"{out}\"", "--set", f"run.threads={THREADS}"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=out, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        metas = list(Path(out).glob("*/meta.json"))
        stages = json.loads(metas[0].read_text())["stage_seconds"] if metas else {}
    if done.returncode != 0:
        return (f"`trainwise check` on MNIST-1D FAILED (exit {done.returncode}) after "
                f"{wall:.1f} s: {done.stdout[-300:]} {done.stderr[-300:]}")
    per_stage = ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
    return (f"`trainwise check` on MNIST-1D, a fresh process: {wall:.1f} s wall "
            f"({per_stage}; the rest is start-up and imports).")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-recipe", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    started = time.perf_counter()
    default_optimizer(nn.Linear(1, 1))  # torch imports torch._dynamo on the first optimizer
    first_optimizer = time.perf_counter() - started
    detection, caught, clean = detection_table()
    baselines, slowest = baseline_table(args.repeats)
    summary = (f"Broken setups caught by the expected finding: {caught}/{len(BROKEN_SETUPS)}; "
               f"healthy setups with no error or warning: {clean}/{len(HEALTHY_SETUPS)}.\n\n"
               f"Slowest baseline preflight (median of {args.repeats}): {slowest:.2f} s "
               f"(target < {TARGET_S:g} s: {'met' if slowest < TARGET_S else 'MISSED'}). "
               f"Torch pinned to {THREADS} thread. Not included: a one-off "
               f"{first_optimizer:.1f} s the first time a process builds an optimizer "
               "(torch imports torch._dynamo), paid once by any training.")
    if not args.no_recipe:
        summary += "\n\n" + recipe_check()
    body = (f"{detection}\n\n{baselines}\n\n{summary}")
    print(summary)
    append("Check zoo: detection and preflight time", body)


if __name__ == "__main__":
    main()
