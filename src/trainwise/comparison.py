"""`trainwise compare RUN_DIR...`: one row per run folder, to find which run was best and why.

A row holds what the run recorded: the config keys that differ between the runs (only those,
so 4 runs of 60 keys stay a narrow table), the best epoch and its validation loss, the test
metric, the cross-validation mean and the count of warnings and errors. Rows are sorted by
validation loss, never by the test score: picking the run by its test score makes the test set
part of the choice, and the winner's test score then overstates what it does on new data. A
validation loss only compares on the same validation rows: runs on different splits (meta.json's
data and split fingerprints) are sorted within their split, never across.
"""

from __future__ import annotations

import glob
import json
import math
from pathlib import Path
from typing import Any

import tomllib

from trainwise.config import Config
from trainwise.resume import RUNTIME_KEYS
from trainwise.rundir import RunFolderError, read_findings, read_history, read_meta
from trainwise.train.diagnose_common import best_epoch

# the run's own headline test metrics (recipe_verdict.py's verdict leads with the same); not
# test_mean_rmse, the RMSE of predicting the training mean: a baseline (review s12 VA8)
_TEST_METRICS = ("test_accuracy", "test_balanced_accuracy", "test_rmse")
# keys that say how or where to run, not what is trained (resume.py); model.user_class stays:
# a run of your Net against the baseline differs in what was trained
_LEFT_OUT = RUNTIME_KEYS - {"model.user_class"}
FOOTNOTE = ("Sorted by best validation loss. Choose the run by it, not by the test score: "
            "choosing by test score leaks the test set into the choice, and the winner's test "
            "score then overstates how it does on new data.")
SPLIT_NOTE = ("Runs on different validation rows (the split column: meta.json's data and "
              "split fingerprints) are sorted within their split: their losses do not compare "
              "across splits, another data set or another split of it.")


def run_folders(paths: list[str | Path]) -> list[Path]:
    """The run folders `paths` name: run folders (with meta.json), glob patterns (runs/*) and
    folders holding run folders (runs). `data` folders are skipped: trainwise keeps data
    given in memory under runs/data/, and `runs/*` names it too."""
    folders: list[Path] = []
    for given in paths:
        matches = [Path(p) for p in sorted(glob.glob(str(given)))] \
            if glob.has_magic(str(given)) and not Path(given).exists() else [Path(given)]
        if not matches:
            raise RunFolderError(f"'{given}' matches no folder: expected run folders such as "
                                 "runs/20260101-120000-mnist1d. Check the pattern (ls it).")
        folders += [f for match in matches for f in _runs_in(match)]
    unique = list(dict.fromkeys(f.resolve() for f in folders))
    if not unique:
        raise RunFolderError(f"no run folders in {', '.join(map(str, paths))}: expected "
                             "folders with meta.json, as `trainwise run` writes.")
    return [Path(f) for f in unique]


def _runs_in(path: Path) -> list[Path]:
    if (path / "meta.json").is_file():
        return [path]
    if path.is_dir() and path.name == "data":
        return []  # runs/data/: the in-memory data store, not a run
    inside = sorted(p.parent for p in path.glob("*/meta.json")) if path.is_dir() else []
    if inside:
        return inside
    what = f"'{path}' is not a run folder" if path.is_dir() else f"there is no folder '{path}'"
    raise RunFolderError(f"{what}: expected a run folder with meta.json, as `trainwise run`, "
                         "trainwise.run() and trainwise.Monitor write (or a folder holding "
                         f"them). Leave '{path}' out, or pass the folders a run printed as "
                         "'Run folder: ...'.")


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _config(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """config.toml (what the run was asked for); meta.json's config where a Monitor run wrote
    no config.toml. Keys it lacks (written by an older trainwise) are the defaults (review s12
    VA9: model.user_class showed as a difference between runs that both trained the
    baseline); batch_size, commented out when left to the tune stage, stays None."""
    try:
        given = _flat(tomllib.loads((folder / "config.toml").read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError):
        given = _flat(meta.get("config") or {})
    if not given:  # a Monitor run of your own loop: nothing recorded, nothing to fill
        return {}
    return {key: value for key, value in {**_DEFAULTS, **given}.items()
            if key not in _LEFT_OUT}


_DEFAULTS = {key: value for key, value in _flat(Config().model_dump()).items()
             if key != "train.batch_size"}


def _row(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = read_meta(folder)
    best = best_epoch(read_history(folder)) or {}
    test = meta.get("test") or {}
    severities = [f.severity.value for f in read_findings(folder)]
    row = {"run": folder.name, "split": _split_key(meta),
           "best_epoch": best.get("epoch"), "best_val_loss": best.get("val_loss", math.nan)}
    for key in _TEST_METRICS:
        if isinstance(test.get(key), (int, float)):
            row[key] = float(test[key])
    crossval = meta.get("cross_validation") or {}
    if isinstance(crossval.get("mean"), (int, float)):  # e.g. cv_val_accuracy: over folds
        row[f"cv_{crossval.get('metric') or 'mean'}"] = float(crossval["mean"])
    row.update(warnings=severities.count("warning"), errors=severities.count("error"))
    return row, _config(folder, meta)


def _split_key(meta: dict[str, Any]) -> str | None:
    """Which validation rows the run used: its data and split fingerprints, hashed together.
    The split's alone hashes row indices only, so two files of 1,000 rows split with the same
    seed and fractions share it (review s12 F3); a run that recorded neither has None."""
    data = (meta.get("data") or {}).get("fingerprint")
    split = (meta.get("split") or {}).get("fingerprint")
    if data is None and split is None:
        return None
    import xxhash

    return xxhash.xxh64(json.dumps([data, split]).encode()).hexdigest()


def _differing(configs: list[dict[str, Any]]) -> list[str]:
    # a folder with no config (a Monitor run of your own loop) differs in nothing it did not
    # record: counting it would list all ~60 keys
    configs = [config for config in configs if config]
    keys = sorted({key for config in configs for key in config})
    return [key for key in keys if len({json.dumps(c.get(key), default=str)
                                        for c in configs}) > 1]


def _sorted(table: Any) -> Any:
    """Best validation loss first; runs on different splits (_split_key) within their split,
    the split holding the best run first."""
    table = table.sort_values("best_val_loss", na_position="last", kind="stable")
    splits = table["split"].astype(object).where(table["split"].notna(), "-")
    if splits.nunique() < 2:
        return table.drop(columns=["split"])
    table = table.assign(split=splits.map(lambda s: str(s)[:8]))  # 8 hex digits tell apart
    rank = {split: i for i, split in enumerate(dict.fromkeys(table["split"]))}
    return table.sort_values("split", key=lambda c: c.map(rank), kind="stable")


def compare_runs(paths: list[str | Path] | str | Path) -> Any:
    """One row per run folder as a pandas DataFrame, best validation loss first: `run` (the
    folder's name), `split` (only where the runs' validation rows differ: 8 digits of a hash
    of the data's and the split's fingerprints; rows are then sorted within their split), each
    config key that differs between the runs (None: batch_size left to the tune stage),
    `best_epoch`, `best_val_loss`, the test metrics (`test_accuracy` and
    `test_balanced_accuracy`, or `test_rmse`; NaN for a run that stopped before its test),
    `cv_<metric>` (the cross-validation mean over folds, for a run with split.num_folds > 1),
    `warnings` and `errors` (findings.json). `paths` are run folders, glob patterns ("runs/*")
    or a folder holding run folders. Choose by `best_val_loss`, not by the test score: that
    would leak the test set into the choice."""
    import pandas as pd

    folders = run_folders([paths] if isinstance(paths, str | Path) else list(paths))
    rows, configs = zip(*(_row(folder) for folder in folders), strict=True)
    keys = _differing(list(configs))
    tests = [key for key in _TEST_METRICS if any(key in row for row in rows)]
    tests += sorted({key for row in rows for key in row if key.startswith("cv_")})
    columns = ["path", "run", "split", *keys, "best_epoch", "best_val_loss", *tests,
               "warnings", "errors"]
    table = pd.DataFrame([{"path": str(folder), **config, **row}
                          for folder, row, config in zip(folders, rows, configs, strict=True)])
    return _sorted(table.reindex(columns=columns)).reset_index(drop=True)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"  # a run that stopped before its test, or a key left to its default
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(table: Any) -> str:
    """The table as text for a terminal (no `path`: the run's name says which), then the
    footnote on how to choose."""
    shown = table.drop(columns=["path"]).astype(object).map(_cell)
    return f"{shown.to_string(index=False)}\n{_note(table)}"


def _note(table: Any) -> str:
    return f"{FOOTNOTE} {SPLIT_NOTE}" if "split" in table.columns else FOOTNOTE


def to_json(table: Any) -> str:
    """One JSON object: the rows best first (NaN as null: JSON has no NaN), and the footnote."""
    rows = [{key: None if _cell(value) == "-" and not isinstance(value, str) else value
             for key, value in row.items()} for row in table.to_dict(orient="records")]
    return json.dumps({"sorted_by": "best_val_loss", "runs": rows, "note": _note(table)},
                      default=str)
