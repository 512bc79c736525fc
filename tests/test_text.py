"""Free-text columns: recognised, never one-hot encoded, never taken for a row id or a key."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from trainwise.data.errors import DataError
from trainwise.data.keys import plan_keys
from trainwise.data.tables import table_data
from trainwise.data.text import free_text

WORDS = ["my", "order", "refund", "password", "login", "app", "please", "help", "the", "is",
         "not", "working", "invoice", "charged", "twice", "locked", "reset", "why", "today"]


def tickets(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Support tickets of 6-14 words from a 19-word vocabulary, unique per row, 3 labels."""
    rng = np.random.default_rng(seed)
    text = [" ".join(rng.choice(WORDS, rng.integers(6, 15))) for _ in range(n)]
    return pd.DataFrame({"text": text, "label": rng.choice(["billing", "login", "bug"], n)})


def test_prose_is_free_text():
    found = free_text(tickets()["text"], "text")
    assert found is not None and found.median_words >= 6 and found.distinct == 300


@pytest.mark.parametrize("values", [
    [str(uuid.UUID(int=i * 7919 + 1)) for i in range(300)],  # 5 '\w+' words, '0000' recurs
    [str(uuid.UUID(bytes=np.random.default_rng(i).bytes(16))) for i in range(300)],
    [f"ORD-{2020 + i % 5}-{i:06d}" for i in range(300)],  # 'ord' and the year recur
    [f"{name} {i}" for i, name in enumerate(["Ann", "Bob", "Cy"] * 100)],  # 2 words a cell
    ["late delivery of the parcel", "wrong item in the box", "item arrived broken"] * 100,
])
def test_ids_names_and_categories_are_not_free_text(values):
    assert free_text(pd.Series(values), "c") is None


def test_unique_text_is_not_a_row_id():
    """A ticket unique per row used to be dropped as an identifier ('unique per row')."""
    plan = plan_keys(tickets().assign(ticket_id=np.arange(1000, 1300).astype(str)), "label")
    assert plan.row_ids == ["ticket_id"]  # a real id still is one
    assert [t.name for t in plan.text] == ["text"]


def test_text_beside_features_is_set_aside_not_one_hot():
    frame = tickets().assign(channel=np.resize(["chat", "email", "phone"], 300),
                             n_prev=np.arange(300) % 5)
    data = table_data(frame, "label")
    assert not any(name.startswith("text") for name in data.feature_names)
    assert data.x.shape[1] == 4  # n_prev and three channel levels
    [aside] = [f for f in data.findings if f.code == "free_text_set_aside"]
    assert "'text'" in aside.message and "channel, n_prev" in aside.message
    assert 'data.kind = "tokens"' in aside.fix
    assert not any(f.code in ("rare_levels_grouped", "row_id_dropped") for f in data.findings)


def test_text_only_table_says_how_to_feed_text():
    with pytest.raises(DataError, match="free text: 'text'") as raised:
        table_data(tickets(), "label")
    assert "embedding_pool" in str(raised.value) and "Add features" not in str(raised.value)


def test_no_features_error_says_why_columns_were_set_aside():
    """The row_id_dropped finding is lost with the stage: the error itself says why."""
    frame = pd.DataFrame({"ticket_id": [f"T{i}" for i in range(50)],
                          "label": np.resize([0, 1], 50)})
    with pytest.raises(DataError, match="'ticket_id' \\(row id: unique per row, an identifier"):
        table_data(frame, "label")
