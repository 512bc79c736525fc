"""trainwise.predict on tokens (audit s13 I2, I13): a run on a free-text column scores new
text with the vocabulary saved in preprocess.npz, the same ids tokenise.py gave the run's
own rows (the oracle); id rows of another length are padded or cut at T, said in a note."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import trainwise
from trainwise.data.errors import DataError
from trainwise.data.tokenise import tokenise
from trainwise.prediction_text import fit_length, text_ids
from trainwise.preprocessing import FILE_NAME, Preprocessing

QUICK = ["train.max_epochs=3", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "train.batch_size=32"]
POSITIVE, NEGATIVE = "great excellent love wonderful".split(), "awful terrible hate poor".split()
NEUTRAL = "the movie film plot actor was really quite story scene and it a".split()


def _reviews(num_rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(num_rows):
        text = list(rng.choice(NEUTRAL, rng.integers(3, 12)))
        text.insert(int(rng.integers(0, len(text))), rng.choice(POSITIVE if i % 2 else NEGATIVE))
        rows.append((" ".join(text), "pos" if i % 2 else "neg"))
    return pd.DataFrame(rows, columns=["review", "label"])


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    frame = _reviews()
    frame.to_csv(folder / "reviews.csv", index=False)
    result = trainwise.run(report=False, overrides=[
        *QUICK, f"run.out_dir=\"{folder}\"", f"data.source=\"{folder / 'reviews.csv'}\""])
    assert result.ok, result.verdict
    return result, frame


def test_new_text_is_tokenised_with_the_runs_saved_vocabulary(text_run):
    result, frame = text_run
    prep = Preprocessing.load(result.path)
    np.testing.assert_array_equal(text_ids(frame[["review"]], prep),
                                  tokenise(frame[["review"]]).ids)
    with np.load(result.path / "split.npz") as saved:
        test = saved["test"]
    predicted = trainwise.predict(result.path, frame.iloc[test][["review"]])
    accuracy = float((predicted["prediction"].to_numpy() == frame["label"].iloc[test]).mean())
    assert accuracy == result.test["test_accuracy"]


def test_unseen_words_get_the_unknown_id_and_long_texts_are_cut(text_run):
    result, _ = text_run
    prep = Preprocessing.load(result.path)
    length = prep.token_length
    great = prep.vocabulary.index("great") + 2
    long_text = " ".join(["great"] * (length + 5))
    with pytest.warns(UserWarning, match=rf"1 of 2 texts are longer than the run's {length} "):
        ids = text_ids(pd.DataFrame({"review": ["great zzzunseen", long_text]}), prep)
    assert ids[0].tolist() == [great, prep.unknown_id] + [0] * (length - 2)
    assert ids[1].tolist() == [great] * length


def test_a_run_folder_without_the_vocabulary_says_how_to_write_it(text_run, tmp_path):
    import shutil

    result, frame = text_run
    copy = tmp_path / "old"
    shutil.copytree(result.path, copy)
    with np.load(copy / FILE_NAME) as saved:
        arrays = {k: saved[k] for k in saved.files if k not in
                  ("vocabulary", "text_columns", "token_length", "unknown_id")}
    np.savez(copy / FILE_NAME, **arrays)
    # review s13 VA12: the folder itself, to be pasted, not RUN_DIR
    with pytest.raises(DataError, match=rf"trainwise run --resume {re.escape(str(copy))} "
                       r".*saves the vocabulary"):
        trainwise.predict(copy, frame[["review"]])


@pytest.mark.parametrize(("side", "given", "expected"), [
    ("end", [[5, 6, 0]], [[5, 6, 0, 0, 0]]),
    ("start", [[0, 5, 6]], [[0, 0, 0, 5, 6]]),
    ("end", [[5, 6, 7, 8, 9, 0, 0]], [[5, 6, 7, 8, 9]]),  # padding dropped: no note
])
def test_token_rows_of_another_length_are_padded_or_cut_on_the_runs_side(side, given,
                                                                         expected):
    prep = Preprocessing("tokens", "classification", (5,), "int64", vocab_size=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fit_length(np.array(given), prep, side)
    assert out.tolist() == expected
    assert len(caught) == (0 if len(given[0]) == 7 else 1)


def test_token_rows_longer_than_t_are_cut_with_a_note():
    prep = Preprocessing("tokens", "classification", (3,), "int64", vocab_size=10)
    with pytest.warns(UserWarning, match=r"drops ids past position 3 in 1 of 2 rows \(row 1\)"):
        out = fit_length(np.array([[1, 2, 0, 0, 0], [1, 2, 3, 4, 5]]), prep, "end")
    assert out.tolist() == [[1, 2, 0], [1, 2, 3]]


def test_id_rows_padded_longer_score_as_the_text_does(text_run):
    """The old code refused (N, T + 4) ids: "reads rows shaped (T,)"; padding is no word."""
    result, frame = text_run
    prep = Preprocessing.load(result.path)
    ids = text_ids(frame[["review"]], prep)
    ids = ids[ids[:, -1] == 0][:20]  # rows shorter than T, so the last column is padding
    with pytest.warns(UserWarning, match=r"padded with 0 at the end"):
        shorter = trainwise.predict(result.path, ids[:, :-1])
    pd.testing.assert_frame_equal(shorter, trainwise.predict(result.path, ids))
    wider = np.pad(ids, ((0, 0), (0, 4)))
    pd.testing.assert_frame_equal(trainwise.predict(result.path, wider),
                                  trainwise.predict(result.path, ids))


def test_a_table_for_a_run_of_token_ids_is_refused_with_what_to_give():
    prep = Preprocessing("tokens", "classification", (5,), "int64", vocab_size=10)
    with pytest.raises(DataError, match=r"read token ids, not text.*\(N, T\) array of ids"):
        text_ids(pd.DataFrame({"review": ["great film"]}), prep)


def test_one_id_rule_for_training_and_predict():
    # review s13 VA8: text_ids kept its own copy of tokenise's ids (k + 2, cut, pad at end)
    from trainwise.data.tokenise import ids_of

    rows = pd.Series([["a", "c", "b", "a"], [], ["b"]])
    np.testing.assert_array_equal(ids_of(rows, ["a", "b"], 3),
                                  [[2, 1, 3], [0, 0, 0], [3, 0, 0]])
    frame = pd.DataFrame({"t": ["x y z x y q", "x y", "y z"] * 4})
    tokens = tokenise(frame)
    np.testing.assert_array_equal(ids_of(pd.Series([s.split() for s in frame["t"]]),
                                         tokens.vocabulary, tokens.ids.shape[1]), tokens.ids)


def test_a_table_without_the_text_column_is_told_what_it_holds_and_the_rename(text_run):
    # review s13 VA11: the message listed the run's column twice, never what the rows held
    result, _ = text_run
    with pytest.raises(DataError) as raised:
        trainwise.predict(result.path, pd.DataFrame({"text": ["great film"], "x": [1]}))
    message = str(raised.value)
    assert "the rows hold ['text', 'x']" in message and "Rename 'text' to 'review'" in message
    with pytest.raises(DataError, match=r"Rename 'reviews' to 'review'"):
        trainwise.predict(result.path, pd.DataFrame({"reviews": ["a"], "note": ["b"]}))
    with pytest.raises(DataError, match=r"hold \['a', 'b'\]\. Give the text under the column"):
        trainwise.predict(result.path, pd.DataFrame({"a": ["x"], "b": ["y"]}))


def test_text_notes_are_said_at_the_callers_line(text_run):
    """Review s13 final F6: trainwise.predict(text run, DataFrame) said its notes at
    prediction.py:85, trainwise's own line; the image notes already named the caller's."""
    import warnings

    import trainwise

    result, _ = text_run
    length = Preprocessing.load(result.path).token_length
    frame = pd.DataFrame({"review": ["great " * (length + 5), "zzzunseen"]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainwise.predict(result.path, frame)
    notes = [w for w in caught if "texts" in str(w.message)]
    assert len(notes) == 2 and all(w.filename == __file__ for w in notes)


def test_no_text_rows_are_refused_as_every_input_is(text_run):
    """Final read s13 A6: text_ids kept its own copy of the 0-row refusal; the one every input
    reaches (prediction._as_array) says it."""
    result, _ = text_run
    with pytest.raises(DataError, match=r"no rows to predict \(0 rows given\)"):
        trainwise.predict(result.path, pd.DataFrame({"review": pd.Series([], dtype=object)}))
