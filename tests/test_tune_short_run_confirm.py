"""A best short run at the top of the range is confirmed on a second data order
(short_run_confirm): when, the paired average by hand, and the second order's runs checked
against plain short runs at seed + 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from trainwise.data.tensors import to_loader
from trainwise.tune.short_run_confirm import confirm_top, top_needs_confirming
from trainwise.tune.short_run_result import Candidate
from trainwise.tune.short_runs import short_runs


def candidate(lr: float, loss: float, rows: list[float] | None = None) -> Candidate:
    return Candidate(lr, loss, [loss], [loss], 0.0, row_losses=rows or [])


def grid(*losses: float) -> list[Candidate]:
    return [candidate(lr, loss) for lr, loss in zip((0.01, 0.03, 0.1), losses, strict=True)]


def test_only_a_best_at_the_top_that_cannot_widen_is_confirmed():
    start = 1.0  # the untrained model's loss: every candidate below it learned
    assert top_needs_confirming(grid(0.5, 0.3, 0.2), max_lr=0.2, start=start)
    assert not top_needs_confirming(grid(0.5, 0.3, 0.2), max_lr=1.0, start=start)  # widens
    assert not top_needs_confirming(grid(0.5, 0.2, 0.3), max_lr=0.1, start=start)  # inside
    assert not top_needs_confirming(grid(0.2, 0.3, 0.5), max_lr=0.1, start=start)  # bottom
    assert not top_needs_confirming(grid(0.2, 0.2, 0.2), max_lr=0.1, start=start)  # flat
    assert not top_needs_confirming(grid(3.0, 2.5, 2.0), max_lr=0.1, start=start)  # no learning
    diverged_top = [*grid(0.5, 0.3, 0.2)[:2], candidate(0.1, math.inf)]
    assert not top_needs_confirming(diverged_top, max_lr=0.05, start=start)  # best: 0.03,
    # the highest finite lr, but 0.1 above it was tried


def test_the_tops_score_is_the_neighbours_plus_the_paired_difference_of_both_orders():
    cands = [candidate(0.01, 0.30, [0.3, 0.3]), candidate(0.03, 0.10, [0.08, 0.12]),
             candidate(0.1, 0.08, [0.04, 0.12])]
    again = {0.03: candidate(0.03, 0.11, [0.10, 0.12]), 0.1: candidate(0.1, 0.14, [0.2, 0.08])}
    asked = []

    def retrain(lr: float) -> Candidate:
        asked.append(lr)
        return again[lr]

    finding = confirm_top(cands, retrain, seed=8)
    assert sorted(asked) == [0.03, 0.1]
    top = cands[2]
    # 0.10 + ((0.08 - 0.10) + (0.14 - 0.11)) / 2 = 0.105, now above the neighbour's 0.10
    assert top.val_loss == pytest.approx(0.105)
    # row by row: 0.08 + ((0.04 - 0.08) + (0.2 - 0.10)) / 2, 0.12 + ((0.12 - 0.12) + (0.08 -
    # 0.12)) / 2
    np.testing.assert_allclose(top.row_losses, [0.11, 0.10])
    assert np.mean(top.row_losses) == pytest.approx(top.val_loss)  # the score is their mean
    assert top.repeat == {"seed": 8, "first_val_loss": 0.08, "val_loss": 0.14,
                          "neighbour_lr": 0.03, "neighbour_val_loss": 0.11}
    assert top.to_dict()["repeat"] == top.repeat
    assert finding.code == "short_runs_top_confirmed" and finding.evidence["held"] is False
    assert "no longer the best" in finding.message and "0.14 against 0.11" in finding.message


def test_a_top_that_diverges_on_the_second_order_is_not_trusted():
    cands = grid(0.5, 0.3, 0.2)
    finding = confirm_top(cands, lambda lr: candidate(lr, math.inf if lr == 0.1 else 0.3), 1)
    assert cands[2].val_loss == math.inf and cands[2].row_losses == []
    assert "diverged on the second order" in finding.message
    assert finding.evidence["held"] is False and finding.evidence["val_loss"] is None


def regression_loaders():
    """y = w.x + noise, 192 training rows in batches of 32 (6 steps an epoch), 64 validation;
    torch seeded for the model built next."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=256)).astype(np.float32)
    torch.manual_seed(0)
    return (to_loader(x[:192], y[:192], 32, shuffle=True, seed=0),
            to_loader(x[192:], y[192:], 64, shuffle=False, seed=0))


def sgd(m: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(m.parameters(), lr=lr or 1e-3)


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x).squeeze(1)


def test_short_runs_retrain_the_top_and_its_neighbour_on_the_next_seeds_data_order():
    train, val = regression_loaders()
    model = Linear()

    def runs(**kw):
        return short_runs(model, nn.MSELoss(), train, val, sgd, task="regression",
                          num_epochs=1, num_candidates=3, **kw)

    first = runs(lr_low=1e-3, lr_high=1e-2, max_widenings=0, seed=5)
    confirmed = runs(lr_low=1e-3, lr_high=1e-2, max_widenings=0, seed=5, max_lr=1e-2)
    top = max(confirmed.candidates, key=lambda c: c.lr)
    assert min(first.candidates, key=lambda c: c.val_loss).lr == top.lr == pytest.approx(1e-2)
    assert top.repeat is not None and top.repeat["seed"] == 6
    # the second order is a plain short run at seed 6: the same two lrs, the same losses
    plain = runs(lr_low=10 ** -2.5, lr_high=1e-2, max_widenings=0, seed=6)
    by_lr = {round(math.log10(c.lr), 6): c.val_loss for c in plain.candidates}
    assert top.repeat["val_loss"] == by_lr[-2.0]
    assert top.repeat["neighbour_val_loss"] == by_lr[-2.5]
    neighbour = sorted(confirmed.candidates, key=lambda c: c.lr)[-2]
    assert top.val_loss == pytest.approx(neighbour.val_loss + (
        (top.repeat["first_val_loss"] - neighbour.val_loss)
        + (by_lr[-2.0] - by_lr[-2.5])) / 2)
    assert top.repeat["first_val_loss"] == max(first.candidates, key=lambda c: c.lr).val_loss
    assert "short_runs_top_confirmed" in [f.code for f in confirmed.findings]
    assert "short_runs_top_confirmed" not in [f.code for f in first.findings]  # could widen


def test_a_neighbour_that_diverges_on_the_second_order_leaves_the_top_standing():
    # review s16 VN3: the pick fell to the neighbour, the run that diverged
    cands = grid(0.5, 0.3, 0.2)
    finding = confirm_top(cands, lambda lr: candidate(lr, math.inf if lr == 0.03 else 0.25), 2)
    assert cands[2].val_loss == 0.2 and cands[2].repeat["neighbour_val_loss"] is None
    assert "the neighbour diverged on the second order, so the top stands" in finding.message
    assert finding.evidence["held"] is True


def test_the_confirmed_tops_first_order_tail_is_not_shown_as_its_spread():
    from trainwise.reporting.tuning import candidate_rows

    # review s16 VN4: a score of 0.39 was shown beside its first order's spread 0.19-0.21
    cands = [candidate(0.01, 0.5), candidate(0.03, 0.3), candidate(0.1, 0.2)]
    for c in cands:
        c.tail = [c.val_loss - 0.01, c.val_loss, c.val_loss + 0.01]
    confirm_top(cands, lambda lr: candidate(lr, 0.6 if lr == 0.1 else 0.32), 1)
    assert cands[2].val_loss == pytest.approx(0.3 + ((0.2 - 0.3) + (0.6 - 0.32)) / 2)
    rows = {r["lr"]: r for r in candidate_rows(
        {"best_lr": 0.03, "candidates": [c.to_dict() for c in cands]})}
    assert rows[0.1]["spread"] is None and rows[0.1]["repeat"]["first_val_loss"] == 0.2
    assert rows[0.03]["spread"] == pytest.approx((0.29, 0.31))


def test_the_second_order_runs_are_numbered_on_from_the_widenings_and_named():
    import re

    from trainwise.console import TuneProgress, console, progress

    train, val = regression_loaders()

    with console.capture() as captured, progress() as bar:
        result = short_runs(Linear(), nn.MSELoss(), train, val, sgd, task="regression",
                            num_epochs=1, num_candidates=3, lr_low=1e-3, lr_high=1e-2,
                            max_widenings=2, max_lr=0.05, progress=TuneProgress(bar))
    counts = re.findall(r"short run ([^:]+):", captured.get())
    assert [c.round for c in result.candidates] == [0, 0, 0, 1]  # then the confirmation
    assert counts == ["1/3", "2/3", "3/3", "4 (widening 1)", "5/6 (second data order)",
                      "6/6 (second data order)"]  # review s16 VN5: was "5/5", "6/5"
