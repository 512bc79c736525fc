"""After the test: which held-out rows look mislabelled (train/label_issues.py), written to
label_issues.csv, meta["label_issues"] and, for images, a figure of the first suspects.

Part of the evaluate stage; kept apart because it reads the split's row indices and the data
as loaded, which the test's metrics do not need.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from trainwise.data.task import TaskData
from trainwise.findings import Finding
from trainwise.safe_write import replacing
from trainwise.spreadsheet import safe_cell
from trainwise.stages import RunContext, eval_batch_size
from trainwise.train.evaluate import predict
from trainwise.train.label_calibration import Calibration, fit_calibration
from trainwise.train.label_issues import (
    Suspect,
    check_skipped,
    confident_mask,
    expected_confident,
    label_issue_finding,
    probabilities,
    suspect_at,
    suspects,
)
from trainwise.train.prior_correction import prior_corrected

CSV_NAME = "label_issues.csv"
MAX_VALUES = 20_000_000  # rows x classes per part (80 MB of float32 probabilities); a larger
# part is checked on a seeded sample of its rows, and the finding counts what was checked
REPORT_ROWS = 20  # suspects listed in the report; the CSV holds them all


def stage_label_issues(ctx: RunContext, model: nn.Module,
                       test_outputs: torch.Tensor) -> list[Finding]:
    """`test_outputs`: the evaluate stage's (N, C) outputs of the test part, gathered in row
    order on every process, so only the validation part is predicted here. Every process
    predicts the whole of it (an FSDP forward needs all of them); the first one writes the
    files. Rows are found by their position in the data as loaded, as split.npz records them,
    and named by their row in the source and its identifiers."""
    data = ctx.data
    assert data is not None
    if data.task != "classification":
        return []
    scored = _held_out_probabilities(ctx, model, test_outputs)
    if not scored:
        return []
    # the mistakes are the argmax the test metrics scored (also when the check is skipped: a
    # weak model's errors matter most); the check reads the probabilities with the class
    # weights undone
    _add_mistakes(ctx, scored)
    parts = [(part, labels, rows, _unweighted(ctx, probs))
             for part, labels, rows, probs in scored]
    # under class weights the corrected arrays are copies: the raw ones go now, not at return
    # (review s15 VE12: raw, corrected and concatenated were held at once)
    del scored
    # every part's rows together, once: up to 2 x MAX_VALUES cells (160 MB) a copy
    probs, labels = (np.concatenate([p[i] for p in parts]) for i in (3, 1))
    skipped = check_skipped(probs, labels, data.num_classes, data.class_names)
    if skipped is not None:  # too few rows, or a model near chance: its list would be noise
        ctx.meta["label_issues"] = {"num_checked": 0, "skipped": skipped.message}
        return [skipped]
    found = _suspects_of(data, parts)
    if ctx.fabric.is_global_zero:
        _write_csv(ctx, found)
    num_checked = sum(len(labels) for _, labels, _, _ in parts)
    ctx.meta["label_issues"] = {"num_checked": num_checked, "csv": CSV_NAME,
                                "rows": [s.to_dict() for s in found[:REPORT_ROWS]]}
    _add_figure(ctx, found)
    return [label_issue_finding(found, num_checked, CSV_NAME,
                                *_expected(parts, probs, labels))]


def _expected(parts: list, probs: np.ndarray | None = None, labels: np.ndarray | None = None
              ) -> tuple[float, Callable[[], tuple[float, Calibration]]]:
    """Confident suspects a calibrated model with every label right would give over every
    part: from the model's probabilities, and (a callable: label_issue_finding fits it only
    when the count beats the first) from them recalibrated with the temperature fitted on
    all held-out rows together (label_calibration.py: one model, one miscalibration).
    `probs`, `labels`: every part's, concatenated, when the caller has them."""
    masks = [confident_mask(part[3]) for part in parts]  # one sort a part, both yardsticks
    expected = sum(expected_confident(part[3], confident=mask)
                   for part, mask in zip(parts, masks, strict=True))

    def recalibrated() -> tuple[float, Calibration]:
        calibration = fit_calibration(
            np.concatenate([p[3] for p in parts]) if probs is None else probs,
            np.concatenate([p[1] for p in parts]) if labels is None else labels)
        return sum(expected_confident(part[3], calibration.temperature, mask)
                   for part, mask in zip(parts, masks, strict=True)), calibration

    return expected, recalibrated


def _suspects_of(data: TaskData, parts: list) -> list[Suspect]:
    """Every held-out part's suspects, most suspect first over both parts together, each
    named by its row in the source."""
    found: list[Suspect] = []
    for part, labels, rows, probs in parts:
        found += suspects(probs, labels, rows, part, data.class_names, _files(data, part))
    found.sort(key=lambda s: s.p_given)
    return [_as_in_source(s, data) for s in found]


def _files(data: TaskData, part: str) -> list[str]:
    """The image paths a part's rows index: a source's own test part has its own."""
    return data.test_files if part == "test (own)" else data.files


def _held_out_probabilities(ctx: RunContext, model: nn.Module, test_outputs: torch.Tensor
                            ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(part, labels, row of the data as loaded, (N, C) probabilities as the model gives
    them) for validation and test; only the validation part is predicted here."""
    val = ctx.splits["val"]
    val_outputs = predict(model, val.loader(eval_batch_size("val", 1), shuffle=False,
                                            seed=0))[0] if len(val.y) else None
    return [(part, labels, rows, probabilities(outputs))
            for part, labels, rows, outputs in _held_out_parts(ctx, val_outputs, test_outputs)]


def _unweighted(ctx: RunContext, probs: np.ndarray) -> np.ndarray:
    """The probabilities with train.class_weights = "balanced" undone (prior_correction.py):
    the weights over-state each rare class by its weight, so on 3% positives every negative
    row the model leaned toward 'Fraud' read as a confident suspect (P 0.998 against a 0.002
    label) and no temperature explains a shift of the prior."""
    assert ctx.data is not None
    if ctx.config.train.class_weights != "balanced":
        return probs
    counts = np.bincount(np.asarray(ctx.splits["train"].y, dtype=np.int64),
                         minlength=probs.shape[1])
    return prior_corrected(probs, counts).astype(probs.dtype)


def _held_out_parts(ctx: RunContext, val_outputs: torch.Tensor | None,
                    test_outputs: torch.Tensor
                    ) -> list[tuple[str, np.ndarray, np.ndarray, torch.Tensor]]:
    """(part, labels, row of the data as loaded, outputs) for validation and test; a source's
    own test part is numbered on its own."""
    val, test = ctx.splits["val"], ctx.splits["test"]
    assert val.rows is not None  # the split records every validation row
    parts = [("validation", val, val.rows, val_outputs),
             ("test", test, test.rows, test_outputs) if test.rows is not None
             else ("test (own)", test, np.arange(len(test.y)), test_outputs)]
    return [_capped(ctx, part, np.asarray(arrays.y), rows, outputs)
            for part, arrays, rows, outputs in parts if len(rows)]


def _capped(ctx: RunContext, part: str, labels: np.ndarray, rows: np.ndarray,
            outputs: torch.Tensor) -> tuple[str, np.ndarray, np.ndarray, torch.Tensor]:
    assert ctx.data is not None
    limit = max(1, MAX_VALUES // max(2, ctx.data.num_classes))
    if len(rows) <= limit:
        return part, labels, rows, outputs
    keep = np.sort(np.random.default_rng(ctx.config.run.seed).choice(len(rows), limit,
                                                                     replace=False))
    return part, labels[keep], rows[keep], outputs[torch.as_tensor(keep)]


def _as_in_source(suspect: Suspect, data: TaskData) -> Suspect:
    """The suspect with its row in the source (rows dropped for a missing target, or left out by
    data.max_samples, shift the positions) and its identifier columns' values. A source's own
    test part is numbered on its own: its rows are their own."""
    if suspect.part == "test (own)":
        return suspect  # source_row None: its row is its own
    return replace(suspect, source_row=int(data.source([suspect.row])[0]),
                   ids={name: str(values[suspect.row]) for name, values in data.row_ids.items()})


def _write_csv(ctx: RunContext, found: list[Suspect]) -> None:
    """One line per suspect. `source_row_0based`: the row in the source file or DataFrame,
    0 = the first row under the header (a spreadsheet shows it as line source_row_0based + 2);
    then the identifier columns that were set aside (patient_id), for finding it."""
    assert ctx.data is not None
    fields = ["part", "source_row_0based", "file", "given", "suggested", "p_given",
              "p_suggested"]
    ids = {name: name if name not in fields else f"{name} (id)" for name in ctx.data.row_ids}
    fields[2:2] = list(ids.values())
    # a fresh file renamed over the old (not through a link: audit s16 S3); class names, ids
    # and headers as text a spreadsheet will not run (spreadsheet.py, S12)
    with replacing(ctx.run.path / CSV_NAME, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[safe_cell(f) for f in fields],
                                extrasaction="ignore")
        writer.writeheader()
        for suspect in found:
            row = {**suspect.to_dict(), "source_row_0based": suspect.named_row,
                   **{ids[name]: value for name, value in suspect.ids.items()},
                   "p_given": f"{suspect.p_given:.4f}",
                   "p_suggested": f"{suspect.p_suggested:.4f}"}
            writer.writerow({safe_cell(k): safe_cell(v) for k, v in row.items()})


def _add_figure(ctx: RunContext, found: list[Suspect]) -> None:
    """The first suspects drawn as images, for image data (and flat rows of a known image
    shape): a person decides at a glance whether the label or the model is wrong."""
    from trainwise.data.suspect_figure import plot_suspects

    assert ctx.data is not None
    if not found or not ctx.fabric.is_global_zero:
        return
    path = plot_suspects(ctx.data, found, ctx.run.figure_path("label_issues.png"),
                         root=ctx.config.data.source)
    if path is not None:
        ctx.meta["label_issues"]["figure"] = str(path.relative_to(ctx.run.path))


def _add_mistakes(ctx: RunContext, parts: list) -> None:
    """The test part's most confident wrong predictions drawn as images (true label, predicted
    class, its probability, file), whether or not their labels are suspected: after training,
    the errors are the first thing to look at (audit s13 I10). meta["mistakes"] counts them."""
    from trainwise.data.suspect_figure import MAX_SUSPECTS, MISTAKES_TITLE, plot_suspects

    data = ctx.data
    assert data is not None
    test = [p for p in parts if p[0].startswith("test")]
    if not test or not ctx.fabric.is_global_zero:
        return
    part, labels, rows, probs = test[0]
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    ctx.meta["mistakes"] = {"num_wrong": int(len(wrong)), "num_test": int(len(labels))}
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:MAX_SUSPECTS]
    shown = [_as_in_source(suspect_at(int(k), int(predicted[k]), probs, labels, rows, part,
                                      data.class_names, _files(data, part)), data)
             for k in order]
    path = plot_suspects(data, shown, ctx.run.figure_path("mistakes.png"), MISTAKES_TITLE,
                         root=ctx.config.data.source)
    if path is not None:
        ctx.meta["mistakes"]["figure"] = str(path.relative_to(ctx.run.path))
