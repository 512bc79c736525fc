"""What the key plan (keys.plan_keys) means for the reader: identifier columns dropped from
the features, increasing record numbers kept (and whether one alone gives the target away),
a column that looks like a time while no time column is set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainwise.data.keys import KeyPlan
from trainwise.data.label_leak import find_leaks, table_columns
from trainwise.data.table_features import info_with_fix
from trainwise.data.task import TaskData
from trainwise.findings import Finding, warning


def ordered_id_leaks(ordered_ids: pd.DataFrame, data: TaskData, target: str,
                     order: np.ndarray) -> dict[str, str]:
    """"predicts 'label' with balanced accuracy 0.998: the file is sorted by 'label'" per
    ordered id that alone gives the target away (find_leaks), as a record number does in a
    file sorted by the target."""
    if ordered_ids.empty:
        return {}
    metric = "balanced accuracy" if data.task == "classification" else "R^2"
    leaks = find_leaks(table_columns(ordered_ids), data.y, data.task, order)
    return {leak.column: f"predicts {target} with {metric} {leak.score:.3f}: the file is "
            f"sorted by {target}" for leak in leaks if not leak.shift}


def row_id_findings(plan: KeyPlan, predicts: dict[str, str] | None = None) -> list[Finding]:
    """Say which identifier columns were dropped from the features and why; warn about
    increasing record numbers that stay (they could be times, so they are not dropped).
    `predicts`: per ordered id, 'predicts 'label' with ...' when it alone gives the label away
    (ordered_id_leaks): said here, once, not again as a target_leak."""
    predicts = predicts or {}
    findings = []
    for column in plan.row_ids:
        reason = plan.reasons.get(column, "unique per row")
        artifact = "identifier" not in reason  # a saved index or a row count: an export slip
        message = f"column '{column}' is not used as a feature: {reason}."
        fix = ("Nothing to do for this run; to leave it out of the file, write the file with "
               "df.to_csv(path, index=False)." if artifact else
               "Nothing to do if it identifies rows. If it is a measurement, rename the column "
               "in the file so that no word of it is 'id' and it does not end in 'no' or "
               "'number' (e.g. 'account_number' -> 'account_count'), then rerun.")
        # a warning either way: a dropped column is a feature the model never sees
        findings.append(warning("data", "row_id_dropped", message, fix, column=column,
                                reason=reason))
    for column in plan.ordered_ids:
        like = f"a time ({plan.periods[column]}) or a record number" \
            if column in plan.periods else "a record number"
        sorted_by = "" if column not in predicts else (
            f" It alone {predicts[column]}, so this column gives the answer away.")
        findings.append(warning(
            "data", "ordered_id_column",
            f"column '{column}' holds integers unique per row and increasing down the file, "
            f"like {like}: it stays a feature, but if the file is sorted (by label, by "
            f"time) it hands the model that order, and the test score would be inflated."
            f"{sorted_by}",
            f"If it is a time, declare it: --set 'split.time_column=\"{column}\"' (the split "
            "then validates on later rows); if it is a record number, delete the column from "
            "the file" + (" (df.drop(columns=[...]).to_csv(path, index=False)) and rerun from "
                          "the data stage." if sorted_by else "."),
            column=column, **({"predicts": predicts[column]} if sorted_by else {})))
    findings += [period_finding(column, why, plan) for column, why in plan.periods.items()
                 if column not in plan.ordered_ids]
    return findings


def period_finding(column: str, why: str, plan: KeyPlan) -> Finding:
    """A feature that looks like the time of a row while no time key is set: the split is then
    random, validating on periods between training ones. Suggested, not taken: a 'year' is as
    often a property of the row (built in 1990). A warning when each period has one row (a
    yearly series), else a note (a panel, or the property)."""
    split = "by group" if any(k.role == "group" for k in plan.keys) else "at random"
    message = (f"column '{column}' looks like a time ({why}), but no time column is set, so "
               f"rows are split {split}: validation and test hold periods between training "
               "ones, which scores a forecast too well.")
    fix = (f"If the rows were observed over time and the model must predict later periods, "
           f"declare --set 'split.time_column=\"{column}\"' and rerun from the split stage; "
           "if it describes the row (a construction year), nothing to do.")
    if column in plan.series_periods:
        return warning("data", "possible_time_key", message, fix, column=column)
    return info_with_fix("data", "possible_time_key", message, fix, column=column)

