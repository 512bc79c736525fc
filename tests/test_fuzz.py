"""Fuzzing the config loader and the table loader: any input gives a valid result or one of
our own errors (a TrainwiseError with a message), never a crash from inside a library.

FUZZ_EXAMPLES (environment) sets the examples per test; bench/scale_out.py runs thousands.
"""

import os
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainwise.config import Config, from_dict, load_config, valid_keys
from trainwise.data.tables import load_table, table_data
from trainwise.data.task import TaskData
from trainwise.findings import TrainwiseError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KEYS = valid_keys()
SECTIONS = sorted({key.split(".")[0] for key in KEYS})

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["auto", "mnist1d", "digits", "onecycle", "ddp", "fsdp",
                                     "1e-3", "-1", "0", "true", "2024-06-01", "30D"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
key_names = st.one_of(st.sampled_from([key.split(".")[1] for key in KEYS]), st.text(max_size=8))
sections = st.dictionaries(key_names, values, max_size=4)
raw_configs = st.dictionaries(st.one_of(st.sampled_from(SECTIONS), st.text(max_size=6)),
                              st.one_of(sections, values), max_size=4)
overrides = st.lists(st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS),
              st.one_of(st.text(max_size=10), st.integers().map(str),
                        st.floats().map(str), st.just("[1, 2]"), st.just('"x"'))),
    st.text(max_size=20)), max_size=3)


def _is_ours(exc: BaseException) -> bool:
    return isinstance(exc, TrainwiseError) and len(str(exc)) > 10


# Found by these fuzzers and fixed in config.py; kept as regression tests.
def test_override_into_a_section_that_is_not_a_table():
    with pytest.raises(TrainwiseError):
        from_dict({"data": None}, ["data.source=\"x\""])


def test_config_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes("[train]\nlr = 0.1\n".encode("utf-16"))
    with pytest.raises(TrainwiseError):
        load_config(path)


@FUZZ
@given(raw=raw_configs, extra=overrides)
def test_config_from_any_dict_and_overrides(raw, extra):
    try:
        config = from_dict(raw, extra)
    except Exception as exc:  # noqa: BLE001 - the point: only our own errors may escape
        assert _is_ours(exc), f"{type(exc).__name__}: {exc}"
    else:
        assert isinstance(config, Config)


config_files = st.one_of(
    st.text(max_size=200),
    st.builds(lambda sec, key, val: f"[{sec}]\n{key} = {val}\n", st.sampled_from(SECTIONS),
              key_names, st.text(max_size=15)),
    st.binary(max_size=120).map(lambda b: b.decode("latin-1")))


@FUZZ
@given(text=config_files, suffix=st.sampled_from([".toml", ".yaml", ".yml", ".txt", ""]),
       raw_bytes=st.booleans())
def test_config_file_with_any_text(text, suffix, raw_bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"config{suffix}"
        if raw_bytes:  # bytes in another encoding: must be our error, not a decode crash
            path.write_bytes(text.encode("utf-16"))
        else:
            path.write_text(text, encoding="utf-8")
        try:
            config = load_config(path)
        except Exception as exc:  # noqa: BLE001
            assert _is_ours(exc), f"{type(exc).__name__}: {exc}"
        else:
            assert isinstance(config, Config)


cells = st.one_of(st.none(), st.booleans(), st.integers(-5, 5),
                  st.floats(allow_nan=True, allow_infinity=True, width=32),
                  st.sampled_from(["yes", "no", "", "nan", "inf", "2024-01-02", "a,b", '"q"',
                                   "id_1", "1e308", "-0"]),
                  st.text(alphabet=string.printable, max_size=6))
column_names = st.one_of(st.sampled_from(["label", "target", "x", "patient_id", "date", "time",
                                          "group", ""]), st.text(max_size=5))


@st.composite
def frames(draw):
    num_rows = draw(st.integers(0, 12))
    names = draw(st.lists(column_names, min_size=1, max_size=5))
    return pd.DataFrame({f"{name}" if i == 0 else f"{name}{i}": draw(
        st.lists(cells, min_size=num_rows, max_size=num_rows)) for i, name in enumerate(names)})


def _check_table(load):
    try:
        data = load()
    except Exception as exc:  # noqa: BLE001
        assert _is_ours(exc), f"{type(exc).__name__}: {exc}"
    else:
        assert isinstance(data, TaskData) and len(data.x) == len(data.y)
        assert np.asarray(data.x).ndim == 2


@FUZZ
@given(frame=frames(), task=st.sampled_from(["auto", "classification", "regression"]),
       group=st.sampled_from(["", "none", "group", "x1"]),
       time=st.sampled_from(["", "none", "date", "time"]))
def test_table_from_any_csv(frame, task, group, time):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        frame.to_csv(path, index=False)
        target = str(frame.columns[0])
        _check_table(lambda: load_table(path, target, task, group, time))


@FUZZ
@given(text=st.one_of(st.text(max_size=300), st.binary(max_size=200).map(
    lambda b: b.decode("latin-1"))), target=column_names)
def test_table_from_any_text(text, target):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        path.write_text(text, encoding="utf-8")
        _check_table(lambda: load_table(path, target))


@FUZZ
@given(frame=frames(), task=st.sampled_from(["auto", "classification", "regression"]))
def test_table_from_any_dataframe(frame, task):
    _check_table(lambda: table_data(frame, str(frame.columns[0]), task))
