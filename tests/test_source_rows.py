"""Rows named to the user are rows of their file: positions survive rows dropped for a missing
target and data.max_samples' subset, and label_issues.csv carries the identifier columns."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd

import trainwise
from trainwise.data.tables import table_data


def _sales(num_rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sale_id": [f"S{i:04d}" for i in range(num_rows)],
                          "sqft": rng.normal(1500, 300, num_rows),
                          "price": rng.normal(3e5, 3e4, num_rows)})
    frame.loc[[3, 10, 11, 50], "price"] = np.nan  # dropped: every later row moves up
    frame.loc[200, "price"] = 5e7  # the outlier, row 200 of the file
    return frame


def test_target_outliers_name_the_row_of_the_file():
    frame = _sales()
    data = table_data(frame, "price")
    findings, _ = trainwise.audit(data)
    [outliers] = [f for f in findings if f.code == "target_outliers"]
    assert outliers.evidence["rows"] == [200]  # row 196 of what was left
    assert frame.loc[outliers.evidence["rows"][0], "price"] == outliers.evidence["values"][0]
    assert data.row_ids["sale_id"][196] == "S0200"


def test_duplicate_examples_name_the_rows_of_the_file():
    frame = _sales()
    frame.loc[120, ["sqft", "price"]] = frame.loc[20, ["sqft", "price"]].to_numpy()  # a copy:
    frame.loc[120, "sale_id"] = "copy"  # inputs and target; an identifier is not a feature
    findings, _ = trainwise.audit(table_data(frame, "price"))
    [copies] = [f for f in findings if f.code == "duplicate_samples"]
    assert copies.evidence["examples"] == [[20, 120]]  # [17, 116] of what was left


def test_a_subset_keeps_each_rows_source_position():
    data = table_data(_sales(), "price")
    kept = np.array([0, 3, 196, 295])
    data.subset(kept)
    assert data.source(np.arange(4)).tolist() == [0, 4, 200, 299]
    assert data.row_ids["sale_id"].tolist() == ["S0000", "S0004", "S0200", "S0299"]
    whole = table_data(_sales().dropna(), "price")  # nothing dropped: source_rows None ...
    assert whole.source_rows is None
    whole.subset(np.array([5, 7]))  # ... until a subset: then the positions are recorded
    assert whole.source(np.arange(2)).tolist() == [5, 7]


def test_label_issues_csv_names_the_file_row_and_the_id(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (3, 6))
    truth = np.repeat(np.arange(3), 150)
    frame = pd.DataFrame(centres[truth] + rng.normal(0, 1, (450, 6)),
                         columns=[f"m{i}" for i in range(6)])
    labels = np.array(["a", "b", "c"], dtype=object)[truth]
    wrong = rng.choice(450, 25, replace=False)
    labels[wrong] = np.array(["b", "c", "a"], dtype=object)[truth[wrong]]
    frame["diagnosis"] = labels
    frame.loc[rng.choice(450, 30, replace=False), "diagnosis"] = None  # dropped rows
    frame.insert(0, "patient_id", [f"P{i:05d}" for i in range(450)])
    result = trainwise.run(data=frame, report=False, overrides=[
        "data.target=\"diagnosis\"", "data.max_samples=380", "train.max_epochs=6",
        "train.lr=0.01", "run.threads=1", "run.checks=false", "split.group_column=\"none\"",
        f"run.out_dir=\"{tmp_path}\""])
    with open(result.path / "label_issues.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) >= {"source_row_0based", "patient_id"}
    for row in rows:  # the row of the frame passed in: its id and label are the CSV's
        source = frame.iloc[int(row["source_row_0based"])]
        assert source["patient_id"] == row["patient_id"]
        assert source["diagnosis"] == row["given"]
    flagged = {int(r["source_row_0based"]) for r in rows}
    assert len(flagged & set(wrong.tolist())) >= 0.6 * len(flagged)
