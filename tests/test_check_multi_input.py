"""check on a model with several inputs, the ((x1, x2), y) form the README documents
(audit s14 G3): the same verdicts as on the equivalent one-input model."""

from __future__ import annotations

import torch
from torch import nn

from trainwise.checks import preflight

CE = nn.CrossEntropyLoss()


class OneInput(nn.Module):
    def __init__(self, mixes: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
        self.mixes = mixes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mixes:  # a batch-mixing bug: every sample sees the batch mean
            x = x + x.mean(0, keepdim=True)
        return self.body(x)


class TwoInputs(OneInput):
    """The same network reading its 8 features as (x[:, :5], x[:, 5:])."""

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        first, second = inputs
        return super().forward(torch.cat([first, second], 1))


def _verdicts(findings) -> list[tuple[str, str]]:
    return [(f.severity.value, f.code) for f in findings]


def test_two_inputs_give_the_one_input_verdicts(blobs) -> None:
    x, y = blobs
    one = preflight(OneInput(), CE, x, y, task="classification", num_classes=3)
    two = preflight(TwoInputs(), CE, (x[:, :5], x[:, 5:]), y, task="classification",
                    num_classes=3)
    assert _verdicts(two) == _verdicts(one)
    assert "overfit_batch_ok" in {f.code for f in two}
    # same weights, same rows, same draws: the training checks measure the same losses
    for a, b in zip(one, two, strict=True):
        if a.code in ("overfit_batch_ok", "inputs_used", "smoke_cycle_ok", "loss_at_init_ok"):
            assert a.message == b.message


def test_two_inputs_batch_mixing_is_caught(blobs) -> None:
    x, y = blobs
    one = preflight(OneInput(mixes=True), CE, x, y, task="classification", num_classes=3)
    two = preflight(TwoInputs(mixes=True), CE, [x[:, :5], x[:, 5:]], y,
                    task="classification", num_classes=3)
    assert _verdicts(one) == _verdicts(two) == [("error", "batch_mixing")]


def test_two_inputs_forward_failure_names_both_shapes(blobs) -> None:
    x, y = blobs
    findings = preflight(TwoInputs(), CE, (x[:, :5], x[:, :5]), y, task="classification",
                         num_classes=3)
    assert _verdicts(findings) == [("error", "forward_failed")]
    assert "(8, 5) (torch.float32), (8, 5) (torch.float32)" in findings[0].message
    assert findings[0].evidence["input_shape"] == [[8, 5], [8, 5]]


def test_rows_of_inputs_and_targets_must_agree(blobs) -> None:
    x, y = blobs
    findings = preflight(TwoInputs(), CE, (x[:100, :5], x[:100, 5:]), y[:90],
                         task="classification", num_classes=3)
    assert _verdicts(findings) == [("error", "inputs_targets_mismatch")]
    assert findings[0].message.startswith("100/100 input samples but 90 targets")
