"""A squashing function inside forward() (torch.sigmoid, not an nn.Sigmoid module) is seen by
what it does to the outputs, before any training; a raw head with small outputs is not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwise.checks import preflight
from trainwise.checks.structure import check_loss_fit


class Regressor(nn.Module):
    """An MLP whose forward() applies `squash` (a plain function) to the last Linear."""

    def __init__(self, squash=None, *, norm_first: bool = False) -> None:  # noqa: ANN001
        super().__init__()
        torch.manual_seed(0)
        layers = [nn.LayerNorm(8)] if norm_first else []
        self.net = nn.Sequential(*layers, nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
        self.squash = squash

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).squeeze(1)
        return out if self.squash is None else self.squash(out)


def _data(targets: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=gen)
    if targets == "N(50, 10)":
        return x, 50 + 10 * torch.randn(64, generator=gen)
    return x, torch.rand(64, generator=gen) * 2 - 1  # in [-1, 1]


def _codes(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str = "regression",
           loss_fn: nn.Module | None = None) -> dict[str, object]:
    findings = check_loss_fit(model, loss_fn or nn.MSELoss(), x, y, task)
    return {f.code: f for f in findings}


def test_sigmoid_inside_forward_of_a_regression_is_an_error() -> None:
    x, y = _data("N(50, 10)")
    model = Regressor(torch.sigmoid)
    # no module gives it away: only what forward() does to the values
    assert not any(isinstance(m, nn.Sigmoid) for m in model.modules())
    bounded = _codes(model, x, y)["output_bounded"]
    assert bounded.severity.value == "error" and bounded.stage == "check"
    assert bounded.evidence["output_range"] == [0.0, 1.0]
    # every target ~ N(50, 10) is out of reach: a hand count agrees
    outside = float(((y < 0) | (y > 1)).float().mean())
    assert outside == 1.0 and bounded.evidence["share_out_of_range"] == pytest.approx(outside)
    assert "net.2 (Linear)" in bounded.message and "[0, 1]" in bounded.message
    assert "sigmoid" in bounded.fix and "revisit the model stage" in bounded.fix


@pytest.mark.parametrize(("squash", "bounds"), [
    (torch.tanh, [-1.0, 1.0]),
    (lambda h: h.clamp(-3, 3), [-3.0, 3.0]),
    (lambda h: 1 - torch.sigmoid(h), [0.0, 1.0]),  # a flipped sigmoid pins the ends swapped
])
def test_other_squashing_functions_report_their_own_range(squash, bounds) -> None:  # noqa: ANN001
    x, y = _data("N(50, 10)")
    assert _codes(Regressor(squash), x, y)["output_bounded"].evidence["output_range"] == bounds


@pytest.mark.parametrize("head", ["default init", "zero init", "behind a LayerNorm", "relu"])
def test_a_raw_head_with_small_outputs_is_not_taken_for_a_bounded_one(head: str) -> None:
    """All four give outputs near 0 at init, inside [0, 1] or [-1, 1]; none is bounded there.
    The LayerNorm undoes an input scaling, so only pushing the pre-activation tells them apart;
    a ReLU bounds one side only."""
    x, y = _data("N(50, 10)")
    model = Regressor(torch.relu if head == "relu" else None,
                      norm_first=head == "behind a LayerNorm")
    with torch.no_grad():
        model.net[-1].weight.mul_(0.0 if head == "zero init" else 0.01)
        model.net[-1].bias.fill_(0.0 if head == "zero init" else 0.5)
        out = model(x)
    if head != "relu":
        assert bool(((out >= 0) & (out <= 1)).all())  # the trap: values alone look bounded
    assert "output_bounded" not in _codes(model, x, y)


def test_tanh_on_targets_inside_its_range_is_fine() -> None:
    x, y = _data("[-1, 1]")
    assert _codes(Regressor(torch.tanh), x, y) == {}


def test_classification_outputs_are_left_to_the_classification_checks() -> None:
    x, _ = _data("N(50, 10)")
    labels = torch.arange(64) % 2

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.head(x))

    codes = _codes(Classifier(), x, labels, "classification", nn.CrossEntropyLoss())
    assert "output_bounded" not in codes


def test_preflight_stops_at_the_structure_check_for_a_functional_sigmoid() -> None:
    """The audit's case, standardised targets: before, only a vague overfit_batch_failed
    after 300 steps, its fix a list of five guesses."""
    x, y = _data("N(50, 10)")
    y = (y - y.mean()) / y.std()
    findings = preflight(Regressor(torch.sigmoid), nn.MSELoss(), x, y, task="regression",
                         num_classes=0)
    errors = [f.code for f in findings if f.severity.value == "error"]
    assert errors == ["output_bounded"]
    # stopped by the structure check, before any training check could run
    assert not {"loss_at_init_ok", "overfit_batch_failed"} & {f.code for f in findings}


def test_the_last_leaf_and_the_last_weighted_layer_come_from_one_forward_pass() -> None:
    # structure's final-module check and the squashing probe share one hooked forward: the
    # probe adds only its four pushed passes (two shifts, both signs)
    calls = []
    model = Regressor(torch.sigmoid)
    model.register_forward_hook(lambda *_: calls.append(1))
    x, y = _data("N(50, 10)")
    assert "output_bounded" in _codes(model, x, y)
    assert len(calls) == 1 + 4
