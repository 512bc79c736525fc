"""The init policy: measured weight statistics against the formulas each rule promises."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainwise.model.baselines import cnn1d
from trainwise.model.init import EMBEDDING_STD, OUTPUT_GAIN, describe_rule, init_weights
from trainwise.model.init_notes import apply_init_policy


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _std(tensor: torch.Tensor) -> float:
    return float(tensor.detach().std())


def _by_name(records: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in records}


def test_he_before_relu_xavier_elsewhere_small_output_layer() -> None:
    model = nn.Sequential(nn.Linear(1000, 500), nn.ReLU(),
                          nn.Linear(500, 300), nn.Sigmoid(),
                          nn.Linear(300, 10))
    records = _by_name(init_weights(model, generator=_gen()))
    # He: sqrt(2 / fan_in); 500k draws estimate the std to ~0.1%, so 3% is a real bound.
    assert _std(model[0].weight) == pytest.approx(math.sqrt(2 / 1000), rel=0.03)
    assert _std(model[2].weight) == pytest.approx(math.sqrt(2 / 800), rel=0.03)
    assert _std(model[4].weight) == pytest.approx(OUTPUT_GAIN * math.sqrt(2 / 310),
                                                         rel=0.05)
    assert records["0"]["rule"] == "kaiming_normal"
    assert records["2"]["rule"] == "xavier_normal"
    assert records["4"]["rule"].startswith("xavier_normal(gain=0.1")
    assert records["0"]["std"] == pytest.approx(_std(model[0].weight))
    assert {"name", "type", "rule", "std"} <= set(records["0"])
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in model if isinstance(m, nn.Linear))


def test_norm_and_dropout_between_layer_and_relu_are_skipped() -> None:
    model = nn.Sequential(nn.Conv1d(4, 64, 5), nn.BatchNorm1d(64), nn.Dropout(0.1),
                          nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(64 * 4, 3))
    with torch.no_grad():
        model[1].weight.fill_(3.0)
        model[1].bias.fill_(1.0)
    records = _by_name(init_weights(model, generator=_gen()))
    fan_in = 4 * 5
    expected = math.sqrt(2 / (1 + 0.2**2) / fan_in)
    assert _std(model[0].weight) == pytest.approx(expected, rel=0.08)
    assert "leaky_relu a=0.2" in records["0"]["rule"]
    assert torch.equal(model[1].weight, torch.ones(64))
    assert torch.equal(model[1].bias, torch.zeros(64))


def test_tanh_gets_its_xavier_gain() -> None:
    model = nn.Sequential(nn.Linear(400, 400), nn.Tanh(), nn.Linear(400, 1))
    init_weights(model, generator=_gen())
    gain = nn.init.calculate_gain("tanh")
    assert _std(model[0].weight) == pytest.approx(gain * math.sqrt(2 / 800), rel=0.03)


@pytest.mark.parametrize("cell, gates", [(nn.GRU, 3), (nn.LSTM, 4)])
def test_recurrent_hidden_weights_orthogonal_per_gate(cell: type, gates: int) -> None:
    hidden = 16
    rnn = cell(8, hidden, num_layers=2)
    records = init_weights(rnn, generator=_gen())
    for layer in range(2):
        weight_hh = getattr(rnn, f"weight_hh_l{layer}")
        for chunk in weight_hh.detach().chunk(gates, 0):
            assert torch.allclose(chunk @ chunk.T, torch.eye(hidden), atol=1e-5)
        assert float(getattr(rnn, f"bias_hh_l{layer}").detach().abs().max()) == 0.0
        assert float(getattr(rnn, f"bias_ih_l{layer}").detach().abs().max()) == 0.0
    rules = {r["name"]: r["rule"] for r in records}
    assert rules["weight_hh_l0"] == "orthogonal"
    assert rules["weight_ih_l1"] == "xavier_normal"


@pytest.mark.parametrize("cell, gates", [(nn.GRU, 3), (nn.LSTM, 4)])
def test_recurrent_input_weights_xavier_per_gate(cell: type, gates: int) -> None:
    """Each gate's (H, D) block gets Xavier for its own fan-in D and fan-out H; drawn over the
    stacked (gates*H, D) matrix the std was sqrt(2 / (D + gates*H)) instead (0.056 for a GRU
    here, 0.072 per gate)."""
    inputs, hidden = 256, 128
    rnn = cell(inputs, hidden)
    init_weights(rnn, generator=_gen())
    per_gate = math.sqrt(2 / (inputs + hidden))  # xavier_normal, gain 1
    for block in rnn.weight_ih_l0.detach().chunk(gates, 0):
        assert _std(block) == pytest.approx(per_gate, rel=0.03)


def test_lstm_projection_is_drawn_whole_not_per_gate() -> None:
    """weight_hr (proj_size, H) has no gates: one Xavier draw over (64, 128), std
    sqrt(2 / 192) = 0.102, not four (16, 128) blocks at sqrt(2 / 144) = 0.118; weight_hh's
    (H, proj_size) gate blocks are still orthogonal (orthonormal columns)."""
    rnn = nn.LSTM(32, 128, proj_size=64)
    init_weights(rnn, generator=_gen())
    assert _std(rnn.weight_hr_l0) == pytest.approx(math.sqrt(2 / 192), rel=0.05)
    for block in rnn.weight_hh_l0.detach().chunk(4, 0):
        assert torch.allclose(block.T @ block, torch.eye(64), atol=1e-5)


def test_embeddings_small_normal_with_padding_row_zero() -> None:
    embedding = nn.Embedding(2000, 64, padding_idx=0)
    records = init_weights(nn.Sequential(embedding), generator=_gen())
    assert _std(embedding.weight[1:]) == pytest.approx(EMBEDDING_STD, rel=0.03)
    assert float(embedding.weight[0].detach().abs().max()) == 0.0
    assert records[0]["rule"] == "normal(std=0.01)"


class FunctionalNet(nn.Module):
    """Activations applied with F.relu: invisible to module order, hence the hint."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(500, 400)
        self.fc2 = nn.Linear(400, 400)
        self.out = nn.Linear(400, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def test_hint_gives_he_to_all_but_the_output_layer() -> None:
    model = FunctionalNet()
    init_weights(model, nonlinearity_hint="relu", generator=_gen())
    assert _std(model.fc1.weight) == pytest.approx(math.sqrt(2 / 500), rel=0.03)
    assert _std(model.fc2.weight) == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert _std(model.out.weight) < 0.2 * math.sqrt(2 / 400)
    without_hint = FunctionalNet()
    init_weights(without_hint, generator=_gen())
    assert _std(without_hint.fc1.weight) == pytest.approx(math.sqrt(2 / 900), rel=0.03)


def test_registration_order_for_custom_modules() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(600, 300)
            self.act = nn.GELU()
            self.head = nn.Linear(300, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.act(self.fc(x)))

    model = Block()
    records = _by_name(init_weights(model, generator=_gen()))
    assert records["fc"]["rule"] == "kaiming_normal"
    assert _std(model.fc.weight) == pytest.approx(math.sqrt(2 / 600), rel=0.03)


def test_tied_weight_drawn_once_and_unknown_params_kept() -> None:
    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cls_token = nn.Parameter(torch.full((1, 32), 0.5))
            self.tok = nn.Embedding(500, 32)
            self.head = nn.Linear(32, 500, bias=False)
            self.head.weight = self.tok.weight

    model = Toy()
    records = _by_name(init_weights(model, generator=_gen()))
    assert _std(model.tok.weight) == pytest.approx(EMBEDDING_STD, rel=0.05)
    assert records["head"]["rule"].startswith("tied to tok")
    assert torch.equal(model.cls_token, torch.full((1, 32), 0.5))
    assert records["cls_token"]["rule"] == "kept"


def test_generator_makes_it_deterministic_and_leaves_global_rng_alone() -> None:
    first, second = cnn1d(1, 10), cnn1d(1, 10)
    state = torch.get_rng_state()
    init_weights(first, generator=_gen(3))
    init_weights(second, generator=_gen(3))
    assert torch.equal(torch.get_rng_state(), state)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    # cnn1d's convs feed BatchNorm -> ReLU: He with fan_in = channels * kernel
    assert _std(first[3].weight) == pytest.approx(math.sqrt(2 / (32 * 3)), rel=0.05)


def test_the_init_message_counts_only_the_layers_it_drew() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cls_token = nn.Parameter(torch.zeros(1, 4))  # no rule: kept
            self.tok = nn.Embedding(10, 4)  # drawn
            self.body = nn.Linear(4, 4).requires_grad_(False)  # frozen: kept
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.tok.weight  # tied: shares tok's draw

    [found] = apply_init_policy(Tied(), "policy", own=True)
    assert found.message.startswith("Initialised 1 layer of your Tied")
    assert "Kept as they were: 1 layer frozen (body); 1 layer sharing a weight drawn above " \
        "(head); 1 layer of a type with no init rule (cls_token)." in found.message
    assert describe_rule("kept (frozen)") != "kept (frozen)"  # in words in the report


class TextProbe(nn.Module):
    """A user's text model whose __init__ leaves nn.Embedding at PyTorch's N(0, 1)."""

    def __init__(self, embedding_std: float | None = None) -> None:
        super().__init__()
        self.emb = nn.Embedding(500, 32)
        self.rnn = nn.GRU(32, 16)
        self.head = nn.Linear(16, 2)
        if embedding_std is not None:
            nn.init.normal_(self.emb.weight, 0.0, embedding_std)


def test_kept_text_model_note_names_every_rule_and_its_default_embedding() -> None:
    """The init_kept note used to describe the policy as "He for ReLU layers, Xavier otherwise,
    zero biases" and said nothing of an embedding at std 1.0, 100x the method's 0.01."""
    model = TextProbe()
    std = _std(model.emb.weight)
    assert std == pytest.approx(1.0, abs=0.05)  # nn.Embedding's own draw
    [kept] = apply_init_policy(model, "auto", own=True)
    assert kept.code == "init_kept"
    for rule in ("He for ReLU layers", "Xavier otherwise", "orthogonal recurrent weights",
                 "embeddings N(0, 0.01)", "zero biases"):
        assert rule in kept.fix, rule
    assert f"Its embedding layers ('emb' std {std:.2f}) keep PyTorch's default N(0, 1); the " \
        'method suggests N(0, 0.01), which model.init = "policy" applies.' \
        in kept.message
    assert kept.evidence["default_init_embeddings"] == {"emb": pytest.approx(std)}


def test_kept_embeddings_the_user_drew_or_froze_get_no_default_note() -> None:
    drawn = TextProbe(embedding_std=0.02)
    frozen = TextProbe()
    frozen.emb.requires_grad_(False)  # pretrained vectors: the policy keeps them too
    for model in (drawn, frozen):
        [kept] = apply_init_policy(model, "auto", own=True)
        assert "embedding layers" not in kept.message
        # the evidence is the Linear layers' init records (audit s15 M6): the fresh head only,
        # no embedding entry
        assert set(kept.evidence) == {"default_init_layers", "layers"}
        assert kept.evidence["default_init_layers"] == ["head"]


def test_init_weights_keeps_frozen_layers_by_default() -> None:
    """A frozen (pretrained) body was redrawn by init_weights(model) while its docstring and
    the run's model stage keep it (audit s14 G9); keep_frozen=False still redraws it."""
    def model() -> nn.Module:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        net[0].requires_grad_(False)
        return net

    kept, before = model(), model()[0].weight.detach().clone()
    records = _by_name(init_weights(kept, generator=_gen()))
    assert torch.equal(kept[0].weight, before) and records["0"]["rule"] == "kept (frozen)"
    redrawn = model()
    records = _by_name(init_weights(redrawn, generator=_gen(), keep_frozen=False))
    assert not torch.equal(redrawn[0].weight, before) and records["0"]["rule"] != "kept (frozen)"
