"""Token ids: how an (N, T) integer array is recognised, said to be, and kept as ids.

What a TaskData of kind "tokens" holds (any source that makes one, e.g. text encoded by a
vocabulary, must hold the same):
- x: int64 (N, T), one row of token ids per sample, ids >= 0, 0 = padding (PADDING_ID:
  model/baselines.py's embedding_pool masks it out of its mean); rows shorter than T padded
  with 0 at the end (or the start: Keras pads there), x_test with the same T;
- vocabulary size = largest id + 1 (model/baselines.py:vocab_size);
- feature_names empty: a position is not a feature (messages name position i "t{i}").
Ids are never normalised, cast to float or augmented (stages_split._make_arrays,
data/augment.py): a z-scored or mirrored id is no longer the word it stood for.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import numpy as np

from trainwise.data.errors import DataError
from trainwise.findings import Finding, Severity

PADDING_ID = 0  # the one padding id of every "tokens" TaskData (tokenise.py, .npz files alike)

# What makes auto read a 2-D integer array as ids: padding, i.e. rows of different lengths
# whose zeros all sit at one end. Pixel rows (a flattened MNIST digit has blank pixels at both
# ends and inside), count tables (zeros anywhere) and one-hot or thermometer codes (one
# non-zero value) all fail it; a float array (digits: float64 0..16) is never read as ids.
MIN_PADDED_SHARE = 0.05  # of rows shorter than T: a few padded texts are no accident
MIN_LENGTHS = 3  # distinct row lengths: a last column that is sometimes 0 gives only two
MIN_IDS = 3  # distinct non-zero values: 1 (thermometer) or 2 are codes, not a vocabulary
PAD_ADVICE = ("pad the ids with 0 to one length (e.g. torch.nn.utils.rnn.pad_sequence(rows, "
              "batch_first=True, padding_value=0), or keras pad_sequences) and save X as an "
              "int64 array (N, T); trainwise reads such an array as token ids (0 = padding, "
              "data.kind = \"tokens\")")
OWN_TOKENIZER_ADVICE = (  # the one way messages say it: text.py's and tokenise.py's fixes
    "tokenise the text yourself into integer ids (a Hugging Face tokenizer, or words from "
    "sklearn's CountVectorizer(token_pattern=r\"(?u)\\b\\w+\\b\").build_analyzer(), which "
    "keeps 1-letter words, and a word -> id table with ids from 1), then "
    f"{PAD_ADVICE}; save X with the labels as a .npz: np.savez(path, X=ids, y=labels)")


def _zeros_at_one_end(x: np.ndarray) -> tuple[bool, np.ndarray]:
    """Whether every row's zeros form a suffix (or every row's a prefix), and the row lengths
    (non-zero ids per row)."""
    lengths = (x != 0).sum(1)
    positions = np.arange(x.shape[1])
    right = bool(((x != 0) == (positions[None] < lengths[:, None])).all())
    left = bool(((x != 0) == (positions[None] >= x.shape[1] - lengths[:, None])).all())
    return right or left, lengths


def looks_like_token_ids(x: np.ndarray) -> bool:
    """An (N, T) integer array of non-negative ids padded with 0 at one end, in rows of
    varied lengths, over more than a couple of distinct ids."""
    if x.ndim != 2 or x.dtype.kind not in "iu" or x.size == 0 or int(x.min()) < 0:
        return False
    one_end, lengths = _zeros_at_one_end(x)
    padded = float((lengths < x.shape[1]).mean())
    return (one_end and padded >= MIN_PADDED_SHARE and len(np.unique(lengths)) >= MIN_LENGTHS
            and len(np.unique(x[x != 0])) >= MIN_IDS)


def integer_reading(x: np.ndarray, kind: str, requested: str) -> Finding | None:
    """Which way a 2-D integer array was read, and how to ask for the other: ids and integer
    numbers (counts, pixels, ADC samples) share a dtype, and only padding tells them apart,
    so auto's guess is said out loud; a kind asked for over padded ids draws a warning."""
    rows, width = x.shape
    shape = {"shape": [rows, width]}
    if kind == "tokens" and requested == "auto":
        return Finding("data", Severity.INFO, "read_as_tokens",
                       f"X ({rows}, {width}) of integers was read as token ids: rows of up to "
                       f"{width} ids, 0 = padding ({float((x == 0).any(1).mean()):.0%} of rows "
                       f"padded), ids 0..{int(x.max())}. They reach the model as int64, never "
                       "normalised, and the baseline embeds them (embedding_pool).", shape,
                       'If these are numbers, not ids, set data.kind = "vector" (features) or '
                       '"sequence" (a signal over time) in [data].')
    if requested == "auto":
        return Finding("data", Severity.INFO, "integer_features",
                       f"X ({rows}, {width}) holds integers ({x.dtype}) and was read as {width} "
                       "numeric features per row, standardised per feature: its zeros do not "
                       "look like the padding of token ids (rows of varied lengths, 0s at one "
                       "end).", shape,
                       'If the values are token ids (0 = padding), set data.kind = "tokens" in '
                       "[data]: they then stay integer ids for an embedding (embedding_pool).")
    if kind != "tokens" and looks_like_token_ids(x):
        return Finding("data", Severity.WARNING, "looks_like_tokens",
                       f"X ({rows}, {width}) of integers padded with 0 at one end was read as "
                       f"{kind} data (data.kind = \"{kind}\"), so each id becomes a float "
                       "and is standardised: these look like token ids, whose numbers mean "
                       "nothing as magnitudes.", shape,
                       'If they are token ids, set data.kind = "tokens" in [data] (or "auto"); '
                       "the ids then reach the model as int64 for an embedding.")
    return None


def as_token_ids(x: np.ndarray) -> np.ndarray:
    """x as int64 ids (N, T), or a DataError that says what is wrong with it as ids."""
    if x.ndim != 2:
        raise DataError(f"token ids must be (N, T), one row of ids per sample; got shape "
                        f"{x.shape}. Flatten or pad each sample to one row of T ids.")
    if x.dtype.kind == "f" and not bool(np.all(np.isfinite(x) & (x == np.round(x)))):
        raise DataError("data.kind = \"tokens\" needs whole-number ids, but X holds fractions "
                        "(or NaN): these are features, not ids. Set data.kind = \"auto\", or "
                        "map each token to an integer id (0 = padding) first.")
    if x.dtype.kind not in "iuf":
        raise DataError(f"token ids must be integers; X has dtype {x.dtype}. Map each token "
                        "to an integer id (0 = padding) and save X as int64.")
    if x.size and int(x.min()) < 0:
        raise DataError(f"token ids must be >= 0 (0 = padding); X holds {int(x.min())}. Map "
                        "the vocabulary to ids 0..V-1 and save X again.")
    return x.astype(np.int64, copy=False)


def ragged_lengths(value: Any) -> tuple[int, int] | None:
    """(shortest, longest) row length when `value` is a list or object array of rows of
    different lengths (unpadded token lists), else None."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return None
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
        return None
    if not all(isinstance(row, Sized) and not isinstance(row, (str, bytes)) for row in value):
        return None
    lengths = {len(row) for row in value}  # type: ignore[arg-type]
    return (min(lengths), max(lengths)) if len(lengths) > 1 else None


def ragged_error(name: str, lengths: tuple[int, int]) -> DataError:
    """Inputs of different lengths are most likely unpadded token lists; anything else of
    different lengths per row (y, groups, times) should hold one value per row."""
    what = f"{name} rows have different lengths ({lengths[0]} to {lengths[1]} values)"
    if not name.startswith("X"):
        return DataError(f"{what}: '{name}' must hold one value per row of X. Give it as a "
                         "1-D array.")
    return DataError(f"{what}: trainwise needs one array with a row per sample. If they are "
                     f"token ids, {PAD_ADVICE}.")
