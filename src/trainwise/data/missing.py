"""The missing_values warning: how many cells each column misses, as a share of its rows.

A column 94.6% empty got the advice of a column missing one cell ("filled with the training
mean"), with no percentage (audit s12 K8), and 336 empty cells (42%) of a text column were not
counted at all (K9): its missing cells become a one-hot level of their own, which is a fine
treatment, but the user is owed the count.
"""

from __future__ import annotations

from trainwise.findings import Finding, warning

MOSTLY_MISSING = 0.5  # a column missing this share of its rows or more: its mean-filled value
# is most of what the model sees of it; drop it or keep only whether it was missing
TOP_K = 10  # columns named in the evidence
NUM_SHOWN = 3  # columns named in the message


def missing_warning(counts: dict[str, int], num_rows: int,
                    text: frozenset[str] = frozenset()) -> Finding:
    """`counts`: column -> missing (NaN or infinite) cells, non-zero only; `text`: those of
    them that are text columns (one-hot, their missing cells a level of their own)."""
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
             any(name not in text for name in counts)),
        num_features_affected=len(counts), num_values=sum(counts.values()),
        top_features=dict(ranked[:TOP_K]), shares=dict(list(shares.items())[:TOP_K]),
        mostly_missing=mostly[:TOP_K], text_features=sorted(text & set(counts))[:TOP_K])


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - NUM_SHOWN} more" if len(names) > NUM_SHOWN else ""
    return ", ".join(f"'{n}'" for n in names[:NUM_SHOWN]) + more


def _fix(mostly: list[str], has_text: bool, has_numbers: bool) -> str:
    how = []
    if has_numbers:
        how.append("In number columns they are filled with the training mean after "
                   "normalisation; if being missing carries meaning, add an indicator column "
                   "or impute before training.")
    if has_text:
        how.append("In text columns they are a one-hot level of their own, which tells the "
                   "model a cell was missing: nothing to do, unless the empty cells stand for "
                   "a value (then fill it in the file).")
    fix = " ".join(how)
    if not mostly:
        return fix
    listed = ", ".join(f'"{n}"' for n in mostly[:TOP_K])
    one = len(mostly) == 1
    return (f"{_listed(mostly)} {'is' if one else 'are'} mostly missing: drop "
            f"{'it' if one else 'them'} (--set 'data.drop_columns=[{listed}]'), or, if being "
            "missing carries meaning, keep only a missing indicator: replace the column in the "
            "file by a 0/1 column (df[name + '_missing'] = df[name].isna()) and rerun from the "
            "data stage. " + fix)
