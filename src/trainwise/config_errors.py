"""A config error in words: pydantic's errors cut to one sentence per `section.key`, with a
did-you-mean for an unknown key (both a file or override and a Python assignment get them)."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from trainwise.config_sections import Config, valid_keys

# the hint for a section name that is none of them (a key's or a whole [section]'s)
_SECTIONS_HINT = f" The sections are {', '.join(f'[{s}]' for s in Config.model_fields)}."


def closest(key: str, known: list[str] | None = None) -> str:
    """A did-you-mean: the same key name in the section that has it (train.dropout ->
    model.dropout; a bare `source` -> data.source) before the nearest spelling, which sent
    train.dropout to train.lr and `source` to [tune] (audit s15 K5); an unknown section
    lists the sections."""
    section, _, name = key.rpartition(".")
    elsewhere = [full for full in valid_keys() if full.endswith(f".{name}")]
    if elsewhere:
        tables = " and ".join(f"[{full.split('.')[0]}]" for full in elsewhere)
        return (f" '{name}' is a key of {tables}: did you mean "
                f"{' or '.join(repr(full) for full in elsewhere)}?")
    match = _nearest(key, known or valid_keys())
    if match:
        return f" Did you mean '{match}'?"
    if section and section not in Config.model_fields:
        return _SECTIONS_HINT
    return ""


def keys_with_hints(unknown: list[str]) -> str:
    """config_files.unknown_keys' entries, each with its did-you-mean as `--set` gives it
    (review s16 VX6: a resumed folder's `max_epoch` got none): 'train.max_epoch (Did you mean
    'train.max_epochs'?)'; a whole '[section]' against the section names."""
    said = []
    for key in unknown:
        if key.startswith("["):
            match = difflib.get_close_matches(key[1:-1], list(Config.model_fields), n=1)
            hint = f" Did you mean [{match[0]}]?" if match else _SECTIONS_HINT
        else:
            hint = closest(key)
        said.append(f"{key} ({hint.strip()})" if hint else key)
    return ", ".join(said)


def _nearest(key: str, known: list[str]) -> str | None:
    """The known key whose name is spelt closest, its own section's first. Names are compared
    without the section: the shared 'train.' made 'train.fancy_new_key' 0.67 like
    'train.layer_every' and passed the old cutoff 0.4 (audit s16 D2), while the names alone
    score 0.5. Cutoff 0.6 (difflib's default) keeps the real typos: max_epoch -> max_epochs
    0.95, epochs -> max_epochs 0.75, trian -> train 0.8."""
    section, _, name = key.rpartition(".")
    same = [full for full in known if full.startswith(f"{section}.")] if section else []
    for pool in (same, known):
        by_name = {full.rpartition(".")[2]: full for full in reversed(pool)}  # first wins
        match = _best_name(name, list(by_name))
        if match:
            return by_name[match]
    return None


def _best_name(name: str, names: list[str]) -> str | None:
    """The closest name at difflib's cutoff 0.6; within 0.05 of it, a name that is the start
    of the typed one, or starts with it: 'target_column' scores 0.64 against 'drop_columns',
    a key of nearly the opposite meaning, and 0.63 against 'target', which it starts with
    (review s16 VF3)."""
    matches = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    if not matches:
        return None
    best = difflib.SequenceMatcher(None, name, matches[0]).ratio()
    near = [m for m in matches if difflib.SequenceMatcher(None, name, m).ratio() >= best - 0.05]
    return next((m for m in near if name.startswith(m) or m.startswith(name)), matches[0])


def section_of(section: type[BaseModel]) -> tuple[str, ...]:
    """The key prefix of a section class: ("train",) for TrainConfig, () for Config."""
    return next(((name,) for name, field in Config.model_fields.items()
                 if field.annotation is section), ())


def explain(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """One sentence per key: pydantic's location is cut to `section.key` (a union adds the
    member's name, e.g. 'constrained-int'), its alternatives joined by "or"; a check across
    keys (a section's validator) is its own message. `prefix`: the section an assignment
    was made on, whose errors locate only the key."""
    lines: list[str] = []
    alternatives: dict[str, tuple[Any, list[str]]] = {}
    for problem in exc.errors():
        loc = (*prefix, *problem["loc"])
        key = ".".join(str(part) for part in loc[:2])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] in ("extra_forbidden", "no_such_attribute"):
            known = None if len(loc) > 1 else list(Config.model_fields)  # cfg.trian = ...
            lines.append(f"unknown config key '{key}'.{closest(key, known)}")
        elif len(loc) < 2 and problem["type"] == "value_error":  # a section's check
            lines.append(f"{message}.")
        else:
            message += _quote_hint(problem, loc)
            alternatives.setdefault(key, (problem.get("input"), []))[1].append(message)
    for key, (value, messages) in alternatives.items():
        shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:77]}..."  # not a
        # whole array: data.source given a TaskData printed every row
        lines.append(f"'{key}' = {shown} is not allowed: {'; or '.join(messages)}.")
    return " ".join(lines)


def _quote_hint(problem: Any, loc: tuple) -> str:
    """Text that looks like a number or a boolean (a column named 2024, a run named no) is one
    once parsed: say how to write it as text (audit s15 K21). Not rebuilt from the parsed
    value: 0x1F, 1_000 or 1e3 parse to 31, 1000, 1000.0, and `target = "31"` named a column
    the user never had (review VO5); the file's syntax is unknown here, so both are shown."""
    value = problem.get("input")
    if problem["type"] != "string_type" or not isinstance(value, bool | int | float):
        return ""
    key = ".".join(str(part) for part in loc[:2])
    return (f" (unquoted, it reads as a number or true/false: put the value in quotes exactly "
            f'as you wrote it to mean the text: {loc[-1]} = "..." in TOML, {loc[-1]}: "..." in '
            f"YAML, --set '{key}=\"...\"')")
