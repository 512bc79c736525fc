"""Config files: a file's raw sections (a relative data path made relative to the file), the
keys this version does not know (a run folder written by an older or newer trainwise), and a
run folder given where a config or data was meant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomllib
import yaml

from trainwise.command_line import shell_word
from trainwise.config_sections import (
    BUILT_IN_SOURCES,
    COMPRESSIONS,
    READABLE_DATA,
    TEXT_TABLES,
    Config,
    ConfigError,
)
from trainwise.config_yaml import ConfigLoader


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist. Pass the path of a .toml or "
                          f".yaml file, a data file ({READABLE_DATA}) or image folder, a "
                          f"built-in data set ({', '.join(BUILT_IN_SOURCES)}; or --set "
                          "data.source='\"wine\"'), or run `trainwise run` with no argument "
                          "for the demo.")
    _refuse_data_suffix(path)
    data = _parse(path, _text(path))
    if not isinstance(data, dict) or not data:  # an empty TOML ran the demo (audit s15 K6)
        what = "is empty" if data in (None, {}) else f"holds {type(data).__name__}, not sections"
        raise ConfigError(f"config file '{path}' {what}: a config holds sections such as "
                          "[data] and [train] (`trainwise config > my.toml` writes every key "
                          "with its default). For the built-in demo, run `trainwise run` "
                          "with no config.")
    return data


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        if path.suffix.lower() in ("", ".toml", ".yaml", ".yml", ".json"):
            raise ConfigError(f"config file '{path}' is not UTF-8 text; save it as UTF-8."
                              ) from None
        # a binary file of another kind (.npy, .pkl, .tgz): re-saving it would not help
        # (final review s14 VF4)
        raise _not_read(path) from None


def _parse(path: Path, text: str) -> Any:
    """The file's values. A hostile or corrupt file is a ConfigError too (exit 2), not a
    traceback: a 5001-digit number is a ValueError, 5000 nested lists a RecursionError
    (audit s15 K3)."""
    kind = _format(path)
    try:
        if kind == "YAML":
            return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 (a SafeLoader)
        if kind == "JSON":  # was read as TOML: "Invalid statement" (audit s15 K11)
            return json.loads(text, object_pairs_hook=_unique_pairs)
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError, RepeatedKey) as exc:
        raise ConfigError(f"config file '{path}' is not valid {kind}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file '{path}' nests values too deeply to read; a config "
                          "is [section] tables of key = value (`trainwise config` prints "
                          "them all).") from None
    except ValueError as exc:  # int() past 4300 digits; the advice in exc is for Python code
        raise ConfigError(f"config file '{path}' holds a value {kind} cannot read "
                          f"({str(exc).partition(':')[0]}); config numbers are small "
                          "(max_epochs = 40, lr = 1e-3).") from None


class RepeatedKey(ValueError):
    """A JSON object repeats a key; _parse names the file, as for TOML and YAML (review VO13)."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: a repeated key dropped the first one."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:  # worded as YAML's (config_yaml.py); json gives the hook no line numbers
        raise RepeatedKey(f"found the key {repeated[0]!r} twice: JSON would keep only the last "
                          "one. Merge them into one.")
    return dict(pairs)


def _format(path: Path) -> str:
    """'YAML' for .yaml/.yml, 'JSON' for .json; any other suffix (.toml, .conf, .cfg, none)
    is read as TOML."""
    suffix = path.suffix.lower()
    return "YAML" if suffix in (".yaml", ".yml") else "JSON" if suffix == ".json" else "TOML"


COMPRESSED = (*COMPRESSIONS, ".zst")
# the command that decompresses each, keeping the original (`gunzip` cannot read zstd)
DECOMPRESS = {".gz": "gunzip -k", ".bz2": "bunzip2 -k", ".xz": "unxz -k", ".zst": "zstd -d",
              ".zip": "unzip"}
UNREAD_TABLES = (".tab", ".dat")  # .tsv and .txt are read as CSV (TEXT_TABLES)
SPREADSHEETS = (".xlsx", ".xls", ".xlsm", ".ods")
READ_HERE = (f"trainwise reads configs (.toml, .yaml) and data files ({READABLE_DATA}, an "
             "image folder, a built-in set)")


def _refuse_data_suffix(path: Path) -> None:
    """A data file passed as the argument was parsed as TOML and called "not valid TSV" or
    "not UTF-8 text; save it as UTF-8" (a gzipped CSV), which sent the user to re-save a file
    that was fine (audit s14 Z1). Only suffixes known to be data are refused: any other
    (.conf, .cfg, .ini, none) is read as TOML, as before (review s14 VD6)."""
    suffix = path.suffix.lower()
    if suffix in COMPRESSED:
        how = _compressed_how(path, suffix)
    elif suffix in UNREAD_TABLES:
        how = (f"If it is a table of text, rename (or copy) it to {path.stem}.csv: a tab, "
               "';' or '|' separator is sniffed")
    elif suffix in SPREADSHEETS:
        how = ("It is a spreadsheet: save the sheet as CSV (Excel: File > Save As > "
               "'CSV UTF-8') and pass the .csv")
    else:
        return
    raise _not_read(path, how)


def _not_read(path: Path, how: str = "") -> ConfigError:
    """The one refusal of a file that is neither a config nor data, with `how` to fix it."""
    return ConfigError(f"'{path}' is neither a config nor a data file trainwise reads "
                       f"({path.suffix.lower()}): {READ_HERE}." + (f" {how}." if how else ""))


def _compressed_how(path: Path, suffix: str) -> str:
    """The command per compression ('t.csv.zst' is a CSV that pandas reads only with the
    zstandard package installed; 't.tar.gz' is an archive, which gunzip leaves a .tar)."""
    inner = Path(path.stem).suffix.lower()
    if inner == ".tar":
        return f"It is a tar archive: unpack it (`tar -xf {path}`) and pass the data file inside"
    command = f"`{DECOMPRESS[suffix]} {path}`"
    if inner in TEXT_TABLES:
        return (f"It is a {inner[1:].upper()} file compressed as {suffix}, which trainwise "
                f"does not read: decompress it ({command}) and pass the "
                f"{path.with_suffix('')} it writes")
    return (f"It is compressed ({suffix}) but not a compressed .csv/.tsv/.txt: decompress it "
            f"({command}) and pass the data file inside")


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file's raw sections, unvalidated (trained_run.run_config reads a finished run
    folder's config.toml leniently from them)."""
    raw = _read_file(path)
    source = raw.get("data", {}).get("source") if isinstance(raw.get("data"), dict) else None
    if isinstance(source, str) and source and source not in BUILT_IN_SOURCES:
        # a relative data path is relative to the file: a data file or an image folder, with
        # or without a suffix ('imgs' beside the config was refused as a typo, review VO4)
        candidate = path.parent / source
        if not Path(source).is_absolute() and candidate.exists():
            raw["data"]["source"] = str(candidate)
    return raw


def unknown_keys(raw: dict[str, Any]) -> list[str]:
    """The keys of a raw config this version does not know: 'section.key', or '[section]'
    for a whole section (a run folder written by an older or newer trainwise)."""
    found = []
    for section, values in raw.items():
        field = Config.model_fields.get(section)
        if field is None:
            found.append(f"[{section}]")
        elif isinstance(values, dict):
            known = field.annotation.model_fields  # type: ignore[union-attr]
            found += [f"{section}.{key}" for key in values if key not in known]
    return found


def without_keys(raw: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """raw less the keys unknown_keys named."""
    kept = {s: v for s, v in raw.items() if f"[{s}]" not in keys}
    return {s: {k: x for k, x in v.items() if f"{s}.{k}" not in keys}
            if isinstance(v, dict) else v for s, v in kept.items()}


def is_run_folder(path: Path) -> bool:
    """The one test of "a trainwise run folder": a meta.json that trainwise wrote (an object
    holding `created` and `versions`, which `trainwise run`/`audit`/`check` and a Monitor all
    write), or meta.json beside a config.toml. A Monitor's folder has no config.toml (review
    s16 VX2: predict --out replaced its findings.json); a project's own meta.json is no run
    folder (review s16 VS2: the default --out was refused in every folder below one)."""
    path = Path(path)
    meta = path / "meta.json"
    if not path.is_dir() or not meta.is_file():
        return False
    return (path / "config.toml").is_file() or _written_by_trainwise(meta)


def _written_by_trainwise(meta: Path) -> bool:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # half-written, or another tool's binary file
        return False
    return isinstance(data, dict) and {"created", "versions"} <= data.keys()


def refuse_run_folder(path: Path) -> None:
    """A run folder given as the config would be read as an image folder (its checkpoints/ a
    class without images: "remove the folder"), and a junk run made: say what was meant."""
    if not is_run_folder(path):
        return
    if not (path / "config.toml").is_file():  # a Monitor's
        raise ConfigError(
            f"'{path}' is a run folder with no config.toml to rerun (a trainwise.Monitor in "
            "your own training loop writes none), not a config or a data folder. Rebuild its "
            f"report with `trainwise report {shell_word(path)}`, or pass `trainwise run` a "
            "config or a data file.")
    raise ConfigError(
        f"'{path}' is a run folder, not a config or a data folder. Rerun it with "
        f"`trainwise run {shell_word(path / 'config.toml')}`, continue an interrupted run "
        f"with `trainwise run --resume {shell_word(path)}`, or rebuild its report with "
        f"`trainwise report {shell_word(path)}`.{_user_model_note(path)}")


def _user_model_note(path: Path) -> str:
    """A run of your own module: its config.toml reruns only with that module passed, or by
    model.name where the run recorded that it rebuilds the class (meta.json's user_model)."""
    # the report's own reading, which imports nothing (audit s16 S1: a received folder's
    # module ran); imported here since rundir imports config, which imports this
    from trainwise.reporting.reproduce import own_module
    from trainwise.rundir import read_meta

    record = own_module(read_meta(path), [])
    own = record["class"] if record else ""
    if not own:
        return ""
    by_name = (f", or with model.name = \"{own}\"" if record["rebuildable"] else
               f" ({own} is not rebuildable by model.name: pass model=)")
    return (f" This run trained your own {own.partition(':')[2]} ({own}): its config.toml "
            f"reruns only with it passed, trainwise.run(config, model=net){by_name}.")

