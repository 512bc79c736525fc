"""A full disk mid-run (audit s15 O1): one actionable error naming the file and the resume
command, exit 1, no traceback, no error.log attempt and no *.tmp left holding the space."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from trainwise.cli import main
from trainwise.rundir import RunDir

QUICK = ["train.max_epochs=1", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "data.max_samples=300"]


def test_disk_full_while_saving_a_checkpoint_says_free_space_then_resume(tmp_path, monkeypatch,
                                                                         capsys):
    real_save = torch.save

    def full_disk(obj, handle, *args, **kwargs):
        if hasattr(handle, "write") and str(getattr(handle, "name", "")).endswith(".pt.tmp"):
            handle.write(b"x" * 1000)  # part of the file fits, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    overrides = [x for key in QUICK for x in ("--set", key)]
    code = main(["run", "--set", 'data.source="digits"', "--set", f'run.out_dir="{tmp_path}"',
                 *overrides, "--no-report"])
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    said = "".join(capsys.readouterr().err.split())
    assert code == 1
    assert "".join(f"the disk ran out of space while writing '{run}/checkpoints/".split()) in said
    assert said.endswith("".join(f"continue with: trainwise run --resume {run} --no-report (it "
                                 "goes on from the last checkpoint that was written whole)."
                                 .split()))
    assert not list(run.rglob("*.tmp")) and not (run / "error.log").exists()


def test_a_failed_atomic_write_leaves_no_tmp_file(tmp_path):
    run = RunDir(tmp_path / "run")
    (run.path / "meta.json").mkdir()  # os.replace onto a folder fails, as a full disk would
    with pytest.raises(OSError) as caught:
        run.write_text("meta.json", "{}")
    assert not (run.path / "meta.json.tmp").exists()
    assert caught.value.filename is not None and os.fspath(caught.value.filename)
