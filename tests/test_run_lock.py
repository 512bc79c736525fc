"""One writer per run folder (audit s15 O4): a --resume of a folder whose run still holds its
lock is refused with exit 1, naming the process, and leaves the folder as it was."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainwise.cli import main
from trainwise.run_lock import hold_lock, lock_holder, release_lock

pytest.importorskip("fcntl")

_HOLD = ("import sys, pathlib; from trainwise.run_lock import hold_lock; "
         "h = hold_lock(pathlib.Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()")


@pytest.fixture
def run_dir(finished_run):
    """conftest's finished run; the refused resume below must leave it as it was."""
    return finished_run[0]


def test_resume_of_a_folder_in_use_is_refused(run_dir, capsys):
    other = subprocess.Popen([sys.executable, "-c", _HOLD, str(run_dir)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        history = (run_dir / "history.jsonl").read_text()
        assert main(["run", "--resume", str(run_dir), "--no-report"]) == 1
        captured = capsys.readouterr()
        said = captured.out + captured.err
        assert f"pid {other.pid}" in said and "in use" in said
        assert (run_dir / "history.jsonl").read_text() == history  # not truncated, not added to
    finally:
        other.communicate("")
    assert lock_holder(run_dir) is None  # the kernel dropped it with the process


def test_a_lock_is_exclusive_and_released_on_close(tmp_path):
    held = hold_lock(tmp_path)
    assert lock_holder(tmp_path).startswith("pid ")
    release_lock(held)
    assert lock_holder(tmp_path) is None
    release_lock(hold_lock(tmp_path))  # free again
