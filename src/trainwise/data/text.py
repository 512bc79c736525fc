"""Free-text columns in a table (a ticket, a review, a comment): recognised before keys and
features are chosen.

One-hot encoding made such a column its 63 most frequent whole sentences plus '(other)', so
the text was thrown away, the rows looked like copies of each other and the split stopped on
them; and a text column unique per row was dropped as a row identifier. A free-text column is
neither a category nor an identifier: its words are what a model should read.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from trainwise.data.coltypes import is_text
from trainwise.data.token_ids import OWN_TOKENIZER_ADVICE
from trainwise.findings import Finding, warning

# Chinese, Japanese kana and Thai are written without spaces: a clause was one '\w+' run, so a
# Chinese ticket held ~2 'words', failed MIN_MEDIAN_WORDS and was dropped as a row id. Each
# character of these scripts counts as a word (a character is often a word in Chinese).
UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"  # Thai, kana, CJK
WORD = re.compile(f"[{UNSPACED}]|[^\\W{UNSPACED}]+")  # for recognising text and tokenising it
LETTERS = re.compile(r"[^\W\d_]+")  # a word of letters only, in any script
MIN_MEDIAN_WORDS = 3  # whitespace-separated (spaced_words): 'New York' or 'John Smith' are
# names (a category, an id), not prose
MIN_DISTINCT_SHARE = 0.5  # at least half the cells distinct: a 5-level 'reason for visit'
# with long labels is a category, one-hot encoded as before
MIN_SHARED_WORDS = 0.5  # share of word occurrences whose word is in 2+ cells: prose reuses
# 'the', 'order', 'refund'; an id such as '550e8400-e29b-41d4' is 3+ 'words' none of which recur
MIN_LETTER_WORDS = 0.5  # share of word occurrences made of letters only: codes such as
# 'ORD-2024-000123' share 'ord' and '2024' across rows, but are mostly digits
SAMPLE = 2000  # cells looked at per column: enough to tell prose from ids at any table size
FREE_TEXT_RULE = (f"free text is a text column whose cells are mostly distinct (at least "
                  f"{MIN_DISTINCT_SHARE:.0%}) and hold {MIN_MEDIAN_WORDS}+ words on median, "
                  f"mostly of letters, with words shared across rows")


@dataclass(frozen=True)
class TextColumn:
    """What made a column free text, for the finding that names it."""

    name: str
    distinct: int  # distinct non-missing cells
    median_words: float
    shared_words: float  # share of word occurrences whose word is in 2+ cells of the sample

    def describe(self) -> str:
        return (f"'{self.name}' ({self.distinct:,} distinct values, {self.median_words:g} "
                f"words per cell on median)")


def words(texts: pd.DataFrame | pd.Series) -> pd.Series:
    """Lowercase WORD runs per row (a list per cell), a frame's columns joined in column
    order; missing cells hold no words. Vectorised (str.cat, str.findall): a row-by-row
    agg(" ".join) took 16 s for 100k rows."""
    if isinstance(texts, pd.DataFrame):
        columns = [texts[c].fillna("").astype(str) for c in texts.columns]
        texts = columns[0].str.cat(columns[1:], sep=" ") if len(columns) > 1 else columns[0]
    return texts.fillna("").astype(str).str.lower().str.findall(WORD)


def spaced_words(cells: pd.Series) -> pd.Series:
    """Words per cell counted between whitespace: an email, a URL or a file path is one word
    ('/data/cat/img_1.jpg' is 5 WORD runs, and passed as prose: a column of image paths was
    tokenised and trained on, its class name a token of every path). Two UNSPACED characters
    count as one word: a Chinese word is mostly 1-2 characters, and '订单123' stays an id."""
    pairs = cells.str.replace(f"([{UNSPACED}]{{1,2}})", r" \1 ", regex=True)
    return pairs.str.split().str.len()


def _sample(column: pd.Series) -> pd.Series:
    cells = column.dropna().astype(str)
    return cells.sample(SAMPLE, random_state=0) if len(cells) > SAMPLE else cells


def _shared_share(words: pd.Series) -> float:
    """Share of word occurrences whose word occurs in two or more cells."""
    cells_with = Counter(w for cell in words for w in set(cell))
    total = sum(len(cell) for cell in words)
    shared = sum(1 for cell in words for w in cell if cells_with[w] > 1)
    return shared / total if total else 0.0


def free_text(column: pd.Series, name: str) -> TextColumn | None:
    """The column as free text, or None: text cells, mostly multi-word and mostly distinct,
    whose words recur across cells (so it is neither a category nor an identifier)."""
    if not is_text(column):
        return None
    cells = _sample(column)
    if len(cells) < 2:
        return None
    cell_words = words(cells)
    median = float(spaced_words(cells).median())
    if median < MIN_MEDIAN_WORDS or cells.nunique() < MIN_DISTINCT_SHARE * len(cells):
        return None
    letters = cell_words.explode().dropna().str.fullmatch(LETTERS).mean()
    if letters < MIN_LETTER_WORDS:
        return None
    shared = _shared_share(cell_words)
    if shared < MIN_SHARED_WORDS:
        return None
    return TextColumn(name, int(column.nunique(dropna=True)), median, round(shared, 3))


def free_text_columns(frame: pd.DataFrame) -> list[TextColumn]:
    found = (free_text(frame[c], str(c)) for c in frame.columns)
    return [t for t in found if t is not None]


def _names(columns: list[TextColumn]) -> str:
    return ", ".join(c.describe() for c in columns)


def set_aside_warning(columns: list[TextColumn], others: list[str]) -> Finding:
    """The text columns are left out because other features remain: a model of the table
    cannot read prose, and one-hot whole sentences would only memorise rows."""
    plural = len(columns) > 1
    return warning(
        "data", "free_text_set_aside",
        f"column{'s' if plural else ''} {_names(columns)} hold{'' if plural else 's'} free "
        f"text (multi-word, mostly distinct, words shared across rows): trainwise does not "
        f"one-hot encode whole sentences, so {'they are' if plural else 'it is'} set aside and "
        f"the model sees only the other feature{'s' if len(others) > 1 else ''} "
        f"({', '.join(others[:10])}{', ...' if len(others) > 10 else ''}).",
        "If the text carries the label, train on the text alone: --set "
        "'data.kind=\"tokens\"' (trainwise tokenises it into lowercase words for the "
        "embedding_pool baseline and leaves the other columns out), or, with a tokenizer of "
        f"your own, {OWN_TOKENIZER_ADVICE}; run trainwise on that file.",
        columns=[c.name for c in columns])
