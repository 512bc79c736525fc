"""The staged pipeline: data -> split -> model -> check -> tune -> train -> evaluate -> report.

Each stage returns findings; an error finding stops the recipe before the next stage and the
report still gets written, so a failed run explains itself.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lightning_fabric import Fabric
from torch import nn

from trainwise.config import Config, from_dict, load_config, to_toml
from trainwise.console import configure_threads, console, print_findings, stage_table
from trainwise.findings import Finding, Severity, TrainwiseError, error, errors
from trainwise.rundir import RunDir, git_revision, library_versions
from trainwise.stages import RunContext, stage_data, stage_model, stage_split
from trainwise.stages_training import stage_check, stage_evaluate, stage_train, stage_tune

STAGES: list[tuple[str, Callable[[RunContext], list[Finding]]]] = [
    ("data", stage_data), ("split", stage_split), ("model", stage_model),
    ("check", stage_check), ("tune", stage_tune), ("train", stage_train),
    ("evaluate", stage_evaluate),
]

_REVISIT = {"data": "data", "split": "data", "model": "model", "check": "model",
            "tune": "tune", "train": "tune", "evaluate": "train"}


@dataclass
class RunResult:
    path: Path
    findings: list[Finding]
    verdict: str
    stopped_at: str | None = None
    test: dict[str, Any] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.stopped_at is None

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"


def resolve_config(config: Config | str | Path | dict | None,
                   overrides: list[str] | None = None) -> Config:
    if isinstance(config, Config):
        return from_dict(config.model_dump(), overrides)
    if isinstance(config, dict):
        return from_dict(config, overrides)
    return load_config(config, overrides)


def _run_stage(name: str, stage: Callable[[RunContext], list[Finding]],
               ctx: RunContext) -> list[Finding]:
    """Run one stage; our own errors become findings, anything else a finding plus a log."""
    try:
        return stage(ctx)
    except TrainwiseError as exc:
        return [error(name, "stage_failed", str(exc),
                      f"Fix the input as the message says, then rerun (revisit the "
                      f"{_REVISIT[name]} stage).")]
    except Exception as exc:  # a bug in a user model or in ours: keep the traceback, explain
        log = ctx.run.write_text("error.log", traceback.format_exc())
        return [error(name, "unexpected_error", f"{type(exc).__name__} during the {name} "
                      f"stage: {exc}", f"See the traceback in {log}. If it comes from your "
                      f"model, fix it there; otherwise report it as a trainwise bug.")]


def _verdict(ctx: RunContext, findings: list[Finding], stopped_at: str | None) -> str:
    if stopped_at:
        first = errors(findings)[0]
        return f"Stopped at the {stopped_at} stage: {first.message} Fix: {first.fix}"
    num_warnings = sum(f.severity is Severity.WARNING for f in findings)
    test = ctx.meta.get("test", {})
    if "test_accuracy" in test:
        headline = f"Test accuracy {test['test_accuracy']:.1%}"
    elif "test_rmse" in test:
        headline = f"Test RMSE {test['test_rmse']:.4g}"
    else:
        headline = "Finished the requested stages"
    return f"{headline}; {num_warnings} warning(s) to read in the report."


def _start(config: Config) -> tuple[RunContext, list[Finding]]:
    threads, findings = configure_threads(config.run.threads)
    fabric = Fabric(accelerator=config.run.accelerator, devices=1)
    fabric.seed_everything(config.run.seed, verbose=False)
    name = config.run.name or Path(config.data.source).stem
    run = RunDir.create(config.run.out_dir, name)
    run.write_text("config.toml", to_toml(config))
    meta = {"name": name, "created": datetime.now().isoformat(timespec="seconds"),
            "seed": config.run.seed, "config": config.model_dump(),
            "versions": library_versions(), "git_revision": git_revision(),
            "threads": threads, "device": str(fabric.device), "stage_seconds": {}}
    return RunContext(config=config, run=run, fabric=fabric, meta=meta), findings


def run(config: Config | str | Path | dict | None = None, *, model: nn.Module | None = None,
        overrides: list[str] | None = None, until: str = "evaluate",
        report: bool = True) -> RunResult:
    """The whole method on one data set; `until` stops after that stage (e.g. "check")."""
    ctx, findings = _start(resolve_config(config, overrides))
    ctx.user_model = model
    stopped_at = None
    stages_done = []
    for name, stage in STAGES:
        started = time.perf_counter()
        if name == "train":  # training draws its own progress bar
            stage_findings = _run_stage(name, stage, ctx)
        else:
            with console.status(f"[bold]{name}[/]..."):
                stage_findings = _run_stage(name, stage, ctx)
        seconds = time.perf_counter() - started
        ctx.meta["stage_seconds"][name] = round(seconds, 3)
        findings += stage_findings
        stages_done.append({"name": name, "seconds": seconds, "findings": stage_findings})
        if errors(stage_findings):
            stopped_at = name
            break
        if name == until:
            break
    return _finish(ctx, findings, stopped_at, stages_done, report)


def _finish(ctx: RunContext, findings: list[Finding], stopped_at: str | None,
            stages_done: list[dict[str, Any]], report: bool) -> RunResult:
    verdict = _verdict(ctx, findings, stopped_at)
    ctx.meta["verdict"] = verdict
    ctx.run.write_findings(findings)
    ctx.run.write_json("meta.json", ctx.meta)
    if report:
        from trainwise.reporting import build_report

        started = time.perf_counter()
        build_report(ctx.run.path)
        stages_done.append({"name": "report", "seconds": time.perf_counter() - started,
                            "findings": []})
        ctx.meta["stage_seconds"]["report"] = round(time.perf_counter() - started, 3)
        ctx.run.write_json("meta.json", ctx.meta)
    console.print(stage_table(stages_done))
    print_findings(findings)
    style = "bold red" if stopped_at else "bold green"
    console.print(f"[{style}]{verdict}[/]")
    if report:
        console.print(f"Report: {ctx.run.report_path}")
    return RunResult(ctx.run.path, findings, verdict, stopped_at, ctx.meta.get("test", {}),
                     dict(ctx.meta["stage_seconds"]))
