"""Look first, for token ids: the samples figure draws row lengths, frequent ids and the ids
over-represented per class (not a histogram of the id at each position), and the audit says
how many rows are empty or cut at T and which id nearly gives a class away."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")

from trainwise.data.audit import audit  # noqa: E402
from trainwise.data.figures import samples_caption, samples_figure  # noqa: E402
from trainwise.data.task import TaskData  # noqa: E402
from trainwise.data.token_stats import token_findings  # noqa: E402


def tickets(num: int = 400, width: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(num, width) ids 1..59, 0-padded at the end, rows of 3..width-1 ids; 3 classes, and
    nothing ties an id to a class."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, width, num)
    ids = rng.integers(1, 60, (num, width))
    return np.where(np.arange(width)[None] < lengths[:, None], ids, 0), np.arange(num) % 3


def _data(x: np.ndarray, y: np.ndarray) -> TaskData:
    return TaskData(name="tickets", kind="tokens", task="classification", x=x, y=y,
                    class_names=["billing", "bug", "praise"])


def _codes(findings) -> dict:
    return {f.code: f for f in findings}


def test_empty_and_full_rows_are_counted_and_empty_ones_warned_about():
    x, y = tickets()
    x[[5, 17, 40]] = 0  # three empty rows
    x[[50, 60], :] = 7  # two rows that fill all T positions
    found = _codes(token_findings(x, y, "classification", ["billing", "bug", "praise"]))
    lengths = found["token_lengths"]
    assert lengths.evidence["num_empty"] == 3 and lengths.evidence["num_full"] == 2
    assert lengths.evidence["padding"] == "end" and lengths.evidence["min_length"] == 0
    assert "2 rows (0%) fill all 24 positions: probably cut at T" in lengths.message
    empty = found["empty_rows"]
    assert empty.severity == "warning" and empty.evidence["rows"] == [5, 17, 40]
    assert "cannot be classified" in empty.message and "id 0" in empty.fix


def test_no_empty_rows_no_warning_and_no_shortcut_in_honest_data():
    x, y = tickets()
    found = _codes(token_findings(x, y, "classification", ["billing", "bug", "praise"]))
    assert "no row is empty" in found["token_lengths"].message
    assert "empty_rows" not in found and "token_shortcut" not in found


def test_an_id_that_nearly_gives_the_class_away_is_a_shortcut():
    x, y = tickets()
    bug = np.flatnonzero(y == 1)[:100]  # 100 of the 133 'bug' rows start with id 99
    x[bug, 0] = 99
    [shortcut] = [f for f in token_findings(x, y, "classification",
                                            ["billing", "bug", "praise"])
                  if f.code == "token_shortcut"]
    assert shortcut.severity == "warning"
    assert "id 99 is in 75% of class 'bug' rows" in shortcut.message
    assert "100% of the rows holding it are 'bug'" in shortcut.message


def test_the_figure_draws_lengths_frequent_ids_and_each_class_s_own_ids():
    x, y = tickets()
    x[[5, 17]] = 0
    bug = np.flatnonzero(y == 1)[:60]
    x[bug, 0] = 99  # over-represented in 'bug' only
    data = _data(x, y)
    figure = samples_figure(data)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[0] == "tokens per row (not padding): 2 empty, 0 fill all 24"
    assert titles[1].startswith("the 20 most frequent of")
    assert titles[2:] == ["class billing (n=134)", "class bug (n=133)", "class praise (n=133)"]
    bug_panel = figure.axes[3]
    assert bug_panel.get_yticklabels()[0].get_text() == "id 99 (100%)"  # first: most specific
    for other in (figure.axes[2], figure.axes[4]):
        assert not any("id 99" in t.get_text() for t in other.get_yticklabels())
    caption = samples_caption(data)
    assert "2 rows are empty (all padding) and cannot be classified" in caption
    assert "no row fills all 24 positions (none cut at T)" in caption


def test_the_audit_of_token_ids_reports_lengths():
    x, y = tickets()
    x[3] = 0
    codes = [f.code for f in audit(_data(x, y))[0]]
    assert "token_lengths" in codes and "empty_rows" in codes


def test_rows_trainwise_cut_itself_are_counted_not_guessed():
    """Audit s13 I12: 40 texts, 30 of 2 words, 9 of 6 and 1 of 10: T = 6 (the 95th
    percentile), so trainwise cut exactly 1 row (2.5%); the 9 rows of exactly 6 words fill
    all T positions but were not cut, and a guess from full rows said "10 ... probably cut"."""
    import pandas as pd

    from trainwise.data.tokenise import tokenise

    texts = ["a b"] * 30 + ["a b c d e f"] * 9 + ["a b c d e f a b c d"]
    tokens = tokenise(pd.DataFrame({"text": texts}))
    assert tokens.ids.shape[1] == 6 and tokens.truncated == 1 / 40
    [lengths] = [f for f in token_findings(tokens.ids, np.arange(40) % 2, "classification",
                                           ["a", "b"], tokens.truncated)
                 if f.code == "token_lengths"]
    assert "1 row (2.5%) was longer than T = 6 words and cut there" in lengths.message
    assert "9 more are exactly 6 words long, not cut" in lengths.message
    assert "probably" not in lengths.message
