"""A table whose only features are free text -> (N, T) int64 word ids for embedding_pool.

A baseline tokeniser, so that a text + label CSV trains at all: lowercase words, one id per
word seen twice or more, no subwords. A user with a real tokeniser (a pretrained model's
vocabulary) saves its ids as a .npz with data.kind = "tokens" instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainwise.data.tablehash import frame_hashes
from trainwise.data.task import TaskData
from trainwise.data.text import TextColumn, words
from trainwise.data.token_ids import OWN_TOKENIZER_ADVICE, PADDING_ID, as_token_ids
from trainwise.findings import Finding, Severity

UNKNOWN_ID = 1  # every word seen once in the table: one id, so a typo or a name in a single
# row does not get an embedding row that only that row ever trains
FIRST_WORD_ID = 2  # the vocabulary's word k is id k + 2, after PADDING_ID and UNKNOWN_ID
MIN_COUNT = 2
LENGTH_PERCENTILE = 95  # rows are cut to this percentile of word counts: the longest 5% would
# otherwise set T, and every other row would be mostly padding
MAX_LENGTH = 256  # tokens per row at most: embedding_pool's cost is linear in T


@dataclass(frozen=True)
class Tokens:
    """Token ids and what tokenising did, for the finding."""

    ids: np.ndarray  # (N, T) int64, 0 = padding, 1 = unknown, 2.. = words by frequency
    vocabulary: list[str]  # word of id i + FIRST_WORD_ID
    num_rare: int  # distinct words seen once, all mapped to UNKNOWN_ID
    rare_share: float  # share of word occurrences that became UNKNOWN_ID
    lengths: np.ndarray  # (N,) words per row before cutting
    truncated: float  # share of rows longer than T, cut


def tokenise(texts: pd.DataFrame) -> Tokens:
    """Word ids per row of the text columns in `texts`, padded with 0 at the end.

    The vocabulary is counted over all rows, before the split exists (it runs later, on
    these ids). That is harmless: an id is a word, it carries no label; a word seen only in
    validation or test rows keeps its untrained initial embedding, which the model cannot
    have learned anything from."""
    rows = words(texts).reset_index(drop=True)
    flat = rows.explode().dropna()  # (words,) indexed by row number, in reading order
    codes, uniques = pd.factorize(flat.to_numpy())
    counts = np.bincount(codes, minlength=len(uniques))  # (distinct words,)
    frequent = np.flatnonzero(counts >= MIN_COUNT)
    frequent = frequent[np.lexsort((uniques[frequent], -counts[frequent]))]  # by count, word
    vocabulary = uniques[frequent].tolist()
    lengths = rows.str.len().to_numpy(np.int64)
    length = int(np.clip(np.ceil(np.percentile(lengths, LENGTH_PERCENTILE)), 1, MAX_LENGTH))
    x = ids_of(rows, vocabulary, length)
    total = int(lengths.sum())
    rare = int(counts[counts < MIN_COUNT].sum())
    return Tokens(x, vocabulary, len(uniques) - len(vocabulary), rare / total if total else 0.0,
                  lengths, float(np.mean(lengths > length)))


def ids_of(rows: pd.Series, vocabulary: Sequence[str], length: int,
           unknown_id: int = UNKNOWN_ID) -> np.ndarray:
    """(N, length) int64 ids of `rows` (a list of words per row, index 0..N-1): the
    vocabulary's word k is FIRST_WORD_ID + k, any other word `unknown_id`; each row cut at
    `length` and padded with PADDING_ID at its end. The one id rule of training (tokenise)
    and of predict (prediction_text.text_ids): two copies would drift apart silently (review
    s13 VA8)."""
    flat = rows.explode().dropna()  # (words,) indexed by row number, in reading order
    row = flat.index.to_numpy()
    lengths = rows.str.len().to_numpy(np.int64)
    position = np.arange(len(row)) - np.r_[0, np.cumsum(lengths)[:-1]][row]  # within its row
    inside = position < length
    known = pd.Index(vocabulary).get_indexer(flat.to_numpy()[inside])  # -1: not in it
    x = np.full((len(rows), length), PADDING_ID, dtype=np.int64)
    x[row[inside], position[inside]] = np.where(known >= 0, known + FIRST_WORD_ID, unknown_id)
    return x


def as_tokens(data: TaskData, texts: pd.DataFrame, columns: list[TextColumn],
              unused: Sequence[str]) -> None:
    """Make `data` the token ids of the free-text columns `texts`, in place; `unused`: the
    other feature columns, left out because data.kind = "tokens" asked for the text alone."""
    tokens = tokenise(texts)
    data.kind, data.x = "tokens", as_token_ids(tokens.ids)  # the contract of token_ids.py
    data.feature_names = []  # a position is not a feature, as for a .npz of ids
    data.content_hashes = frame_hashes(texts)  # the text, not the ids that lose rare words
    data.unknown_id = UNKNOWN_ID
    data.tokeniser = {"words": list(tokens.vocabulary), "columns": list(texts.columns),
                      "length": int(tokens.ids.shape[1]), "unknown_id": UNKNOWN_ID,
                      "cut_share": tokens.truncated}  # what predict needs to tokenise anew
    data.findings.append(tokenised_finding(columns, tokens, unused))


def tokenised_finding(columns: list[TextColumn], tokens: Tokens,
                      unused: Sequence[str] = ()) -> Finding:
    """Say that the text was tokenised, how, and what it cost (rows cut, rare words)."""
    lengths, length = tokens.lengths, tokens.ids.shape[1]
    names = ", ".join(c.describe() for c in columns)
    joined = " (joined in column order)" if len(columns) > 1 else ""
    why = (f"The model reads free text only: {names}{joined}; data.kind = \"tokens\" "
           f"leaves out the other columns ({', '.join(unused[:10])}"
           f"{', ...' if len(unused) > 10 else ''})." if unused else
           f"The only features are free text: {names}{joined}.")
    rare = (f"the other {tokens.num_rare:,} ({tokens.rare_share:.1%} of words in the text) "
            f"share id {UNKNOWN_ID}" if tokens.num_rare else "no word occurs only once")
    message = (
        f"{why} trainwise does not one-hot encode whole sentences; it tokenised the text "
        f"into word ids for the embedding_pool baseline (data kind 'tokens'): lowercase "
        f"words, {len(tokens.vocabulary):,} words seen {MIN_COUNT}+ times get ids 2.., "
        f"{rare}, {PADDING_ID} pads. Words per row: min {lengths.min()}, median "
        f"{np.median(lengths):g}, max {lengths.max()}; rows are cut at {length} (the "
        f"{LENGTH_PERCENTILE}th percentile, at most {MAX_LENGTH}), which shortens "
        f"{tokens.truncated:.1%} of them. The vocabulary was counted over all rows before the "
        "split: ids carry no label, and a word seen only in validation or test keeps its "
        "untrained initial embedding, so nothing leaks.")
    fix = ("Nothing to do for a baseline: the vocabulary is saved in the run folder "
           "(preprocess.npz), and trainwise predict RUN_DIR new.csv tokenises new text with it "
           "(unseen words get id 1, longer texts are cut at the same length). For a better "
           f"tokeniser (subwords, a pretrained model's vocabulary), {OWN_TOKENIZER_ADVICE}.")
    return Finding("data", Severity.INFO, "text_tokenised", message, {
        "columns": [c.name for c in columns], "unused_columns": list(unused),
        "vocabulary_size": len(tokens.vocabulary) + FIRST_WORD_ID,
        "num_rare_words": tokens.num_rare, "rare_share": round(tokens.rare_share, 4),
        "length": length, "truncated_share": round(tokens.truncated, 4),
        "length_min": int(lengths.min()), "length_median": float(np.median(lengths)),
        "length_max": int(lengths.max()), "top_words": tokens.vocabulary[:20]}, fix)
