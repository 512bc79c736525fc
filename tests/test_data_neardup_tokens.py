"""Near-duplicate token rows: a text re-sent with one word more is found across the split
parts, unrelated texts are not, and the search agrees with a brute-force cosine."""

from __future__ import annotations

import numpy as np

from trainwise.data.neardup_tokens import (
    check_near_duplicate_rows,
    similar_rows,
    token_bags,
)
from trainwise.data.plan import SplitSettings, plan_split
from trainwise.data.task import TaskData


def texts(num: int, vocab: int, width: int = 64, seed: int = 0) -> np.ndarray:
    """(num, width) int64 ids, 0-padded at the end, rows of 8..width words drawn from a Zipf
    law over ids 1..vocab-1 (frequent words shared by most rows, like real text)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab)
    ids = rng.choice(np.arange(1, vocab), (num, width), p=weights / weights.sum())
    lengths = rng.integers(8, width + 1, num)
    return np.where(np.arange(width)[None] < lengths[:, None], ids, 0).astype(np.int64)


def resend_with_one_more_word(x: np.ndarray, pairs: int, seed: int = 1) -> np.ndarray:
    """Rows pairs..2*pairs-1 become rows 0..pairs-1 with one extra new word appended."""
    x = x.copy()
    rng = np.random.default_rng(seed)
    for k in range(pairs):
        row = x[k].copy()
        length = int((row != 0).sum())
        row[min(length, x.shape[1] - 1)] = int(rng.integers(x.max() + 1, x.max() + 50))
        x[pairs + k] = row
    return x


def brute_force_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    bags_a, bags_b = token_bags(a, 10_000).toarray(), token_bags(b, 10_000).toarray()
    sizes = np.sqrt(np.maximum(bags_a.sum(1)[:, None] * bags_b.sum(1)[None], 1))
    return bags_a @ bags_b.T / sizes


def test_one_planted_word_is_found_for_every_pair_and_nothing_else():
    x = resend_with_one_more_word(texts(2000, 3000), pairs=100)
    i, j, cosine = similar_rows(x[:100], x[100:])
    assert sorted(zip(i.tolist(), (j + 100).tolist(), strict=True)) == \
        [(k, 100 + k) for k in range(100)]
    assert (cosine >= 0.9).all() and (cosine < 1).all()  # the new word is in no other row


def test_the_prefix_filter_finds_what_brute_force_finds():
    """Large vocabulary (prefix filter) and small one (dense product), edits of every size."""
    for vocab in (3000, 40):
        x = texts(400, vocab, width=24, seed=vocab)
        rng = np.random.default_rng(2)
        for k in range(0, 200, 2):  # copies with 0..3 words swapped or dropped
            x[200 + k // 2] = x[k]
            edits = rng.integers(0, 4)
            x[200 + k // 2, rng.integers(0, 8, edits)] = rng.integers(1, vocab, edits)
        a, b = x[:200], x[200:]
        expected = np.argwhere(brute_force_cosines(a, b) >= 0.9 - 1e-9)
        i, j, _ = similar_rows(a, b)
        assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == \
            sorted(map(tuple, expected.tolist()))
        assert len(expected) >= 50  # the planted pairs themselves, not an empty agreement


def test_unrelated_rows_and_empty_rows_are_not_near_copies():
    x = texts(1000, 3000)
    x[:10] = 0  # empty rows (all padding) share no words with anything
    [finding] = check_near_duplicate_rows(x[:800], x[800:])
    assert finding.code == "no_near_duplicates" and finding.severity == "info"
    assert len(similar_rows(x[:10], x[:10])[0]) == 0


def test_the_split_warns_about_near_copies_across_parts_and_names_the_rows():
    x = resend_with_one_more_word(texts(1000, 3000, width=32), pairs=100)
    data = TaskData(name="tickets", kind="tokens", task="classification", x=x,
                    y=np.arange(1000) % 2, class_names=["a", "b"])
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2, seed=0))
    near = [f for f in result.findings if f.code == "near_duplicate_rows"]
    part = np.zeros(1000, int)
    part[result.val], part[result.test] = 1, 2
    crossing = int((part[:100] != part[100:200]).sum())
    assert crossing > 0 and sum(f.evidence["num_pairs"] for f in near) == crossing
    assert all(f.severity == "warning" and "near copies" in f.message for f in near)
    assert all("a `groups` array" in f.fix for f in near)  # arrays have no columns (s9 N5)
    for f in near:  # examples name data rows: each one a planted original and its copy
        for i, j, cosine in f.evidence["examples"]:
            assert {i, j} in [{k, 100 + k} for k in range(100)] and cosine >= 0.9
