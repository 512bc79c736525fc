"""Appending benchmark results to docs/benchmarks.md, with the machine they ran on."""

from __future__ import annotations

import os
import platform
from datetime import datetime
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch thread(s), load {os.getloadavg()[0]:.1f}")


def append(title: str, body: str) -> None:
    BENCHMARKS.parent.mkdir(exist_ok=True)
    if not BENCHMARKS.exists():
        BENCHMARKS.write_text("# Benchmarks\n\nAppended by the scripts in `bench/`; newest last.\n")
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    with BENCHMARKS.open("a", encoding="utf-8") as handle:
        handle.write(f"\n## {title} ({stamp})\n\n{machine()}\n\n{body.strip()}\n")
