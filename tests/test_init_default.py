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
    """4 standard errors on the std (STD_NOISE) and 7 / n on the range (FILL): 200 fresh draws
    of a 32-weight Linear and of a 12-weight Conv1d are all recognised."""
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


def _pretrained_body(model: nn.Sequential, fresh: tuple[int, ...]) -> nn.Sequential:
    """Every Linear but those in `fresh` loaded from a trained copy: a fine-tuning model."""
    trained = _trained(_audit_net())
    for index in (0, 2, 4):
        if index not in fresh:
            model[index].load_state_dict(trained[index].state_dict())
    return model


def test_a_pretrained_body_with_a_fresh_head_is_a_note_not_a_warning():
    """Review s15 VE1: the fresh head feeds no ReLU, so its default init shrinks nothing, and
    the old fix (model.init = "policy") would have redrawn the pretrained body."""
    torch.manual_seed(0)
    [kept] = apply_init_policy(_pretrained_body(_audit_net(), fresh=(4,)), "auto", own=True)
    assert kept.severity is Severity.INFO
    assert kept.evidence["default_init_layers"] == ["4"]
    assert "1 layer ('4') still holds PyTorch's default init" in kept.message


def test_linear_batchnorm_relu_blocks_are_not_warned_about():
    """Review s15 VE5: BatchNorm rescales each block (std 0.585 then 0.584 after the ReLUs)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 64),
                          nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))
    [kept] = apply_init_policy(model, "auto", own=True)
    assert kept.severity is Severity.INFO
    assert kept.evidence["default_init_layers"] == ["0", "3", "6"]
    assert [r["shrinks"] for r in kept.evidence["layers"]] == [False] * 3


def test_fresh_relu_layers_on_a_pretrained_body_get_a_fix_that_keeps_the_body():
    """A fresh ReLU layer still warns, but the fix redraws only the fresh layers: "policy" or
    init_weights(model) would wipe the pretrained layer '0' (review s15 VE1)."""
    torch.manual_seed(0)
    [kept] = apply_init_policy(_pretrained_body(_audit_net(), fresh=(2, 4)), "auto", own=True)
    assert kept.severity is Severity.WARNING
    assert "1 of its 3 Linear/Conv layers ('2')" in kept.message
    assert ('nn.init.kaiming_normal_(model[2].weight, nonlinearity="relu"); '
            "nn.init.zeros_(model[2].bias)") in kept.fix
    assert "model[4]" not in kept.fix  # the fresh output layer shrinks nothing
    assert "1 layer ('0') holds weights set before" in kept.fix
    assert "trainwise.init_weights(model)" not in kept.fix


def test_the_printed_fresh_layer_fix_draws_the_std_the_warning_states():
    """Review s15 VF1: the fix said trainwise.init_weights(model[2]), which reads a lone layer
    as an output layer (xavier, gain 0.1: std 0.0072 where He gives 0.088). Run the printed
    code and compare the layer's std with the policy's std the warning gives."""
    torch.manual_seed(0)
    model = _pretrained_body(_audit_net(), fresh=(2, 4))
    [kept] = apply_init_policy(model, "auto", own=True)
    code = kept.fix.split("before passing the model: ")[1].split("; the report")[0]
    exec(code, {"nn": nn, "model": model})  # noqa: S102 - the fix's own text, run as a user would
    [record] = [r for r in kept.evidence["layers"] if r["name"] == "2"]
    assert abs(model[2].weight.std().item() / record["policy_std"] - 1) < 0.1
    assert model[2].bias.abs().max().item() == 0
