"""missing_values: each column's missing share, advice for mostly-empty columns, text columns
counted (audit s12 K8, K9); counts checked against pandas' isna()."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.audit import audit
from trainwise.data.missing import missing_warning
from trainwise.data.tables import table_data


def frame(num_rows: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mostly = rng.normal(size=num_rows)
    mostly[rng.random(num_rows) < 0.95] = np.nan  # as the audit's integrity.csv 'miss95'
    few = rng.normal(size=num_rows)
    few[:10] = np.nan
    color = rng.choice(["red", "blue"], num_rows).astype(object)
    color[rng.random(num_rows) < 0.42] = None  # textnull.csv: a text column 42% empty
    return pd.DataFrame({"miss95": mostly, "few": few, "color": color,
                         "label": rng.integers(0, 2, num_rows)})


def missing_finding(findings):
    [found] = [f for f in findings if f.code == "missing_values"]
    return found


def test_shares_per_column_and_drop_advice_for_a_mostly_empty_one():
    table = frame()
    found = missing_finding(audit(table, target="label")[0])
    reference = table.drop(columns="label").isna().sum()
    assert found.evidence["top_features"] == {k: int(v) for k, v in
                                              reference.sort_values(ascending=False).items()}
    assert found.evidence["shares"]["miss95"] == round(reference["miss95"] / 1000, 4)
    assert found.evidence["shares"]["few"] == 0.01
    assert found.evidence["mostly_missing"] == ["miss95"]
    assert f"miss95={reference['miss95']} ({reference['miss95'] / 1000:.1%})" in found.message
    assert "data.drop_columns=[\"miss95\"]" in found.fix and "missing indicator" in found.fix


def test_text_columns_missing_cells_are_counted_also_after_subset():
    table = frame().drop(columns=["miss95", "few"])
    found = missing_finding(audit(table, target="label")[0])
    assert found.evidence["top_features"] == {"color": int(table["color"].isna().sum())}
    assert found.evidence["text_features"] == ["color"] and "one-hot level" in found.fix
    assert found.evidence["mostly_missing"] == []
    data = table_data(table, "label")
    rows = np.arange(0, 1000, 3)
    data.subset(rows)
    found = missing_finding(audit(data)[0])
    assert found.evidence["top_features"] == {"color": int(table["color"].iloc[rows].isna().sum())}


def test_arrays_get_numpy_advice_naming_the_column_index_and_the_indicator_once():
    """data.drop_columns does nothing for arrays and they have no file: the advice was both
    (review VD12), and named the indicator twice."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)).astype(np.float32)
    x[rng.random(500) < 0.7, 2] = np.nan  # review's miss_vec.py
    x[:3, 0] = np.nan
    found = missing_finding(audit((x, rng.integers(0, 2, 500)))[0])
    assert found.evidence["mostly_missing"] == ["x2"]
    assert "drop_columns" not in found.fix and "file" not in found.fix
    assert "x = np.delete(x, 2, axis=1)" in found.fix
    assert "x[:, 2] = ~np.isfinite(x[:, 2])" in found.fix
    assert found.fix.count("indicator") == 1
    table = missing_finding(audit(frame(), target="label")[0])  # a table: by name, once too
    assert table.fix.count("indicator") == 1 and "data.drop_columns" in table.fix
    x[:, 3] = np.nan  # a column with no value at all: an error, with the numpy route too
    [error] = [f for f in audit((x, rng.integers(0, 2, 500)))[0]
               if f.code == "missing_values"]
    assert error.severity.value == "error" and error.evidence["empty_features"] == ["x3"]
    assert "np.delete(x, [3], axis=1)" in error.fix and "separator" not in error.fix


def test_more_empty_array_columns_than_are_listed_are_all_dropped_by_the_fix():
    """review s12 F5: 12 empty columns got np.delete of the first 10, leaving x10 and x11 empty
    (the run failed again), and the message did not say there were more."""
    x = np.random.default_rng(0).normal(size=(100, 15))
    x[:, 1:13] = np.nan
    x[:5, 14] = np.inf  # a column with a few infinite cells is kept
    counts = {f"x{i}": 100 for i in range(1, 13)} | {"x14": 5}
    found = missing_warning(counts, 100, positions={f"x{i}": i for i in range(15)})
    assert found.severity.value == "error" and "x10 and 2 more." in found.message
    command = found.fix.split("x = ", 1)[1].split(") or", 1)[0]
    kept = eval(command, {"np": np, "x": x})  # the command as the user would run it
    assert kept.shape == (100, 3) and np.isfinite(kept).any(axis=0).all()
    x[:, 1:13] = np.where(np.arange(100)[:, None] < 60, np.inf, 1.0)  # 60% infinite: mostly
    found = missing_warning({f"x{i}": 60 for i in range(1, 13)}, 100,
                            positions={f"x{i}": i for i in range(15)})
    where = found.fix.split("np.delete(x, ", 1)[1].split(", axis=1)", 1)[0]
    assert "and 9 more" in found.fix
    assert np.delete(x, eval(where, {"np": np, "x": x}), axis=1).shape == (100, 3)
