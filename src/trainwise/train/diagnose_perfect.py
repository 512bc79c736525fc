"""A held-out score too good to be true: every validation (or test) row right, or R^2 near 1.

Audit s8 (T1) trained on a table with a copy of the label: validation loss 0, 100% test
accuracy, and the run said "healthy". A perfect held-out score is far more often a leak (a
feature that encodes the target, rows duplicated across the splits) than a solved task, so
it is a warning that asks the user to check, never an error: some data sets are that easy.

Small held-out parts are the catch: the built-in wine set (14 validation rows, 36 test rows)
reaches validation and test loss 0.0 and 100% accuracy in a 20-epoch run with no leak at
all, so neither a near-zero loss nor 100% on a few dozen rows tells a leak from an easy task.
The count of rows decides: 0 errors on n rows bounds the error rate under 3/n (95%, the rule
of three), and under 1.5% from 200 rows on, which few real tasks allow. With a column the
data audit flagged as a target leak, any perfect score is enough: the cause is already known.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from trainwise.findings import Finding, Severity
from trainwise.train.class_counts import class_counts_of
from trainwise.train.diagnose_common import STAGE, Row, best_epoch, num, plan_of

MIN_PERFECT_ROWS = 200  # see above: 0 errors on 200 rows -> error rate < 1.5% (95%); wine
# (14 + 36 held-out rows) and breast_cancer (46 + 114) stay below it, digits and MNIST-1D
# baselines are never perfect (97-98%, 70-95%)
MIN_PERFECT_R2 = 0.999  # residuals hold 0.1% of the target's variance: a copy of it, or a
# target computed without noise from the features
MAX_SHOWN = 3  # leak columns named in the message


def perfect_score(row: Row, prefix: str) -> str | None:
    """'accuracy 100.0%' or 'R^2 0.9995' when `row`'s `prefix` part ("val", "test") is
    perfect; None otherwise (or when the row has no such score)."""
    for key in ("accuracy", "balanced_accuracy"):
        value = row.get(f"{prefix}_{key}")
        if isinstance(value, (int, float)) and value >= 1.0:
            return f"{key.replace('_', ' ')} {value:.1%}"
    r2 = row.get(f"{prefix}_r2")
    if isinstance(r2, (int, float)) and r2 >= MIN_PERFECT_R2:
        return f"R^2 {r2:.4f}"
    return None


def suspicious(score: str | None, rows: int | None, leak_columns: tuple[str, ...]) -> bool:
    """Whether a perfect `score` on `rows` held-out rows deserves the warning (see above).
    An R^2 needs no count: a near-exact fit of a noisy target does not happen by chance."""
    if score is None:
        return False
    if leak_columns or score.startswith("R^2"):
        return True
    return rows is not None and rows >= MIN_PERFECT_ROWS


def too_good(stage: str, what: str, leak_columns: tuple[str, ...], step: Any = None,
             **evidence: Any) -> Finding:
    """The too_good warning: `what` says which score (e.g. "validation accuracy 100.0% on
    240 rows at epoch 3"); the data audit's target_leak columns, if any, are named."""
    if leak_columns:
        shown = ", ".join(f"'{c}'" for c in leak_columns[:MAX_SHOWN])
        more = f" (and {len(leak_columns) - MAX_SHOWN} more)" if len(leak_columns) > MAX_SHOWN \
            else ""
        cause = (f"The data audit flagged {shown}{more} as a target leak (target_leak): the "
                 "likely reason.")
        drop = f"drop {shown}{more} unless it is truly known when a prediction is made, and "
    else:
        cause = ("Usual causes: a feature that encodes the target (a copy or recoding of the "
                 "label, a value recorded after the outcome), rows duplicated across the "
                 "splits, or a task that is truly this easy.")
        drop = "drop any feature that gives the answer away, and "
    message = (f"{what[0].upper()}{what[1:]}: too good to trust without a check. {cause} "
               "A leaked score does not hold where the leak is absent.")
    fix = (f"Check the data before believing the score: run `trainwise audit` on it (data "
           f"stage), {drop}rerun from the data stage; look for rows shared across training, "
           "validation and test (split stage). If the task is genuinely this easy, nothing "
           "to do.")
    return Finding(stage, Severity.WARNING, "too_good", message, {
        "leak_columns": list(leak_columns), "min_perfect_rows": MIN_PERFECT_ROWS, **evidence},
        fix, None if step is None else int(step))


def rule_too_good(history: list[Row]) -> list[Finding]:
    """Warning when the best epoch's validation score is perfect on enough rows (or a
    target_leak column is known): it replaces "healthy", which would vouch for a leak."""
    best = best_epoch(history)
    if best is None:
        return []
    plan = plan_of(history)
    leaks = tuple(plan.leak_columns)
    score = perfect_score(best, "val")
    # a Monitor run has no recipe plan: its epoch rows' class counts hold the row count
    counts = class_counts_of(best)
    val_rows = plan.val_rows if plan.val_rows is not None or counts is None else sum(counts[0])
    if not suspicious(score, val_rows, leaks):
        return []
    rows = "" if val_rows is None else f" on {val_rows} rows"
    epoch = best.get("epoch")
    return [too_good(STAGE, f"validation {score}{rows} (loss {best['val_loss']:.4g}) at "
                     f"epoch {epoch}", leaks, best.get("step"), epoch=epoch,
                     val_rows=val_rows, best_val_loss=num(best["val_loss"]))]


def held_out_too_good(row: Row, test_rows: int, history: list[Row], val_rows: int | None,
                      leak_columns: tuple[str, ...]) -> list[Finding]:
    """Warning (evaluate stage) when the test `row`'s score is perfect. The rows counted are
    the test part's, plus validation's when the best epoch was perfect there too: together
    they are the held-out evidence (wine: 14 + 36, still too few to call a leak)."""
    score = perfect_score(row, "test")
    best = best_epoch(history)
    both = best is not None and perfect_score(best, "val") is not None
    rows = test_rows + ((val_rows or 0) if both else 0)
    if not suspicious(score, rows, leak_columns):
        return []
    return [too_good("evaluate", f"test {score} on {test_rows} rows", leak_columns,
                     held_out_perfect_rows=rows, test_rows=test_rows)]


def linear_too_good(row: Row, test_rows: int, leak_columns: tuple[str, ...],
                    line_level: bool) -> list[Finding]:
    """too_good from the linear reference (`row`'s test_linear_* scores), for the evaluate
    stage to put in place of below_linear_reference's "keep the linear model" (audit s13
    F3: a ridge line at RMSE 6.4e-6, R^2 1, on 1,740 test rows was advised for keeping; its
    score was the copy of the target the data audit had flagged). It fires when the line's
    score is perfect (as held_out_too_good judges the network's), or, with target_leak
    columns, when the line is level with or ahead of the network (`line_level`): the
    line's lead is then the leak's. Empty otherwise."""
    line = {"test_accuracy": row.get("test_linear_accuracy"),
            "test_r2": row.get("test_linear_r2")}
    score = perfect_score(line, "test")
    perfect = suspicious(score, test_rows, leak_columns)
    if not (perfect or (leak_columns and line_level)):
        return []
    what = (f"a linear model's test {score} on {test_rows} rows" if perfect else
            f"a linear model level with or ahead of the network on {test_rows} test rows")
    found = too_good("evaluate", what, leak_columns, linear_test_score=score,
                     test_rows=test_rows)
    return [replace(found, message=f"{found.message} Do not keep the linear model (the run "
                    "folder's linear_reference.npz): its score is the leak's too.")]
