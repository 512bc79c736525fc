"""Token ids (N, T) int64, 0 = padding: read as ids (audit s9 X1), never scaled (X2), and
unpadded lists refused with the padding advice (X8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainwise.checks.zoo_data import task_data, tokens
from trainwise.config import load_config
from trainwise.data.arrays import array_data
from trainwise.data.audit import audit
from trainwise.data.augment import augment_findings, augment_plan
from trainwise.data.errors import DataError
from trainwise.data.in_memory import save_in_memory
from trainwise.data.sources import load_data
from trainwise.data.token_ids import looks_like_token_ids
from trainwise.findings import Severity
from trainwise.model.baselines import ModelError, build_model
from trainwise.model.summary import forward_error


def ids(left: bool = False) -> np.ndarray:
    x = tokens(n=120)[0].numpy()  # (120, 16) int64, right-padded
    return np.stack([np.roll(row, (row == 0).sum()) for row in x]) if left else x


def codes(data) -> dict:
    return {f.code: f for f in data.findings}


def test_padded_integer_rows_are_ids_and_other_integers_are_not():
    rng = np.random.default_rng(0)
    assert looks_like_token_ids(ids()) and looks_like_token_ids(ids(left=True))  # Keras: left
    digits = load_data("digits")  # float64 pixel counts 0..16: built-in sets stay vectors
    assert digits.kind == "vector" and digits.x.dtype == np.float32
    pixels = (digits.x * 16).astype(np.int64)  # blank pixels at both ends and inside
    counts = rng.poisson(0.7, size=(200, 12))  # bag-of-words counts: zeros anywhere
    thermometer = (np.arange(8)[None] < rng.integers(1, 9, size=(200, 1))).astype(np.int64)
    age_children = np.stack([rng.integers(18, 80, 200), rng.integers(0, 3, 200)], 1)
    for features in (pixels, counts, thermometer, age_children, ids().astype(np.float64)):
        assert not looks_like_token_ids(features)


def test_auto_reads_padded_ids_as_int64_tokens_and_says_so():
    x, y = ids(), np.arange(120) % 2
    data = array_data(x, y)
    assert data.kind == "tokens" and data.x.dtype == np.int64 and data.feature_names == []
    np.testing.assert_array_equal(data.x, x)
    read = codes(data)["read_as_tokens"]
    assert read.severity is Severity.INFO and 'data.kind = "vector"' in read.fix
    counts = array_data(np.random.default_rng(0).poisson(2, size=(120, 6)), y)
    assert counts.kind == "vector" and counts.x.dtype == np.float32
    assert 'set data.kind = "tokens"' in codes(counts)["integer_features"].fix
    forced = array_data(x, y, kind="sequence")  # the README's (N, T) reading, asked for
    warned = codes(forced)["looks_like_tokens"]
    assert warned.severity is Severity.WARNING and 'data.kind = "tokens"' in warned.fix
    unpadded = array_data(x[:, :4] + 1, y, kind="tokens")  # no padding: only asked for
    assert unpadded.kind == "tokens" and unpadded.x.dtype == np.int64


@pytest.mark.parametrize(("x", "match"), [
    (np.full((4, 5), 0.5), "whole-number ids"),
    (-np.ones((4, 5), dtype=np.int64), "must be >= 0"),
    (np.zeros((4, 5, 2), dtype=np.int64), r"must be \(N, T\)"),
])
def test_tokens_asked_for_on_arrays_that_are_no_ids(x, match):
    with pytest.raises(DataError, match=match):
        array_data(x, np.arange(4) % 2, kind="tokens")


def test_config_and_torch_int_tensors_reach_the_tokens_kind(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[data]\nkind = "tokens"\n')
    assert load_config(config).data.kind == "tokens"
    x = torch.from_numpy(ids()).int()  # int32, as a tokenizer may return
    path = save_in_memory((x, torch.arange(120) % 2), tmp_path)
    data = load_data(str(path))
    assert data.kind == "tokens" and data.x.dtype == np.int64


def test_embedding_pool_on_data_read_as_vectors_names_data_kind_tokens():
    x = torch.from_numpy(ids()).float()
    with pytest.raises(ModelError) as caught:
        build_model(task_data("vector", x, torch.arange(120) % 2, num_classes=2),
                    "embedding_pool")
    message = str(caught.value)
    assert 'data.kind = "tokens"' in message and "encode the tokens as int64" not in message


def test_padding_positions_are_no_constant_features():
    data = array_data(ids(), np.arange(120) % 2)
    data.x = np.pad(data.x, ((0, 0), (0, 3)))  # 3 positions padding in every row
    found = {f.code: f for f in audit(data)[0]}
    assert "constant_features" not in found and "padding_positions" not in found
    lengths = found["token_lengths"]  # said once, with the row lengths
    assert lengths.evidence["width"] - lengths.evidence["max_length"] == 3
    assert "the last 3 positions are padding in every row" in lengths.message


def test_tokens_are_never_normalised():
    data = array_data(ids(), np.arange(120) % 2)
    plan, _ = augment_plan(data)
    assert not plan.normalise and not plan.flip
    [line] = augment_findings(data)
    assert "no normalisation: token ids" in line.message
    vector = array_data(np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2)
    assert augment_plan(vector)[0].normalise


class EmbedsIds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.head = nn.Embedding(100, 8, padding_idx=0), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(x).mean(1))


def test_an_embedding_fed_floats_is_told_why_and_to_set_data_kind_tokens():
    model, x = EmbedsIds(), torch.randn(8, 16)  # ids standardised as vector data
    with pytest.raises(RuntimeError) as raised:
        model(x)
    finding = forward_error(model, x, raised.value, "vector")
    assert "read this data as vector data" in finding.fix
    assert 'data.kind = "tokens"' in finding.fix and "make the forward accept" not in finding.fix


def test_unpadded_token_lists_say_pad_them(tmp_path):
    x = ids()
    ragged = [list(row[row != 0]) for row in x]
    with pytest.raises(DataError, match=r"X rows have different lengths \(\d+ to 16 .*pad the "
                       r"ids with 0 to one length .*pad_sequence"):
        save_in_memory((ragged, np.arange(120) % 2), tmp_path)
    with pytest.raises(DataError, match="pad_sequence"):
        save_in_memory(([torch.tensor(r) for r in ragged], np.arange(120) % 2), tmp_path)
    objects = np.empty(len(x), object)
    objects[:] = [row[row != 0] for row in x]
    np.savez(tmp_path / "ragged.npz", X=objects, y=np.arange(120) % 2)
    with pytest.raises(DataError, match="'X' as an object array.*pad the ids with 0"):
        load_data(str(tmp_path / "ragged.npz"))
    np.savez(tmp_path / "labels.npz", X=x, y=np.array(["a", 1] * 60, dtype=object))
    with pytest.raises(DataError, match=r"'y' as an object array.*y=y.astype\(str\)"):
        load_data(str(tmp_path / "labels.npz"))
