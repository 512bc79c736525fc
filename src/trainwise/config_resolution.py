"""The config a run uses and records: overrides applied, data.source made absolute and
model.folder filled in, so config.toml reruns (and --resume finds the data and the model)
from any working folder. Apart from recipe.py, which starts from its answer.
"""

from __future__ import annotations

from pathlib import Path

from trainwise.config import Config, batch_size_set, from_dict, load_config
from trainwise.model.baselines import module_folder
from trainwise.rundir import with_absolute_source


def resolve_config(config: Config | str | Path | dict | None,
                   overrides: list[str] | None = None) -> Config:
    """The config with overrides applied, data.source made absolute and model.folder filled
    in: config.toml reruns (and --resume finds the data and the model) from any working
    folder."""
    if isinstance(config, Config):
        config = _dump_kept_unset(config)
    resolved = from_dict(config, overrides) if isinstance(config, dict) \
        else load_config(config, overrides)
    beside = Path(config).parent if isinstance(config, str | Path) else None
    return with_model_folder(with_absolute_source(resolved), beside)


def with_model_folder(config: Config, config_folder: Path | None) -> Config:
    """model.folder made absolute, or set to the folder holding a 'module:Class' module: the
    working folder, else the config file's folder (a model kept beside its config). The
    command line and the Python API share this lookup, and config.toml records its answer."""
    name, folder = config.model.name, config.model.folder
    if ":" not in name:
        return config
    if folder:
        found: Path | None = Path(folder).resolve()
    else:
        found = module_folder(name.partition(":")[0],
                              [Path.cwd(), *([config_folder] if config_folder else [])])
    if found is None:  # on sys.path (installed), or missing: the model stage says which
        return config
    model = config.model.model_copy(update={"folder": str(found)})
    return config.model_copy(update={"model": model})


def _dump_kept_unset(config: Config) -> dict:
    """config.model_dump() without train.batch_size when it was never set: validated again,
    every dumped key reads as the user's, and the tune stage cuts only a default batch to fit
    a small table (tune/default_batch.py)."""
    dumped = config.model_dump()
    if not batch_size_set(config.train):
        del dumped["train"]["batch_size"]
    return dumped
