"""Run folder -> report model: read the files of docs/run_folder.md and shape them for the template.

Everything optional in a run folder is optional here too: a run that failed at the data
stage has only meta.json and findings.json, and its report matters most.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trainwise.amounts import amount
from trainwise.findings import STAGES, Finding, Severity, TrainwiseError, errors, worst
from trainwise.reporting.classes import class_tables
from trainwise.reporting.curves import best_epoch, prior_line
from trainwise.reporting.lr_range import lr_range_caption, used_lr
from trainwise.reporting.missing import missing_evidence, trained, verdict_without_count
from trainwise.reporting.model_tables import init_rows, weight_decay_section
from trainwise.reporting.reliability import reliability_caption
from trainwise.reporting.reproduce import reproduce
from trainwise.reporting.tuning import candidate_rows, within_noise
from trainwise.rundir import read_findings, read_history
from trainwise.train.decision_threshold import AT_THRESHOLD_KEYS
from trainwise.train.intervals import (
    AccuracyInterval,
    balanced_accuracy_interval,
    few_groups,
    grouped_rows_caveat,
    percent,
    split_accuracy_interval,
)
from trainwise.train.linear_reference import LOGISTIC_REFERENCE
from trainwise.train.monitor_folder import MONITOR_SOURCE
from trainwise.train.prior_correction import WEIGHTED_PROBABILITIES, is_class_weighted
from trainwise.train.regression_intervals import (
    INTERVAL_KEYS,
    LINEAR_DIFFERENCE,
    LINEAR_DIFFERENCE_INTERVAL,
    NUM_RESAMPLES,
)
from trainwise.train.regression_metrics import BASELINES
from trainwise.train.regression_predictions import QUARTER_KEY

Row = dict[str, Any]
SEVERITIES = ("error", "warning", "info")


@dataclass
class RunData:
    """Everything the report renders, read once from the run folder."""

    path: Path
    meta: dict[str, Any]
    steps: list[Row] = field(default_factory=list)
    epochs: list[Row] = field(default_factory=list)
    test: Row | None = None
    findings: list[Finding] = field(default_factory=list)
    lr_range: dict[str, Any] | None = None
    tune: dict[str, Any] | None = None  # tune.json: the short real runs
    model_summary: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        return self.meta.get("data") or {}

    @property
    def classification(self) -> bool:
        task = self.data.get("task")
        if task is not None:
            return task == "classification"
        # No task recorded (e.g. a Monitor run): infer from what the rows carry.
        return any("val_accuracy" in r for r in self.epochs) or "test_accuracy" in (self.test or {})


def _read_json(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrainwiseError(f"{path} is not valid JSON ({exc}); expected the format in "
                             "docs/run_folder.md. Re-run the stage that writes it, or delete "
                             "the file if it is optional.") from exc


def load_run(path: Path) -> RunData:
    """Read a run folder; missing optional files become None or empty lists."""
    try:
        rows = read_history(path)
    except json.JSONDecodeError as exc:
        raise TrainwiseError(f"{path / 'history.jsonl'} has a line that is not JSON ({exc}); "
                             "a run killed mid-write can leave one: delete that line.") from exc
    tests = [r for r in rows if r.get("kind") == "test"]
    return RunData(
        path=path,
        meta=_read_json(path / "meta.json") or {},
        steps=[r for r in rows if r.get("kind", "step") == "step"],
        epochs=[r for r in rows if r.get("kind") == "epoch"],
        test=tests[-1] if tests else None,
        findings=read_findings(path),
        lr_range=_read_json(path / "lr_range.json"),
        tune=_read_json(path / "tune.json"),
        model_summary=_read_json(path / "model_summary.json"),
    )


# formatting (registered as jinja filters) ------------------------------------------------
def fmt_number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return amount(value) if math.isfinite(value) else str(value)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60} min"


def fmt_shape(shape: Any) -> str:
    """[128, 1, 40] -> "128 × 1 × 40"; a layer with several inputs has a list of shapes."""
    if isinstance(shape, list | tuple) and any(isinstance(s, list | tuple) for s in shape):
        return ", ".join(fmt_shape(s) for s in shape)
    if isinstance(shape, list | tuple):
        return " × ".join(str(s) for s in shape) if shape else "scalar"
    return "–" if shape is None else str(shape)


def fmt_evidence(value: Any, limit: int = 80) -> str:
    """Compact value for key=value evidence: short floats, long lists cut after 8 items."""
    if isinstance(value, list | tuple) and len(value) > 8:
        text = "[" + ", ".join(fmt_number(v) for v in value[:8]) + f", … ({len(value)} items)]"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(fmt_number(v) for v in value) + "]"
    else:
        text = fmt_number(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metric(key: str, value: Any) -> str:
    if value is None and key in _RANKING_LABELS:  # undefined: a class without test rows
        return "n/a"
    if "accuracy" in key and isinstance(value, int | float):
        return f"{100 * value:.1f} %"
    return fmt_number(value)


# sections --------------------------------------------------------------------------------
def _verdict(run: RunData) -> str:
    if run.meta.get("verdict"):
        return str(run.meta["verdict"])
    failed = errors(run.findings)
    if failed:
        return f"Stopped at stage '{failed[0].stage}': {failed[0].message}"
    if run.test is not None:
        return "Finished: " + ", ".join(_test_rows(run.test, class_weighted(run))) + "."
    return "No verdict recorded: the run may still be going or stopped without one."


# read together: accuracy means little until set beside always answering the majority class,
# an RMSE until set beside R^2 and what a constant (or the previous value) scores
_TEST_ORDER = ("test_accuracy", "test_baseline_accuracy", "test_baseline_class",
               "test_linear_accuracy", "test_balanced_accuracy",
               "test_linear_balanced_accuracy", "test_roc_auc", "test_average_precision",
               "test_ap_chance", "test_positive_class", *AT_THRESHOLD_KEYS, "test_rmse",
               "test_mae", "test_r2",
               "test_mean_rmse", "test_mean_mae", "test_previous_rmse", "test_previous_mae",
               "test_linear_rmse", "test_linear_mae", LINEAR_DIFFERENCE, "test_groups")
# the linear reference (train/linear_reference.py), named as the test_result line names it
_LINEAR_LABELS = {
    "test_linear_accuracy": f"accuracy of {LOGISTIC_REFERENCE}",
    "test_linear_balanced_accuracy": "balanced accuracy of the linear model"}
# Names for keys that read badly spelt out ("test mean rmse": the mean of what?)
# the regression baselines by the names the warnings and the test_result line use
_BASELINE_LABELS = {f"test_{key}_{metric}": f"{metric.upper()} of {name}"
                    for key, name in BASELINES.items() for metric in ("rmse", "mae")}
_RANKING_LABELS = {  # threshold-free: how well the probabilities rank, whatever the argmax says
    "test_roc_auc": "test ROC-AUC (the macro one-vs-rest mean over the classes)",
    "test_average_precision": "test average precision (PR-AUC)",
    "test_ap_chance": "average precision by chance (the positive class's share)",
    "test_positive_class": "positive class (index), the test split's rarer"}
# the validation-picked threshold's scores (train/decision_threshold.py), beside the argmax's
_THRESHOLD_LABELS = dict(zip(AT_THRESHOLD_KEYS, (
    "decision threshold on P(positive class), picked on validation (F1-best; predict "
    "--threshold best applies it)", "test precision at that threshold",
    "test recall at that threshold", "test F1 at that threshold",
    "test balanced accuracy at that threshold"), strict=True))
_TEST_LABELS = {"test_rmse": "test RMSE", "test_mae": "test MAE", "test_r2": "test R²",
                "test_groups": "groups the test rows come from",
                LINEAR_DIFFERENCE: "test RMSE minus the linear model's (below 0: the network "
                                   "is better)",
                **_RANKING_LABELS, **_THRESHOLD_LABELS,
                **_BASELINE_LABELS, **_LINEAR_LABELS}


# with class weights the loss is the weighted cross-entropy (evaluate uses the training loss):
# unlabelled, it read as a log-loss comparable with an unweighted run's (audit s9 I9)
WEIGHTED_LOSS = "class-weighted cross-entropy"


def class_weighted(run: RunData) -> bool:
    """Whether the run trained with train.class_weights = "balanced". Read from the config,
    the source of truth: the model stage's class_weights finding only echoes it, and a run
    stopped before that stage, or resumed without its findings.json, lacks the finding.
    Regression ignores the setting."""
    return run.classification and is_class_weighted(run.meta)  # task inferred for a Monitor


def prior_counts(run: RunData) -> list[int] | None:
    """The training split's class counts, whose entropy is the loss of answering the class
    shares; None under balanced class weights, where the validation loss is the weighted one
    and its constant best is the uniform guess, ln C, already drawn."""
    if not run.classification or class_weighted(run):
        return None
    return (run.data.get("class_counts") or {}).get("train")


def error_quarters(test: Row | None) -> list[dict[str, str]]:
    """The test row's error per quarter of the test targets, as table cells in plain digits."""
    return [{"range": f"{amount(q['low'])} – {amount(q['high'])}", "rows": f"{q['rows']:,}",
             "mae": amount(q["mae"]), "rmse": amount(q["rmse"]),
             "mean_error": ("+" if q["mean_error"] > 0 else "") + amount(q["mean_error"])}
            for q in (test or {}).get(QUARTER_KEY) or []]


def standardised_target(run: RunData) -> bool:
    """Whether the losses are the MSE of a target standardised by the training split's mean
    and std: every regression `trainwise run` trains (stages_split._make_arrays), so 1.0 is
    predicting that mean. A Monitor's loss is whatever the user's loop computed."""
    return run.data.get("task") == "regression" and run.meta.get("source") != MONITOR_SOURCE


def _test_labels(test: Row | None, weighted: bool) -> dict[str, str]:
    labels = {**_TEST_LABELS, "test_loss": f"test loss ({WEIGHTED_LOSS})"} if weighted \
        else dict(_TEST_LABELS)
    if "test_positive_class" in (test or {}):  # two classes: the positive class's AUC, no mean
        labels["test_roc_auc"] = "test ROC-AUC"
    return labels


def _test_scalars(test: Row | None) -> list[tuple[str, Any]]:
    """The test row's numbers; its reliability bins, confusion matrix and per-class lists
    are drawn as their own figure and tables."""
    return [(k, v) for k, v in (test or {}).items()
            if k != "kind" and not isinstance(v, dict | list)]


def _test_table(test: Row | None, weighted: bool = False) -> list[tuple[str, str]]:
    first = {key: i for i, key in enumerate(_TEST_ORDER)}
    items = sorted(_test_scalars(test), key=lambda item: first.get(item[0], len(first)))
    # sorted is stable: the rest keep their order
    labels = _test_labels(test, weighted)
    rows = _with_regression_intervals(test or {}, [k for k, _ in items],
                                      [(labels.get(k, k), _metric(k, v)) for k, v in items])
    interval = split_accuracy_interval(test or {})
    if interval is not None:  # right under the accuracy it qualifies
        keys = [k for k, _ in items]
        at = keys.index("test_accuracy") + 1 if "test_accuracy" in keys else 0
        caveat = grouped_rows_caveat(interval.num_rows, (test or {}).get("test_groups"))
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
    intervals = {**INTERVAL_KEYS, LINEAR_DIFFERENCE: LINEAR_DIFFERENCE_INTERVAL}
    out = []
    for key, row in zip(keys, rows, strict=True):
        out.append(row)
        bounds = test.get(intervals.get(key, ""))
        if bounds:
            how = "paired bootstrap over the test rows; holding 0: no clear difference" \
                if key == LINEAR_DIFFERENCE else "bootstrap over the test rows"
            out.append((f"{row[0]}, 95% interval", f"{_metric(key, bounds[0])} – "
                        f"{_metric(key, bounds[1])} ({how}, {NUM_RESAMPLES:,} resamples)"))
    return out


def _interval_cell(interval: AccuracyInterval) -> str:
    return (f"{percent(interval.low)} – {percent(interval.high)} % (Wilson score, "
            f"{interval.num_correct:,} of {interval.num_rows:,} rows right)")


def _test_rows(test: Row, weighted: bool = False) -> list[str]:
    labels = _test_labels(test, weighted)
    rows = [f"{labels.get(k, k.replace('_', ' '))} {_metric(k, v)}"
            for k, v in _test_scalars(test)]
    interval = split_accuracy_interval(test)
    return [f"{r} ({interval.text()})" if interval is not None and r.startswith("test accuracy ")
            else r for r in rows]


_HEADLINE_LABELS = {"test_baseline_accuracy": "always the majority class",
                    "test_linear_accuracy": "a linear model (logistic regression)",
                    "test_rmse": "test RMSE", "test_mae": "test MAE", "test_r2": "test R²",
                    **_BASELINE_LABELS}


def _headline(run: RunData) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    test = run.test or {}
    for key in ("test_accuracy", "test_baseline_accuracy", "test_linear_accuracy",
                "test_balanced_accuracy", "test_rmse", "test_mae", "test_r2", "test_mean_rmse",
                "test_previous_rmse", "test_linear_rmse"):
        if test.get(key) is not None:
            items.append((_HEADLINE_LABELS.get(key, key.replace("_", " ")),
                          _metric(key, test[key])))
        interval = split_accuracy_interval(test) if key == "test_accuracy" else None
        if interval is not None:
            few = few_groups(interval.num_rows, test.get("test_groups"))
            items.append((f"95% interval, {interval.num_rows:,} test rows"
                          + (f" ({few})" if few else ""),
                          f"{percent(interval.low)}–{percent(interval.high)} %"))
    best = best_epoch(run.epochs)
    if best is not None:
        weighted = ", class-weighted" if class_weighted(run) else \
            ", MSE of the standardised target" if standardised_target(run) else ""
        items.append((f"best val loss (epoch {best['epoch']}{weighted})",
                      fmt_number(best["val_loss"])))
    if run.epochs:
        items.append(("epochs run", str(len(run.epochs))))
    seconds = run.meta.get("stage_seconds") or {}
    if seconds:
        items.append(("total time", fmt_seconds(sum(seconds.values()))))
    return items


def _findings_by_stage(findings: list[Finding]) -> list[tuple[str, list[Finding]]]:
    """Group in METHOD order; a stage we do not know goes last rather than disappearing."""
    order = list(STAGES) + sorted({f.stage for f in findings} - set(STAGES))
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    groups = []
    for stage in order:
        found = sorted((f for f in findings if f.stage == stage),
                       key=lambda f: rank.get(f.severity.value, 3))
        if found:
            groups.append((stage, found))
    return groups


# The header's warnings, these stages first: they judge the result itself (lr too low, a score
# no better than the majority class), while a data or setup warning qualifies it.
RESULT_STAGES = ("train", "evaluate")


def _header_warnings(findings: list[Finding]) -> list[Finding]:
    """Every warning, the train and evaluate stages' first, then in METHOD order."""
    stages = [*RESULT_STAGES, *(s for s in STAGES if s not in RESULT_STAGES)]
    order = {stage: i for i, stage in enumerate(stages)}
    found = [f for f in findings if f.severity is Severity.WARNING]
    return sorted(found, key=lambda f: order.get(f.stage, len(order)))


def _created(meta: dict[str, Any]) -> str:
    created = meta.get("created")
    try:
        return datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return str(created or "date unknown")


def report_context(run: RunData) -> dict[str, Any]:
    """The template's whole input; figures are added by the caller."""
    failed = errors(run.findings)
    meta = run.meta
    candidates = candidate_rows(run.tune)
    missing = missing_evidence(run.path, meta)
    findings_missing = not (run.path / "findings.json").exists()
    return {
        "name": meta.get("name") or run.path.name,
        "folder": run.path.name,
        "created": _created(meta),
        "verdict": verdict_without_count(_verdict(run), findings_missing),
        "verdict_severity": worst(run.findings).value if run.findings else Severity.INFO.value,
        # no "0 warnings" badge for findings the report could not read
        "counts": [] if findings_missing else
        [(s, sum(f.severity.value == s for f in run.findings)) for s in SEVERITIES],
        "missing": missing,
        "history_missing": trained(meta) and not (run.path / "history.jsonl").exists(),
        "headline": _headline(run),
        "errors": failed,
        "warnings": _header_warnings(run.findings),
        # a Monitor's loop ran its own course: a finding did not stop it at a stage
        "stopped_at": failed[0].stage if failed and meta.get("source") != MONITOR_SOURCE
        else None,
        "stage_rank": {stage: i for i, stage in enumerate(STAGES)},
        "classification": run.classification,
        "data": run.data,
        "split": meta.get("split") or {},
        "model": run.model_summary,
        "weight_decay": weight_decay_section(run.model_summary),
        "init_rows": init_rows(run.findings),
        "lr_range": run.lr_range,
        "lr_range_caption": lr_range_caption(run.lr_range, run.tune,
                                             used_lr(run.tune, run.findings),
                                             bool(run.steps or run.epochs))
        if run.lr_range else "",
        "tune": run.tune,
        "candidates": candidates,
        "candidates_within_noise": within_noise(candidates),
        "has_training": bool(run.steps or run.epochs),
        "test": _test_table(run.test, class_weighted(run)),
        "reliability_caption": reliability_caption(meta.get("source") == MONITOR_SOURCE,
                                                   bool((run.test or {}).get("test_reliability")))
        + (f" Here {WEIGHTED_PROBABILITIES} (trainwise predict --prior-corrected): a gap to "
           "the diagonal is partly the weights, not the model." if class_weighted(run) else ""),
        "class_weighted": class_weighted(run),
        "prior_line": prior_line(run.data.get("num_classes") if run.classification else None,
                                 prior_counts(run)) is not None,
        "regression_baselines": "test_mean_rmse" in (run.test or {}),
        "standardised_target": standardised_target(run),
        "error_quarters": error_quarters(run.test),
        "log_target": ((meta.get("config") or {}).get("data") or {}).get("target_transform")
        == "log",
        "label_issues": meta.get("label_issues") or {},
        **class_tables(run.test or {}, run.data.get("class_names") or [],
                       (run.data.get("class_counts") or {}).get("val")),
        "findings_by_stage": _findings_by_stage(run.findings),
        "seed": meta.get("seed"),
        "device": meta.get("device"),
        "num_processes": meta.get("num_processes"),
        "precision": meta.get("precision"),
        "versions": meta.get("versions") or {},
        "git_revision": meta.get("git_revision"),
        "user_model": meta.get("user_model") or {},
        "reproduce": reproduce(run.path, meta, run.findings),
        "config_json": json.dumps(meta.get("config") or {}, indent=2, default=str),
        "stage_seconds": meta.get("stage_seconds") or {},
    }
