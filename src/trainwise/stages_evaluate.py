"""The evaluate stage: the test part, once, with the best weights, and the line that reports it.

Kept apart from the training stages: it only reads what they left (the trained model, the
history, the lr) and records the test row (history.jsonl and meta["test"]).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from trainwise.amounts import amount
from trainwise.data.audit import extreme_targets
from trainwise.data.part_findings import part_groups
from trainwise.findings import Finding, info
from trainwise.rundir import read_findings
from trainwise.stages import RunContext, eval_batch_size
from trainwise.stages_labels import stage_label_issues
from trainwise.stages_linear import linear_scores
from trainwise.stages_training import leak_columns
from trainwise.train.class_metrics import (
    class_results,
    lowest_recall,
)
from trainwise.train.class_predictions import write_class_predictions
from trainwise.train.data_first import (
    capacity_answered,
    data_evidence,
)
from trainwise.train.decision_threshold import (
    META_KEY,
    advised_threshold,
    kept,
    not_kept,
    scores_at_threshold,
    threshold_record,
    threshold_text,
)
from trainwise.train.diagnose_collapse import confirming_collapse
from trainwise.train.diagnose_perfect import held_out_too_good, linear_too_good
from trainwise.train.diagnose_unfinished import rule_still_improving
from trainwise.train.evaluate import evaluate
from trainwise.train.group_interval import group_interval_keys
from trainwise.train.intervals import (
    GROUPS,
    grouped_rows_caveat,
    percent,
    split_accuracy_interval,
)
from trainwise.train.label_issues import probabilities
from trainwise.train.linear_reference import (
    LOGISTIC_REFERENCE,
)
from trainwise.train.not_learned import lead_with, not_learned
from trainwise.train.ranking import ranking_text
from trainwise.train.ranking_verdict import validation_threshold
from trainwise.train.regression_intervals import (
    INTERVAL_KEYS,
    LINEAR_DIFFERENCE,
    LINEAR_DIFFERENCE_INTERVAL,
    interval_text,
    regression_intervals,
)
from trainwise.train.regression_metrics import (
    baselines_text,
    level_codes,
    no_previous_value,
    previous_values,
    r2_text,
    regression_results,
)
from trainwise.train.regression_predictions import (
    PREDICTIONS_CSV,
    QUARTER_KEY,
    error_by_quarter,
    in_target_units,
    median_caveat,
    write_predictions,
)
from trainwise.train.sharding import loader_order, predictions_across_ranks, setup_loader


def stage_evaluate(ctx: RunContext) -> list[Finding]:
    """The test part, once, with the best weights (every process evaluates its slice)."""
    assert ctx.model is not None and ctx.loss_fn is not None and ctx.data is not None
    batch_size = eval_batch_size("test", ctx.config.train.batch_size)
    test_loader = ctx.splits["test"].loader(batch_size, shuffle=False, seed=0)
    loader = setup_loader(ctx.fabric, test_loader, train=False)
    model = ctx.trained_model or ctx.model
    classification = ctx.data.task == "classification"
    # predicted once: the metrics and, for a regression, the predictions kept below
    outputs, targets = predictions_across_ranks(ctx.fabric, model, loader)
    if ctx.fabric.world_size > 1:  # gathered rank by rank: back in the test rows' order
        back = torch.as_tensor(loader_order(len(targets), batch_size,
                                            ctx.fabric.world_size).argsort())
        outputs, targets = outputs[back], targets[back]
    row = evaluate(nn.Identity(), [(outputs, targets)], ctx.loss_fn, ctx.data.task,
                   prefix="test", confusion=classification, target_units=ctx.target_units())
    row.pop("test_confidence_hist", None)
    groups = _test_groups(ctx)
    if groups is not None:  # every test interval names it: the verdict's, the report's, the caveat
        row[GROUPS] = groups
    # the line first: a learned-nothing verdict reads whether it is at chance too (audit s15 M7)
    linear = linear_scores(ctx, row, outputs)
    findings = (_class_findings if classification else _regression_findings)(
        ctx, row, outputs, targets) + linear
    # a loss never below ln C: those fixes first send the user back to the lr and batch size
    lead = not_learned(ctx.history, ctx.data.num_classes if classification else None,
                       ctx.lr or None, ctx.target_log,
                       not classification and _extreme_targets(ctx))
    findings = [lead_with(f, lead) for f in findings]
    if not lead:  # a model that learned: a line as good answers the capacity note (s15 M2)
        reported = _train_codes(ctx)
        findings = [capacity_answered(f, reported) for f in findings]
    if ctx.fabric.is_global_zero:
        ctx.run.append_history([{"kind": "test", **row}])
    ctx.meta["test"] = row
    # the bins, matrix and per-class lists are drawn in the report (from the history's test
    # row); as evidence they would print as long lists
    evidence = {k: v for k, v in row.items() if not isinstance(v, dict | list)}
    findings = _too_good(ctx, row, findings)
    findings += stage_label_issues(ctx, model, outputs)  # the test part is not predicted again
    return [info("evaluate", "test_result", _test_message(ctx, row), **evidence), *findings]


def _extreme_targets(ctx: RunContext) -> bool:
    """The data stage's target_outliers on the scale the run trains on (the log's, when in
    force: stages._on_the_log drops the warning when the log leaves none)."""
    return bool(len(extreme_targets(ctx.trained_targets())))


def _class_findings(ctx: RunContext, row: dict[str, Any], outputs: torch.Tensor,
                    targets: torch.Tensor) -> list[Finding]:
    """The baselines' verdict (class_metrics.class_results) and, two classes, the test rows
    scored at the validation threshold; adds their keys to `row`."""
    assert ctx.data is not None
    # before the baselines' verdict, which reads it (near_majority_baseline)
    row.update(_accuracy_group_interval(ctx, outputs, targets))
    picked = validation_threshold(ctx.history)
    # (N, C), softmaxed once for the threshold's scores and test_predictions.csv, and freed on
    # return: the label check softmaxes its own, capped, rows (review s15 VE12: memory)
    probs = probabilities(outputs)
    # before the verdict too: its advice leads with the threshold only where the test agrees
    row.update(_at_threshold(ctx, picked, probs, targets))
    _keep_class_predictions(ctx, outputs, probs, targets)  # after the threshold lands in meta
    extra, findings = class_results(row["test_confusion"], ctx.splits["train"].y,
                                    ctx.data.class_names,
                                    ctx.config.train.class_weights == "balanced",
                                    lr=ctx.lr or None, scores=row,
                                    val_threshold=advised_threshold(picked, row),
                                    time_budget_minutes=ctx.meta.get("time_budget_minutes"),
                                    still_improving=bool(rule_still_improving(ctx.history)),
                                    data_first=data_evidence(row, _stage_codes(ctx, "tune")))
    row.update(extra)
    reported = _train_codes(ctx)  # once, not a diagnosis per verdict (review s14 VT10)
    return [confirming_collapse(f, ctx.history, reported) for f in findings]


def _train_codes(ctx: RunContext) -> set[str]:
    return _stage_codes(ctx, "train")


def _stage_codes(ctx: RunContext, stage: str) -> set[str]:
    """The codes `stage` (train, tune) reported, as findings.json holds them (rank 0 writes
    it after every stage): what the evaluate stage confirms, not a diagnosis run again under
    other arguments. Another process's scratch folder holds none; only rank 0's are kept."""
    return {f.code for f in read_findings(ctx.run.path) if f.stage == stage}


def _accuracy_group_interval(ctx: RunContext, outputs: torch.Tensor,
                             targets: torch.Tensor) -> dict[str, Any]:
    """The accuracy's 95% cluster bootstrap over the test rows' groups (group_interval.py),
    seeded by run.seed; {} without groups or when Wilson's interval over rows stands."""
    data, rows = ctx.data, ctx.splits["test"].rows
    if data is None or data.groups is None or rows is None:
        return {}
    right = (outputs.argmax(dim=1) == targets.reshape(-1)).numpy()
    key = data.key("group")
    return group_interval_keys(right, np.asarray(data.groups)[rows],
                               key.column if key is not None else None, ctx.config.run.seed)


def _regression_findings(ctx: RunContext, row: dict[str, Any], outputs: torch.Tensor,
                         targets: torch.Tensor) -> list[Finding]:
    """The baselines (the training mean, each series' previous value), the predictions kept
    and the bootstrap intervals; adds their keys to `row`."""
    units = ctx.target_units()  # the baselines too are scored in the target's units
    previous, why_not = _previous_values(ctx)
    extra, findings = regression_results(row, units(ctx.splits["train"].y),
                                         units(ctx.splits["test"].y), 1.0, previous)
    row.update(extra)
    # the test rows in the target's units, converted once for the file and the intervals
    actual, predicted = in_target_units(targets.numpy(), units), \
        in_target_units(outputs.numpy(), units)
    row.update(_keep_predictions(ctx, actual, predicted))
    row.update(regression_intervals(actual, predicted, seed=ctx.config.run.seed))
    keys, caveat = median_caveat(actual, predicted, ctx.target_log, seed=ctx.config.run.seed)
    row.update(keys)
    return findings + why_not + ([caveat] if caveat else [])


def _too_good(ctx: RunContext, row: dict[str, Any], findings: list[Finding]) -> list[Finding]:
    """too_good from the network's test score, or from the linear reference's: a perfect
    line, or with target_leak columns a line level with or ahead of the network, replaces
    below_linear_reference, whose fix would say to keep the line that holds the leak (audit
    s13 F3)."""
    leaks, test_rows = leak_columns(ctx), len(ctx.splits["test"].y)
    found = held_out_too_good(row, test_rows, ctx.history, len(ctx.splits["val"].y), leaks)
    line = linear_too_good(row, test_rows, leaks,
                           any(f.code == "below_linear_reference" for f in findings))
    if not line:
        return findings + found
    return [f for f in findings if f.code != "below_linear_reference"] + (found or line)


def _at_threshold(ctx: RunContext, picked: dict[str, Any] | None, probs: np.ndarray,
                  targets: torch.Tensor) -> dict[str, Any]:
    """Two classes: the test rows scored once at the F1-best threshold the best epoch picked
    on validation (`picked`), which meta.json keeps for trainwise predict --threshold best;
    under MIN_PICK_POSITIVES validation rows of its class meta.json keeps why not instead;
    a test part of one class is not scored at it (meta.json keeps the threshold)."""
    assert ctx.data is not None
    record = threshold_record(picked, ctx.data.class_names)
    if record is None or probs.shape[1] != 2:
        return {}
    positives = record["validation"].get("positives")
    if not kept(positives):
        ctx.meta[META_KEY] = {**record, "threshold": None,
                              "not_kept": not_kept(positives, record["positive_class"])}
        return {}
    ctx.meta[META_KEY] = record
    y = targets.reshape(-1).numpy()
    if len(np.unique(y[(y >= 0) & (y < 2)])) < 2:  # an ignore_index (-100) is no class
        # one class on test (test_single_class): a missing class's recall 0 would halve the
        # balanced accuracy at the threshold (50.0% beside the argmax's 100%, review s14 VE9)
        return {}
    return scores_at_threshold(probs, targets.numpy(), record)


def _keep_predictions(ctx: RunContext, actual: np.ndarray,
                      predicted: np.ndarray) -> dict[str, Any]:
    """A regression's test predictions in the target's units: written to test_predictions.csv
    (drawn by the report against the actual values) and scored per quarter of the targets."""
    if ctx.fabric.is_global_zero:
        write_predictions(ctx.run.path / PREDICTIONS_CSV, ctx.splits["test"].rows, actual,
                          predicted, _test_keys(ctx))
    return {QUARTER_KEY: error_by_quarter(actual, predicted)}


def _keep_class_predictions(ctx: RunContext, outputs: torch.Tensor, probs: np.ndarray,
                            targets: torch.Tensor) -> None:
    """A classification's test predictions and probabilities, written to test_predictions.csv
    (class_predictions.py) from the outputs the metrics scored: no second forward pass."""
    assert ctx.data is not None
    if ctx.fabric.is_global_zero:
        write_class_predictions(ctx.run.path / PREDICTIONS_CSV, ctx.splits["test"].rows,
                                outputs, targets, list(ctx.data.class_names), _test_keys(ctx),
                                ctx.meta.get(META_KEY), probs=probs)


def _test_keys(ctx: RunContext) -> dict[str, np.ndarray]:
    """The test rows' series and time key columns, by their names in the file (none for a
    source's own test part, whose rows the split did not index)."""
    data, rows = ctx.data, ctx.splits["test"].rows
    if data is None or rows is None:
        return {}
    columns = {"group": data.groups, "time": data.times}  # the series first, then its time
    keys = sorted(data.keys, key=lambda key: list(columns).index(key.role))
    return {key.column: columns[key.role][rows] for key in keys
            if columns.get(key.role) is not None}


def _test_groups(ctx: RunContext) -> int | None:
    """How many groups (data.groups: a patient, a subject) the test rows come from; None
    without groups or for a source's own test part (its rows carry none)."""
    data, rows = ctx.data, ctx.splits["test"].rows
    if data is None or rows is None:
        return None
    return (part_groups({"test": np.asarray(rows)}, data.groups) or {}).get("test")


def _previous_values(ctx: RunContext) -> tuple[np.ndarray | None, list[Finding]]:
    """For a split by time with the test part carved from the data: each test row's previous
    value in time (its series' row just before it), in the target's units. None otherwise: a
    group_time test part holds groups unseen before, and a source's own test part has no
    times; with a note when rows share times for want of a series key (no_previous_value)."""
    data, test = ctx.data, ctx.splits["test"].rows  # test: the carved rows (split.npz's)
    if (data is None or data.times is None or test is None
            or (ctx.meta.get("split") or {}).get("strategy") != "time"):
        return None, []
    previous = previous_values(data.times, data.y, test, data.groups)
    if previous is not None:
        return previous, []
    found = no_previous_value(data.times, data.groups,
                              level_codes(data.x, data.feature_names, data.one_hot))
    return None, [found] if found else []


def _within(row: dict[str, Any], key: str) -> str:
    """" (95% interval 2,900-3,450)" after a score that has its bootstrap interval."""
    text = interval_text(row.get(INTERVAL_KEYS[key]), amount)
    return f" ({text})" if text else ""


def _regression_message(ctx: RunContext, row: dict[str, Any]) -> str:
    baselines = baselines_text(row)
    difference = row.get(LINEAR_DIFFERENCE_INTERVAL)
    paired = (f" The network's RMSE minus the linear model's: "
              f"{amount(row[LINEAR_DIFFERENCE])} ({interval_text(difference, amount)}, paired "
              "bootstrap; an interval holding 0 cannot tell them apart).") if difference else ""
    return (f"Test RMSE {amount(row['test_rmse'])}{_within(row, 'test_rmse')}, MAE "
            f"{amount(row['test_mae'])}{_within(row, 'test_mae')}, "
            f"{r2_text(row['test_r2'])}{_within(row, 'test_r2')} on "
            f"{len(ctx.splits['test'].y)} held-out rows"
            + (f" (trained on the target's {ctx.target_log}, scored in its units)"
               if ctx.target_log else "")
            + (f" ({baselines})." if baselines else ".") + paired)


def _test_message(ctx: RunContext, row: dict[str, Any]) -> str:
    assert ctx.data is not None
    if ctx.data.task != "classification":
        return _regression_message(ctx, row)
    interval = split_accuracy_interval(row)
    caveat = grouped_rows_caveat(len(ctx.splits["test"].y), row.get(GROUPS))
    # which interval, when it is not Wilson's over rows
    how = caveat or (interval.resampling() if interval is not None else "")
    within = f", 95% interval {percent(interval.low)}-{percent(interval.high)}%" \
        + (f" ({how})" if how else "") if interval is not None else ""
    message = (f"Test accuracy {row['test_accuracy']:.2%} on {len(ctx.splits['test'].y)} "
               f"held-out samples{within} (always answering '{row['test_baseline_class']}', the "
               f"training split's most frequent class: {row['test_baseline_accuracy']:.2%}); "
               f"balanced accuracy {row['test_balanced_accuracy']:.2%}")
    if row.get("test_macro_f1") is not None:
        message += f", macro-F1 {row['test_macro_f1']:.3f}"
    ranking = ranking_text(row, ctx.data.class_names)  # threshold-free, beside the argmax's
    if ranking:
        message += f", {ranking}"
    lowest = lowest_recall(row["test_per_class"], ctx.data.class_names)
    if lowest is not None:
        message += f", lowest recall {lowest[1]:.0%} (class '{lowest[0]}')"
    at_threshold = threshold_text(row, ctx.meta.get(META_KEY))
    if at_threshold:  # its own sentence: the argmax's numbers above, these beside them
        message += f". {at_threshold[0].upper()}{at_threshold[1:]}"
    # its own sentence, after the network's numbers: inside the list, the network's ROC-AUC
    # and lowest recall read as the line's (review s11 VT6)
    if "test_linear_accuracy" in row:
        message += (f". {LOGISTIC_REFERENCE[0].upper()}{LOGISTIC_REFERENCE[1:]} scores "
                    f"{row['test_linear_accuracy']:.2%} on the same rows")
    return message + "."
