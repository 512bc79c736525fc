"""Run folder -> report model: shape what reporting/run_data.py read for the template.

The test scores' table lives in reporting/scores.py, number formats in reporting/formats.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from trainwise.findings import STAGES, Finding, Severity, errors, worst
from trainwise.preprocessing import trained_log
from trainwise.reporting.classes import class_tables
from trainwise.reporting.curves import best_epoch, prior_line
from trainwise.reporting.formats import fmt_number, fmt_seconds
from trainwise.reporting.lr_range import lr_range_caption, used_lr
from trainwise.reporting.missing import missing_evidence, trained, verdict_without_count
from trainwise.reporting.model_tables import init_rows, weight_decay_section
from trainwise.reporting.reliability import reliability_caption
from trainwise.reporting.reproduce import reproduce
from trainwise.reporting.run_data import (
    RunData,
    class_counts,
    class_weighted,
    prior_counts,
    standardised_target,
)
from trainwise.reporting.scores import (
    BASELINE_LABELS,
    error_quarters,
    metric_text,
    score_lines,
    score_table,
)
from trainwise.reporting.tuning import candidate_rows, within_noise
from trainwise.train.intervals import GROUPS, few_groups, percent, split_accuracy_interval
from trainwise.train.monitor_folder import MONITOR_SOURCE
from trainwise.train.prior_correction import WEIGHTED_PROBABILITIES

SEVERITIES = ("error", "warning", "info")


def _verdict(run: RunData) -> str:
    if run.meta.get("verdict"):
        return str(run.meta["verdict"])
    failed = errors(run.findings)
    if failed:
        return f"Stopped at stage '{failed[0].stage}': {failed[0].message}"
    if run.test is not None:
        return "Finished: " + ", ".join(score_lines(run.test, class_weighted(run),
                                                    run.meta.get("decision_threshold"))) + "."
    return "No verdict recorded: the run may still be going or stopped without one."


_HEADLINE_LABELS = {"test_baseline_accuracy": "always the majority class",
                    "test_linear_accuracy": "a linear model (logistic regression)",
                    "test_rmse": "test RMSE", "test_mae": "test MAE", "test_r2": "test R²",
                    **BASELINE_LABELS}


def _headline(run: RunData) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    test = run.test or {}
    for key in ("test_accuracy", "test_baseline_accuracy", "test_linear_accuracy",
                "test_balanced_accuracy", "test_rmse", "test_mae", "test_r2", "test_mean_rmse",
                "test_previous_rmse", "test_linear_rmse"):
        if test.get(key) is not None:
            items.append((_HEADLINE_LABELS.get(key, key.replace("_", " ")),
                          metric_text(key, test[key])))
        interval = split_accuracy_interval(test) if key == "test_accuracy" else None
        if interval is not None:
            few = few_groups(interval.num_rows, test.get(GROUPS))
            how = few or interval.resampling()
            items.append((f"95% interval, {interval.num_rows:,} test rows"
                          + (f" ({how})" if how else ""),
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
        # the stages the command ran: an audit's report said "No model summary in this run"
        # as if something had failed (audit s13 P14)
        "stages_run": list(meta.get("stage_seconds") or {}),
        "classification": run.classification,
        "data": run.data,
        "class_counts": class_counts(run),  # per split, or of all rows before the split
        "split": meta.get("split") or {},
        "model": run.model_summary,
        "weight_decay": weight_decay_section(run.model_summary),
        "init_rows": init_rows(run.findings),
        # the structure's proof where the method puts it, beside the model (audit s13 P10)
        "preflight": [f for f in run.findings if f.stage == "check"],
        "lr_range": run.lr_range,
        "lr_range_caption": lr_range_caption(run.lr_range, run.tune,
                                             used_lr(run.tune, run.findings),
                                             bool(run.steps or run.epochs))
        if run.lr_range else "",
        "tune": run.tune,
        "candidates": candidates,
        "candidates_within_noise": within_noise(candidates),
        "has_training": bool(run.steps or run.epochs),
        "test": score_table(run.test, class_weighted(run), run.meta.get("decision_threshold")),
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
        "log_target": trained_log((meta.get("split") or {}).get("target_log") or "",
                                  ((meta.get("config") or {}).get("data") or {}).get(
                                      "target_transform") or "", run.classification),
        "label_issues": meta.get("label_issues") or {},
        "mistakes": meta.get("mistakes") or {},
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
