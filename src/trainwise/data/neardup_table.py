"""Near-duplicate rows of a table (or flat vectors) across splits: a row copied with its
numbers rounded, re-typed or jittered. Exact hashes (leakage.py) miss them.

Features are standardised with the earlier part's statistics (a column in dollars must not
outweigh one in metres), and each later row's nearest earlier row is found exactly (sklearn
NearestNeighbors). A pair is a near copy when its distance is at most NEAR_FRACTION (less
where the rows span fewer than 5 dimensions: see CHANCE) of the table's typical
nearest-neighbour distance: the median, over the earlier part's distinct rows, of the
distance to their nearest other row.
0.13 is cleanlab Datalab's near_duplicate rule (threshold 0.13 x median 1-NN distance).
Measured on scikit-learn's bundled tables under random 80/20 splits (seeds 0, 1, 2): no test
row of iris (30), wine (36), breast_cancer (114), diabetes (89) or digits (360) is flagged
(TwoNN dimension 3.1 for iris, 6.7-8.5 for the others: see CHANCE for the fraction used),
and the closest pair that is not an exact copy lies at 0.40-0.70 x the median (iris 0.41,
digits 0.40): 3x Datalab's threshold. (Digits has no exact duplicate rows: 1797 distinct; iris has
one, which the exact check reports when it straddles.) neardup.csv's copies with 1e-6 noise
sit at ~1e-6 against a threshold of ~0.02. Beyond MAX_ROWS a side is a seeded sample, and the
finding says so: a sample of the earlier part finds only that fraction of the copies. When
most rows have a near twin in the earlier part, the median is the jitter and the search
misses them (as Datalab's does); the exact check still sees exact copies.
"""

from __future__ import annotations

import numpy as np

from trainwise.findings import Finding, warning

NEAR_FRACTION = 0.13  # of the median 1-NN distance: Datalab's default
# In D (intrinsic) dimensions, points scattered at random (Poisson) have
# P(1-NN distance < c x median) = 1 - 2^-(c^D) ~ c^D ln 2: 8.6% of rows at c = 0.13 in one
# dimension (a 1-feature table flagged 10 of 78 test rows), 1.2% in two, 3e-5 in five. So c
# shrinks to keep the expected number of chance pairs in the whole later PART at CHANCE:
# c = (CHANCE / (num_b ln 2))^(1/D), at most 0.13. A rate per row was not enough (review s12
# VD1): at 1e-4 per row, 20k queried rows expect 2 chance pairs, and random 80/10/10 splits
# of 200k i.i.d. 3-D Gaussian rows warned in 4 of 5 seeds (4, 4, 6, 0, 2 rows). For 100 rows:
# c = 1.4e-6 (D = 1), 1.2e-3 (2), 0.011 (3), 0.035 (4); for 20k rows: 7e-9, 8.5e-5, 1.9e-3, 9e-3.
CHANCE = 1e-4
MIN_ROWS = 2  # near rows for a warning: real densities are uneven (a Gaussian's core is denser
# than its median, so chance pairs ran ~1.6x the uniform rate above), and one pair of 78 random
# doses came within 2.3e-6 (0.0005 x the median); by chance two would be ~0.05% as likely
MAX_ROWS = 10_000  # per side: 20k x 20k rows of 20 features, brute force, took 1.8 s on one
# core here (50k x 50k: 11 s; a kd-tree at 20 features: 21 s and 227 s); the split proves two
# pairs (train/val, train+val/test), which at 20k put the 1M-row bench's split at 4.1 s (0.6 s
# before this check: bench/data_leakage.py) against its 10 s budget for the whole audit; 10k
# per side is a quarter of that. Exact copies are hashed over every row: this screen is the
# sampled second look, and its message says so
SCALE_ROWS = 2_000  # rows whose 1-NN distance estimates the median (rank error ~1%)
MAX_FEATURES = 32  # wider rows are searched on their first 32 principal components (review
# s12 VD6): 48k x 12k rows of 784 sparse features, run once per fold and again for test, took
# 29.6 s per pair on all 784 (one loaded core, sklearn imported) and 7.5 s on 32 components
# (4.8 s profiled: search 2.1, standardising 1.4, PCA fit 0.5); 1M x 20 (not reduced): 4.3 s
# and 3.5 s in the same run (1.2 s on a quiet core).
# A projection only shrinks distances, so copies stay nearest; the pairs found are then judged
# by their full distance, so rows that differ only off the components are not called copies.
# The median they are compared to is re-measured the same way (review s12 F4: digits widened to
# 256 features gave a threshold of 0.922 from the projection's median, 0.988 in full).
PCA_ROWS = 5_000  # of the earlier part's sample fit the components (randomized SVD)
NUM_EXAMPLES = 5
SEED = 0  # the sample is the same on every run of the same data


def _sample(num_rows: int, rng: np.random.Generator) -> np.ndarray:
    if num_rows <= MAX_ROWS:
        return np.arange(num_rows)
    return np.sort(rng.choice(num_rows, MAX_ROWS, replace=False))


def _standardise(x_a: np.ndarray, x_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sides scaled by a's mean and std (float64); constant columns keep scale 1.
    Missing and infinite cells read as 0 (an inf kept as 1.8e308 overflowed the std, and
    PCA refused the row: a wide table with one inf cell stopped the split stage)."""
    x_a = np.nan_to_num(np.asarray(x_a, np.float64).reshape(len(x_a), -1), posinf=0.0,
                        neginf=0.0)
    x_b = np.nan_to_num(np.asarray(x_b, np.float64).reshape(len(x_b), -1), posinf=0.0,
                        neginf=0.0)
    mean, std = x_a.mean(axis=0), x_a.std(axis=0)
    std[std == 0] = 1.0
    return (x_a - mean) / std, (x_b - mean) / std


def _reduce(std_a: np.ndarray, std_b: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """Both sides on a's first MAX_FEATURES principal components, when rows are wider."""
    if std_a.shape[1] <= MAX_FEATURES or len(std_a) <= MAX_FEATURES:
        return std_a, std_b
    from sklearn.decomposition import PCA

    fit_rows = rng.choice(len(std_a), min(PCA_ROWS, len(std_a)), replace=False)
    pca = PCA(MAX_FEATURES, svd_solver="randomized", random_state=SEED).fit(std_a[fit_rows])
    return pca.transform(std_a), pca.transform(std_b)


def near_fraction(dimension: float, num_queries: int = 1) -> float:
    """The fraction of the median 1-NN distance below which a pair is a near copy, when
    `num_queries` rows are searched: all of them together expect CHANCE pairs by chance."""
    rate = CHANCE / (max(num_queries, 1) * np.log(2))
    return min(NEAR_FRACTION, rate ** (1 / max(dimension, 1.0)))


def typical_distance(x_a: np.ndarray, rng: np.random.Generator,
                     full: np.ndarray | None = None) -> tuple[float, float]:
    """(median distance from a distinct row of a to its nearest other row, the rows'
    intrinsic dimension). `full`: the same rows before projection; the neighbours found on x_a
    are re-measured on it, in the units of the distances the median is compared to. Distinct
    rows: a table where half the rows repeat would have median 0, and then nothing is 'near'.
    The dimension is TwoNN's (Facco et al. 2017: r2 / r1 is Pareto with exponent d, so
    d = ln 2 / ln median(r2 / r1)), by the median so that 10% of rows with a jittered twin do
    not drag it down; the column count overstates it: one number beside one-hot columns is
    1-dimensional within each level (8.6% of rows flagged at 0.13)."""
    from sklearn.neighbors import NearestNeighbors

    distinct, first = np.unique(x_a, axis=0, return_index=True)
    if len(distinct) < 3:
        return 0.0, 1.0
    queries = rng.choice(len(distinct), min(SCALE_ROWS, len(distinct)), replace=False)
    found, neighbours = NearestNeighbors(n_neighbors=3).fit(distinct).kneighbors(
        distinct[queries])
    if full is not None:  # (Q, 3): column 0 is the query itself, at 0
        found = np.stack([np.linalg.norm(full[first[neighbours[:, k]]] - full[first[queries]],
                                         axis=1) for k in range(3)], axis=1)
    ratio = np.median(found[:, 2] / np.maximum(found[:, 1], 1e-300))  # column 0: the row
    return float(np.median(found[:, 1])), float(np.log(2) / max(np.log(ratio), 1e-12))


def nearest_rows(x_a: np.ndarray, x_b: np.ndarray,
                 rows: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """For each (sampled) row of b: its nearest (sampled) row of a, their distance, and the
    near-copy threshold. Side a is x_a[rows[0]] (all of x_a without `rows`); only the sample is
    gathered, so 1M rows are never copied. Returned rows are positions within each side."""
    from sklearn.neighbors import NearestNeighbors

    rows = rows or (np.arange(len(x_a)), np.arange(len(x_b)))
    rng = np.random.default_rng(SEED)
    pick_a, pick_b = _sample(len(rows[0]), rng), _sample(len(rows[1]), rng)
    std_a, std_b = _standardise(np.asarray(x_a)[rows[0][pick_a]],
                                np.asarray(x_b)[rows[1][pick_b]])
    low_a, low_b = _reduce(std_a, std_b, rng)
    median, dimension = typical_distance(low_a, rng, std_a)
    fraction = near_fraction(dimension, len(pick_b))
    threshold = fraction * median
    nearest = NearestNeighbors(n_neighbors=1).fit(low_a).kneighbors(low_b)[1][:, 0]
    distance = np.linalg.norm(std_a[nearest] - std_b, axis=1)  # full rows: see MAX_FEATURES
    return {"rows_a": pick_a[nearest], "rows_b": pick_b, "distance": distance,
            "threshold": threshold, "fraction": fraction, "dimension": dimension,
            "num_a": len(pick_a), "num_b": len(pick_b),
            "sampled": len(pick_a) < len(rows[0]) or len(pick_b) < len(rows[1])}


def _sample_note(found: dict) -> str:
    if not found["sampled"]:
        return ""
    return (f" (on a seeded sample of {found['num_a']} x {found['num_b']} rows: at most "
            f"{MAX_ROWS} per side keeps the exact search to seconds, so copies whose twin fell "
            "outside the sample are not counted)")


def near_note(found: dict) -> str:
    """What the no_leakage finding says was checked beyond exact copies."""
    return (f"no near-duplicates within {found['threshold']:.3g} (standardised distance, "
            f"{found['fraction']:.2g} x the median nearest-neighbour distance)"
            f"{_sample_note(found)}")


FIX = ("Look at the example pairs; if they are the same record (rounded, re-typed or "
       "jittered), keep one copy of each before splitting, or give a record and its copies "
       "one group key and split by group (split.group_column); if distinct records look alike "
       "because features are coarse, add the features that tell them apart. Then rerun the "
       "split stage.")


def check_near_rows(x_a: np.ndarray, x_b: np.ndarray, exact_b: np.ndarray,
                    names: tuple[str, str], rows: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[list[Finding], dict]:
    """A warning when MIN_ROWS or more rows of b (other than exact copies, which `exact_b`
    marks by position) lie within the threshold of a row of a; and the search's numbers for
    the no-leak note. Side a is x_a[rows[0]], b is x_b[rows[1]]; examples name those rows."""
    found = nearest_rows(x_a, x_b, rows)
    near = (found["distance"] <= found["threshold"]) & ~exact_b[found["rows_b"]]
    if near.sum() < MIN_ROWS:
        return [], found
    share = near.sum() / len(near)
    a, b = names
    i, j = found["rows_a"][near], found["rows_b"][near]
    if rows is not None:
        i, j = rows[0][i], rows[1][j]
    examples = [[int(p), int(q), round(float(d), 6)] for p, q, d in
                zip(i[:NUM_EXAMPLES], j[:NUM_EXAMPLES], found["distance"][near], strict=False)]
    shown = ", ".join(f"{a} row {p} ~ {b} row {q}" for p, q, _ in examples[:3])
    return [warning(
        "split", "near_duplicate_rows",
        f"{int(near.sum())} of {len(near)} {b} rows ({share:.1%}) are near copies of {a} rows: "
        f"within {found['threshold']:.3g} of one (standardised distance; {found['fraction']:.2g} "
        f"x the median nearest-neighbour distance, after cleanlab Datalab's rule), e.g. {shown}"
        f"{_sample_note(found)}. Copies that differ only by rounding or noise let the {b} "
        "score partly measure memorisation.", FIX,
        num_rows=int(near.sum()), share=round(float(share), 4),
        threshold=round(float(found["threshold"]), 6), sampled=found["sampled"],
        examples=examples)], found
