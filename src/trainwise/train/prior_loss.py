"""The loss of a model that learned only how frequent each class is: the level an imbalanced
classifier must beat, where ln C (the uniform guess) is only where training starts.

One function for the three readers that need it (the check stage's loss at init, the
collapse rule's fallback, the report's 'prior only' line), all from the TRAINING split's
counts: the shares a model can learn. 2% positives: 0.098 nats against ln 2 = 0.693.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def prior_loss(train_counts: Sequence[int] | None) -> float | None:
    """-sum p ln p over the class shares p of `train_counts` (rows per class): the
    cross-entropy of answering those shares for every training row. None without usable
    counts (none given, a negative or non-finite count, no rows)."""
    try:
        counts = [float(c) for c in train_counts or ()]
    except (TypeError, ValueError):
        return None  # meta.json is hand-editable
    total = sum(counts)
    if not counts or not all(math.isfinite(c) and c >= 0 for c in counts) or total <= 0:
        return None
    return -sum(c / total * math.log(c / total) for c in counts if c > 0)
