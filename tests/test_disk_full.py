"""A full disk mid-run (audit s15 O1): one actionable error naming the file and the resume
command, exit 1, no traceback, no error.log attempt and no *.tmp left holding the space."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from trainwise.cli import main
from trainwise.run_lock import lock_holder
from trainwise.rundir import RunDir

QUICK = ["train.max_epochs=1", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "data.max_samples=300"]


def test_disk_full_while_saving_a_checkpoint_says_free_space_then_resume(tmp_path, monkeypatch,
                                                                         capsys):
    real_save = torch.save

    def full_disk(obj, handle, *args, **kwargs):
        name = str(getattr(handle, "name", ""))  # last.pt.<random>.tmp
        if hasattr(handle, "write") and ".pt." in name and name.endswith(".tmp"):
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
    # the first checkpoint is the one that failed: nothing "written whole" to go on from
    assert said.endswith("".join(f"continue with: trainwise run --resume {run} --no-report."
                                 .split()))
    assert not list(run.rglob("*.tmp")) and not (run / "error.log").exists()


def test_a_failed_atomic_write_leaves_no_tmp_file(tmp_path):
    run = RunDir(tmp_path / "run")
    (run.path / "meta.json").mkdir()  # os.replace onto a folder fails, as a full disk would
    with pytest.raises(OSError) as caught:
        run.write_text("meta.json", "{}")
    assert not list(run.path.glob("*.tmp"))  # the temporary name is random (audit s16 S3)
    assert caught.value.filename is not None and os.fspath(caught.value.filename)


def test_disk_full_at_the_first_write_is_the_same_one_line_error(tmp_path, monkeypatch, capsys):
    """config.toml is written before any stage; a near-full disk fails there first (review
    VO1: it escaped as a raw OSError traceback, and the folder stayed locked)."""
    real_write = RunDir.write_text

    def full_disk(self, name, text):
        if name == "config.toml":
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path / name))
        return real_write(self, name, text)

    monkeypatch.setattr(RunDir, "write_text", full_disk)
    code = main(["run", "--set", 'data.source="digits"', "--set", f'run.out_dir="{tmp_path}"',
                 "--no-report"])
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    said = "".join(capsys.readouterr().err.split())
    assert code == 1
    assert f"the disk ran out of space while writing '{run}/config.toml'".replace(" ", "") in said
    assert said.endswith("".join("then run the same command again (it starts over, every "
                                 f"stage seeded; the folder '{run}' can be deleted).".split()))
    assert lock_holder(run) is None  # released: a retry may use the folder


def test_disk_full_in_a_python_run_with_own_model_says_the_python_call(tmp_path, monkeypatch):
    """run(model=net, until="tune"): `trainwise run --resume` would rebuild the built-in model
    and train to the end (review VO7); the message names the call that goes on."""
    import trainwise
    from trainwise.rundir import RunFolderError

    def full_disk(self, name, text):
        if name == "meta.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path / name))
        return real_write(self, name, text)

    real_write = RunDir.write_text
    monkeypatch.setattr(RunDir, "write_text", full_disk)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(RunFolderError) as caught:
        trainwise.run(overrides=['data.source="digits"', f'run.out_dir="{tmp_path}"', *QUICK],
                      model=net, until="tune", report=False)
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    said = " ".join(str(caught.value).split())
    assert f"continue with: trainwise.run(resume={str(run)!r}, model=net, until='tune', " \
        "report=False), where net is your Sequential" in said
    assert "trainwise run --resume" not in said


def test_disk_full_in_a_command_without_resume_says_to_run_it_again(tmp_path, monkeypatch,
                                                                    capsys):
    """Review s15 VF3: `trainwise audit` (until="data") was told to continue with a Python
    trainwise.run(resume=..., until='data') call "from the last checkpoint", of which there is
    none; like a Ctrl-C there, it says to run the same command again."""
    real_write = RunDir.write_text

    def full_disk(self, name, text):
        if name == "meta.json" and (self.path / "config.toml").is_file():
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path / name))
        return real_write(self, name, text)

    monkeypatch.setattr(RunDir, "write_text", full_disk)
    code = main(["audit", "digits", "--set", f'run.out_dir="{tmp_path}"', "--no-report"])
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    said = "".join(capsys.readouterr().err.split())
    assert code == 1
    assert said.endswith("".join("then run the same command again (it starts over, every "
                                 f"stage seeded; the folder '{run}' can be deleted).".split()))
    assert "trainwise.run(" not in said and "checkpoint" not in said
