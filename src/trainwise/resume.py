"""`trainwise run --resume RUN_DIR`: continue a killed run in its own folder.

With a training checkpoint (checkpoints/last.pt, first written when training starts), the data
is reloaded without its audit, the split comes from split.npz, the check and tune stages are
skipped (their findings are in findings.json), and training continues from the checkpoint.
Without one the run was killed before training: it is run again from the start in the same
folder, which gives the same result since every stage is seeded.
"""

from __future__ import annotations

import functools
import json
import shutil
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xxhash
from rich.markup import escape

from trainwise.command_line import shell_word
from trainwise.config import Config, to_toml
from trainwise.console import console
from trainwise.findings import Finding, TrainwiseError, error, info
from trainwise.rundir import (
    RunDir,
    RunFolderError,
    read_findings,
    remove_partials,
)
from trainwise.stages import RunContext, load_subset
from trainwise.stages_split import _fingerprint, _make_arrays
from trainwise.train.checkpoint import (
    load_checkpoint,
    rerun_after_deleting,
)
from trainwise.trained_run import run_config

# Keys that say how or where to run, not what to train: they may change on resume.
RUNTIME_KEYS = frozenset({
    "run.name", "run.out_dir", "run.threads", "run.accelerator", "run.devices", "run.num_nodes",
    "run.strategy", "run.checkpoint_every_steps", "train.log_every", "train.layer_every",
    "train.accumulate_grad_batches", "run.precision",
    "model.folder",  # where the module lives (a moved project) does not change what is trained
    # the module passed is checked by its weights' shapes; keyed, it would change the tag of
    # every checkpoint written before the key existed (so none could resume)
    "model.user_class"})
# May change on resume too, but stays in the fingerprint (see _with_saved_budget).
BUDGET_KEY = "train.max_minutes"
# Stages whose findings a resumed run keeps from the first attempt (model is rebuilt).
KEPT_STAGES = ("setup", "data", "split", "check", "tune")


@dataclass
class ResumeContext(RunContext):
    source: Path | None = None  # the run folder (ranks > 0 write into a scratch folder)
    checkpoint: dict[str, Any] | None = None  # the loaded checkpoint to continue from
    preloaded: Any = None  # the data a restart compared with meta.json's; stage_data takes it


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a stage, with where it happened. Its message (what a notebook shows) says
    how to go on from Python and from a shell; the command line prints its own line instead.
    `until` and `report`: the interrupted call's, which the resuming call repeats.
    `model_class`: the class of the user's own module (run(model=net)), which the resuming
    call must pass again: without it the folder's config builds the built-in model.
    `is_global_zero`: False on ranks 1..N-1 of a multi-process run, which each raise it too
    (SIGTERM reaches every task): only rank 0 prints --json's line (review VO2)."""

    def __init__(self, stage: str, run_dir: Path, *, until: str = "evaluate",
                 report: bool = True, model_class: str | None = None,
                 is_global_zero: bool = True):
        self.stage, self.run_dir = stage, Path(run_dir)
        self.until, self.report, self.model_class = until, report, model_class
        self.is_global_zero = is_global_zero
        super().__init__(stage)  # the message is built when shown: it reads the checkpoint

    def __str__(self) -> str:
        if "_message" not in self.__dict__:
            self._message = interrupted_message(self, self.python_call()) + \
                self._model_note() + self._shell_hint()
        return self._message

    @functools.cached_property
    def saved_at(self) -> str | None:
        """Where checkpoints/last.pt continues ('step 415 (epoch 38)'), None if unreadable.
        Read once and memory-mapped: the file holds about 4x the model (its weights, AdamW's
        two moments, the best weights), of which this needs two numbers; loading it all made
        Ctrl-C on a large model wait, and a second Ctrl-C then lost this message."""
        try:
            with warnings.catch_warnings():  # torch's own advice on a refused file: see
                warnings.simplefilter("ignore")  # checkpoint.why_unreadable
                payload = torch.load(self.run_dir / "checkpoints" / "last.pt", mmap=True,
                                     map_location="cpu", weights_only=True)
            return saved_position(payload)
        except Exception:  # torch raises RuntimeError, UnpicklingError, EOFError, ...; a
            return None  # foreign dict KeyError or TypeError: unreadable all the same

    def python_call(self) -> str:
        """trainwise.run(resume='DIR', ...): resume= takes the folder's own config.toml."""
        if self.stage == "report":  # every stage is done: only the report is rebuilt
            return f"trainwise.report({str(self.run_dir)!r})"
        extra = (", model=net" if self.model_class else "") + \
            (f", until={self.until!r}" if self.until != "evaluate" else "") + \
            (", report=False" if not self.report else "")
        return f"trainwise.run(resume={str(self.run_dir)!r}{extra})"

    def _model_note(self) -> str:
        if not self.model_class:
            return ""
        return (f", where net is your {self.model_class}: the same object, or a new one built "
                "the same way (the checkpoint's weights are loaded into it)")

    def shell_command(self) -> str | None:
        """The shell line that goes on, or None where none does what the call did."""
        if self.stage == "report":
            return f"trainwise report {shell_word(self.run_dir)}"
        if self.until != "evaluate":  # `trainwise run --resume` would go on to the end
            return None
        if self.model_class:  # a shell cannot pass a Python object as the model
            return None
        if (self.run_dir / "checkpoints" / "last.pt").exists() and self.saved_at is None:
            return None  # the message says to delete the file first; a bare command contradicts it
        return resume_command(self.run_dir, report=self.report)

    def continue_with(self) -> str:
        """One way on, for a message that has room for one (a full disk, review VO7): the shell
        line where one does what the call did, else the Python call."""
        return self.shell_command() or self.python_call() + self._model_note()

    def _shell_hint(self) -> str:
        command = self.shell_command()
        return f"\nFrom a shell: {command}" if command else ""

    def __reduce__(self) -> tuple[Any, ...]:  # a pickled copy (a started process) rebuilds it
        return (_rebuilt, (self.stage, self.run_dir, self.until, self.report, self.model_class,
                           self.is_global_zero))


def _rebuilt(stage: str, run_dir: Path, until: str, report: bool,
             model_class: str | None = None, is_global_zero: bool = True) -> RunInterrupted:
    return RunInterrupted(stage, run_dir, until=until, report=report, model_class=model_class,
                          is_global_zero=is_global_zero)


def resume_command(run_dir: Path, command: str = "run", *, report: bool = True) -> str:
    """`trainwise run --resume DIR [--no-report]`: the shell line that continues a run (run and
    train take --resume), said alike by the exception and the command line."""
    return f"trainwise {command} --resume {shell_word(run_dir)}" + (
        "" if report else " --no-report")


def saved_position(checkpoint: dict[str, Any]) -> str:
    """'step 564, the end of epoch 2' or 'step 600, 36 batches into epoch 3': where a
    checkpoint continues. The saved epoch is the one in progress (the next one between
    epochs), so "(epoch 3)" read as three epochs done (audit s10 S5)."""
    step = int(checkpoint["train_state"]["step"])
    progress = checkpoint.get("progress") or {}
    if "epoch" not in progress:  # an older checkpoint: the epoch as it was written
        return f"step {step} (epoch {int(checkpoint['train_state']['epoch'])})"
    epoch, batches = int(progress["epoch"]), int(progress.get("batches_done", 0))
    if batches:
        return f"step {step}, {batches} batches into epoch {epoch}"
    return f"step {step}, the end of epoch {epoch - 1}" if epoch > 1 else \
        f"step {step}, before the first epoch"


def interrupted_message(exc: RunInterrupted, resume_command: str | None) -> str:
    """One line: the stage, the run folder and its last checkpoint, and how to go on.

    `resume_command`: the command line that resumes (`trainwise run --resume DIR`), or None
    for a command without --resume (`trainwise check`), which is simply run again."""
    if exc.stage == "report":  # after every stage: a rerun would retrain for nothing
        rebuild = resume_command if resume_command and resume_command.startswith(
            "trainwise.report") else f"trainwise report {shell_word(exc.run_dir)}"
        return (f"Interrupted while finishing run folder {exc.run_dir}: its stages are done "
                f"(meta.json holds the verdict), only report.html may be missing or cut short. "
                f"Rebuild it with: {rebuild}")
    where = f"Interrupted during the {exc.stage} stage of run folder {exc.run_dir}"
    if resume_command is None:
        return f"{where}. Run the same command again to start over (every stage is seeded)."
    last = exc.run_dir / "checkpoints" / "last.pt"
    if not last.exists():
        saved = "no training checkpoint yet, so resuming restarts it from the data stage " \
            "(every stage is seeded)"
    else:
        if exc.saved_at is None:
            return (f"{where}; its last checkpoint {last} is unreadable, so training cannot "
                    f"continue from it: {rerun_after_deleting(resume_command)}, or start a "
                    "new run.")
        saved = (f"its last checkpoint {last} is at {exc.saved_at} (training after it is "
                 "redone on resume; run.checkpoint_every_steps saves more often)")
    return f"{where}; {saved}. Continue with: {resume_command}"


def training_config(config: Config | dict[str, Any]) -> dict[str, Any]:
    """The config (or its model_dump) as flat `section.key` values, without RUNTIME_KEYS."""
    dumped = config.model_dump() if isinstance(config, Config) else config
    flat = {f"{section}.{key}": value for section, values in dumped.items()
            for key, value in values.items()}
    return {key: value for key, value in flat.items() if key not in RUNTIME_KEYS}


def config_tag(config: Config) -> str:
    """Fingerprint of what is trained: a checkpoint only resumes under the same one."""
    text = json.dumps(training_config(config), sort_keys=True, default=str)
    return xxhash.xxh64(text.encode()).hexdigest()


def checkpoint_extra(meta: dict[str, Any], lr: float) -> dict[str, Any]:
    """What a checkpoint records to be validated and resumed: the fingerprint and config of
    the run as it started (meta), and the tuned learning rate."""
    return {"tag": meta["config_tag"], "config": training_config(meta["config"]), "lr": lr}


def resumed_config(run_dir: str | Path, overrides: list[str] | None) -> Config:
    """The folder's config.toml, strictly: a key this trainwise does not know (a folder written
    by another version) or a value it refuses is the folder's fault, not the command line's:
    exit 1 naming the file to edit and the version that wrote it (audit s16 D2: exit 2 with
    neither). Only then the overrides, whose errors are the user's (exit 2)."""
    return run_config(RunDir.open(run_dir).path, strict=True, overrides=overrides)


def keep_new_budget(run: RunDir, source: Path, config: Config) -> None:
    """config.toml takes a resume's new train.max_minutes: it is the run's resolved config, and
    the next plain `--resume` (the command an interrupt prints) read the old budget back from
    it, e.g. 0 = unlimited after a 30-minute SLURM resume (review VO3). Only that key: the rest
    of a resume's --set (run.devices, ...) is for this attempt."""
    on_disk = resumed_config(source, None)
    if on_disk.train.max_minutes == config.train.max_minutes:
        return
    train = on_disk.train.model_copy(update={"max_minutes": config.train.max_minutes})
    run.write_text("config.toml", to_toml(on_disk.model_copy(update={"train": train})))


def find_checkpoint(run_dir: Path, config: Config) -> dict[str, Any] | None:
    """The run's last complete checkpoint, validated against `config`; None if training never
    started. A truncated or foreign last.pt is an error, never silently skipped."""
    path = run_dir / "checkpoints" / "last.pt"
    if not path.exists():
        return None
    config = _with_saved_budget(config, path)
    return load_checkpoint(path, tag=config_tag(config), config=training_config(config),
                           defaults=training_config(Config()),
                           routes={"train.max_epochs": more_epochs_route(run_dir)})


def _with_saved_budget(config: Config, path: Path) -> Config:
    """`config` checked with the checkpoint's own train.max_minutes: a wall-clock budget says
    how long to train, not what, and a run stopped by a cluster's time limit is resumed with a
    new one (audit s15 K18). It stays in the config fingerprint, which every checkpoint
    written so far carries; read memory-mapped (two numbers of a file 4x the model)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, mmap=True, map_location="cpu", weights_only=True)
        saved = float(payload["extra"]["config"][BUDGET_KEY])
    except Exception:  # unreadable or foreign: load_checkpoint says why
        return config
    train = config.train.model_copy(update={"max_minutes": saved})
    return config.model_copy(update={"train": train})


def more_epochs_route(run_dir: Path) -> str:
    """A Lightning user extends training by resuming with a larger max_epochs (audit s12
    L12); here the schedule is built for max_epochs, so a resume cannot stretch it, but a new
    run can start from the weights. Checked on digits: a second run from load_model's net
    (4 epochs trained, best val loss 0.0802) started at 0.0817, not at a fresh model's 0.31."""
    return ("To train more epochs from this run's weights, start a new run from them (a new "
            "schedule over the epochs you ask): in Python, net = trainwise.load_model("
            f"\"{run_dir}\"); trainwise.run(\"{run_dir / 'config.toml'}\", model=net, "
            "overrides=[\"train.max_epochs=N\", 'model.init=\"keep\"']) with N the epochs "
            "to add (the new run keeps net's weights and writes a new run folder).")


def earlier_findings(run_dir: Path) -> list[Finding]:
    try:
        return [f for f in read_findings(run_dir) if f.stage in KEPT_STAGES]
    except (ValueError, TypeError, KeyError) as exc:
        raise RunFolderError(f"'{run_dir / 'findings.json'}' is unreadable ({exc}). Delete it to "
                             "resume without the earlier findings.") from None


def resume_state(run: RunDir, checkpoint: dict[str, Any] | None,
                 is_writer: bool) -> dict[str, Any] | None:
    """The checkpoint plus the history rows it knows; rank 0 truncates history.jsonl to them."""
    if checkpoint is None:
        return None
    num_rows = int(checkpoint["train_state"]["num_history_rows"])
    rows = run.keep_history(num_rows) if is_writer else []
    return {**checkpoint, "history": rows}


def stage_data_reload(ctx: RunContext) -> list[Finding]:
    """The data, as stage_data loads it (same subset), without re-running the audit."""
    ctx.data = data = load_subset(ctx.config)
    before = ctx.meta.get("data", {}).get("fingerprint")
    if before and data.fingerprint() != before:
        return [error("data", "data_changed", *_data_changed(ctx.config, data, before))]
    return [info("data", "reloaded", f"Reloaded '{data.name}' ({len(data.y)} samples); its "
                 "audit is kept from the first attempt.")]


def _data_changed(config: Config, data: Any, before: str) -> tuple[str, str]:
    """The message and fix of a resume whose data differ from the first attempt's."""
    return (f"The data of '{config.data.source}' changed since the run started (fingerprint "
            f"{data.fingerprint()} now, {before} then): the file, or how this trainwise "
            "version reads it (e.g. columns it now drops).",
            "Restore the original data, or resume with the trainwise version that started the "
            "run; or start a new run on this data.")


def refuse_changed_data(config: Config, previous: dict[str, Any]) -> Any:
    """A resume with no checkpoint reruns every stage, but in the folder of a run on the data
    meta.json fingerprinted: other data there would make the folder claim to continue a run it
    does not (audit s15 O5). Checked as the checkpoint path checks it; data that no longer
    loads is left to the data stage, which says why. Returns the data it loaded (None if
    none), which the data stage then uses: a large file was read and fingerprinted twice."""
    before = previous.get("data", {}).get("fingerprint")
    if not before:  # killed before the data stage recorded it: nothing to compare
        return None
    try:
        data = load_subset(config)
    except TrainwiseError:
        return None
    if data.fingerprint() != before:
        message, fix = _data_changed(config, data, before)
        raise RunFolderError(f"{message} {fix}")
    return data


def stage_split_reload(ctx: RunContext) -> list[Finding]:
    """The split saved in split.npz, normalised as before (training statistics only)."""
    data, source = ctx.data, getattr(ctx, "source", None) or ctx.run.path
    assert data is not None
    path = Path(source) / "split.npz"
    if not path.is_file():
        return [error("split", "split_missing", f"'{path}' is missing, so the split cannot be "
                      "restored.", "Start a new run; a resumed run must train on the same split.")]
    with np.load(path) as saved:
        train, val = saved["train"], saved["val"]
        test = saved["test"] if "test" in saved.files else None
        ctx.folds, ctx.trained_fold = saved_folds(saved)
    x_test, y_test = (data.x[test], data.y[test]) if test is not None else (data.x_test,
                                                                            data.y_test)
    before = ctx.meta.get("split", {}).get("fingerprint")
    if before and _fingerprint(train, val) != before:  # before _make_arrays writes preprocess.npz
        return [error("split", "split_changed", f"'{path}' does not match the split recorded "
                      "in meta.json.", "Restore split.npz from the run, or start a new run.")]
    _make_arrays(ctx, train, val, x_test, y_test, test)
    sizes = {name: len(arrays.y) for name, arrays in ctx.splits.items()}
    return [info("split", "reloaded", f"Reloaded the split from split.npz: {sizes}.")]


def saved_folds(saved: Any) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """split.npz's k folds as (train, val) rows of the data (its fold indices index `pool`,
    the rows left after the test cut), and the run's fold; none for a single split."""
    if "pool" not in saved.files:
        return [], 0
    pool, k = saved["pool"], sum(name.endswith("_val") for name in saved.files)
    return ([(pool[saved[f"fold{j}_train"]], pool[saved[f"fold{j}_val"]]) for j in range(k)],
            int(saved["trained_fold"]))


def _record_resume(ctx: ResumeContext, source: Path, step: int | None) -> dict[str, Any]:
    """meta.json keeps `command`, the command that made the run, and lists each resume after
    it (`resumed`: from_step, None where no checkpoint made the run restart; at; command).
    The resume command used to replace `command`, and the report's "made by" then named only
    `trainwise run --resume ...` (audit s13 P16). Returns the first attempt's meta.json."""
    meta_path = source / "meta.json"
    previous = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    resume = {"from_step": step, "at": datetime.now().isoformat(timespec="seconds"),
              "command": ctx.meta.get("command", "")}
    ctx.meta["command"] = previous.get("command") or ctx.meta.get("command", "")
    ctx.meta["resumed"] = [*previous.get("resumed", []), resume]
    return previous


def reopen(ctx: ResumeContext, source: Path) -> list[Finding]:
    """Load the checkpoint and what the first attempt recorded; clean up a torn save."""
    ctx.checkpoint = find_checkpoint(source, ctx.config)
    removed = remove_partials(source) if ctx.fabric.is_global_zero else []  # root too (O1)
    partial = f" Removed {len(removed)} partial file(s) (*.tmp) left by the kill." \
        if removed else ""
    step = int(ctx.checkpoint["train_state"]["step"]) if ctx.checkpoint is not None else None
    previous = _record_resume(ctx, source, step)
    if ctx.checkpoint is None:  # killed before training: all again, the same since seeded
        ctx.preloaded = refuse_changed_data(ctx.config, previous)
        console.print(f"Resuming {escape(str(source))}: no training checkpoint, so the run "
                      "restarts from the data stage.")
        ctx.run.keep_history(0)
        shutil.rmtree(ctx.run.tensorboard_dir, ignore_errors=True)
        return [info("setup", "restarted", "No training checkpoint in the run folder: the run "
                     f"restarts from the data stage.{partial}")]
    for key in ("name", "created", "data", "split", "figures", "stage_seconds"):
        if key in previous:
            ctx.meta[key] = previous[key]
    console.print(f"Resuming {escape(str(source))} from {saved_position(ctx.checkpoint)}; the "
                  "data audit, checks and tuning are kept from the first attempt.")
    saved_world, world = int(ctx.checkpoint.get("world_size", 1)), ctx.fabric.world_size
    recount = "" if saved_world == world else (
        f" The checkpoint was written by {saved_world} process(es), this run has {world}: the "
        "data order, schedule and global batch carry over; dropout draws and float rounding "
        "differ, so the weights match an uninterrupted run closely, not bitwise.")
    return earlier_findings(source) + [info(
        "setup", "resumed", f"Resumed from checkpoints/last.pt at step {step}; data audit, "
        f"checks and tuning are kept from the first attempt.{partial}{recount}",
        from_step=step, saved_world_size=saved_world, world_size=world)]
