"""Near-duplicate token rows across splits: a ticket re-sent with one word more, a review
posted twice with a typo fixed. Exact hashes (leakage.py) miss them; they are the usual leak
in text data.

Each row is a set of token ids (bag of words, counts and order ignored, padding 0 left out),
and two rows are near copies when the cosine of their binary bags is >= MIN_COSINE: the
shared words over the geometric mean of the two word counts. At 0.9 one word added to a row
of >= 5 distinct words (sqrt(5/6) = 0.91), or one word swapped in a row of >= 10 (9/10),
still counts as a copy, while two different texts must share 90% of their words; Jaccard at
0.9 would need >= 9 words for one added and >= 19 for one swapped, missing short tickets.
Every pair's cosine is computed exactly, a block of rows at a time (similar_rows).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trainwise.data.task import TaskData
from trainwise.findings import Finding, info, warning

MIN_COSINE = 0.9
BLOCK = 1024  # rows of a per product: 1024 x 20k as float32 = 80 MB
COMMON_WORDS = 128  # counted densely: 20k x 20k x 128 = 5e10 flops, under a second
NUM_EXAMPLES = 5


def token_bags(ids: np.ndarray, vocab_size: int | None = None) -> sp.csr_matrix:
    """(N, T) ids -> (N, V) CSR float32, 1 where the row holds the id (padding 0 dropped)."""
    ids = np.asarray(ids, dtype=np.int64)
    rows = np.repeat(np.arange(len(ids)), ids.shape[1])
    cols = ids.ravel()
    keep = cols != 0
    size = int(ids.max(initial=0)) + 1 if vocab_size is None else vocab_size
    bags = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])),
                         shape=(len(ids), size))
    bags.sum_duplicates()
    bags.data[:] = 1.0  # a word said twice is one word of the set
    return bags


def _split_vocabulary(bags_a: sp.csr_matrix, bags_b: sp.csr_matrix
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(common, rare) ids: the COMMON_WORDS held by the most rows, and the rest."""
    counts = np.bincount(np.concatenate([bags_a.indices, bags_b.indices]),
                         minlength=bags_a.shape[1])
    by_count = np.argsort(-counts, kind="stable")
    return by_count[:COMMON_WORDS], by_count[COMMON_WORDS:]


def _drop_id(bags: sp.csr_matrix, unshared_id: int | None) -> sp.csr_matrix:
    if unshared_id is not None:
        bags.data[bags.indices == unshared_id] = 0.0
        bags.eliminate_zeros()
    return bags


def similar_rows(ids_a: np.ndarray, ids_b: np.ndarray, min_cosine: float = MIN_COSINE,
                 unshared_id: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, cosine) for every row i of a and j of b whose bags of words have cosine >=
    min_cosine; empty rows (all padding) match nothing. `unshared_id` stands for many
    different words (tokenise.UNKNOWN_ID): it counts in a row's length, never as a shared
    word, or tickets differing only in an order number were "the same set of words".

    The words two rows share are counted in two parts: the common words by a dense product
    (BLAS), the rare ones by a sparse product, which stays sparse because a rare word sits in
    few rows. One sparse product of whole bags met every pair through 'the' (12 s for 20k x
    20k rows); a dense one over a 30k vocabulary would be 1e13 flops."""
    vocab = int(max(np.max(ids_a, initial=0), np.max(ids_b, initial=0))) + 1
    bags_a, bags_b = token_bags(ids_a, vocab), token_bags(ids_b, vocab)
    common, rare = _split_vocabulary(bags_a, bags_b)
    common_b = np.ascontiguousarray(bags_b[:, common].toarray().T)  # (C, M)
    rare_b = bags_b[:, rare].T.tocsr()  # (V - C, M)
    norm_a = np.sqrt(np.maximum(np.diff(bags_a.indptr), 1)).astype(np.float32)
    norm_b = np.sqrt(np.maximum(np.diff(bags_b.indptr), 1)).astype(np.float32)
    bags_a, bags_b = _drop_id(bags_a, unshared_id), _drop_id(bags_b, unshared_id)
    found_i, found_j, found_c = [], [], []
    for start in range(0, bags_a.shape[0], BLOCK):
        block = bags_a[start:start + BLOCK]
        shared = block[:, common].toarray() @ common_b  # (B, M) float32, exact small counts
        shared += (block[:, rare] @ rare_b).toarray()
        cosine = shared / norm_a[start:start + BLOCK, None] / norm_b[None]
        i, j = np.nonzero(cosine >= min_cosine - 1e-6)  # float32 round-off on exact ratios
        found_i.append(i + start)
        found_j.append(j)
        found_c.append(np.minimum(cosine[i, j], 1.0))
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_c)


FIX = ("Look at the example pairs; if they are the same text sent again, keep one copy of each "
       "(or give a text and its copies one group key and split by group: split.group_column "
       "for a table, a `groups` array beside X and y in a .npz).")


def check_near_duplicate_rows(ids_a: np.ndarray, ids_b: np.ndarray, *,
                              names: tuple[str, str] = ("train", "val"),
                              rows: tuple[np.ndarray, np.ndarray] | None = None,
                              min_cosine: float = MIN_COSINE,
                              unshared_id: int | None = None) -> list[Finding]:
    """A warning when rows of b share nearly all their words with a row of a (exact copies
    included: the exact-copy check reports those as well); an info otherwise. `rows` maps
    positions to the row numbers the examples should name."""
    i, j, cosine = similar_rows(ids_a, ids_b, min_cosine, unshared_id)
    if rows is not None:
        i, j = rows[0][i], rows[1][j]
    a, b = names
    if len(j) == 0:
        return [info("split", "no_near_duplicates",
                     f"no {b} row shares {min_cosine:.0%} or more of its words with a {a} row "
                     "(cosine of the bags of token ids).", min_cosine=min_cosine)]
    first = np.lexsort((i, j))[:NUM_EXAMPLES]
    examples = [[int(i[k]), int(j[k]), round(float(cosine[k]), 3)] for k in first]
    num_rows, exact = int(len(np.unique(j))), int((cosine >= 1 - 1e-6).sum())
    shown = ", ".join(f"{a} row {p} ~ {b} row {q} (cosine {c:.2f})" for p, q, c in examples[:2])
    return [warning(
        "split", "near_duplicate_rows",
        f"{num_rows} {b} rows are near copies of {a} rows: {len(j)} pairs share nearly all "
        f"their words (cosine >= {min_cosine} between their bags of token ids: the same words "
        f"with one more or one swapped; {exact} pairs hold exactly the same set of words), "
        f"e.g. {shown}. A text sent again with a small edit lets the {b} score partly "
        "measure memorisation.", FIX,
        num_rows=num_rows, num_pairs=int(len(j)), num_same_words=exact, min_cosine=min_cosine,
        examples=examples)]


def split_near_duplicate_rows(data: TaskData, pairs: list, seen: np.ndarray,
                              test: np.ndarray | None) -> list[Finding]:
    """Each pair of parts (a rows, b rows, names), then train+val against the test part
    (`test` rows of data.x, or data.x_test when None), searched for near-copied token rows."""
    x = np.asarray(data.x)

    def check(ids_a: np.ndarray, ids_b: np.ndarray, names: tuple[str, str],
              rows: tuple[np.ndarray, np.ndarray]) -> list[Finding]:
        return check_near_duplicate_rows(ids_a, ids_b, names=names, rows=rows,
                                         unshared_id=data.unknown_id)

    findings = [f for a, b, names in pairs for f in check(x[a], x[b], names, (a, b))]
    test_part = ("train+val", "test")
    if test is not None:
        return findings + check(x[seen], x[test], test_part, (seen, test))
    if data.x_test is None:
        return findings
    return findings + check(x[seen], np.asarray(data.x_test), test_part,
                            (seen, np.arange(len(data.x_test))))
