"""Label over time (audit s12 K3): for a time split, the classes missing from a part where
their share says they should be there, with when their rows end or start: the label changes
with time, which more rows would not fix. Read by the split stage for
classes_missing_from_split (part_findings.missing_classes words it); drift_findings then
leaves the label out. Pure."""

from __future__ import annotations

import numpy as np

from trainwise.data.split import PART_WORDS
from trainwise.data.timesplit import format_time

MIN_EXPECTED = 5  # rows a class would have in a part at its overall share: 0 where 5 were
# expected has Poisson chance e^-5 < 1%, so it is no longer bad luck but the label moving


def label_over_time(y: np.ndarray, times: np.ndarray, parts: dict[str, np.ndarray | None],
                    class_names: list[str], counts: dict[str, list[int]] | None = None
                    ) -> dict[str, str]:
    """For a time split (row indices into y/times per part): each class missing from a part
    where its share would put >= MIN_EXPECTED rows, with when its rows end or start, e.g.
    {'0': "its last row is at 2023-02-11 08:00, before validation starts"}: the label
    changes with time (audit s12 K3: a class of 501 rows of 1000 was told to collect rows).
    `counts`: {part: per-class row counts}, as the split stage has them; only classes some
    part lacks are gathered (review s12 VD11: recounting all 1000 classes of 1M rows took
    3.1 s to find none)."""
    y, times = np.asarray(y), np.asarray(times)
    rows = {p: np.asarray(r) for p, r in parts.items() if r is not None and len(r)}
    if not rows:
        return {}
    if counts is None:
        counts = {p: np.bincount(y[r], minlength=len(class_names)).tolist()
                  for p, r in rows.items()}
    per_part = np.array([counts[p][:len(class_names)] for p in rows])  # (parts, classes)
    sizes = np.array([len(r) for r in rows.values()])
    expected = per_part.sum(axis=0) * sizes[:, None] / sizes.sum()  # at the class's share
    lacking = (per_part == 0) & (expected >= MIN_EXPECTED)
    names = list(rows)
    spans = {}
    for k in np.flatnonzero(lacking.any(axis=0)):
        when = times[np.concatenate([r[y[r] == k] for r in rows.values()])]
        spans[str(class_names[k])] = _when(when, {
            names[i]: times[rows[names[i]]] for i in np.flatnonzero(lacking[:, k])}, times)
    return spans


def _when(when: np.ndarray, lacking: dict[str, np.ndarray], times: np.ndarray) -> str:
    """Where a class's rows sit against the parts that lack it (`when`: its times;
    `lacking`: each such part's times)."""
    first, last = format_time(when.min(), times), format_time(when.max(), times)
    later = [p for p, t in lacking.items() if t.min() > when.max()]
    if later:
        return f"its last row is at {last}, before {PART_WORDS.get(later[0], later[0])} starts"
    if "train" in lacking and when.min() > lacking["train"].max():
        return f"its first row is at {first}, after training ends"
    return f"its rows run from {first} to {last}"
