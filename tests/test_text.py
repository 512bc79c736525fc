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


@pytest.mark.parametrize("template", [
    "我的订单没有到达，请帮我查一下订单{}的状态",  # written without spaces: was ~2 words a cell
    "注文した商品が届きません、番号{}を確認してください",
    "คำสั่งซื้อของฉันยังไม่มาถึงช่วยตรวจสอบหมายเลข{}ด้วย",
])
def test_prose_in_scripts_without_spaces_is_free_text(template):
    found = free_text(pd.Series([template.format(i) for i in range(300)]), "text")
    assert found is not None and found.median_words >= 10
    assert free_text(pd.Series([f"订单{i}" for i in range(300)]), "c") is None  # an id


@pytest.mark.parametrize("values", [
    [str(uuid.UUID(int=i * 7919 + 1)) for i in range(300)],  # 5 '\w+' words, '0000' recurs
    [str(uuid.UUID(bytes=np.random.default_rng(i).bytes(16))) for i in range(300)],
    [f"ORD-{2020 + i % 5}-{i:06d}" for i in range(300)],  # 'ord' and the year recur
    [f"{name} {i}" for i, name in enumerate(["Ann", "Bob", "Cy"] * 100)],  # 2 words a cell
    ["late delivery of the parcel", "wrong item in the box", "item arrived broken"] * 100,
    # one word each, though '\w+' split them into 4-7 shared runs (review s9 D2)
    [f"{['ann', 'bob', 'li'][i % 3]}.smith{i}@example.com" for i in range(300)],
    [f"https://www.shop.com/products/item-{i}" for i in range(300)],
    [f"/data/images/train/cat/img_{i}.jpg" for i in range(300)],
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
    assert "--set 'data.kind=\"tokens\"'" in aside.fix and 'data.kind = "tokens"' in aside.fix
    assert not any(f.code in ("rare_levels_grouped", "row_id_dropped") for f in data.findings)


def test_text_only_table_becomes_token_ids():
    """A text + label table used to stop: 'no feature columns besides ... Add features.'"""
    frame = tickets()
    data = table_data(frame, "label")
    assert data.kind == "tokens" and data.x.dtype == np.int64
    [note] = [f for f in data.findings if f.code == "text_tokenised"]
    assert note.evidence["vocabulary_size"] == len(WORDS) + 2  # + padding and unknown
    words = frame["text"].str.split()
    vocabulary = note.evidence["top_words"]
    for row, ids in zip(words, data.x, strict=True):
        kept = ids[ids != 0]
        assert [vocabulary[i - 2] for i in kept] == row[:len(kept)]
        assert len(kept) == min(len(row), data.x.shape[1])  # padded with 0 at the end only
    assert data.x.shape[1] == int(np.ceil(np.percentile(words.str.len(), 95)))


def test_rare_words_share_one_id_and_long_rows_are_cut():
    frame = tickets(n=100).assign(text=lambda f: f["text"] + " Unique" + f.index.astype(str))
    frame.loc[0, "text"] = " ".join(["order"] * 400)  # longer than the 256-token cap
    frame.loc[1:5, "text"] = " ".join(["help"] * 300)  # 6 of 100 rows: the 95th percentile
    data = table_data(frame, "label")
    assert data.x.shape[1] == 256 and (data.x[0] == data.x[0, 0]).all()
    [note] = [f for f in data.findings if f.code == "text_tokenised"]
    assert note.evidence["num_rare_words"] == 94  # 'unique6'..'unique99': rows 0-5 replaced
    lengths = (data.x[6:] != 0).sum(1)
    assert (data.x[6:][np.arange(94), lengths - 1] == 1).all()  # each row's last word: unknown
    assert note.evidence["truncated_share"] == 0.06


def test_two_text_columns_are_joined():
    frame = tickets().assign(subject=lambda f: f["text"].str.split().str[:3].str.join(" "))
    data = table_data(frame[["subject", "text", "label"]], "label")
    first = (data.x[0] != 0).sum()
    assert data.kind == "tokens" and first == min(data.x.shape[1], 3 + len(
        frame["text"][0].split()))


def test_kind_tokens_trains_on_the_text_beside_other_columns():
    frame = tickets().assign(channel=np.resize(["chat", "email", "phone"], 300))
    data = table_data(frame, "label", kind="tokens")
    alone = table_data(tickets(), "label")
    assert data.kind == "tokens" and np.array_equal(data.x, alone.x)
    [note] = [f for f in data.findings if f.code == "text_tokenised"]
    assert note.evidence["unused_columns"] == ["channel"] and "(channel)" in note.message
    with pytest.raises(DataError, match='data.kind = "tokens" trains on a table\'s free-text'):
        table_data(frame.drop(columns="text"), "label", kind="tokens")


def test_no_features_error_says_why_columns_were_set_aside():
    """The row_id_dropped finding is lost with the stage: the error itself says why."""
    frame = pd.DataFrame({"ticket_id": [f"T{i}" for i in range(50)],
                          "label": np.resize([0, 1], 50)})
    with pytest.raises(DataError, match="'ticket_id' \\(row id: unique per row, an identifier"):
        table_data(frame, "label")


def test_tickets_differing_only_in_a_rare_word_are_not_copies():
    """Every once-seen word is id 1, so 600 distinct tickets that differ only in an order
    number were 3 distinct id rows: 'exact copies', and the split stopped on them."""
    from trainwise.data.audit import audit
    from trainwise.data.plan import SplitSettings, plan_split

    rng = np.random.default_rng(0)
    templates = ["my order {} has not arrived yet please help",
                 "refund for order {} was not paid", "cannot login to account {} since today"]
    labels = rng.integers(0, 3, 600)
    text = [templates[k].format(n) for k, n in zip(labels, rng.permutation(10**6)[:600],
                                                    strict=True)]
    data = table_data(pd.DataFrame({"text": text, "label": labels}), "label")
    assert data.kind == "tokens" and len(np.unique(data.x, axis=0)) == 3
    assert len(np.unique(data.row_hashes())) == 600
    assert not [f for f in audit(data)[0] if f.code in ("duplicate_samples", "conflicting_labels")]
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2))
    assert not [f for f in result.findings if f.severity.value != "info"]
    copied = table_data(pd.DataFrame({"text": text[:1] * 2 + text[:98], "label": labels[:100]}),
                        "label")
    assert len(np.unique(copied.row_hashes())) == 98  # a real copy of the text still is one


def test_a_column_of_image_paths_is_a_row_id_not_text_to_train_on():
    """The class name is a word of every path: tokenised, it was a silent label leak."""
    labels = np.resize(["cat", "dog"], 200)
    frame = pd.DataFrame({"path": [f"/data/{k}/img_{i}.jpg" for i, k in enumerate(labels)],
                          "label": labels})
    with pytest.raises(DataError, match="'path' \\(row id: unique per row"):
        table_data(frame, "label")


def test_kind_tokens_checks_the_text_it_reads_for_leaks_not_the_columns_it_leaves_out():
    """A 'code' column that recodes the label warned target_leak, though the model never
    reads it; a label word in the text is what can leak, and the audit names it."""
    from trainwise.data.audit import audit

    frame = tickets()
    frame["code"] = frame["label"].map({"billing": "B", "login": "L", "bug": "G"})
    data = table_data(frame, "label", kind="tokens")
    assert not [f for f in data.findings if f.code == "target_leak"]
    leaky = frame.assign(text=frame["text"] + " " + frame["label"])
    found = audit(table_data(leaky, "label", kind="tokens"))[0]
    assert [f for f in found if f.code == "token_shortcut"]


def test_tokenised_text_keeps_the_token_data_contract():
    """as_tokens named positions 'token0'..; a .npz of ids has none (token_ids.py)."""
    from trainwise.data.arrays import array_data
    from trainwise.data.token_ids import PADDING_ID

    data = table_data(tickets(), "label")
    saved = array_data(data.x, data.y, kind="tokens")
    assert data.feature_names == saved.feature_names == []
    assert data.x.dtype == np.int64 and (data.x[:, -1] == PADDING_ID).any()


def test_one_own_tokeniser_advice_that_keeps_one_letter_words():
    """Three hand-written versions differed; one named sklearn's default analyzer, which
    drops 'a', 'I' and digits, the words tokenise.py deliberately keeps."""
    from trainwise.data.text import FREE_TEXT_RULE, MIN_MEDIAN_WORDS
    from trainwise.data.token_ids import OWN_TOKENIZER_ADVICE

    assert 'token_pattern=r"(?u)\\b\\w+\\b"' in OWN_TOKENIZER_ADVICE
    frame = tickets().assign(channel=np.resize(["chat", "email", "phone"], 300))
    aside = [f for f in table_data(frame, "label").findings if f.code == "free_text_set_aside"]
    tokenised = [f for f in table_data(tickets(), "label").findings
                 if f.code == "text_tokenised"]
    assert OWN_TOKENIZER_ADVICE in aside[0].fix and OWN_TOKENIZER_ADVICE in tokenised[0].fix
    with pytest.raises(DataError) as raised:
        table_data(frame.drop(columns="text"), "label", kind="tokens")
    assert FREE_TEXT_RULE in str(raised.value) and f"{MIN_MEDIAN_WORDS}+ words" in FREE_TEXT_RULE
