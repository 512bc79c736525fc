"""The report's model section: the layer table's batch dimension, which tensors AdamW decays,
and which init rule each kind of layer got. Pure: model_summary.json and findings -> rows."""

from __future__ import annotations

import math
from typing import Any

from trainwise.findings import Finding
from trainwise.model.init import init_groups
from trainwise.model.summary import leading_size

Row = dict[str, Any]
NUM_NAMES = 4  # tensor names shown per row of the weight-decay table
INIT_CODES = ("init", "init_kept")  # the model stage's findings whose evidence has "layers"


def traced_batch(model_summary: Row | None) -> int | None:
    """How many samples the shape trace ran on: recorded since model_summary.json has
    batch_size, else read off the first layer's input shape (older run folders)."""
    summary = model_summary or {}
    if isinstance(summary.get("batch_size"), int):
        return summary["batch_size"]
    rows = summary.get("rows") or [{}]
    return leading_size(rows[0].get("input_shape"))


def batch_first(shape: Any, batch: int | None) -> Any:
    """[64, 8, 8] -> ["B", 8, 8] when 64 is the traced batch: the trace's batch is an
    accident of the check (digits read `Flatten 64 × 64`, a square matrix to the eye), and
    a leading number that is not the batch (a reshape that mixed samples) stays a number."""
    if not isinstance(shape, list) or not shape or batch is None:
        return shape
    if isinstance(shape[0], list):  # a layer with several inputs: each has its batch
        return [batch_first(s, batch) for s in shape]
    return ["B", *shape[1:]] if shape[0] == batch else shape


def decay_rows(weight_decay: Row | None) -> list[Row]:
    """model_summary.json's {"value", "params": optim.group_table rows} -> one row per
    (decayed?, reason): counts of tensors and parameters, and the decay applied. Tied weights'
    "; tied with ..." is left out of the reason (they are counted once, under one name)."""
    if not weight_decay or not weight_decay.get("params"):
        return []
    groups: dict[tuple[bool, str], Row] = {}
    for param in weight_decay["params"]:
        reason = str(param.get("reason", "")).split(";")[0]
        row = groups.setdefault((bool(param.get("decay")), reason), {
            "decay": bool(param.get("decay")), "reason": reason, "num_tensors": 0,
            "num_params": 0, "weight_decay": param.get("weight_decay", 0.0), "names": []})
        row["num_tensors"] += 1
        row["num_params"] += math.prod(param.get("shape") or [])
        row["names"].append(param.get("name", "?"))
    rows = sorted(groups.values(), key=lambda r: (not r["decay"], -r["num_params"]))
    for row in rows:  # a few names say which tensors; a large model has hundreds
        row["examples"] = _examples(row.pop("names"))
    return rows


def _examples(names: list[str]) -> str:
    """The first NUM_NAMES names, and how many there are when more."""
    return ", ".join(names[:NUM_NAMES]) + (
        f", … ({len(names)} in all)" if len(names) > NUM_NAMES else "")


def decay_totals(rows: list[Row]) -> dict[str, int]:
    """Tensors and parameters decayed / not decayed, for the sentence above the table."""
    return {f"{side}_{unit}": sum(r[f"num_{unit}"] for r in rows
                                  if r["decay"] is (side == "decayed"))
            for side in ("decayed", "kept") for unit in ("tensors", "params")}


def weight_decay_section(model_summary: Row | None) -> Row | None:
    """The template's weight-decay block: the value, the grouped rows and their totals; None
    for a run folder written before model_summary.json recorded it."""
    recorded = (model_summary or {}).get("weight_decay")
    rows = decay_rows(recorded)
    if not rows:
        return None
    return {"value": recorded.get("value"), "rows": rows, **decay_totals(rows)}


def init_rows(findings: list[Finding]) -> list[Row]:
    """The model stage's init records (its `init` finding's evidence, or `init_kept`'s for a
    user's own model: each Linear/Conv layer's std beside the policy's, audit s15 M6), grouped
    by layer type and rule, each with the names of its layers: what the finding's evidence
    holds as a list of dicts, which prints cut off after a few characters."""
    found = next((f for f in findings if f.stage == "model" and f.code in INIT_CODES), None)
    records = found.evidence.get("layers") if found is not None else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return []
    rows = init_groups(records)
    for row in rows:
        names = row.pop("names")
        row["num_layers"] = len(names)
        row["examples"] = _examples(names)
    return rows
