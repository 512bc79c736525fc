"""Regression results beside what a model must beat: the training mean, and for a split by
time the previous value (a naive one-step forecast); R^2; test targets outside the training
range.

The regression counterpart of class_metrics.class_results. An RMSE has no scale of its own:
audit s8 (T2) met a test RMSE of 1.79 reported as healthy on a trending monthly series whose
test rows had a standard deviation of 1.25 (R^2 = -1.05, worse than a constant) and whose
previous value scored RMSE 0.52; most test targets lay above the training maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainwise.amounts import amount
from trainwise.findings import Finding, Severity, warning

# The model must explain this share of the test rows' variance to count as having learned
# something: R^2 below it is within what a constant answer plus noise scores.
R2_MARGIN = 0.05
# A test target "well outside" the training range lies beyond it by more than this share of
# that range; a random split of a few hundred rows puts almost none there.
EXTRAPOLATION_MARGIN = 0.1
EXTRAPOLATION_SHARE = 0.05  # warn from this share of the test rows


# One name per baseline (DESIGN §8): the warning, the test_result line, the report's test
# table and its headline all name test_<key>_rmse / test_<key>_mae with these words.
BASELINES = {"mean": "predicting the training mean",
             "previous": "repeating the previous value",  # in time, in the same series
             "linear": "a linear model (ridge regression on the training split)"}
# (the linear one is fitted and judged in linear_reference.py, for tables and vectors)


@dataclass(frozen=True)
class Baseline:
    """A rule that needs no training, scored on the test rows (in the target's units)."""

    key: str  # a key of BASELINES: test_<key>_rmse, test_<key>_mae in the test row
    rmse: float
    mae: float

    @property
    def label(self) -> str:
        return BASELINES[self.key]


def score_baseline(key: str, predictions: np.ndarray, targets: np.ndarray,
                   scale: float = 1.0) -> Baseline:
    """RMSE and MAE of `predictions`, times `scale` (targets standardised for training)."""
    error = np.asarray(predictions, dtype=np.float64) - np.asarray(targets, dtype=np.float64)
    return Baseline(key, float(np.sqrt(np.mean(error ** 2)) * scale),
                    float(np.mean(np.abs(error)) * scale))


def previous_values(times: np.ndarray, y: np.ndarray, rows: np.ndarray,
                    series: np.ndarray | None = None) -> np.ndarray | None:
    """For each of `rows` (indices into times / y), the target of the row just before it in
    time in the same series: the naive forecast. None when one of them has no earlier row or
    shares its time with another row of its series (then "the previous value" is not one
    value)."""
    codes = np.zeros(len(y), dtype=np.int64) if series is None else \
        np.unique(np.asarray(series), return_inverse=True)[1].reshape(-1)
    order = np.lexsort((np.asarray(times), codes))  # by series, then by time
    sorted_times, sorted_codes = np.asarray(times)[order], codes[order]
    same_series = sorted_codes[1:] == sorted_codes[:-1]
    if np.any(same_series & (sorted_times[1:] == sorted_times[:-1])):
        return None
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    at = position[np.asarray(rows, dtype=np.int64)]
    if np.any(at == 0) or not np.all(same_series[np.maximum(at - 1, 0)]):
        return None
    return np.asarray(y, dtype=np.float64)[order[at - 1]]


def shared_times(times: np.ndarray, series: np.ndarray | None = None) -> tuple[int, int]:
    """(rows that share their time with another row of their series, the most rows at one
    time in one series); (0, 1) when each series' times are distinct, as previous_values
    needs."""
    codes = np.zeros(len(times), dtype=np.int64) if series is None else \
        np.unique(np.asarray(series), return_inverse=True)[1].reshape(-1)
    when = np.unique(np.asarray(times), return_inverse=True)[1].reshape(-1)
    counts = np.unique(np.stack([codes, when]), axis=1, return_counts=True)[1]
    return int(counts[counts > 1].sum()), int(counts.max(initial=1))


def level_codes(x: np.ndarray, feature_names: list[str],
                one_hot: list[tuple[str, str, str, str]]) -> dict[str, np.ndarray]:
    """Each one-hot text column's level per row (its 0/1 features' argmax; -1 where none is
    set), from TaskData.one_hot's (feature, column, level, role): the candidates for a
    series key."""
    where = {name: i for i, name in enumerate(feature_names)}
    by_column: dict[str, list[int]] = {}
    for feature, column, _, _ in one_hot:
        if feature in where:
            by_column.setdefault(column, []).append(where[feature])
    codes = {}
    for column, features in by_column.items():
        block = np.asarray(x[:, features]) > 0.5  # (N, levels) of 0/1
        codes[column] = np.where(block.any(axis=1), block.argmax(axis=1), -1)
    return codes


def no_previous_value(times: np.ndarray, series: np.ndarray | None,
                      columns: dict[str, np.ndarray]) -> Finding | None:
    """A note when previous_values has no one previous value because rows share a time in a
    series (audit s13 F9: 12 stores x 728 days with no split.group_column made one series of
    12 rows a day, and the naive forecast vanished without a word); it names the text
    `columns` (level_codes) whose levels each have one row per time: the likely series key.
    None when each series' times are distinct (the cause was another)."""
    shared, most = shared_times(times, series)
    if not shared:
        return None
    keys = [name for name, codes in columns.items()
            if len(np.unique(codes)) > 1 and shared_times(times, codes)[0] == 0]
    fits = ", ".join(f"'{k}'" for k in keys)
    named = "the column that names each series" + (
        f" ({fits} fit{'s' if len(keys) == 1 else ''}: each level has one row per time)"
        if keys else "")
    message = (f"No previous-value baseline (each series' last value, the naive forecast): "
               f"{shared:,} rows share their time with another row of their series, up to "
               f"{most} at one time, so a row's previous value is not one value. "
               + ("No series key is set (split.group_column)." if series is None else
                  "The series key (split.group_column) does not tell them apart."))
    fix = (f"Set split.group_column to {named} and keep the split by time: --set "
           f"'split.group_column=\"{keys[0] if keys else 'COLUMN'}\"' --set "
           "'split.strategy=\"time\"'; the evaluate stage then scores the model against "
           "each series' previous value.")
    return Finding("evaluate", Severity.INFO, "no_previous_value", message,
                   {"rows_sharing_a_time": shared, "most_rows_at_one_time": most,
                    "series_key_candidates": keys}, fix)


def regression_results(row: dict[str, Any], train_targets: np.ndarray,
                       test_targets: np.ndarray, scale: float = 1.0,
                       previous: np.ndarray | None = None) -> tuple[dict[str, Any], list[Finding]]:
    """The test row's extra keys (the baselines' RMSE and MAE) and the warnings: a model not
    clearly better than a constant, or than the previous value; test targets outside the
    training range. `train_targets`, `test_targets` and `previous` are in the units the model
    was trained in; `scale` turns them into the target's own (row's RMSE and MAE already are)."""
    train = np.asarray(train_targets, dtype=np.float64).reshape(-1)
    test = np.asarray(test_targets, dtype=np.float64).reshape(-1)
    if not len(train) or not len(test):
        return {}, []
    baselines = [score_baseline("mean", np.full_like(test, train.mean()), test, scale)]
    if previous is not None:
        baselines.append(score_baseline("previous", previous, test, scale))
    extra: dict[str, Any] = {}
    for baseline in baselines:
        extra[f"test_{baseline.key}_rmse"] = baseline.rmse
        extra[f"test_{baseline.key}_mae"] = baseline.mae
    outside = extrapolation(train, test)
    findings = [outside] if outside else []
    found = baseline_finding(row, baselines, outside is not None, float(test.std() * scale))
    return extra, ([found] if found else []) + findings


def baselines_text(row: dict[str, Any]) -> str:
    """'predicting the training mean: RMSE 3.2, MAE 2.9; ...' from a test row's keys."""
    return "; ".join(f"{name}: RMSE {amount(row[f'test_{key}_rmse'])}, MAE "
                     f"{amount(row[f'test_{key}_mae'])}" for key, name in BASELINES.items()
                     if f"test_{key}_rmse" in row)


def baseline_finding(row: dict[str, Any], baselines: list[Baseline], extrapolating: bool,
                     test_std: float) -> Finding | None:
    """A warning when R^2 is not clearly above 0 (no better than a constant), or the model's
    RMSE is no lower than a baseline's. `test_std`: the test targets' standard deviation,
    the RMSE of a constant at their own mean (R^2 = 0)."""
    r2, rmse = row.get("test_r2", float("nan")), row["test_rmse"]
    beaten = [b for b in baselines if b.rmse <= rmse]
    if not (r2 <= R2_MARGIN or beaten):  # NaN R^2 (constant targets): judged by baselines
        return None
    said = (f"Test RMSE {amount(rmse)} (MAE {amount(row['test_mae'])}), {r2_text(r2)}: "
            + "; ".join(f"{b.label} scores RMSE {amount(b.rmse)} (MAE {amount(b.mae)})"
                        for b in baselines))
    if r2 < 0:
        said += (". The model's errors are larger than the test targets' spread around their "
                 f"own mean (standard deviation {amount(test_std)}): a constant at that mean would "
                 "score better")
    elif r2 <= R2_MARGIN:
        said += (f". The model explains under {R2_MARGIN:.0%} of the test targets' spread "
                 f"(standard deviation {amount(test_std)}): barely better than a constant")
    if beaten:
        names = " and ".join(b.label for b in beaten)
        verb = "does" if len(beaten) == 1 else "do"
        said += f". {names[0].upper()}{names[1:]} {verb} at least as well as the model"
    evidence = {"test_r2": round(r2, 6) if math.isfinite(r2) else None,  # JSON has no NaN
                "test_std": round(test_std, 6),
                **{f"{b.key}_rmse": round(b.rmse, 6) for b in baselines}}
    return warning("evaluate", "below_regression_baseline", said + ".",
                   _fix(extrapolating, any(b.key == "previous" for b in beaten)), **evidence)


def r2_text(r2: float) -> str:
    """'R^2 0.87', or what a NaN R^2 means: the test targets are all equal."""
    if math.isfinite(r2):
        return f"R^2 {r2:.3g}"
    return "R^2 undefined (the test targets are all equal)"


def _fix(extrapolating: bool, previous_wins: bool) -> str:
    if extrapolating:
        first = ("First read the extrapolation warning: the test targets lie outside the "
                 "training range, where a network's predictions stay near what it saw. ")
    elif previous_wins:
        first = ("The series moves by small steps from its last value: train on the change "
                 "from the previous value (the target minus its lag) instead of its level, "
                 "and give the model the recent values as features (data stage). ")
    else:
        first = ""
    return first + ("Then read" if first else "Read") + (
        " the train stage's findings (a learning rate too low, a plateau, overfitting) and "
        "check the learning rate and train.max_epochs; if training looks healthy, check that "
        "the features carry signal for the target (data stage).")


def extrapolation(train: np.ndarray, test: np.ndarray) -> Finding | None:
    """A warning when many test targets lie well outside the training targets' range: the
    model is asked for values it never saw (typical of a trending series split by time)."""
    low, high = float(train.min()), float(train.max())
    margin = EXTRAPOLATION_MARGIN * (high - low)
    far = (test < low - margin) | (test > high + margin)
    share = float(far.mean())
    if not far.any() or share < EXTRAPOLATION_SHARE:
        return None
    above, below = int((test > high + margin).sum()), int((test < low - margin).sum())
    where = " and ".join(part for part in (f"{above} above" if above else "",
                                           f"{below} below" if below else "") if part)
    spread = (high - low) or 1.0
    beyond = float(max(test.max() - high, low - test.min()) / spread)
    return warning(
        "evaluate", "test_targets_outside_training_range",
        f"{int(far.sum())} of {len(test)} test targets ({share:.0%}; {where}) lie more than "
        f"{EXTRAPOLATION_MARGIN:.0%} of the training targets' range outside it, the farthest "
        f"by {beyond:.2f} times that range: the model is scored on values it never saw, and "
        "a network extrapolates poorly.",
        "If the target trends over time, train on its change (the target minus its previous "
        "value) or remove the trend before training, and add it back to the predictions "
        "(data stage). If the test part should resemble training, revisit the split stage "
        "(split.strategy, split.cut) so that training covers the test period's range.",
        num_outside=int(far.sum()), share_outside=round(share, 4), num_above=above,
        num_below=below, farthest_by_ranges=round(beyond, 4))
