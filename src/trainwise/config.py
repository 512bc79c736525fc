"""Validated config: TOML/YAML files plus `--set section.key=value` overrides.

Configs are data: parsed with tomllib / yaml.safe_load and checked by pydantic, never executed.
The sections live in config_sections.py, the error wording in config_errors.py, reading a
file or run folder in config_files.py; this module loads, overrides and writes a config, and
re-exports the names callers import from trainwise.config.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import tomllib
from pydantic import ValidationError

from trainwise.config_errors import closest, explain
from trainwise.config_files import (
    read_config_file,
    refuse_run_folder,
    unknown_keys,
    without_keys,
)
from trainwise.config_sections import (
    BUILT_IN_SOURCES,
    DATA_SUFFIXES,
    MIN_NUM_STEPS,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    RunConfig,
    SplitConfig,
    TrainConfig,
    TuneConfig,
    _Section,
    data_suffix,
    split_seed,
    valid_keys,
)
from trainwise.data.errors import NAMED_AS_SOURCE, NAMED_ON_COMMAND_LINE, missing_data_file

__all__ = [  # re-exported: trainwise.config is where callers import them from
    "BUILT_IN_SOURCES", "DATA_SUFFIXES", "MIN_NUM_STEPS", "Config", "ConfigError", "DataConfig",
    "data_suffix",
    "ModelConfig", "RunConfig", "SplitConfig", "TrainConfig", "TuneConfig", "batch_size_set",
    "field_notes", "from_dict", "load_config", "read_config_file", "refuse_missing_data",
    "refuse_run_folder",
    "split_seed", "to_toml", "unknown_keys", "valid_keys", "without_keys",
]


def _parse_value(text: str, text_key: bool = False) -> Any:
    """`--set` values are TOML literals (3, 1e-3, true, "x"); anything else is a string. For a
    `text_key` (a str key: data.target, run.name) an unquoted value is the text as typed:
    run.name=2024 or data.target=1 (a year column) were read as numbers and refused
    (audit s15 K21)."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except (ValueError, RecursionError):  # over 4300 digits, or nested past Python's stack
        raise ConfigError(f"the --set value {text[:40]!r}... is too long or too deeply nested "
                          "to read; config values are small (train.max_epochs=40, "
                          "data.na_values='[\"?\"]').") from None
    return text if text_key and not isinstance(value, str) else value


def _apply_override(raw: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or key.count(".") != 1:
        raise ConfigError(f"override '{assignment}' must look like section.key=value: "
                          "--set train.max_epochs=3 on the command line, "
                          'overrides=["train.max_epochs=3"] (a list) in Python.')
    if key not in valid_keys():
        raise ConfigError(f"unknown config key '{key}'.{closest(key)}")
    section, name = key.split(".")
    if not isinstance(raw.setdefault(section, {}), dict):
        raise ConfigError(f"[{section}] in the config must be a table of keys, not "
                          f"{raw[section]!r}; so '{assignment}' cannot be applied.")
    text_key = Config.model_fields[section].annotation.model_fields[name].annotation is str
    raw[section][name] = _parse_value(value.strip(), text_key)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a config file (or the defaults), apply `section.key=value` overrides, validate.

    A data file or an image folder in place of the config (`trainwise run churn.csv`) is
    read as `data.source` with every other key at its default: the first thing a user with
    their own table tries, which used to fail as "not valid CSV" TOML. A run folder is
    refused here, so `trainwise config`, `trainwise run` and trainwise.load_config share the
    check (review s11 VA5)."""
    if path:
        refuse_run_folder(Path(path))
    if path and _is_data(Path(path)):
        refuse_missing_data(Path(path), NAMED_ON_COMMAND_LINE)
        return from_dict({"data": {"source": str(path)}}, overrides)
    raw = read_config_file(Path(path)) if path else {}
    return from_dict(raw, overrides)


def refuse_missing_data(path: Path, named_by: str = NAMED_AS_SOURCE) -> None:
    """A data file that is not there is a config error (exit 2 on the command line), said
    before a run folder and a report are made for a run that cannot start (audit s13 P6:
    `trainwise run nosuch.csv` left both; review s13 VA5: so did
    trainwise.run({"data": {"source": "nosuch.npz"}}))."""
    if data_suffix(path) and not path.exists():
        raise ConfigError(missing_data_file(path, named_by))


def _is_data(path: Path) -> bool:
    """A data file, an image folder, or a built-in set's name where no file of that name is
    (`trainwise run wine` was refused as a missing config file, audit s11 M15). A folder
    named like a built-in set is data too, and rundir.with_absolute_source reads that name as
    the built-in set (saying so): `./wine` is the folder."""
    return bool(data_suffix(path)) or path.is_dir() or (
        str(path) in BUILT_IN_SOURCES and not path.exists())


def from_dict(raw: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Validate a nested dict (as a TOML file would give) after applying overrides."""
    if isinstance(overrides, str):  # iterated, it would be one override per character
        raise ConfigError(f"overrides must be a list of 'section.key=value' strings; got the "
                          f"string {overrides!r}. Pass [{overrides!r}].")
    raw = {section: dict(values) if isinstance(values, dict) else values
           for section, values in raw.items()}
    for assignment in overrides or []:
        _apply_override(raw, assignment)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(explain(exc)) from None


def batch_size_set(train: TrainConfig) -> bool:
    """Whether train.batch_size came from the user (config file, --set, dict or assignment),
    not from its default: pydantic records the fields it was given (model_fields_set). Only a
    default batch is cut to fit a small table (tune/default_batch.py), so config.toml writes an
    unset one commented out and resolution keeps it unset (config_resolution._dump_kept_unset)."""
    return "batch_size" in train.model_fields_set


def to_toml(config: Config, notes: bool = False) -> str:
    """The resolved config as TOML, so a run folder can be rerun with `trainwise run`;
    `notes`: each key under its explanation (`trainwise config`)."""
    lines = []
    for section, values in config.model_dump().items():
        lines.append(f"[{section}]")
        explained = field_notes(type(getattr(config, section))) if notes else {}
        for key, value in values.items():
            if explained.get(key):
                lines += textwrap.wrap(explained[key], 92, initial_indent="# ",
                                       subsequent_indent="# ")
            literal = toml_literal(value)
            unset = (section, key) == ("train", "batch_size") and \
                not batch_size_set(config.train)  # a default the tune stage may cut
            lines.append(f"{'# ' if unset else ''}{key} = {literal}")
        lines.append("")
    return "\n".join(lines)


# TOML's short escapes (toml.io, "String"); any other control character is \uXXXX
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
            "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string: a quote, a backslash and control characters (U+0000..U+001F,
    U+007F) escaped, so a path such as C:\\temp\\new.csv or dq"dir reads back as written
    (audit s15 K20: they were written raw, and read back as a tab and a newline, or not at
    all). Other text, non-ASCII included, stays as typed: TOML files are UTF-8."""
    return '"' + re.sub(r'["\\\x00-\x1f\x7f]', lambda m: _ESCAPES.get(
        m.group(), f"\\u{ord(m.group()):04X}"), text) + '"'


def toml_literal(value: Any) -> str:
    """A config value as TOML: str and list[str] quoted by toml_string, bool lowercased,
    numbers and dates (split.cut) as str() gives them, which TOML reads back."""
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(item) for item in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def field_notes(section: type[_Section]) -> dict[str, str]:
    """{key: its comment in config_sections.py}: the documentation lives beside each default, and
    `trainwise config` prints it. A comment block between two keys belongs to the next key
    when that key has no comment of its own, else it continues the previous key's; a block
    closing the class continues the last key (it was lost: inspect.getsource stops at the last
    statement, audit s15 K2). So a key with a comment beside it whose next key has its note
    above must keep its own note on its line or above it (config_sections.py does)."""
    notes: dict[str, str] = {}
    block: list[str] = []
    previous = None
    for line in _class_lines(section):
        stripped = line.strip()
        field = re.match(r"(\w+): [^#]+?(?:#\s?(.*))?$", stripped)
        if stripped.startswith("#"):
            block.append(stripped.lstrip("# "))
            continue
        if block and previous and (not field or field.group(2) or not _at_field(line)):
            notes[previous] = " ".join([notes[previous], *block])  # continues the last key
            block = []
        if field and _at_field(line):
            notes[field.group(1)], previous = " ".join([*block, field.group(2) or ""]).strip(), \
                field.group(1)
        elif stripped:  # a wrapped annotation, a decorator, a method: no note continues
            previous = None
        block = [] if stripped else block
    if block and previous:
        notes[previous] = " ".join([notes[previous], *block])
    return notes


def _at_field(line: str) -> bool:
    return line.startswith("    ") and not line.startswith("     ")


def _class_lines(section: type[_Section]) -> list[str]:
    """The class body as written, with the comment lines after its last statement."""
    try:
        lines, start = inspect.findsource(section)
    except (OSError, TypeError):  # no source shipped (a frozen build): bare values
        return []
    body = []
    for line in lines[start + 1:]:
        if line.strip() and not line[0].isspace():
            break
        body.append(line.rstrip("\n"))
    return body
