"""A CSV target read as its text says, and the rows a target leaves (audit s14 C1, C2, R6,
Z5, Z8, Z16)."""

import numpy as np
import pandas as pd
import pytest

from trainwise.data.errors import DataError
from trainwise.data.tables import load_table


def _write(tmp_path, labels, name="t.csv"):
    """A CSV of one number feature and the target written as raw text (no pandas quoting)."""
    path = tmp_path / name
    rng = np.random.default_rng(0)
    lines = ["x,label"] + [f"{rng.normal():.4f},{label}" for label in labels]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_zero_padded_codes_stay_distinct_classes(tmp_path):
    # '007' and '7' are two classes; '0100' is no class '100' (C1)
    labels = ["0100"] * 30 + ["7"] * 20 + ["007"] * 10
    data = load_table(_write(tmp_path, labels), "label")
    assert data.class_names == ["007", "0100", "7"]
    counts = np.bincount(data.y)
    assert counts.tolist() == [10, 30, 20]
    assert any(f.code == "target_codes" for f in data.findings)


def test_plain_numbers_stay_numbers(tmp_path):
    # integer class codes still read as today; a continuous target still a regression
    data = load_table(_write(tmp_path, [0, 1, 2] * 20), "label")
    assert data.class_names == ["0", "1", "2"]
    data = load_table(_write(tmp_path, [f"{v:.3f}" for v in np.linspace(0, 9, 60)]), "label")
    assert data.task == "regression" and data.y.dtype.kind == "f"
    # a declared regression reads zero-padded numbers as the numbers they are
    data = load_table(_write(tmp_path, ["0100", "007"] * 30), "label", task="regression")
    assert sorted(set(data.y.tolist())) == [7.0, 100.0]


def test_integer_codes_with_a_missing_cell_keep_their_names(tmp_path):
    # an empty cell made pandas read 0/1/2 as floats: the classes were '0.0', '1.0', '2.0'
    data = load_table(_write(tmp_path, [0, 1, 2] * 20 + [""]), "label")
    assert data.class_names == ["0", "1", "2"] and len(data.y) == 60


def test_pandas_na_words_are_classes_or_markers_with_a_warning(tmp_path):
    # 'None' is a class (pandas read it as missing: 95% of rows dropped, C2); 'NA' is a
    # documented marker, dropped with a warning naming it, rows and count
    labels = ["None"] * 40 + ["card theft"] * 15 + ["NA"] * 5
    data = load_table(_write(tmp_path, labels), "label")
    assert data.class_names == ["None", "card theft"] and len(data.y) == 55
    dropped = [f for f in data.findings if f.code == "target_missing"][0]
    assert dropped.severity.value == "warning"
    assert dropped.evidence["values"] == {"NA": 5}
    assert dropped.evidence["rows"] == [55, 56, 57, 58, 59]


@pytest.mark.parametrize("labels, task", [
    ([f"{v:.2f}" for v in np.linspace(1, 9, 58)], "regression"),
    (["0", "1", "2"] * 19 + ["1"], "classification")])
def test_r_na_in_a_number_target_is_one_warning(tmp_path, labels, task):
    # VD4: R's write.csv 'NA' also gave "text in a numeric column ... fix them in the file"
    data = load_table(_write(tmp_path, labels[:3] + ["NA"] + labels[3:] + ["NA"]), "label")
    assert data.task == task and len(data.y) == 58
    [said] = [f for f in data.findings if f.severity.value == "warning"]
    assert said.code == "target_missing" and said.evidence["values"] == {"NA": 2}
    assert said.evidence["rows"] == [3, 59]


def test_missing_numeric_target_is_a_warning_naming_markers(tmp_path):
    # R6: 'n/a' and empty costs: 3 rows dropped, said with their text
    labels = [f"{v:.2f}" for v in np.linspace(100, 900, 57)] + ["n/a", "", "n/a"]
    data = load_table(_write(tmp_path, labels), "label")
    assert data.task == "regression" and len(data.y) == 57
    dropped = [f for f in data.findings if f.code == "target_missing"][0]
    assert dropped.evidence["values"] == {"n/a": 2, "empty": 1}
    assert dropped.evidence["rows"] == [57, 58, 59]


def test_empty_target_and_no_rows_are_refused(tmp_path):
    with pytest.raises(DataError, match="empty in every row \\(60 rows"):
        load_table(_write(tmp_path, [""] * 60), "label")  # Z8: crashed in the audit
    path = tmp_path / "header.csv"
    path.write_text("x,label\n")
    with pytest.raises(DataError, match="its header but 0 rows"):
        load_table(path, "label")  # Z5: was 'a single class []'


def test_a_target_unique_per_row_is_refused(tmp_path):
    # Z16: a date named as the target trained a 120-class model of one row each
    dates = pd.date_range("2020-01-01", periods=120).strftime("%Y-%m-%d")
    with pytest.raises(DataError, match="data.task = \"regression\""):
        load_table(_write(tmp_path, dates), "label")


def test_a_single_class_left_names_the_dropped_rows(tmp_path):
    # 'NA' read as missing left one class: the error says which rows went, and why (C2)
    labels = ["NA"] * 40 + ["card theft"] * 20
    with pytest.raises(DataError, match=r"single class.*dropped 40 of 60 rows .*'NA' x40"):
        load_table(_write(tmp_path, labels), "label")


def test_zero_padded_codes_survive_a_repeated_header(tmp_path):
    # VD1: a header line repeated mid-file made every column text, then the drop read the
    # target back as numbers: '007' and '7' merged again into 2 classes, one of them '100'
    path = _write(tmp_path, ["007", "7", "0100"] * 20)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:31] + ["x,label"] + lines[31:]) + "\n")
    data = load_table(path, "label")
    assert data.class_names == ["007", "0100", "7"]
    codes = {f.code for f in data.findings}
    assert {"repeated_header", "target_codes"} <= codes
