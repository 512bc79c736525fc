"""Streaming audit + split + leakage proof of a 10M-row, 20-column Parquet table.

    python bench/data_scale.py [--n 10000000] [--keep PATH]

Quality bar (issue 3): under 30 s and under 2 GiB peak memory on 2 cores. The table is the
anchor table's layout (16 floats, 3 text columns, `patient_id` with N/10 values, binary
label) with 10,000 planted duplicate rows; the audit runs in a fresh process whose peak RSS
(VmHWM, libraries included) is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from data_tables import LABEL, write_grouped_parquet


def worker(path: str) -> None:
    import numpy as np  # noqa: F401  (imported before the baseline RSS is read)

    from trainwise.data.scale import audit_parquet

    base = _status_mib("VmRSS")
    start = time.perf_counter()
    findings, summary = audit_parquet(path, LABEL, group_column="patient_id", val_fraction=0.2)
    seconds = time.perf_counter() - start
    print("RESULT " + json.dumps({
        "seconds": seconds, "phases": summary["seconds"], "peak_mib": _status_mib("VmHWM"),
        "base_mib": base, "codes": [f.code for f in findings],
        "duplicates": summary["duplicates"]["count"], "split": summary["split"],
        "cross": next((f.evidence for f in findings if f.code == "cross_split_duplicates"), {})
        .get("num_rows_val", 0)}), flush=True)


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--keep", default="", help="reuse / keep the Parquet file here")
    parser.add_argument("--worker", default="")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or os.path.join(folder, "table.parquet")
        if not os.path.exists(path):
            started = time.perf_counter()
            write_grouped_parquet(path, args.n)
            print(f"wrote {path} in {time.perf_counter() - started:.0f} s", flush=True)
        size = os.path.getsize(path) / 2**20
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = subprocess.run([sys.executable, __file__, "--worker", path], capture_output=True,
                             text=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in result["phases"].items())
    body = "\n".join([
        f"`audit_parquet` on {args.n:,} rows x 21 columns (16 float64, 3 text, int "
        f"`patient_id` with {args.n // 10:,} values, binary label), {size:.0f} MiB of Parquet, "
        "10,000 planted duplicate rows; split by group (stratified_group) and proved.", "",
        "| measure | value | bar |", "|---|---:|---:|",
        f"| wall time | {result['seconds']:.1f} s | < 30 s |",
        f"| CPU time of the worker process (user + sys, imports included) | {cpu:.1f} s | |",
        f"| peak RSS (VmHWM, fresh process) | {result['peak_mib']:.0f} MiB | < 2048 MiB |",
        f"| RSS after imports | {result['base_mib']:.0f} MiB | |",
        f"| duplicate rows found / planted | {result['duplicates']:,} / 10,000 | equal |",
        f"| split train / val rows | {result['split']['train']:,} / {result['split']['val']:,}"
        " | 80 / 20 |",
        f"| val rows copying a train row (planted copies that straddle) | {result['cross']:,} |"
        " |", "",
        f"Phases: {phases}. Findings: {', '.join(result['codes'])}."])
    print(body)
    from _record import append  # imports torch: kept out of the measured worker process

    append("Data: streaming audit of a 10M-row Parquet table", body)


if __name__ == "__main__":
    main()
