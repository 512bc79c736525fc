"""Which columns are keys, not features: a subject/series id (group) or a timestamp (time).

Declared keys come from the config; with none declared they are inferred from names and values,
because a patient id left among the features lets a random split leak whole patients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainwise.data.coltypes import is_mostly_numeric
from trainwise.data.dates import SAMPLE as DATE_SAMPLE
from trainwise.data.dates import read_dates
from trainwise.data.errors import DataError
from trainwise.data.task import Key
from trainwise.data.text import TextColumn, free_text_columns

NONE = "none"  # split.group_column / split.time_column value: rows are independent, infer nothing
SUBJECT_WORDS = {"patient", "subject", "participant", "user", "customer", "person", "individual",
                 "donor", "animal", "household", "session", "account", "client", "member",
                 "study", "series", "recording", "device", "visitor", "player", "author"}
ID_WORDS = {"id", "uuid", "guid", "pid", "uid", "sid"}
TIME_WORDS = {"timestamp", "time", "date", "datetime", "epoch", "ts", "at"}
# a period count is only suggested as the time key, never taken: 'year' is as often a property
# of the row (the year a house was built) as the time it was observed. The length of each
# calendar cycle: a 'month' of 1..12 is a season, a 'month_index' of 1..288 a time
PERIOD_CYCLES = {"year": 0, "yr": 0, "period": 0, "quarter": 4, "month": 12, "week": 53}
# an integer column so named counts time steps (days since the start, a simulation step) and
# is taken as the time key, as dates are: audit s13 F2's `day` of 1..728 per store, left a
# feature, got a random split of a lagged series with 99.9% of test rows dated before the last
# training row. The number: the largest value of a calendar position (day 1..31 of a month,
# week 1..53, month 1..12): a column within it is a season, not a time. No plurals and no
# 't': `steps` (a daily step count), `days` (length of stay), `months` (tenure) and `t` (a
# temperature) name counts more often than an index; taken, `steps` sorted a table's 120 most
# active people into test (review s13 VD1)
STEP_WORDS = {"day": 31, "week": 53, "month": 12, "period": 0, "step": 0}
MIN_STEP_COVER = 0.9  # an index holds >= 90% of the steps low..high (a few missing readings);
# counts and durations drawn at random leave gaps: day-of-year 1..365 over 600 rows holds 80%
STEP_INDEX = {"index", "idx", "no", "nr", "number"}  # 'day_index', 'week_no': still a step;
# any other word makes a duration or a count ('days_since_visit', 'num_days'): a feature
STEP_REASON = "its name says"  # how a step-count reason starts: ranked after dates and times
YEARS = (1800, 2200)  # values of a 'year' column that are calendar years (not 'year 1..5')
# name tokens of a record number: an integer unique per row named so is an identifier
NUMBER_WORDS = {"number", "no", "nr", "num", "index", "idx"}
# what pandas names a header cell left empty: 'Unnamed: 0' is DataFrame.to_csv()'s saved index
UNNAMED = re.compile(r"^(Unnamed: \d+(_level_\d+)?|index|level_\d+)$")
MIN_VALUES = 20  # a value-inferred group key has at least this many distinct values ...
MIN_VALUE_SHARE = 0.01  # ... and at least 1% of the rows as distinct values (a 10-level
# categorical feature is not a subject key), each value repeated 2+ rows on average ...
MAX_ROWS_PER_VALUE = 10  # ... and fewer than 10: a text column whose name names no subject is
# taken for one only when its levels are too rare to learn from as a feature (7 training rows
# each in a 70/10/20 split), like scan or visit codes. city.csv's 40 cities (37 rows each)
# were a group key under the old rule, dropped from the features: test accuracy 64.5% and
# 65.3% (seeds 0, 1); a one-hot feature now: 90.0% and 90.7%.


@dataclass
class KeyPlan:
    """Keys chosen for a table, plus identifier columns to keep out of the features."""

    keys: list[Key] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)  # unique per row: no use as key or feature
    others: list[str] = field(default_factory=list)  # more candidates, named in the warning
    reasons: dict[str, str] = field(default_factory=dict)  # row id -> why it is one
    ordered_ids: list[str] = field(default_factory=list)  # kept as features, but unique
    # increasing integers: a record number that leaks the file's order (sorted by label)
    periods: dict[str, str] = field(default_factory=dict)  # feature -> why it looks like a
    # time (a 'year' of 2001..2024), when no time key was declared or found
    series_periods: list[str] = field(default_factory=list)  # of periods: one row per value,
    # the shape of a single series (a panel or a property repeats values)
    text: list[TextColumn] = field(default_factory=list)  # free text: read as words, never
    # a key or a row id (a ticket unique per row is not an identifier of the row)

    @property
    def columns(self) -> list[str]:
        return [k.column for k in self.keys] + self.row_ids

    def set_aside(self) -> list[str]:
        """Per key and row id, why it is not a feature: "'ticket_id' (row id: unique per
        row, an identifier)", for the error that finds no features left."""
        keys = [f"'{k.column}' ({k.role} key: "
                f"{'declared' if k.declared else k.reason or 'inferred'})" for k in self.keys]
        return keys + [f"'{c}' (row id: {self.reasons.get(c, 'unique per row')})"
                       for c in self.row_ids]


def name_tokens(name: str) -> list[str]:
    """'patientID' / 'Patient_Id' / 'patient-id' -> ['patient', 'id']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _is_text(column: pd.Series) -> bool:
    return column.dtype.kind in "OUS" or isinstance(column.dtype, pd.CategoricalDtype) \
        or str(column.dtype).startswith("str")


def _looks_like_dates(column: pd.Series) -> bool:
    return _is_text(column) and read_dates(column.dropna().head(DATE_SAMPLE)) is not None


def _group_reason(name: str, column: pd.Series) -> str:
    """Why `column` looks like a subject key, or '' if it does not."""
    named = [t for t in name_tokens(name) if t in SUBJECT_WORDS or t in ID_WORDS]
    if column.dtype.kind in "fM" or not (named or _is_text(column)):
        return ""  # counting distinct values is the cost here: only for candidates
    if not named and is_mostly_numeric(column):
        return ""  # numbers with a few '?' cells: a measurement (age), not a subject
    if _looks_like_dates(column):
        return ""  # an order date repeats too, but it is a time: split.time_column
    unique, rows = column.nunique(dropna=True), len(column)
    if unique < 2 or unique * 2 > rows:  # a key repeats: with < 2 rows per value it is a row id
        return ""
    if named:
        return f"its name contains '{named[0]}'; {unique:,} values, {rows / unique:.1f} rows each"
    if unique >= max(MIN_VALUES, MIN_VALUE_SHARE * rows) and rows < MAX_ROWS_PER_VALUE * unique:
        return (f"{unique:,} distinct text values, only {rows / unique:.1f} rows each on average, "
                "too few to learn each value's effect")
    return ""


def _is_row_number(column: pd.Series) -> bool:
    """Integers equal to the row number, 0..n-1 or 1..n (other runs of consecutive integers,
    such as years 1990..2020, are left to _is_ordered_id's warning)."""
    if column.dtype.kind not in "iu" or len(column) < 2 or column.hasnans \
            or column.iloc[0] not in (0, 1):
        return False
    return bool(np.all(np.diff(column.to_numpy(np.int64)) == 1))


def _unique_but_copies(frame: pd.DataFrame, name: str) -> bool:
    """Unique per row once exact copies of rows are removed: an id copied with its row (a
    duplicated record) is still a row id, not a key that groups rows."""
    repeated = frame[name].duplicated(keep=False) & frame[name].notna()
    distinct = frame.loc[repeated].drop_duplicates()
    return len(distinct) > 0 and distinct[name].is_unique


def _row_id_reason(frame: pd.DataFrame, name: str) -> str:
    """Why column `name` identifies rows (so it is neither a key nor a feature), or ''."""
    column = frame[name]
    if column.dtype.kind == "f":
        return ""
    if UNNAMED.match(name) and column.is_unique:
        return ("a saved pandas index (DataFrame.to_csv() writes it unless index=False): a row "
                "position, and on a file sorted by label a copy of the label")
    if _is_row_number(column):
        return "it equals the row number (0..n-1 or 1..n)"
    tokens = name_tokens(name)
    # a number word names a record number only as the name's last word ('account_number',
    # 'order_no'), not as a count's first ('number_of_rooms', 'num_words')
    named = set(tokens) & ID_WORDS or (column.dtype.kind in "iu" and bool(tokens)
                                       and tokens[-1] in NUMBER_WORDS)
    if not (_is_text(column) or named):
        return ""
    unique = column.nunique(dropna=True)
    if unique == len(column):
        return "unique per row, an identifier: a model could only memorise it"
    if unique * 2 > len(column) and _unique_but_copies(frame, name):  # < 2 rows per value
        return "unique per row except in rows that are exact copies, an identifier"
    return ""


def _is_ordered_id(column: pd.Series) -> bool:
    """Integers unique per row and increasing in file order: a record number, or a time."""
    if column.dtype.kind not in "iu" or len(column) < MIN_VALUES or column.hasnans:
        return False
    return bool(np.all(np.diff(column.to_numpy(np.int64)) > 0))


def _time_reason(name: str, column: pd.Series) -> str:
    if column.dtype.kind == "M":
        return "it holds dates"
    tokens = set(name_tokens(name))
    if _is_text(column):
        return "its text parses as dates" if _looks_like_dates(column) else ""
    if column.dtype.kind in "iuf" and tokens & TIME_WORDS:
        return f"its name says time ('{name}') and it is numeric"
    return _step_reason(name, column)


def _step_word(name: str, column: pd.Series) -> str:
    """The STEP_WORDS word that names an integer column past one calendar cycle, or ''."""
    tokens = name_tokens(name)
    words = [t for t in tokens if t in STEP_WORDS]
    if len(words) != 1 or set(tokens) - STEP_INDEX - set(words) \
            or column.dtype.kind not in "iu" or column.nunique() < 3:
        return ""
    if column.max() <= STEP_WORDS[words[0]]:
        return ""  # a day of the month, a month of the year: a season, not a time
    return words[0]


def _looks_like_index(column: pd.Series) -> bool:
    """Values that count steps: they cover >= MIN_STEP_COVER of low..high, and each is held by
    about as many rows (one per series). Values drawn at random scatter their rows as Poisson
    counts, variance = mean; a panel's are equal (variance 0) or nearly (a reading missing):
    the line is half the mean."""
    _, counts = np.unique(column.to_numpy(np.int64), return_counts=True)
    span = int(column.max()) - int(column.min()) + 1
    return len(counts) >= MIN_STEP_COVER * span and counts.var() <= counts.mean() / 2


def _step_reason(name: str, column: pd.Series) -> str:
    """Why an integer column looks like a count of time steps (STEP_WORDS), or ''."""
    word = _step_word(name, column)
    if not word or not _looks_like_index(column):
        return ""  # a count or a duration so named: step_suggestion names it, no more
    return (f"{STEP_REASON} '{word}' and it holds integers {column.min()}..{column.max()}, "
            "one row per step of each series, a count of time steps")


def step_suggestion(name: str, column: pd.Series) -> str:
    """Why a column named for time steps whose values do not look like an index (gaps, rows
    spread unevenly) may still be the time: suggested (possible_time_key), never taken."""
    word = _step_word(name, column)
    if not word or _looks_like_index(column):
        return ""
    return (f"its name says '{word}' and it holds whole numbers {column.min()}..{column.max()}, "
            "though not one row per step of each series")


def period_reason(name: str, column: pd.Series) -> str:
    """Why a numeric column looks like a count of periods (years, months since ...), or ''."""
    words = [t for t in name_tokens(name) if t in PERIOD_CYCLES]
    if not words or column.dtype.kind not in "iuf":
        return ""
    values = column.dropna()
    if values.nunique() < 3 or not np.all(np.mod(values, 1) == 0):
        return ""  # a 'month' of 6.5 is a mean, not a period
    low, high, cycle = values.min(), values.max(), PERIOD_CYCLES[words[0]]
    if words[0] in ("year", "yr") and not YEARS[0] <= low <= high <= YEARS[1]:
        return ""
    if high <= cycle:
        return ""  # a position in the calendar (month 1..12): a season, not a time
    return f"its name says '{words[0]}' and it holds whole numbers {low:g}..{high:g}"


def time_values(column: pd.Series, name: str) -> np.ndarray:
    """(N,) datetime64[ns] (UTC, naive) or float64; missing times are an error."""
    if column.dtype.kind in "iuf":
        values = column.to_numpy(np.float64)
        missing = ~np.isfinite(values)
    else:  # dates (table_data parsed date text already); ISO text from other callers
        parsed = pd.to_datetime(column, errors="coerce", utc=True,
                                format=None if column.dtype.kind == "M" else "ISO8601")
        values = parsed.dt.tz_localize(None).to_numpy("datetime64[ns]")
        missing = np.isnat(values)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(f"time column '{name}' has {int(missing.sum())} missing or unreadable "
                        f"times (first at row {first}: {column.iloc[first]!r}). Fill or drop "
                        "those rows, or write times as ISO 8601 ('2024-03-01 12:00').")
    return values


def _declared(frame: pd.DataFrame, column: str, role: str, source: str) -> Key | None:
    if not column or column == NONE:
        return None
    if column not in frame.columns:
        raise DataError(f"{role} column '{column}' is not in '{source}' (columns: "
                        f"{', '.join(map(str, frame.columns[:20]))}). Set split.{role}_column "
                        f"to an existing column, or to \"{NONE}\".")
    return Key(column, role, declared=True)  # type: ignore[arg-type]


def _infer(frame: pd.DataFrame, role: str) -> list[tuple[str, str]]:
    judge = _group_reason if role == "group" else _time_reason
    found = [(str(c), judge(str(c), frame[c])) for c in frame.columns]
    # dates and columns named for time first: a 'day' count beside a 'date' is a feature
    return sorted([(c, why) for c, why in found if why],
                  key=lambda pair: pair[1].startswith(STEP_REASON))


def plan_keys(frame: pd.DataFrame, target: str, group_column: str = "", time_column: str = "",
              source: str = "the table") -> KeyPlan:
    """Declared keys as given; an empty setting is inferred, 'none' turns inference off."""
    plan = KeyPlan()
    rest = frame.drop(columns=[target])  # no list cells: table_data's as_csv_table refused them
    plan.text = [t for t in free_text_columns(rest)
                 if t.name not in (group_column, time_column)]  # declared: the user's call
    prose = {t.name for t in plan.text}
    for role, column in (("time", time_column), ("group", group_column)):
        key = _declared(frame, column, role, source)
        if key is None and column != NONE:
            taken = set(plan.columns) | prose
            found = [(c, why) for c, why in _infer(rest, role) if c not in taken]
            if found:
                key = Key(found[0][0], role, declared=False, reason=found[0][1])  # type: ignore
                plan.others += [c for c, _ in found[1:]]
        if key is not None:
            plan.keys.append(key)
    taken = set(plan.columns) | prose
    if time_column != NONE and not any(k.role == "time" for k in plan.keys):
        found = {str(c): period_reason(str(c), rest[c]) or step_suggestion(str(c), rest[c])
                 for c in rest.columns if str(c) not in taken}
        plan.periods = {c: why for c, why in found.items() if why}
        plan.series_periods = [c for c in plan.periods if rest[c].is_unique]
    for c in rest.columns:
        reason = _row_id_reason(rest, c) if str(c) not in taken else ""
        if reason:
            plan.row_ids.append(str(c))
            plan.reasons[str(c)] = reason
        elif str(c) not in taken and _is_ordered_id(rest[c]):
            plan.ordered_ids.append(str(c))
    return plan
