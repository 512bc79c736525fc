"""The test split's scores as the report's table and the verdict's sentence: each number
beside what it is read against (the majority class, the linear model, its interval)."""

from __future__ import annotations

from typing import Any

from trainwise.amounts import amount
from trainwise.reporting.formats import fmt_number
from trainwise.train.decision_threshold import AT_THRESHOLD_KEYS
from trainwise.train.group_interval import NUM_RESAMPLES as GROUP_RESAMPLES
from trainwise.train.intervals import (
    GROUP_COLUMN,
    GROUPS,
    AccuracyInterval,
    balanced_accuracy_interval,
    grouped_rows_caveat,
    percent,
    split_accuracy_interval,
)
from trainwise.train.linear_reference import LOGISTIC_REFERENCE
from trainwise.train.regression_intervals import (
    INTERVAL_KEYS,
    LINEAR_DIFFERENCE,
    LINEAR_DIFFERENCE_INTERVAL,
    NUM_RESAMPLES,
)
from trainwise.train.regression_metrics import BASELINES
from trainwise.train.regression_predictions import QUARTER_KEY, SUM_RATIO, SUM_RATIO_INTERVAL

Row = dict[str, Any]

# read together: accuracy means little until set beside always answering the majority class,
# an RMSE until set beside R^2 and what a constant (or the previous value) scores
_TEST_ORDER = ("test_accuracy", "test_baseline_accuracy", "test_baseline_class",
               "test_linear_accuracy", "test_balanced_accuracy",
               "test_linear_balanced_accuracy", "test_macro_f1", "test_roc_auc",
               "test_auc_classes_left_out", "test_average_precision",
               "test_ap_chance", "test_positive_class", *AT_THRESHOLD_KEYS, "test_rmse",
               "test_mae", "test_r2",
               "test_mean_rmse", "test_mean_mae", "test_previous_rmse", "test_previous_mae",
               "test_linear_rmse", "test_linear_mae", LINEAR_DIFFERENCE, SUM_RATIO, GROUPS,
               GROUP_COLUMN)
# the linear reference (train/linear_reference.py), named as the test_result line names it
_LINEAR_LABELS = {
    "test_linear_accuracy": f"accuracy of {LOGISTIC_REFERENCE}",
    "test_linear_balanced_accuracy": "balanced accuracy of the linear model"}
# Names for keys that read badly spelt out ("test mean rmse": the mean of what?)
# the regression baselines by the names the warnings and the test_result line use
BASELINE_LABELS = {f"test_{key}_{metric}": f"{metric.upper()} of {name}"
                    for key, name in BASELINES.items() for metric in ("rmse", "mae")}
_RANKING_LABELS = {  # threshold-free: how well the probabilities rank, whatever the argmax says
    "test_roc_auc": "test ROC-AUC (the macro one-vs-rest mean over the classes)",
    "test_average_precision": "test average precision (PR-AUC)",
    "test_ap_chance": "average precision by chance (the positive class's share)",
    "test_positive_class": "positive class (index), the test split's rarer",
    "test_auc_classes_left_out": "classes left out of the macro ROC-AUC (no test rows)"}
# the validation-picked threshold's scores (train/decision_threshold.py), beside the argmax's
_THRESHOLD_LABELS = dict(zip(AT_THRESHOLD_KEYS, (
    "decision threshold on P(positive class), picked on validation (F1-best; predict "
    "--threshold best applies it)", "test precision at that threshold",
    "test recall at that threshold", "test F1 at that threshold",
    "test balanced accuracy at that threshold"), strict=True))
SCORE_LABELS = {"test_rmse": "test RMSE", "test_mae": "test MAE", "test_r2": "test R²",
                "test_macro_f1": "test macro-F1 (the mean F1 over the classes, each weighing "
                                 "the same)",
                GROUPS: "groups the test rows come from",
                GROUP_COLUMN: "the groups' key column",
                LINEAR_DIFFERENCE: "test RMSE minus the linear model's (below 0: the network "
                                   "is better)",
                SUM_RATIO: "sum of test predictions / sum of actual values (below 1: the "
                           "predictions' total comes out low)",
                **_RANKING_LABELS, **_THRESHOLD_LABELS,
                **BASELINE_LABELS, **_LINEAR_LABELS}


# with class weights the loss is the weighted cross-entropy (evaluate uses the training loss):
# unlabelled, it read as a log-loss comparable with an unweighted run's (audit s9 I9)
WEIGHTED_LOSS = "class-weighted cross-entropy"


def metric_text(key: str, value: Any) -> str:
    if value is None and key in _RANKING_LABELS:  # undefined: a class without test rows
        return "n/a"
    if "accuracy" in key and isinstance(value, int | float):
        return f"{100 * value:.1f} %"
    return fmt_number(value)


def error_quarters(test: Row | None) -> list[dict[str, str]]:
    """The test row's error per quarter of the test targets, as table cells in plain digits."""
    return [{"range": f"{amount(q['low'])} – {amount(q['high'])}", "rows": f"{q['rows']:,}",
             "mae": amount(q["mae"]), "rmse": amount(q["rmse"]),
             "mean_error": ("+" if q["mean_error"] > 0 else "") + amount(q["mean_error"])}
            for q in (test or {}).get(QUARTER_KEY) or []]


def _test_labels(test: Row | None, weighted: bool,
                 threshold: dict[str, Any] | None = None) -> dict[str, str]:
    labels = {**SCORE_LABELS, "test_loss": f"test loss ({WEIGHTED_LOSS})"} if weighted \
        else dict(SCORE_LABELS)
    if "test_positive_class" in (test or {}):  # two classes: the positive class's AUC, no mean
        labels["test_roc_auc"] = "test ROC-AUC"
    return {**labels, **_threshold_labels(threshold)}


def _threshold_labels(threshold: dict[str, Any] | None) -> dict[str, str]:
    """The threshold rows named by the class the threshold is on (meta.json's
    decision_threshold): it may not be the test split's rarer one the ROC-AUC row names
    (audit s14 C12: "recall at that threshold" read as class 1's was class 'no''s)."""
    record = threshold or {}
    name, cut = record.get("positive_class"), record.get("threshold")
    if name is None or cut is None:  # none kept: no threshold rows either
        return {}
    at = f"P('{name}') >= {cut:.3g}"
    return dict(zip(AT_THRESHOLD_KEYS, (
        f"decision threshold on P('{name}'), picked on validation (F1-best; predict "
        "--threshold best applies it)", f"test precision of '{name}' at {at}",
        f"test recall of '{name}' at {at}", f"test F1 of '{name}' at {at}",
        f"test balanced accuracy at {at}"), strict=True))


def _test_scalars(test: Row | None) -> list[tuple[str, Any]]:
    """The test row's numbers; its reliability bins, confusion matrix and per-class lists
    are drawn as their own figure and tables."""
    return [(k, v) for k, v in (test or {}).items()
            if k != "kind" and not isinstance(v, dict | list)]


def score_table(test: Row | None, weighted: bool = False,
                threshold: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The report's test table; `threshold`: meta.json's decision_threshold, named on its
    rows."""
    first = {key: i for i, key in enumerate(_TEST_ORDER)}
    items = sorted(_test_scalars(test), key=lambda item: first.get(item[0], len(first)))
    # sorted is stable: the rest keep their order
    labels = _test_labels(test, weighted, threshold)
    rows = _with_regression_intervals(test or {}, [k for k, _ in items],
                                      [(labels.get(k, k), metric_text(k, v)) for k, v in items])
    interval = split_accuracy_interval(test or {})
    if interval is not None:  # right under the accuracy it qualifies
        keys = [k for k, _ in items]
        at = keys.index("test_accuracy") + 1 if "test_accuracy" in keys else 0
        caveat = grouped_rows_caveat(interval.num_rows, (test or {}).get(GROUPS))
        rows.insert(at, ("test accuracy, 95% interval", _interval_cell(interval)
                         + (f"; {caveat}" if caveat else "")))
    balanced = balanced_accuracy_interval((test or {}).get("test_confusion"))
    keys = [k for k, _ in rows]
    if balanced is not None and "test_balanced_accuracy" in keys:
        rows.insert(keys.index("test_balanced_accuracy") + 1, (
            "test balanced accuracy, 95% interval",
            f"{percent(balanced[0])} – {percent(balanced[1])} % (MOVER over the per-class "
            "recalls' Wilson intervals; see Per class)"))
    return rows


def _with_regression_intervals(test: Row, keys: list[str],
                               rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each regression score's bootstrap 95% interval (regression_intervals.py) right under
    it, as the accuracy's Wilson interval; `keys` name `rows` one for one."""
    intervals = {**INTERVAL_KEYS, LINEAR_DIFFERENCE: LINEAR_DIFFERENCE_INTERVAL,
                 SUM_RATIO: SUM_RATIO_INTERVAL}
    out = []
    for key, row in zip(keys, rows, strict=True):
        out.append(row)
        bounds = test.get(intervals.get(key, ""))
        if bounds:
            how = "paired bootstrap over the test rows; holding 0: no clear difference" \
                if key == LINEAR_DIFFERENCE else "bootstrap over the test rows"
            out.append((f"{row[0]}, 95% interval", f"{metric_text(key, bounds[0])} – "
                        f"{metric_text(key, bounds[1])} ({how}, {NUM_RESAMPLES:,} resamples)"))
    return out


def _interval_cell(interval: AccuracyInterval) -> str:
    if interval.num_groups:  # rows of one group are not independent (audit s13 F10)
        return (f"{percent(interval.low)} – {percent(interval.high)} % (bootstrap "
                f"{interval.resampling()}, {GROUP_RESAMPLES:,} resamples; "
                f"{interval.num_correct:,} of {interval.num_rows:,} rows right)")
    return (f"{percent(interval.low)} – {percent(interval.high)} % (Wilson score, "
            f"{interval.num_correct:,} of {interval.num_rows:,} rows right)")


def score_lines(test: Row, weighted: bool = False,
                threshold: dict[str, Any] | None = None) -> list[str]:
    labels = _test_labels(test, weighted, threshold)
    rows = [f"{labels.get(k, k.replace('_', ' '))} {metric_text(k, v)}"
            for k, v in _test_scalars(test)]
    interval = split_accuracy_interval(test)
    return [f"{r} ({interval.text()})" if interval is not None and r.startswith("test accuracy ")
            else r for r in rows]
