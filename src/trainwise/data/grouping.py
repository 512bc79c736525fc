"""Pick whole groups whose rows hit a target count per class: sized in samples, not groups.

Hand-written because GroupShuffleSplit sizes groups, not samples, and StratifiedGroupKFold
only offers 1/k fractions (and its shuffle was broken before scikit-learn 1.8). With K
classes, matching per-class counts hits the size and the class shares together.
"""

from __future__ import annotations

import numpy as np

BLOCK = 256  # groups evaluated per vectorised step of the greedy pass
MAX_MOVES = 200  # local-search steps after the greedy pick; each step is one vectorised pass
MAX_SWAP_SIZE = 2_000_000  # val groups x train groups x classes: above it, no swaps


def _cost(val_counts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """L1 distance of val class counts (..., K) to the target, plus the size error again, so
    the total size counts twice as much as how it spreads over classes."""
    size_error = np.abs(val_counts.sum(axis=-1) - target.sum())
    return np.abs(val_counts - target).sum(axis=-1) + size_error


def _greedy_groups(counts: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A first pick of groups (rows of counts, (G, K)): visit groups in a seeded random order
    and take one when it brings the val counts closer to the target (K,) without overshooting
    any class by more than 1% of the val size. Without that limit a large one-class group
    taken early is a local minimum no later single move can undo."""
    order = rng.permutation(len(counts))
    cumulative = np.cumsum(counts[order], axis=0)  # (G, K)
    # a prefix that stays under the target in every class is what the loop would take anyway
    prefix = int(np.all(cumulative <= target, axis=1).sum())
    taken = np.zeros(len(counts), dtype=bool)
    taken[order[:prefix]] = True
    current = cumulative[prefix - 1] if prefix else np.zeros(counts.shape[1], dtype=np.int64)
    ceiling = target + max(1.0, 0.01 * target.sum())
    rest = order[prefix:]
    # room only shrinks as groups are taken, so a group that does not fit now never will
    rest = rest[np.all(counts[rest] <= ceiling - current, axis=1)]
    position, size = 0, BLOCK
    while position < len(rest):  # the sequential greedy, evaluated a block at a time
        block = rest[position:position + size]
        after = current + counts[block]  # (B, K) val counts if each group were taken next
        fits = (_cost(after, target) < _cost(current, target)) & np.all(after <= ceiling, axis=1)
        if not fits.any():  # a long run of misfits (1M groups: most of them) is skipped in
            position, size = position + len(block), size * 2  # log(G) steps, not G / BLOCK
            continue
        first = int(np.argmax(fits))
        taken[block[first]], current = True, after[first]
        position, size = position + first + 1, BLOCK
    return taken


def _best_swap(counts: np.ndarray, target: np.ndarray, taken: np.ndarray,
               current: np.ndarray) -> tuple[float, np.ndarray]:
    """Cost and move of the best exchange of one val group with one train group."""
    inside, outside = np.flatnonzero(taken), np.flatnonzero(~taken)
    size = len(inside) * len(outside) * counts.shape[1]
    if size == 0 or size > MAX_SWAP_SIZE:  # with very many groups, toggles suffice
        return np.inf, np.array([], dtype=np.int64)
    moved = current - counts[inside][:, None, :] + counts[outside][None, :, :]  # (I, O, K)
    costs = _cost(moved, target)
    i, o = np.unravel_index(np.argmin(costs), costs.shape)
    return float(costs[i, o]), np.array([inside[i], outside[o]])


def _improve(counts: np.ndarray, target: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Local search from the greedy pick: apply the best single move (one group in or out) or
    swap while it lowers the cost. On a few dozen unevenly sized groups the greedy pass can
    stop several points off in some class; these moves usually close that to under 2 points."""
    for _ in range(MAX_MOVES):
        current = counts[taken].sum(axis=0)
        sign = np.where(taken, -1, 1)[:, None]
        toggle_costs = _cost(current + sign * counts, target)  # (G,)
        toggle = int(np.argmin(toggle_costs))
        swap_cost, swap = _best_swap(counts, target, taken, current)
        best = min(float(toggle_costs[toggle]), swap_cost)
        if best >= _cost(current, target):
            break
        flip = np.array([toggle]) if best == toggle_costs[toggle] else swap
        trial = taken.copy()
        trial[flip] = ~trial[flip]
        if not trial.any() or trial.all():
            break
        taken = trial
    return taken


def pick_groups(counts: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Groups (rows of counts, (G, K)) whose summed counts come closest to target (K,)."""
    taken = _improve(counts, target, _greedy_groups(counts, target, rng))
    sizes = counts.sum(axis=1)
    if not taken.any():  # every group alone overshoots: the smallest one keeps val non-empty
        taken[np.argmin(sizes)] = True
    if taken.all():  # keep train non-empty too
        taken[np.argmin(sizes)] = False
    return np.flatnonzero(taken)


def grouped_split(labels: np.ndarray, groups: np.ndarray, num_val: int,
                   rng: np.random.Generator) -> np.ndarray:
    num_groups, num_labels = int(groups.max()) + 1, int(labels.max()) + 1
    counts = np.bincount(groups * num_labels + labels, minlength=num_groups * num_labels)
    counts = counts.reshape(num_groups, num_labels)  # (G, K) samples of each label per group
    target = counts.sum(axis=0) * (num_val / len(labels))
    taken = np.zeros(num_groups, dtype=bool)  # a lookup by code: np.isin sorts all N rows
    taken[pick_groups(counts, target, rng)] = True
    return np.flatnonzero(taken[groups])
