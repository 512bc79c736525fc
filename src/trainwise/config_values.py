"""Values of free-text keys that can be checked without the data: a built-in model or source
name, a text encoding, a time cut or gap. A typo there passed `trainwise config` and failed
only after the run folder was made and the data loaded (exit 1), or never (split.cut on a run
without a time split; audit s15 K15). Each check raises ValueError, which the config's
validators turn into a ConfigError naming the key, the value and what is allowed (exit 2)."""

from __future__ import annotations

import codecs
import difflib
from pathlib import Path

MODEL_NAMES = ("auto", "mlp", "cnn1d", "gru", "cnn2d", "embedding_pool")  # model/baselines'
# BASELINES and "auto", named here so that a config is checked without importing torch


def _closest(value: str, names: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def model_name(value: str) -> str:
    """A built-in model, or 'module:Class' (checked by ModelConfig's own validator)."""
    if ":" in value or value in MODEL_NAMES:
        return value
    raise ValueError(f"use one of {', '.join(repr(n) for n in MODEL_NAMES)}, or your own "
                     f"nn.Module as 'package.module:Class'{_closest(value, MODEL_NAMES)}")


def data_source(value: str, built_in: tuple[str, ...], readable: str) -> str:
    """A built-in name, or anything that reads as a path: a suffix, a folder separator, or an
    existing folder. A missing data *file* errs where the data is read, naming where it was
    looked for; a bare word that is none of these is a typo of a name."""
    path = Path(value)
    if value in built_in or path.suffix or len(path.parts) > 1 or path.exists():
        return value
    raise ValueError(f"it is not a built-in data set{_closest(value, built_in)}, nor a file or "
                     f"folder in the working folder '{Path.cwd()}' or beside the config file "
                     f"(where a config's relative data.source is read); "
                     f"{allowed_sources(built_in, readable)}")


def allowed_sources(built_in: tuple[str, ...], readable: str) -> str:
    """What data.source takes, said alike by this check and by the loader (data/sources.py),
    which a suffixed source such as x.xls reaches (review VO10: two wordings had drifted)."""
    return (f"use one of {', '.join(repr(n) for n in built_in)}, a data file ({readable}), or "
            "a folder with one sub-folder of images per class (a spreadsheet: save the sheet as "
            "CSV, in Excel 'CSV UTF-8')")


def encoding(value: str) -> str:
    """"" (UTF-8) or a name Python's codecs know."""
    if value:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError("it is not a text encoding Python knows; use e.g. 'utf-8', "
                             "'latin-1' or 'cp1252' (or \"\" for UTF-8)") from None
    return value


def time_value(value: object, key: str) -> object:
    """"" (none), a number, or a duration with a unit ('30D', '12h'); split.cut also a date
    ('2024-06-01')."""
    if not isinstance(value, str) or not value.strip() or reads_as_number(value):
        return value
    import pandas as pd  # only for a text value: the config loads without pandas otherwise

    text = value.strip()
    parsers = (pd.Timestamp, pd.Timedelta) if key == "cut" else (pd.Timedelta,)
    for parse in parsers:
        if parse is pd.Timedelta and not any(c.isalpha() for c in text):
            continue  # pandas reads a bare '30' as 30 ns: the split asks for a unit
        try:
            parse(text)
            return value
        except ValueError:  # pandas' DateParseError is a ValueError
            continue
    what, example = ("a date, a duration", "'2024-06-01', '30D'") if key == "cut" else \
        ("a duration", "'7D', '12h'")
    raise ValueError(f"it is neither {what} nor a number; write e.g. {example} or a number "
                     "in the units of the time column")


def reads_as_number(text: str) -> bool:
    """float() takes it: "-0.5", "1e-3", "inf" (config values and spreadsheet cells alike)."""
    try:
        float(text)
    except ValueError:
        return False
    return True
