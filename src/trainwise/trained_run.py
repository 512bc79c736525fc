"""A finished run's folder opened for use: preprocess.npz, config.toml and the model with
checkpoints/best.pt's weights, or why the folder cannot give them (a folder of `trainwise
audit`, `check`, `find-lr` or `tune` never trained). trainwise.predict and
trainwise.load_model both start here; predict builds the model before it reads any row, so
an unusable folder is refused first (review s11 VA14).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainwise.caller_line import warn_at_caller
from trainwise.command_line import shell_word
from trainwise.config import (
    Config,
    ConfigError,
    ModelConfig,
    from_dict,
    read_config_file,
    unknown_keys,
    without_keys,
)
from trainwise.config_errors import keys_with_hints
from trainwise.data.task import TaskData
from trainwise.findings import TrainwiseError
from trainwise.model.trained_mark import LOADED, mark_trained
from trainwise.preprocessing import FILE_NAME, Preprocessing
from trainwise.rundir import RunDir, RunFolderError, library_versions, read_findings, read_meta


def run_files(run_dir: str | Path, strict: bool = False) -> tuple[Path, Preprocessing, Config]:
    """The run folder, its preprocess.npz and its config.toml, or why the folder cannot be
    used (a folder that never trained has neither preprocess.npz nor best.pt)."""
    folder = RunDir.open(run_dir).path
    return folder, _preprocessing(folder), run_config(folder, strict)


def run_config(folder: Path, strict: bool = False, overrides: list[str] | None = None
               ) -> Config:
    """A finished run folder's config.toml. The folder is an archive: a key this version does
    not know (written by an older or newer trainwise, audit s12 S8) is dropped with one warning
    unless `strict`, since scoring needs only [data] and [model]. Resuming a run reads it
    strictly (resume.resumed_config): there a dropped key would change the run. A config that
    still fails is a run folder that cannot be used: exit 1, naming the file. `overrides` are
    applied after that check, their errors the user's (ConfigError, exit 2); the file is read
    once (review s16 VF9)."""
    path = folder / "config.toml"
    raw = read_config_file(path)
    unknown = unknown_keys(raw)
    version = read_meta(folder).get("versions", {}).get("trainwise", "unknown")
    install = f"pip install trainwise=={version}" if version != "unknown" else \
        "install the trainwise version that wrote the run"
    edited = version == library_versions().get("trainwise")  # review s16 VX6: not "pip
    # install" the version running; a hand edit, with --set's did-you-mean
    if unknown and strict and edited:
        raise RunFolderError(
            f"{path} holds config keys trainwise does not know: {keys_with_hints(unknown)}. "
            f"This trainwise ({version}) wrote the run, so the file was edited since: rename "
            f"or delete those keys in {path}, then resume again.")
    if unknown and strict:
        raise RunFolderError(
            f"{path} holds config keys this trainwise does not know: {', '.join(unknown)} "
            f"(the run was written by trainwise {version}). Delete or rename them in {path}, "
            f"or {install} to use this run folder.")
    if unknown:
        who = f"this trainwise ({version}) wrote the run, so the file was edited since" \
            if edited else f"the run was written by trainwise {version}"
        warn_at_caller(f"{path}: ignored config keys this trainwise does not know: "
                      f"{keys_with_hints(unknown) if edited else ', '.join(unknown)} ({who}). "
                      "Scoring needs only [data] and [model]; to silence this, delete them "
                      f"from {path}.")
    known = without_keys(raw, unknown)
    try:
        config = from_dict(known)
    except ConfigError as exc:
        raise RunFolderError(f"{path} cannot be read by this trainwise: {exc} Edit {path}, "
                             f"or {install} to use this run folder.") from None
    return from_dict(known, overrides) if overrides else config


def trained_model(folder: Path, prep: Preprocessing, cfg: ModelConfig,
                  model: nn.Module | None, trust_code: bool = False) -> nn.Module:
    """best.pt's weights in `model` (a run of your own module, built the same way) or in the
    run's baseline rebuilt from config.toml, on the CPU. A config.toml naming 'module:Class'
    is code: see `refuse_untrusted_module` for when `trust_code` is needed."""
    state = _best_weights(folder)
    net = model if model is not None else _rebuilt_model(folder, prep, cfg, trust_code)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        what = f"your {type(net).__name__}" if model is not None else "the rebuilt baseline"
        raise TrainwiseError(
            f"{what} does not match the weights in {folder / 'checkpoints' / 'best.pt'}: "
            f"{_mismatch_lines(exc)} Pass model= built as the run built it (same class, "
            "same arguments).") from None
    mark_trained(net, folder, LOADED)  # a run on it starts from trained weights (VX1)
    return net


def _mismatch_lines(exc: RuntimeError, num_lines: int = 5) -> str:
    """PyTorch's first lines: the header, then one line per mismatching tensor ("size
    mismatch for body.3.weight: ... [3, 32] ... [4, 32]"), the part that says what to change
    (audit s12 S15: only the header was kept). 5 lines: a whole head swapped is 2 tensors."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    more = f" (and {len(lines) - num_lines} more lines)" if len(lines) > num_lines else ""
    return " ".join(lines[:num_lines]) + more + "."


def _preprocessing(folder: Path) -> Preprocessing:
    """preprocess.npz, or why the folder cannot be used (exit 1, not 2: not a bad config). A
    folder without either never trained: --resume would train a whole model, so say so."""
    if not (folder / FILE_NAME).is_file() and not (folder / "checkpoints/best.pt").is_file():
        raise _never_trained(folder)
    try:
        return Preprocessing.load(folder)
    except TrainwiseError as exc:  # an earlier version's run: the message says how to resume
        raise RunFolderError(str(exc)) from None


def _never_trained(folder: Path) -> RunFolderError:
    stages = [s for s in read_meta(folder).get("stage_seconds", {}) if s != "report"]
    ended = f"ended after its {stages[-1]} stage" if stages else "stopped before training"
    return RunFolderError(
        f"'{folder}' holds no trained model (no checkpoints/best.pt): this run {ended} "
        "(`trainwise audit`, `check`, `find-lr` and `tune` stop before training; an error "
        f"finding stops any run). Train one with trainwise run "
        f"{shell_word(folder / 'config.toml')} "
        "(fixing first what its error finding says, if any), then predict with that new "
        "run's folder.")


def _best_weights(folder: Path) -> dict[str, torch.Tensor]:
    from trainwise.train.checkpoint import why_unreadable

    path = folder / "checkpoints" / "best.pt"
    if not path.is_file():
        raise _never_trained(folder)
    try:
        with warnings.catch_warnings():  # torch's advice on a refused file: why_unreadable
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)["model"]
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise TrainwiseError(f"'{path}' cannot be read ({why_unreadable(exc)}). Rerun the "
                             "training to write it again.") from None


def _rebuilt_model(folder: Path, prep: Preprocessing, cfg: ModelConfig,
                   trust_code: bool = False) -> nn.Module:
    """The baseline (or config-named 'module:Class') the model stage built, with the shapes it
    was sized from: a stand-in TaskData of one row carries them to build_model."""
    from trainwise.model.baselines import build_model

    own = next((f for f in read_findings(folder) if f.code == "user_model"), None)
    if own is not None:
        raise TrainwiseError(
            f"this run trained a module you passed ({own.message}), which the run folder "
            "cannot rebuild. Pass it: trainwise.load_model(run_dir, model=net) or "
            "trainwise.predict(run_dir, x, model=net), where net is built the same way (its "
            "weights are replaced by checkpoints/best.pt); `trainwise predict` on the command "
            "line cannot take it.")
    if ":" in cfg.name and not trust_code:
        refuse_untrusted_module(folder, cfg)
    x = np.zeros((1, *prep.input_shape), dtype=np.dtype(prep.input_dtype))
    if prep.kind == "tokens":
        x.flat[0] = max(prep.vocab_size - 1, 0)  # embedding_pool is sized by the largest id
    stand_in = TaskData(name="predict", kind=prep.kind, task=prep.task, x=x, y=np.zeros(1),
                        class_names=prep.class_names)
    return build_model(stand_in, cfg.name, cfg.width, cfg.dropout, cfg.folder)


def refuse_untrusted_module(folder: Path, cfg: ModelConfig) -> None:
    """A config.toml naming 'module:Class' makes the run folder code: importing the module runs
    it (audit s16 S2: `trainwise predict .` in a received folder ran its trainwise_helpers.py
    before the weights were read). Imported without `trust_code` only when Python already finds
    it where the user's own environment looks (already imported, installed, on PYTHONPATH);
    never from the run folder, nor from the working folder or the folder its config names
    unless the user put that folder on PYTHONPATH (review s16 VS4: `PYTHONPATH=.` was refused
    too, though the refusal advised it for a project run from its own folder)."""
    module = cfg.name.partition(":")[0]
    chosen = _pythonpath_folders()
    unsafe = [folder, *(f for f in (Path.cwd(), *([Path(cfg.folder)] if cfg.folder else []))
                        if f.resolve() not in chosen)]
    if module in sys.modules or _found_elsewhere(module, unsafe):
        return
    from trainwise.model.baselines import module_folder

    # where import_model looks: model.folder, then the working folder
    holding = module_folder(module, [Path(f) for f in (cfg.folder, Path.cwd()) if f])
    base = (holding or Path.cwd()).joinpath(*module.split("."))
    file = base.with_name(base.name + ".py")
    file = file if file.is_file() or holding is None else base / "__init__.py"
    raise TrainwiseError(
        f"{folder / 'config.toml'} names model.name = \"{cfg.name}\": rebuilding it imports "
        f"{file}{'' if holding else ' (not there now)'}, which runs that file's code. A run "
        "folder whose config names module:Class is code: treat it like a script. If you trust "
        "it, pass --trust-code (trust_code=True in Python); or, in Python, pass model=net "
        f"built as the run built it{_pythonpath_advice(holding, folder, module)}.")


def _pythonpath_folders() -> set[Path]:
    """The folders the user named in PYTHONPATH, resolved (an empty entry names none: a
    stray ':' must not make the working folder trusted)."""
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return {Path(entry).resolve() for entry in entries if entry}


def _pythonpath_advice(holding: Path | None, folder: Path, module: str) -> str:
    """How to make your own module found: never the run folder's copy, which stays refused."""
    if holding is None or holding.resolve() == folder.resolve():
        return ""
    return (f"; or, if {module} is your own code, put its folder on PYTHONPATH: "
            f"PYTHONPATH={shell_word(holding.resolve())} before the command")


def _found_elsewhere(module: str, unsafe: list[Path]) -> bool:
    """Whether Python finds the top package of `module` on its own (installed, PYTHONPATH),
    not in one of the `unsafe` folders (`python -c` and notebooks put the working folder on
    sys.path as ''). find_spec of a top-level name imports nothing."""
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin in (None, "namespace"):  # a folder named like it
        return False
    if spec.origin in ("built-in", "frozen"):
        return True
    origin = Path(spec.origin).resolve()
    entry = origin.parent.parent if origin.name.startswith("__init__.") else origin.parent
    return entry not in {f.resolve() for f in unsafe}
