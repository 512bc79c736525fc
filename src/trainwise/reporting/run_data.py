"""A run folder, read once: the files of docs/run_folder.md as the report needs them.

Everything optional in a run folder is optional here too: a run that failed at the data
stage has only meta.json and findings.json, and its report matters most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainwise.findings import Finding, TrainwiseError
from trainwise.rundir import read_findings, read_history
from trainwise.train.monitor_folder import MONITOR_SOURCE
from trainwise.train.prior_correction import is_class_weighted

Row = dict[str, Any]


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
        findings=_findings(path),
        lr_range=_read_json(path / "lr_range.json"),
        tune=_read_json(path / "tune.json"),
        model_summary=_read_json(path / "model_summary.json"),
    )


def _findings(path: Path) -> list[Finding]:
    """findings.json's rows. One that is not JSON (overwritten by another tool: review s16
    VX2, a predictions table) is an error naming the file, as a bad history.jsonl line is."""
    try:
        return read_findings(path)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TrainwiseError(
            f"{path / 'findings.json'} is not the findings list trainwise writes ({exc}): "
            "something else overwrote it. Restore it from a copy of the run folder, or delete "
            "it and rerun `trainwise report`: the report then says the findings are missing."
        ) from exc


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


def standardised_target(run: RunData) -> bool:
    """Whether the losses are the MSE of a target standardised by the training split's mean
    and std: every regression `trainwise run` trains (stages_split._make_arrays), so 1.0 is
    predicting that mean. A Monitor's loss is whatever the user's loop computed."""
    return run.data.get("task") == "regression" and run.meta.get("source") != MONITOR_SOURCE


def class_counts(run: RunData) -> dict[str, list[int]]:
    """Rows per class of each split ({"train": [...], "val": ..., "test": ...}); for a run that
    stopped before the split (`trainwise audit`), of the whole data set from the data stage's
    audit, and of the source's own test part if it has one: METHOD.md §1 looks at the balance
    first (audit s8 R6)."""
    if run.data.get("class_counts"):
        return {part: list(c) for part, c in run.data["class_counts"].items()}
    audit = run.data.get("audit") or {}
    counts = {"all rows": audit.get("class_counts"),
              "own test part": audit.get("test_class_counts")}
    return {part: list(c) for part, c in counts.items() if c}
