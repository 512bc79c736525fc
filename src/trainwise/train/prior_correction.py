"""What train.class_weights = "balanced" does to the probabilities, and how to undo it.

A weighted cross-entropy is minimised by q(c | x) proportional to w_c p(c | x): the model's
softmax over-states each class by its weight. On 5.5% positives, weights 0.53 / 9 put the mean
P('1') at 0.264 over 100,000 new rows (user audit s12 S4). Dividing by the weights and
renormalising gives back p(c | x) under the training split's class shares; with the balanced
weights n / (k n_c), that is multiplying by each class's training count n_c. The correction is
exact for the shift the weights cause; the model's own calibration error remains.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# said where class-weighted probabilities are shown or written (predict, the report)
WEIGHTED_PROBABILITIES = (
    "the run trained with train.class_weights = \"balanced\", so its probabilities over-state "
    "the rarer classes (each class's probability is moved by its weight, n / (k n_c)): use "
    "them to rank rows, or undo the weights")


def is_class_weighted(meta: dict[str, Any]) -> bool:
    """Whether the run trained with train.class_weights = "balanced" (meta.json's config, the
    source of truth) on a classification task; a regression ignores the setting. The one test
    behind predict's note and the report's caption."""
    train = ((meta.get("config") or {}).get("train") or {})
    task = (meta.get("data") or {}).get("task")
    return train.get("class_weights") == "balanced" and task in (None, "classification")


def training_counts(meta: dict[str, Any]) -> np.ndarray | None:
    """The training split's rows per class when the run trained with balanced class weights
    (meta.json's config and data.class_counts.train); None otherwise."""
    counts = ((meta.get("data") or {}).get("class_counts") or {}).get("train")
    if not is_class_weighted(meta) or not counts:
        return None
    return np.asarray(counts, dtype=np.float64)


def prior_corrected(probs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(N, C) probabilities of a model trained with balanced class weights, each class
    multiplied by its training count (dividing by its weight n / (k n_c)) and renormalised.
    A class with no training row stays at 0 (its weight was 0: the loss never saw it)."""
    scaled = np.asarray(probs, dtype=np.float64) * np.asarray(counts, dtype=np.float64)
    totals = scaled.sum(axis=1, keepdims=True)
    return np.divide(scaled, totals, out=np.zeros_like(scaled), where=totals > 0)
