"""Missing-value markers and case variants in text columns: '?' is no class, 'Yes' no level.

A breast-cancer export with 12 '?' and 6 '-' diagnoses trained a 4-class model whose
balanced accuracy (47%) and class-weight advice were about the markers; with the markers read
as missing, 97%. In a text feature, '?', '-' and 'n/a' were three one-hot levels of 'garage'
beside 'yes' and 'no', and 'yes' / 'Yes' / 'NO' four levels of 'smoker', without a word.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from trainwise.data.coltypes import COMMON_MARKERS, NA_MARKERS, is_text
from trainwise.findings import Finding, Severity, warning

NUM_SHOWN = 5  # values named per column
MAX_LEVELS = 1000  # case variants are looked for in columns with at most this many levels


def _folded(column: pd.Series) -> pd.Series:
    return column.astype(str).str.strip().str.casefold()


def _listed(counts: pd.Series) -> tuple[str, str]:
    """("'?' x12, '-' x6", '"?", "-"') for the message and the na_values fix."""
    shown = ", ".join(f"{v!r} x{c}" for v, c in counts.head(NUM_SHOWN).items())
    return shown, ", ".join(f'"{str(v).strip()}"' for v in counts.index[:NUM_SHOWN])


def mask_target_markers(frame: pd.DataFrame, target: str
                        ) -> tuple[pd.DataFrame, list[Finding]]:
    """A text target's '?', '-', 'n/a' cells -> missing (their rows are then dropped, as
    for any missing target), with a warning; word markers ('unknown') only warned about."""
    column = frame[target]
    if not is_text(column):
        return frame, []
    folded = _folded(column).where(column.notna())
    masked = folded.isin(NA_MARKERS)  # a DataFrame and its CSV agree; words: warned about
    worded = folded.isin(COMMON_MARKERS) & ~masked
    findings = []
    if masked.any():
        shown, listed = _listed(column[masked].value_counts())
        frame = frame.assign(**{target: column.mask(masked)})
        findings.append(warning(
            "data", "target_markers",
            f"target '{target}' has cells that look like missing-value markers ({shown}): "
            f"they are read as missing, so those {int(masked.sum())} rows are dropped rather "
            "than becoming classes of their own.",
            f"If they mean missing, list them and this warning goes: --set "
            f"'data.na_values=[{listed}]'. If they are real classes, rename them in the file "
            "(a word, not a symbol) and rerun from the data stage.",
            column=target, values={str(v): int(c) for v, c in
                                   column[masked].value_counts().items()}))
    if worded.any():
        findings.append(_marker_warning(target, column[worded].value_counts(), "target"))
    return frame, findings


def _marker_warning(name: str, counts: pd.Series, what: str) -> Finding:
    shown, listed = _listed(counts)
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
        folded = _folded(present)
        found = folded.isin(COMMON_MARKERS)
        if found.any():
            findings.append(_marker_warning(str(name), present[found].value_counts(),
                                            "column"))
        counts = present[~found].astype(str).value_counts()
        if 1 < len(counts) <= MAX_LEVELS:
            findings += _case_variants(str(name), counts)
    return findings


def _case_variants(name: str, counts: pd.Series) -> list[Finding]:
    folded = pd.Series(counts.index, index=counts.index).str.strip().str.casefold()
    groups = [list(members) for _, members in counts.groupby(folded.to_numpy()).groups.items()
              if len(members) > 1]
    if not groups:
        return []
    shown = "; ".join(" / ".join(f"{level!r} x{counts[level]}" for level in group)
                      for group in groups[:NUM_SHOWN])
    return [Finding(
        "data", Severity.INFO, "lookalike_levels",
        f"column '{name}' has levels that differ only in case or surrounding spaces "
        f"({shown}): each is a one-hot column of its own.",
        dict(column=name, groups=[[str(v) for v in group] for group in groups[:NUM_SHOWN]]),
        "If they mean the same, clean the column in the file (strip spaces, one case) and "
        "rerun from the data stage; if they differ, nothing to do.")]
