"""A finished run's folder opened for use: preprocess.npz, config.toml and the model with
checkpoints/best.pt's weights, or why the folder cannot give them (a folder of `trainwise
audit`, `check`, `find-lr` or `tune` never trained). trainwise.predict and
trainwise.load_model both start here; predict builds the model before it reads any row, so
an unusable folder is refused first (review s11 VA14).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainwise.config import Config, ModelConfig, load_config
from trainwise.data.task import TaskData
from trainwise.findings import TrainwiseError
from trainwise.preprocessing import FILE_NAME, Preprocessing
from trainwise.rundir import RunDir, RunFolderError, read_findings, read_meta


def run_files(run_dir: str | Path) -> tuple[Path, Preprocessing, Config]:
    """The run folder, its preprocess.npz and its config.toml, or why the folder cannot be
    used (a folder that never trained has neither preprocess.npz nor best.pt)."""
    folder = RunDir.open(run_dir).path
    return folder, _preprocessing(folder), load_config(folder / "config.toml")


def trained_model(folder: Path, prep: Preprocessing, cfg: ModelConfig,
                  model: nn.Module | None) -> nn.Module:
    """best.pt's weights in `model` (a run of your own module, built the same way) or in the
    run's baseline rebuilt from config.toml, on the CPU."""
    state = _best_weights(folder)
    net = model if model is not None else _rebuilt_model(folder, prep, cfg)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        what = f"your {type(net).__name__}" if model is not None else "the rebuilt baseline"
        raise TrainwiseError(
            f"{what} does not match the weights in {folder / 'checkpoints' / 'best.pt'}: "
            f"{str(exc).splitlines()[0]} Pass model= built as the run built it (same class, "
            "same arguments).") from None
    return net


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
        f"finding stops any run). Train one with trainwise run {folder / 'config.toml'} "
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


def _rebuilt_model(folder: Path, prep: Preprocessing, cfg: ModelConfig) -> nn.Module:
    """The baseline (or config-named 'module:Class') the model stage built, with the shapes it
    was sized from: a stand-in TaskData of one row carries them to build_model."""
    from trainwise.model.baselines import build_model

    own = next((f for f in read_findings(folder) if f.code == "user_model"), None)
    if own is not None:
        raise TrainwiseError(
            f"this run trained a module you passed ({own.message}), which the run folder "
            "cannot rebuild. Pass it: trainwise.predict(run_dir, x, model=net), where net is "
            "built the same way (its weights are replaced by checkpoints/best.pt).")
    x = np.zeros((1, *prep.input_shape), dtype=np.dtype(prep.input_dtype))
    if prep.kind == "tokens":
        x.flat[0] = max(prep.vocab_size - 1, 0)  # embedding_pool is sized by the largest id
    stand_in = TaskData(name="predict", kind=prep.kind, task=prep.task, x=x, y=np.zeros(1),
                        class_names=prep.class_names)
    return build_model(stand_in, cfg.name, cfg.width, cfg.dropout, cfg.folder)
