"""A name too long for the file system, or a NUL, is a config error naming the key to change,
never an OSError traceback (audit s16 S11): a 249-character data file name, a 300-character
run.name, a run.out_dir with a 300-byte folder name or a NUL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from trainwise.config import ConfigError
from trainwise.config_sections import MAX_RUN_NAME_BYTES, RunConfig
from trainwise.rundir import RunDir, make_out_dir


def test_a_run_name_past_the_limit_is_refused_with_its_length() -> None:
    assert RunConfig(name="a" * MAX_RUN_NAME_BYTES).name == "a" * MAX_RUN_NAME_BYTES
    with pytest.raises(ValidationError, match="run.name is 202 bytes long"):
        RunConfig(name="é" * 101)  # 2 bytes each in UTF-8
    with pytest.raises(ValidationError, match="run.out_dir holds a NUL byte"):
        RunConfig(out_dir="a\0b")


def test_a_derived_name_is_cut_to_fit_255_bytes(tmp_path) -> None:
    name = "é" * 100 + "d" * 150  # a long data file's stem: 350 bytes, cut on a character
    run = RunDir.create(tmp_path, name)
    folder = run.path.name
    assert len(folder.encode("utf-8")) == len("20260101-120000-") + MAX_RUN_NAME_BYTES <= 255
    assert folder.endswith("-" + "é" * 100)  # 200 bytes: the 'd's did not fit


def test_an_out_dir_too_long_or_with_a_nul_names_run_out_dir(tmp_path) -> None:
    too_long = tmp_path / ("x" * 300)
    with pytest.raises(ConfigError, match=r"over the file system's 255 bytes.*run.out_dir"):
        make_out_dir(too_long, too_long)
    with pytest.raises(ConfigError, match="NUL byte.*set run.out_dir"):
        make_out_dir("a\0b", Path("a\0b"))
