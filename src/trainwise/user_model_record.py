"""Which module a run of `trainwise.run(model=net)` trained, kept in the run folder.

The model stage takes the module in memory, so config.toml's model.name stayed "auto": a rerun
of that config trained the mlp baseline (1,731 parameters where the run had a 547-parameter
Net) and exited 0 (user audit s12 S3). config.toml now says model.user_class, meta.json
"user_model", and a rerun without the module is refused with what to pass.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from trainwise.config import Config, ConfigError


def class_path(model: nn.Module) -> tuple[str, bool]:
    """('module:QualName', whether importing that name gives this very class back): a class
    defined in a script (__main__) or inside a function is not importable by name."""
    cls = type(model)
    path = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return path, False
    try:
        found: Any = importlib.import_module(cls.__module__)
        for part in cls.__qualname__.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return path, False
    return path, found is cls


def user_model_meta(model: nn.Module) -> dict[str, Any]:
    """meta.json's "user_model": the class and whether model.name could name it."""
    path, importable = class_path(model)
    return {"class": path, "importable": importable}


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
    importable = not named.startswith("__main__:") and "<locals>" not in named
    how = (f", or set model.name = \"{named}\" (--set 'model.name=\"{named}\"') to build it "
           "from its import path" if importable else
           f"; to rerun it from the command line, move {short} into a module on the Python "
           "path and set model.name = \"module:Class\"")
    raise ConfigError(
        f"this config was written by a run that trained your {short} ({named}, "
        f"model.user_class), but no model was passed: model.name = \"{config.model.name}\" "
        f"would train a different model. Pass it again (a rerun or resume=): "
        f"trainwise.run(..., model={short}()){how}. To train the baseline instead, remove "
        "model.user_class from the config.")
