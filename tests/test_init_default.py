"""A user's own model still at PyTorch's default init is a warning; weights they set, trained
or froze are not (audit s15 M6)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import trainwise
from trainwise.findings import Severity
from trainwise.model.init_default import KEPT_AS_BUILT, KEPT_DEFAULT, default_layers
from trainwise.model.init_notes import apply_init_policy
from trainwise.reporting.model_tables import init_rows


def _audit_net() -> nn.Sequential:
    """The audit's model (breast_cancer: 30 features, 2 classes), freshly built."""
    return nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 2))


def test_a_freshly_built_model_is_a_warning_with_the_policys_std():
    torch.manual_seed(0)
    [kept] = apply_init_policy(_audit_net(), "auto", own=True)
    assert kept.code == "init_kept" and kept.severity is Severity.WARNING
    assert kept.evidence["default_init_layers"] == ["0", "2", "4"]
    # He for a layer that feeds a ReLU: sqrt(2 / 30) = 0.258; PyTorch's 1 / sqrt(3 * 30) = 0.105
    assert "would draw '0' at std 0.258 (He normal (fan-in))" in kept.message
    first = kept.evidence["layers"][0]
    assert first["policy_std"] == pytest.approx(math.sqrt(2 / 30))
    assert first["std"] == pytest.approx(1 / math.sqrt(90), rel=0.1)
    # the output layer: Xavier x 0.1 = 0.1 * sqrt(2 / (64 + 2))
    assert kept.evidence["layers"][2]["policy_std"] == pytest.approx(0.1 * math.sqrt(2 / 66))
    assert 'model.init = "policy"' in kept.fix and 'model.init = "keep"' in kept.fix


def _trained(model: nn.Module) -> nn.Module:
    """Weights as a pretrained checkpoint holds them: 300 Adam steps on a learnable task."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 30, generator=gen)
    y = (x[:, 0] * x[:, 1] > 0).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    fresh = _audit_net()
    fresh.load_state_dict(model.state_dict())  # "loaded from a checkpoint"
    return fresh


def _custom(model: nn.Module) -> nn.Module:
    for layer in (model[0], model[2], model[4]):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.normal_(layer.bias, 0, 0.01)
    return model


def _frozen(model: nn.Module) -> nn.Module:
    return model.requires_grad_(False)


@pytest.mark.parametrize("prepare", [_trained, _custom, _frozen, trainwise.init_weights])
def test_pretrained_custom_frozen_or_policy_weights_are_not_flagged(prepare):
    torch.manual_seed(0)
    model = _audit_net()
    prepared = prepare(model)
    model = prepared if isinstance(prepared, nn.Module) else model
    [kept] = apply_init_policy(model, "auto", own=True)
    assert kept.severity is Severity.INFO and "default_init_layers" not in kept.evidence
    assert all(r["rule"] == KEPT_AS_BUILT for r in kept.evidence.get("layers", []))


def test_the_default_draw_is_recognised_on_small_layers_and_convolutions():
    """3 standard errors on the std and 5 / n on the range: 200 fresh draws of a 32-weight
    Linear and of a Conv2d are all recognised."""
    torch.manual_seed(1)
    for _ in range(200):
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Conv1d(1, 4, 3))
        assert [r["rule"] for r in default_layers(model)] == [KEPT_DEFAULT] * 2


def test_keeping_on_purpose_stays_a_note():
    [kept] = apply_init_policy(_audit_net(), "keep", own=True)
    assert kept.severity is Severity.INFO and "layers" not in kept.evidence


def test_the_report_table_shows_kept_layers_beside_the_policys_std():
    torch.manual_seed(0)
    [kept] = apply_init_policy(_audit_net(), "auto", own=True)
    rows = init_rows([kept])
    assert [(r["num_layers"], r["policy_rule"]) for r in rows] == [
        (2, "He normal (fan-in)"), (1, "Xavier normal x 0.1")]
    assert rows[0]["rule"] == "kept: still PyTorch's default uniform init"
    assert rows[0]["policy_std_high"] == pytest.approx(math.sqrt(2 / 30))
    assert rows[0]["policy_std_low"] == pytest.approx(math.sqrt(2 / 64))
