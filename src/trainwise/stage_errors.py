"""One stage run, with what it raises turned into findings: our own errors name the stage to
revisit, running out of memory asks for a smaller batch, and a forward that raised on a batch
unlike the model stage's names the layer; anything else keeps its traceback in error.log.

Apart from recipe.py so the pipeline reads as its stages; a failed stage still ends as an
error finding, so the report gets written and a failed run explains itself.
"""

from __future__ import annotations

import errno
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

from trainwise.findings import Finding, TrainwiseError, error
from trainwise.model.baselines import ModelError
from trainwise.model.forward_errors import forward_failed, layer_that_raised
from trainwise.rundir import RunFolderError, remove_partials
from trainwise.safe_write import UnsafeFolderError
from trainwise.stages import RunContext
from trainwise.tune.batch_size import is_oom

# What a wrong input shape raises inside a forward (mat1 and mat2, an index out of range, a
# shape assert); anything else from the forward (NameError, TypeError) is a plain bug there.
_SHAPE_ERRORS = (RuntimeError, ValueError, IndexError, AssertionError)

# the disk is full, or the user's quota is: space to free, not a bug to report
_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)

_REVISIT = {"data": "data", "split": "data", "model": "model", "check": "model",
            "tune": "tune", "train": "tune", "evaluate": "train"}


def run_stage(name: str, stage: Callable[[RunContext], list[Finding]],
              ctx: RunContext) -> list[Finding]:
    """Run one stage; our own errors become findings, anything else a finding plus a log."""
    try:
        return stage(ctx)
    except UnsafeFolderError as exc:  # a link in the run folder, not the stage's input: its
        # message names the rm to run ("revisit the tune stage" sent the user astray)
        return [error(name, "unsafe_run_folder", str(exc),
                      "Delete the link the message names, then run the command again; "
                      "nothing was written outside the run folder.")]
    except TrainwiseError as exc:  # a ModelError (e.g. the loss refusing the output's shape)
        revisit = "model" if isinstance(exc, ModelError) else _REVISIT[name]  # is the model's
        return [error(name, "stage_failed", str(exc),
                      f"Fix the input as the message says, then rerun (revisit the "
                      f"{revisit} stage).")]
    except Exception as exc:  # a bug in a user model or in ours: keep the traceback, explain
        if is_out_of_space(exc):  # the disk, not a bug: error.log would not fit either;
            raise  # the recipe stops the run with where to free space and how to resume
        return _unexpected(name, exc, ctx)


def _unexpected(name: str, exc: Exception, ctx: RunContext) -> list[Finding]:
    """Anything else keeps its traceback in error.log, and says whose it likely is."""
    log = ctx.run.write_text("error.log", traceback.format_exc())
    if is_oom(exc):  # first: it passes through the forward too, but no shape is at fault
        return [_out_of_memory(name, exc, ctx, log)]
    layer = layer_that_raised(exc, ctx.model)
    if layer is not None and isinstance(exc, _SHAPE_ERRORS):
        return [_forward_raised(name, exc, layer, log)]
    where = f" in your model's layer '{layer}'" if layer is not None else ""
    return [error(name, "unexpected_error", f"{type(exc).__name__}{where} during the "
                  f"{name} stage: {exc}", f"See the traceback in {log}. If it comes from "
                  f"your model, fix it there; otherwise report it as a trainwise bug.")]


def _out_of_memory(name: str, exc: Exception, ctx: RunContext, log: Path) -> Finding:
    """The device ran out of memory: a smaller batch is the fix, not the model's shapes;
    in the evaluate stage the test split's probabilities first (_evaluate_memory)."""
    config = getattr(ctx, "config", None)
    size = f" (now {config.train.batch_size})" if config is not None else ""
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    held = _evaluate_memory(ctx) if name == "evaluate" else ""
    fix = (f"Lower train.batch_size{size}, or set tune.batch_size = \"auto\" to pick "
           "the largest size that fits with headroom; then revisit the tune stage. A "
           "smaller model or shorter inputs (model stage) also help.")
    return error(name, "out_of_memory", f"the device ran out of memory during the {name} "
                 f"stage: {first_line}",
                 f"{held}{fix if not held else ' If that is small: ' + fix[0].lower() + fix[1:]}"
                 " Other programs on the same device take memory too (traceback in "
                 f"{log}).", exception=f"{type(exc).__name__}: {first_line}")


def _evaluate_memory(ctx: RunContext) -> str:
    """What the evaluate stage holds whatever the batch size: every test row's class
    probabilities at once. 6,000 test rows x 15,000 classes are 360 MB in float32, and the
    metrics copy them; that run was told to lower train.batch_size (audit s16 S9). '' for
    regression or before the split."""
    data, test = getattr(ctx, "data", None), getattr(ctx, "splits", {}).get("test")
    if data is None or test is None or data.task != "classification":
        return ""
    rows, classes = len(test.y), len(data.class_names)
    megabytes = rows * classes * 4 / 1e6
    return (f"The evaluate stage keeps every test row's class probabilities at once: {rows} "
            f"rows x {classes} classes = {megabytes:,.0f} MB in float32, copied by the "
            "metrics, whatever train.batch_size. Fewer classes shrink it (is data.target the "
            "column to predict? merge rare classes into fewer: data stage), or fewer rows "
            "(data.max_samples).")


def _forward_raised(name: str, exc: Exception, layer: str, log: Path) -> Finding:
    """The model's own forward raised after the model stage's checks passed: a batch unlike
    theirs (a short last batch, a batch of one) or state that changes in training mode."""
    return forward_failed(layer, exc, None, name, None, fix=(
        "The model stage's checks ran it on full batches in eval mode; this batch differed: "
        "look for a fixed batch size, .squeeze() or .view(-1, ...) that breaks on a short "
        "last batch (train.batch_size does not divide the training rows), or code that runs "
        f"only in training mode. Fix the forward and revisit the model stage (traceback in "
        f"{log})."))


def is_out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _OUT_OF_SPACE


def out_of_space(exc: OSError, run_dir: Path, resume: str | None) -> RunFolderError:
    """One actionable line for a full disk mid-run, instead of a traceback chained through a
    failed error.log (audit s15 O1: 74 lines, exit 1, no resume hint); exit 1 as a run folder
    that cannot be used. Partial *.tmp files are removed first: they hold the space."""
    remove_partials(run_dir)
    try:
        free = f"{shutil.disk_usage(run_dir).free:,} bytes free now"
    except OSError:
        free = "free space unknown"
    what = "the user's disk quota ran out" if exc.errno == errno.EDQUOT else \
        "the disk ran out of space"
    file = f" while writing '{exc.filename}'" if exc.filename else ""
    written = (run_dir / "checkpoints" / "last.pt").is_file()
    then = f"continue with: {resume}" + (
        " (it goes on from the last checkpoint that was written whole)." if written else ".") \
        if resume else f"run the same command again (it starts over, every stage seeded; the " \
        f"folder '{run_dir}' can be deleted)."  # `resume` None: nothing to go on from
    return RunFolderError(
        f"{what}{file} ({free}; {exc.strerror}), so the run in '{run_dir}' stopped. Free "
        f"space on that disk (or raise the quota), then {then}")
