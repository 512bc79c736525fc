"""A date column the split ignores is not described as ordering the split (audit s12 S14)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

import trainwise


def _signups(num_rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, num_rows), "D")
    x = rng.normal(0, 1, num_rows)
    return pd.DataFrame({"signup": days.strftime("%Y-%m-%d"), "x": x,
                         "label": (x + rng.normal(0, 1, num_rows) > 0).astype(int)})


def _treatment(tmp_path, *overrides: str) -> tuple[str, list[str]]:
    result = trainwise.run(data=_signups(), until="data", report=False, overrides=[
        "data.target=\"label\"", "run.threads=1", f"run.out_dir=\"{tmp_path}\"", *overrides])
    meta = json.loads((result.path / "meta.json").read_text())
    table = {row["column"]: row["treatment"] for row in meta["data"]["columns"]}
    return table["signup"], [f.code for f in result.findings]


def test_a_time_key_a_stratified_split_ignores_is_said_unused(tmp_path) -> None:
    treatment, codes = _treatment(tmp_path, "split.strategy=\"stratified\"")
    assert "ignored_time_key" in codes
    assert "orders the parts in time" not in treatment
    assert treatment.startswith("not a feature (looks like a time key: ")
    assert treatment.endswith("and not used by the split (split.strategy = 'stratified'): "
                              "see ignored_time_key")


def test_a_time_key_the_split_uses_still_orders_the_parts(tmp_path) -> None:
    treatment, codes = _treatment(tmp_path)
    assert "inferred_time_key" in codes
    assert treatment.endswith("it orders the parts in time")
