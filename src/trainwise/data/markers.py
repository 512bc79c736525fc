"""Missing-value markers and case variants in text columns: '?' is no class, 'Yes' no level.

A breast-cancer export with 12 '?' and 6 '-' diagnoses trained a 4-class model whose
balanced accuracy (47%) and class-weight advice were about the markers; with the markers read
as missing, 97%. In a text feature, '?', '-' and 'n/a' were three one-hot levels of 'garage'
beside 'yes' and 'no', and 'yes' / 'Yes' / 'NO' four levels of 'smoker', without a word.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from trainwise.data.coltypes import COMMON_MARKERS, NA_MARKERS, folded, is_text, listed_values
from trainwise.findings import Finding, Severity, warning

NUM_SHOWN = 5  # values named per column
MAX_LEVELS = 1000  # case variants are looked for in columns with at most this many levels
# separators that do not change meaning, dropped in two passes: first spaces and '_', then a
# '.' not between two digits ('1.5' is not '15') and a '-' or '/' between two letters
# ([^\W\d_]: a letter in any script). One pass kept 'new - york' from 'New York': its '-' sat
# between spaces (review s12 F6). A '-' beside a digit stays: 'COVID-19' / 'COVID19' are apart,
# as 'x-1' / 'x1' may be a minus sign; a level missed costs one one-hot column, a wrong merge
# advice loses a distinction
SPACES = r"[\s_]+"
MARKS = r"(?<!\d)\.|\.(?!\d)|(?<=[^\W\d_])[-/](?=[^\W\d_])"
LOOKALIKE_SHARE = 0.01  # lookalike spellings in more than 1% of the rows: a warning (listed in
# the audit's flagged codes), below it a note; 'N.Y.' in 93 of 600 rows went unsaid (s12 K7)


def mask_target_markers(frame: pd.DataFrame, target: str
                        ) -> tuple[pd.DataFrame, list[Finding]]:
    """A text target's '?', '-', 'n/a' cells -> missing: their rows are then dropped and
    named, with their text, by target_rows' one target_missing warning (a second warning for
    the same rows said the same twice, review s14 VD5); word markers ('unknown') may be real
    classes: kept, and warned about."""
    column = frame[target]
    if not is_text(column):
        return frame, []
    cells = folded(column).where(column.notna())
    masked = cells.isin(NA_MARKERS)  # a DataFrame and its CSV agree; words: warned about
    worded = cells.isin(COMMON_MARKERS) & ~masked
    if masked.any():
        frame = frame.assign(**{target: column.mask(masked)})
    if worded.any():
        return frame, [_marker_warning(target, column[worded].value_counts(), "target")]
    return frame, []


def _marker_warning(name: str, counts: pd.Series, what: str) -> Finding:
    shown, listed = listed_values(counts)
    return warning(
        "data", "text_markers",
        f"{what} '{name}' has cells that look like missing-value markers ({shown}): each "
        "is kept as a category of its own, beside the truly missing cells.",
        f"If they mean missing, list them: --set 'data.na_values=[{listed}]' "
        f"(na_values = [{listed}] in [data]), and rerun from the data stage; if they are "
        "real values, nothing to do.",
        column=name, values={str(v): int(c) for v, c in counts.head(NUM_SHOWN).items()})


def text_level_findings(frame: pd.DataFrame, exclude: Iterable[str]) -> list[Finding]:
    """Per text feature: a warning for marker cells ('?', '-', 'unknown'), and a note for
    levels that differ only in case or surrounding spaces ('yes', 'Yes ', 'YES')."""
    skipped = set(exclude)
    findings = []
    for name in frame.columns:
        column = frame[name]
        if name in skipped or not is_text(column):
            continue
        present = column.dropna()
        found = folded(present).isin(COMMON_MARKERS)
        if found.any():
            findings.append(_marker_warning(str(name), present[found].value_counts(),
                                            "column"))
        counts = present[~found].astype(str).value_counts()
        if 1 < len(counts) <= MAX_LEVELS:
            findings += _case_variants(str(name), counts, len(column))
    return findings


def case_groups(counts: pd.Series, punctuation: bool = False) -> list[list[str]]:
    """The values of `counts` (value_counts of text) that differ only in case or surrounding
    spaces, grouped: [['yes', 'Yes '], ['no', 'NO']]; each group has 2+ members.
    `punctuation`: also in the separators that do not change meaning ('N.Y.' / 'NY',
    'new-york' / 'New York'), among values with a letter: '-0.5' and '0.5', '1.5' and '15'
    are different numbers. A '+' or '-' that is not between two letters is kept: 'A+' / 'A-'
    (blood types) and 'BBB+' / 'BBB' / 'BBB-' (ratings) are different values; stripping
    every mark as deepchecks' StringMismatch does warned on 17.7% of a blood-type column."""
    keys = folded(pd.Series(counts.index, index=counts.index))
    if punctuation:
        keys = keys.str.replace(SPACES, "", regex=True).str.replace(MARKS, "", regex=True)
        keys = keys.where(keys.str.contains(r"[^\W\d_]", regex=True), "")  # no letter: apart
    keys = keys.to_numpy()
    return [[str(v) for v in members] for key, members in counts.groupby(keys).groups.items()
            if len(members) > 1 and key != ""]


def case_groups_shown(groups: list[list[str]], counts: pd.Series) -> str:
    """"'yes' x40 / 'Yes ' x3; 'no' x50 / 'NO' x2" for the first NUM_SHOWN groups."""
    return "; ".join(" / ".join(f"{value!r} x{counts[value]}" for value in group)
                     for group in groups[:NUM_SHOWN])


def _case_variants(name: str, counts: pd.Series, num_rows: int) -> list[Finding]:
    groups = case_groups(counts, punctuation=True)
    if not groups:
        return []
    shown = case_groups_shown(groups, counts)
    # rows spelt otherwise than their group's most frequent value: what cleaning would move
    variants = sum(int(counts[group].sum() - counts[group].max()) for group in groups)
    share = variants / max(num_rows, 1)
    return [Finding(
        "data", Severity.WARNING if share > LOOKALIKE_SHARE else Severity.INFO,
        "lookalike_levels",
        f"column '{name}' has levels that differ only in case, spaces or punctuation "
        f"({shown}): each is a one-hot column of its own; {variants} rows "
        f"({share:.1%}) are spelt otherwise than their group's most frequent value.",
        dict(column=name, groups=groups[:NUM_SHOWN], num_rows=variants,
             share=round(share, 4)),
        "If they mean the same, clean the column in the file (one spelling per value: strip "
        "spaces and dots, one case) and rerun from the data stage; if they differ, nothing "
        "to do.")]
