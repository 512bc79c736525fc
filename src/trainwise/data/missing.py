"""The missing_values warning: how many cells each column misses, as a share of its rows.

A column 94.6% empty got the advice of a column missing one cell ("filled with the training
mean"), with no percentage (audit s12 K8), and 336 empty cells (42%) of a text column were not
counted at all (K9): its missing cells become a one-hot level of their own, which is a fine
treatment, but the user is owed the count.
"""

from __future__ import annotations

from trainwise.findings import Finding, error, warning

MOSTLY_MISSING = 0.5  # a column missing this share of its rows or more: its mean-filled value
# is most of what the model sees of it; drop it or keep only whether it was missing
TOP_K = 10  # features named in evidence and summaries (audit.py and scale.py import it)
NUM_SHOWN = 3  # columns named in the message


def missing_warning(counts: dict[str, int], num_rows: int,
                    text: frozenset[str] = frozenset(),
                    positions: dict[str, int] | None = None) -> Finding:
    """`counts`: column -> missing (NaN or infinite) cells, non-zero only; `text`: those of
    them that are text columns (one-hot, their missing cells a level of their own);
    `positions`: feature -> its column in x, for arrays (None: a .csv/.parquet table or a
    DataFrame, whose columns data.drop_columns drops; it does nothing for arrays). An error
    instead when a number column has no value at all (counts == num_rows)."""
    empty = [name for name, n in counts.items() if n >= num_rows and name not in text]
    if empty:
        return _empty_error(counts, empty, positions)
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    shares = {name: round(n / max(num_rows, 1), 4) for name, n in ranked}
    mostly = [name for name, share in shares.items() if share >= MOSTLY_MISSING]
    shown = ", ".join(f"{name}={n} ({shares[name]:.1%})" for name, n in ranked[:NUM_SHOWN])
    return warning(
        "data", "missing_values",
        f"{sum(counts.values())} missing or infinite values in {len(counts)} features of "
        f"{num_rows} rows (most: {shown})."
        + (f" {_listed(mostly)} {'is' if len(mostly) == 1 else 'are'} at least "
           f"{MOSTLY_MISSING:.0%} missing." if mostly else ""),
        _fix(mostly, any(name in text for name in counts),
             any(name not in text for name in counts), positions),
        num_features_affected=len(counts), num_values=sum(counts.values()),
        top_features=dict(ranked[:TOP_K]), shares=dict(list(shares.items())[:TOP_K]),
        mostly_missing=mostly[:TOP_K], text_features=sorted(text & set(counts))[:TOP_K])


def _empty_error(counts: dict[str, int], empty: list[str],
                 positions: dict[str, int] | None) -> Finding:
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    # above TOP_K the list would be cut and the command leave the rest (review s12 F5: 12
    # empty columns, x10 and x11 kept): the mask drops every column with no finite value
    where = f"np.delete(x, {[positions[name] for name in empty]}, axis=1)" \
        if positions is not None and len(empty) <= TOP_K else "x[:, np.isfinite(x).any(axis=0)]"
    how = (f"Drop these columns from the array you pass (x = {where}) or fix how it was built"
           if positions is not None else "Drop these columns or fix how they are read (wrong "
           "separator, decimal comma, text in a number column)")
    more = f" and {len(empty) - TOP_K} more" if len(empty) > TOP_K else ""
    return error("data", "missing_values",
                 f"{len(empty)} features have no finite value at all: "
                 f"{', '.join(empty[:TOP_K])}{more}.", how + ".", empty_features=empty[:TOP_K],
                 num_features_affected=len(counts), num_values=sum(counts.values()),
                 top_features=dict(ranked[:TOP_K]))


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - NUM_SHOWN} more" if len(names) > NUM_SHOWN else ""
    return ", ".join(f"'{n}'" for n in names[:NUM_SHOWN]) + more


def _fix(mostly: list[str], has_text: bool, has_numbers: bool,
         positions: dict[str, int] | None) -> str:
    how = []
    if has_numbers:  # the indicator is said once: in the mostly-missing advice when there is one
        how.append("In number columns they are filled with the training mean after "
                   "normalisation" + ("." if mostly else "; if being missing carries meaning, "
                                      "add an indicator column or impute before training."))
    if has_text:
        how.append("In text columns they are a one-hot level of their own, which tells the "
                   "model a cell was missing: nothing to do, unless the empty cells stand for "
                   "a value (then fill it in the file).")
    fix = " ".join(how)
    if not mostly:
        return fix
    if positions is not None:
        return _array_fix(mostly, positions) + " " + fix
    listed = ", ".join(f'"{n}"' for n in mostly[:TOP_K])
    one = len(mostly) == 1
    return (f"{_listed(mostly)} {'is' if one else 'are'} mostly missing: drop "
            f"{'it' if one else 'them'} (--set 'data.drop_columns=[{listed}]'), or, if being "
            "missing carries meaning, keep only a missing indicator: replace the column in the "
            "file by a 0/1 column (df[name + '_missing'] = df[name].isna()) and rerun from the "
            "data stage. " + fix)


def _array_fix(mostly: list[str], positions: dict[str, int]) -> str:
    """The numpy route: an array has no file to edit and data.drop_columns skips it."""
    columns = [positions[name] for name in mostly]
    one = len(columns) == 1
    where = f"{columns[0]}" if one else f"{columns}" if len(columns) <= TOP_K else \
        f"(~np.isfinite(x)).mean(axis=0) >= {MOSTLY_MISSING}"  # too many to list: the rule
    # ~isfinite, not isnan: the counts are of NaN and +-inf cells (audit.py)
    return (f"{_listed(mostly)} (column{'' if one else 's'} {where} of x) "
            f"{'is' if one else 'are'} mostly missing: drop {'it' if one else 'them'} from "
            f"the array you pass (x = np.delete(x, {where}, axis=1)), or, if being missing "
            f"carries meaning, keep only a missing indicator in {'its' if one else 'their'} "
            f"place (x[:, {where}] = ~np.isfinite(x[:, {where}])), and rerun from the data stage.")
