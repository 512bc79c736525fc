"""Which module a run of `trainwise.run(model=net)` trained, kept in the run folder.

The model stage takes the module in memory, so config.toml's model.name stayed "auto": a rerun
of that config trained the mlp baseline (1,731 parameters where the run had a 547-parameter
Net) and exited 0 (user audit s12 S3). config.toml now says model.user_class, meta.json
"user_model", and a rerun without the module is refused with what to pass.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from trainwise.config import Config, ConfigError
from trainwise.model.trained_mark import trained_by


def class_path(model: nn.Module) -> tuple[str, bool]:
    """('module:QualName', whether model.name = that name rebuilds this very class: see
    `rebuildable`)."""
    cls = type(model)
    path = f"{cls.__module__}:{cls.__qualname__}"
    return path, rebuildable(path, cls=cls)


def rebuildable(path: str, folder: str = "", cls: type | None = None) -> bool:
    """Whether model.name = `path` ('module:Class') builds the module a run trained: the import
    finds the class (`cls` itself, when given), and `Class()` with no arguments builds it, as
    model.name does (baselines.build_model). Not so for a class of a script (__main__) or
    inside a function, one whose __init__ requires arguments (Net(in_features)), nor torch's
    own containers and layers: nn.Sequential() is empty, nn.Linear() needs its sizes (review
    s12 VA3: an nn.Sequential run was called "rebuildable by model.name")."""
    if not _nameable(path):
        return False
    from trainwise.model.baselines import ModelError, import_model

    try:
        found: Any = import_model(path, folder)
    except ModelError:
        return False
    return (cls is None or found is cls) and _builds_with_no_arguments(found)


def _nameable(path: str) -> bool:
    """False for a class that no import path rebuilds, read from the name alone: one of a
    script (__main__), of a function (<locals>), or of torch."""
    module, _, qualname = path.partition(":")
    return not (module == "__main__" or "<locals>" in qualname or
                module.split(".")[0] == "torch")


def recorded_rebuildable(record: dict[str, Any]) -> bool:
    """`rebuildable` as the run recorded it in meta.json's user_model ("importable"), never
    imported again: the report and the run-folder hint read folders their reader did not
    make, and importing the module a folder names runs its code (audit s16 S1). The name
    rules are applied again: a run before review s12 VA3 recorded nn.Sequential as True."""
    named = str(record.get("class") or "")
    return bool(named) and record.get("importable") is True and _nameable(named)


def _builds_with_no_arguments(cls: type) -> bool:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a C-implemented class)
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in parameters)


def user_model_meta(model: nn.Module) -> dict[str, Any]:
    """meta.json's "user_model": the class and whether model.name = that class rebuilds it
    ("importable", the key older runs wrote: see `rebuildable`); "trained_by", the run folder
    whose training left the module's weights as they are (the same object passed again, a
    notebook cell run twice), so the folder says this run did not start from fresh weights
    where config.toml, rerun with a freshly built module, would (user audit s16 N3)."""
    path, importable = class_path(model)
    earlier_run = trained_by(model)
    return {"class": path, "importable": importable,
            **({"trained_by": earlier_run} if earlier_run is not None else {})}


def with_user_class(config: Config, model: nn.Module | None) -> Config:
    """`config` with model.user_class naming the module passed (unchanged without one), so
    the config.toml written from it cannot be rerun as if it named the baseline."""
    if model is None:
        return config
    return config.model_copy(update={"model": config.model.model_copy(
        update={"user_class": class_path(model)[0]})})


def refuse_lost_user_model(config: Config, model: nn.Module | None) -> None:
    """A config written by a run of your own module (model.user_class set), run without it:
    the baseline that model.name = "auto" builds is not what that run trained."""
    named = config.model.user_class
    if model is not None or not named or ":" in config.model.name:
        return
    short = named.partition(":")[2]
    how = (f", or set model.name = \"{named}\" (--set 'model.name=\"{named}\"') to build it "
           "from its import path" if rebuildable(named, config.model.folder) else
           f" only: {named} is not rebuildable by model.name (that builds {short}() from an "
           "import path, with no arguments; a class of a script or of torch, or one whose "
           "__init__ takes arguments, cannot be)")
    raise ConfigError(
        f"this config was written by a run that trained your {short} ({named}, "
        f"model.user_class), but no model was passed: model.name = \"{config.model.name}\" "
        f"would train a different model. Pass it again (a rerun or resume=): "
        f"trainwise.run(..., model=net), net your {short} built as that run built it{how}. "
        "To train the baseline instead, remove model.user_class from the config.")
