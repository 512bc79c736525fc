"""`--devices N` re-runs the command for ranks 1..N-1 (Fabric's subprocess launcher): a command
that cannot be re-run is refused before any process starts (audit s16 D6: `python -c` gave
"can't open file '-c'" in each child and exit 137)."""

from __future__ import annotations

import sys

import pytest

import __main__
from trainwise.config import RunConfig
from trainwise.distributed import DistributedError, make_fabric


@pytest.fixture
def from_python_c(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)  # not already a child, torchrun or SLURM
    monkeypatch.setattr(__main__, "__spec__", None)
    monkeypatch.setattr(sys, "argv", ["-c", "run", "wine", "--devices", "2"])


def test_devices_2_from_python_c_is_refused_with_the_commands_that_work(from_python_c):
    with pytest.raises(DistributedError) as caught:
        make_fabric(RunConfig(accelerator="cpu", devices=2))
    said = str(caught.value)
    assert "`python -c`" in said and "python -m trainwise.cli run" in said
    assert "--strategy ddp_fork" in said


def test_a_script_file_a_function_launch_or_one_device_is_not_refused(from_python_c,
                                                                       monkeypatch):
    make_fabric(RunConfig(accelerator="cpu", devices=2, strategy="ddp_fork"))  # no re-run
    make_fabric(RunConfig(accelerator="cpu", devices=1))
    monkeypatch.setattr(sys, "argv", [__file__, "--devices", "2"])  # a script re-runs
    make_fabric(RunConfig(accelerator="cpu", devices=2))
