"""trainwise.predict reads a run's number columns with the run's own number reader (review
s12 VA1): a '$1,234.50' column and a decimal-comma file, which the run read as numbers, are
read as numbers in new rows too, not refused as text."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import trainwise
from trainwise.data.errors import DataError

QUICK = ["train.max_epochs=2", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "train.batch_size=32", "split.group_column=\"none\"", "split.time_column=\"none\""]


def _run_on(path, tmp_path):
    result = trainwise.run(report=False, overrides=[
        *QUICK, f"data.source=\"{path}\"", "data.target=\"y\"",
        f"run.out_dir=\"{tmp_path / 'runs'}\""])
    assert result.ok, result.verdict
    with np.load(result.path / "split.npz") as saved:
        return result, saved["test"]


def _predict(run_dir, rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trainwise.predict(run_dir, rows)


def _labels(num_rows: int, rng) -> tuple[np.ndarray, np.ndarray]:
    a = rng.normal(0, 1, num_rows)
    return a, (a + rng.normal(0, 0.5, num_rows) > 0).astype(int)


def test_a_currency_column_is_read_as_the_run_read_it(tmp_path):
    rng = np.random.default_rng(0)
    a, y = _labels(240, rng)
    price = [f"${v:,.2f}" for v in 1500 + 300 * a]  # '$1,183.47': the run reads numbers
    path = tmp_path / "price.csv"
    pd.DataFrame({"price": price, "b": rng.normal(0, 1, 240).round(3), "y": y}).to_csv(
        path, index=False)
    result, test = _run_on(path, tmp_path)
    rows = pd.read_csv(path).iloc[test]
    assert not pd.api.types.is_numeric_dtype(rows["price"])  # the text, as the file has it
    predicted = _predict(result.path, rows.drop(columns="y"))
    accuracy = float((predicted["prediction"].to_numpy() == rows["y"].to_numpy()).mean())
    assert accuracy == result.test["test_accuracy"]
    assert "num_imputed" not in predicted  # every price read, none filled
    from_file = _predict(result.path, path)  # the CLI's way: the file itself
    assert len(from_file) == 240


def test_a_decimal_comma_file_with_markers_is_read_with_the_runs_comma(tmp_path):
    rng = np.random.default_rng(1)
    a, y = _labels(240, rng)
    cells = np.array([f"{v:.3f}".replace(".", ",") for v in a], dtype=object)
    cells[::25] = "?"  # a marker keeps the column text, so pandas cannot read '0,822' alone
    path = tmp_path / "dc.csv"
    pd.DataFrame({"a": cells, "b": [f"{v:.3f}".replace(".", ",") for v in rng.normal(0, 1, 240)],
                  "y": y}).to_csv(path, sep=";", index=False)
    result, test = _run_on(path, tmp_path)
    rows = pd.read_csv(path, sep=";", dtype=str).iloc[test]
    predicted = _predict(result.path, rows.drop(columns="y"))
    accuracy = float((predicted["prediction"].to_numpy() == rows["y"].astype(int).to_numpy())
                     .mean())
    assert accuracy == result.test["test_accuracy"]
    assert predicted["num_imputed"].sum() == (rows["a"] == "?").sum()


def test_text_with_digits_is_refused_without_the_na_values_advice(tmp_path):
    rng = np.random.default_rng(0)
    a, y = _labels(240, rng)
    path = tmp_path / "price.csv"
    pd.DataFrame({"price": [f"${v:,.2f}" for v in 1500 + 300 * a], "y": y}).to_csv(
        path, index=False)
    result, _ = _run_on(path, tmp_path)
    rows = pd.DataFrame({"price": ["$1,200.00", "12 dollars", "n/r"]})
    with pytest.raises(DataError, match="row 1 holds '12 dollars'") as caught:
        _predict(result.path, rows)
    assert "na_values" not in str(caught.value)
    with pytest.raises(DataError, match="row 0 holds 'n/r'.*na_values"):
        _predict(result.path, rows.iloc[[2]])
