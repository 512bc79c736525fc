"""The check zoo: every broken setup is caught by its finding, every healthy one passes clean."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwise.checks import preflight
from trainwise.checks.structure import check_loss_fit, saturated_output
from trainwise.checks.zoo import BROKEN_SETUPS, HEALTHY_SETUPS, Setup
from trainwise.findings import Finding, Severity
from trainwise.model.summary import check_output_shape


def _run(setup: Setup) -> list[Finding]:
    return preflight(setup.model, setup.loss_fn, setup.x, setup.y, task=setup.task,
                     num_classes=setup.num_classes)


def _problems(findings: list[Finding]) -> dict[str, Finding]:
    return {f.code: f for f in findings if f.severity is not Severity.INFO}


def test_zoo_is_big_enough_and_covers_every_kind() -> None:
    assert len(BROKEN_SETUPS) >= 12 and len(HEALTHY_SETUPS) >= 6
    shapes = {(s.x.ndim, s.x.is_floating_point(), s.task)
              for s in (make() for make in HEALTHY_SETUPS.values())}
    # tables, sequences, images, token ids; classification and regression
    assert {(2, True, "classification"), (3, True, "classification"),
            (4, True, "classification"), (2, False, "classification"),
            (2, True, "regression")} <= shapes


@pytest.mark.parametrize("name", list(BROKEN_SETUPS))
def test_broken_setup_is_caught_by_its_finding(name: str) -> None:
    setup = BROKEN_SETUPS[name]()
    assert setup.expected is not None
    problems = _problems(_run(setup))
    assert setup.expected in problems, sorted(problems)
    finding = problems[setup.expected]
    # names the cause and the fix: a message, and a fix that says which stage to revisit
    assert finding.message and "revisit" in finding.fix


@pytest.mark.parametrize("name", list(HEALTHY_SETUPS))
def test_healthy_setup_passes_clean(name: str) -> None:
    setup = HEALTHY_SETUPS[name]()
    assert setup.expected is None
    findings = _run(setup)
    assert _problems(findings) == {}
    # passing clean means the checks ran, not that they were skipped
    assert {"loss_at_init_ok", "overfit_batch_ok", "inputs_used", "smoke_cycle_ok"} <= {
        f.code for f in findings}


def test_setups_are_fresh_and_reproducible() -> None:
    make = BROKEN_SETUPS["dead-ReLU init"]
    first, second = make(), make()
    assert first.model is not second.model
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                 second.model.state_dict().values(),
                                                 strict=True))
    assert torch.equal(first.x, second.x)


def test_zero_initialised_head_is_not_taken_for_softmax() -> None:
    """big_vision zero-inits classifier heads: all-0 logits are in [0, 1] but not squashed."""
    setup = HEALTHY_SETUPS["mlp on a table"]()
    torch.nn.init.zeros_(setup.model[-1].weight)
    problems = _problems(_run(setup))
    assert "softmax_before_loss" not in problems and "gradient_missing" not in problems
    assert check_output_shape(setup.model, setup.x, setup.y, "classification", 3) == []


@pytest.mark.parametrize(("final", "flagged"), [
    (None, False),  # small logits that all land in [0, 1]: default init can do that
    (nn.Sigmoid(), True), (nn.Softmax(dim=1), True), (nn.LogSoftmax(dim=1), False)])
def test_softmax_before_loss_needs_evidence(final: nn.Module | None, flagged: bool) -> None:
    setup = HEALTHY_SETUPS["mlp on a table"]()
    head = setup.model[-1]
    with torch.no_grad():  # logits 0.5 +- 0.05: inside [0, 1], rows summing to ~1.5
        head.weight.mul_(0.01)
        head.bias.fill_(0.5)
    model = setup.model if final is None else nn.Sequential(setup.model, final)
    findings = check_loss_fit(model, setup.loss_fn, setup.x, setup.y, "classification")
    assert ("softmax_before_loss" in _problems(findings)) is flagged


def test_bounded_regression_head_is_fine_when_the_targets_fit_it() -> None:
    """A sigmoid ending a regression on targets in [0, 1] (a rate) is a sensible choice."""
    setup = BROKEN_SETUPS["sigmoid module ending a regression"]()
    rate = (setup.y - setup.y.min()) / (setup.y.max() - setup.y.min())
    assert check_loss_fit(setup.model, setup.loss_fn, setup.x, rate, "regression") == []
    (bounded,) = check_loss_fit(setup.model, setup.loss_fn, setup.x, setup.y, "regression")
    assert bounded.code == "output_bounded"
    # the share is the targets' own: a hand count of those outside [0, 1]
    outside = float(((setup.y < 0) | (setup.y > 1)).float().mean())
    assert bounded.evidence["share_out_of_range"] == pytest.approx(outside)


def test_a_model_that_predicts_the_mean_is_not_taken_for_a_squashed_one() -> None:
    """Saturation needs both bounds hugged: a constant near 0 sits 'at' the lower bound of
    [0, 1] for every negative target but nowhere near 1 for the targets above it."""
    y = torch.linspace(-2, 2, 32)
    assert saturated_output(torch.full((32,), 0.03), y) == []
    squashed = torch.sigmoid(8 * y)  # what a trained sigmoid head gives
    (bounded,) = saturated_output(squashed, y)
    assert bounded.code == "output_bounded" and bounded.evidence["output_range"] == [0.0, 1.0]
