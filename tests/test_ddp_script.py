"""A script that calls trainwise.run with run.devices=2 is re-run from the top as rank 1
(Lightning's launcher): its code after run() must be able to tell which process it is in."""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = """
import torch, trainwise
x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
y = (x[:, 0] > 0).long()
result = trainwise.run({{"run": {{"out_dir": {out!r}, "threads": 1}}}}, data=(x, y),
                       overrides=["run.devices=2"], until="split", report=False)
print("global zero:", result.is_global_zero, result.path.name if result.is_global_zero else "")
"""


@pytest.mark.skipif(not os.environ.get("TRAINWISE_SLOW_TESTS"),
                    reason="two fresh interpreters (~40 s on 2 busy cores): TRAINWISE_SLOW_TESTS=1")
def test_a_script_with_two_devices_returns_in_both_processes_and_says_which(tmp_path):
    """Audit s11 D11: the code after run() ran twice with nothing to guard it by."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(out=str(tmp_path / "runs"))))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith("global zero:"))
    [run] = list((tmp_path / "runs").glob("*-*"))
    assert lines == ["global zero: False ", f"global zero: True {run.name}"]


@pytest.mark.skipif(not os.environ.get("TRAINWISE_SLOW_TESTS"),
                    reason="two fresh interpreters (~40 s on 2 busy cores): TRAINWISE_SLOW_TESTS=1")
def test_json_with_two_devices_is_one_line(tmp_path):
    """Review s11 VA2: each of the N processes printed the --json object on the shared stdout."""
    script = tmp_path / "cli.py"  # a file, as the launcher re-runs sys.argv (not "-c")
    script.write_text("import sys\nfrom trainwise.cli import main\nsys.exit(main())\n")
    done = subprocess.run([sys.executable, str(script), "split", "--set", 'data.source="wine"',
                           "--set", f'run.out_dir="{tmp_path / "runs"}"', "--set",
                           "run.threads=1", "--set", "run.devices=2", "--json", "--no-report"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len([line for line in done.stdout.splitlines() if line.startswith("{")]) == 1
