"""After the test: which held-out rows look mislabelled (train/label_issues.py), written to
label_issues.csv, meta["label_issues"] and, for images, a figure of the first suspects.

Part of the evaluate stage; kept apart because it reads the split's row indices and the data
as loaded, which the test's metrics do not need.
"""

from __future__ import annotations

import csv

import numpy as np
from torch import nn

from trainwise.findings import Finding
from trainwise.stages import Arrays, RunContext, eval_batch_size
from trainwise.train.evaluate import predict
from trainwise.train.label_issues import (
    Suspect,
    label_issue_finding,
    probabilities,
    suspects,
)

CSV_NAME = "label_issues.csv"
MAX_VALUES = 20_000_000  # rows x classes per part (80 MB of float32 probabilities); a larger
# part is checked on a seeded sample of its rows, and the finding counts what was checked
REPORT_ROWS = 20  # suspects listed in the report; the CSV holds them all


def stage_label_issues(ctx: RunContext, model: nn.Module) -> list[Finding]:
    """Every process predicts the same whole parts (an FSDP forward needs all of them); the
    first one writes the files. Rows are named by their position in the data as loaded, as
    split.npz records them."""
    data = ctx.data
    assert data is not None
    if data.task != "classification":
        return []
    found: list[Suspect] = []
    num_checked = 0
    for part, arrays, rows in _held_out_parts(ctx):
        outputs, labels = predict(model, arrays.loader(eval_batch_size(part, 1), shuffle=False,
                                                       seed=0))
        probs = probabilities(outputs)
        num_checked += len(labels)
        found += suspects(probs, labels.numpy(), rows, part, data.class_names,
                          data.files if part != "test (own)" else None)
    if not num_checked:
        return []
    found.sort(key=lambda s: s.p_given)  # both parts together, most suspect first
    if ctx.fabric.is_global_zero:
        _write_csv(ctx, found)
    ctx.meta["label_issues"] = {"num_checked": num_checked, "csv": CSV_NAME,
                                "rows": [s.to_dict() for s in found[:REPORT_ROWS]]}
    _add_figure(ctx, found)
    return [label_issue_finding(found, num_checked, CSV_NAME)]


def _held_out_parts(ctx: RunContext) -> list[tuple[str, Arrays, np.ndarray]]:
    """(part, arrays, row of the data as loaded for each of its rows) for validation and test;
    a source's own test part is numbered on its own."""
    val, test = ctx.splits["val"], ctx.splits["test"]
    parts = [("validation", val, val.rows if val.rows is not None else np.arange(len(val.y))),
             ("test", test, test.rows) if test.rows is not None
             else ("test (own)", test, np.arange(len(test.y)))]
    return [_capped(ctx, part, arrays, rows) for part, arrays, rows in parts if len(rows)]


def _capped(ctx: RunContext, part: str, arrays: Arrays,
            rows: np.ndarray) -> tuple[str, Arrays, np.ndarray]:
    assert ctx.data is not None
    limit = max(1, MAX_VALUES // max(2, ctx.data.num_classes))
    if len(rows) <= limit:
        return part, arrays, rows
    keep = np.sort(np.random.default_rng(ctx.config.run.seed).choice(len(rows), limit,
                                                                     replace=False))
    return part, Arrays(arrays.x[keep], arrays.y[keep]), rows[keep]


def _write_csv(ctx: RunContext, found: list[Suspect]) -> None:
    fields = ["part", "row", "file", "given", "suggested", "p_given", "p_suggested"]
    with open(ctx.run.path / CSV_NAME, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for suspect in found:
            row = suspect.to_dict()
            row["p_given"], row["p_suggested"] = (f"{row['p_given']:.4f}",
                                                  f"{row['p_suggested']:.4f}")
            writer.writerow(row)


def _add_figure(ctx: RunContext, found: list[Suspect]) -> None:
    """The first suspects drawn as images, for image data (and flat rows of a known image
    shape): a person decides at a glance whether the label or the model is wrong."""
    from trainwise.data.suspect_figure import plot_suspects

    assert ctx.data is not None
    if not found or not ctx.fabric.is_global_zero:
        return
    path = plot_suspects(ctx.data, found, ctx.run.figure_path("label_issues.png"))
    if path is not None:
        ctx.meta["label_issues"]["figure"] = str(path.relative_to(ctx.run.path))
