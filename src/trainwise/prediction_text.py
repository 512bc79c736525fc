"""Token ids for trainwise.predict: new text tokenised with the vocabulary the run saved
(data/tokenise.py's, in preprocess.npz: unseen words get the unknown id, longer texts are
cut at the run's T), and id rows of another length padded with 0 or cut at T, since the
embedding_pool baseline reads any length but the run's rows had T positions. What changed
is said as a note (on stderr from the shell).
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from trainwise.caller_line import warn_at_caller
from trainwise.data.errors import DataError
from trainwise.data.text import words
from trainwise.data.token_ids import PADDING_ID
from trainwise.data.tokenise import ids_of
from trainwise.prediction_table import PredictionWarning, which_rows
from trainwise.preprocessing import Preprocessing


def text_ids(frame: pd.DataFrame, prep: Preprocessing) -> np.ndarray:
    """(N, T) int64 ids of the run's text columns of `frame`, as tokenise.py made the run's."""
    if not prep.vocabulary:
        raise DataError("this run read token ids, not text, so it holds no vocabulary to "
                        "tokenise a table with: give the rows as an (N, T) array of ids, "
                        "made with the tokeniser that made the run's ids.")
    _refuse_missing_text([c for c in prep.text_columns if c not in frame.columns], frame)
    rows = words(frame[prep.text_columns]).reset_index(drop=True)
    length = prep.input_shape[0]  # T, the length the run cut its rows to
    ids = ids_of(rows, prep.vocabulary, length, prep.unknown_id)
    _say_text(rows.str.len().to_numpy(), (ids == prep.unknown_id).sum(axis=1), length,
              prep.unknown_id)
    return ids


def _refuse_missing_text(missing: list[str], frame: pd.DataFrame) -> None:
    """Name the run's text columns the rows lack, the columns they hold, and the rename that
    fits: a close name, or the one column of text the rows hold (review s13 VA11: the message
    listed the run's columns twice and never what the file held)."""
    if not missing:
        return
    held = [str(c) for c in frame.columns]
    text = [c for c in held if not pd.api.types.is_numeric_dtype(frame[c])]
    renames = []
    for name in missing:
        close = difflib.get_close_matches(name, held, n=1, cutoff=0.6)
        close = close or (text if len(missing) == 1 and len(text) == 1 else [])
        renames += [f"'{close[0]}' to '{name}'"] if close else []
    how = (f"Rename {', '.join(renames)} (frame.rename(columns=...) or the file's header)"
           if len(renames) == len(missing) else
           f"Give the text under the column name{'s' * (len(missing) > 1)} the run read")
    lacks = ", ".join(f"'{c}'" for c in missing)
    raise DataError(f"the rows to predict lack the text column{'s' * (len(missing) > 1)} "
                    f"{lacks} that the run tokenised; the rows hold {held[:10]}"
                    f"{' ...' if len(held) > 10 else ''}. {how}.")


def _say_text(lengths: np.ndarray, unknown: np.ndarray, length: int, unknown_id: int) -> None:
    """Rows cut at T (a note: the run cut its own so), and rows with no word the run knew."""
    cut = np.flatnonzero(lengths > length)
    if len(cut):
        warn_at_caller(f"{len(cut)} of {len(lengths)} texts are longer than the run's "
                       f"{length} words and were cut at {length}, as the run cut its own "
                       f"({which_rows(cut)})")
    blind = np.flatnonzero(np.minimum(lengths, length) == unknown)
    if len(blind):
        warn_at_caller(
            f"{len(blind)} texts hold no word of the run's vocabulary ({which_rows(blind)}; "
            f"empty, or every word unseen, id {unknown_id}): the model reads nothing in them "
            "and its answer for them says little. Check their language and spelling.",
            PredictionWarning)


def fit_length(ids: np.ndarray, prep: Preprocessing, side: str) -> np.ndarray:
    """(N, T') ids as (N, T): padded with 0, or cut, on the side the run's rows were padded
    (`side`: "start" for pre-padded rows, kept at their end, else "end"); padding-only
    positions are dropped without a note, real ids cut are said."""
    length = prep.input_shape[0]
    width = ids.shape[1]
    if width == length:
        return ids
    if width < length:
        pad = ((0, 0), (length - width, 0)) if side == "start" else ((0, 0), (0, length - width))
        warn_at_caller(f"the token rows hold {width} positions and the run's {length}: padded "
                       f"with {PADDING_ID} at the {side}, as the run's rows were "
                       "(0 is padding: no word)")
        return np.pad(ids, pad, constant_values=PADDING_ID)
    kept = ids[:, width - length:] if side == "start" else ids[:, :length]
    lost = ids[:, :width - length] if side == "start" else ids[:, length:]
    cut = np.flatnonzero((lost != PADDING_ID).any(axis=1))
    if len(cut):
        where = "before the last" if side == "start" else "past position"
        warn_at_caller(f"the token rows hold {width} positions and the run's {length}: cut "
                       f"to the run's T = {length} as its own rows were, which drops ids "
                       f"{where} {length} in {len(cut)} of {len(ids)} rows ({which_rows(cut)})")
    return kept
