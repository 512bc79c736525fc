"""A short run's length is capped in steps (MAX_SHORT_RUN_STEPS) when the lr anneals: on large
data the short runs ended up costing more than training (audit s10, S1). At a constant lr it is
not (review s10 RT7)."""

from __future__ import annotations

import json

import pytest
from torch import nn

from trainwise.config import TuneConfig
from trainwise.tune import search
from trainwise.tune.search import MAX_SHORT_RUN_STEPS, short_run_epochs, short_run_steps, tune_lr
from trainwise.tune.short_runs import onecycle


def test_the_audits_table_is_capped_and_small_data_is_not():
    auto = TuneConfig()
    # 144k rows at batch 128: 1125 steps an epoch, 40 epochs -> 6 epochs = 6750 uncapped
    assert short_run_epochs(auto, 40, 1125) == 6
    assert short_run_steps(auto, 6, 1125) == MAX_SHORT_RUN_STEPS == 2000
    assert 6 * short_run_steps(auto, 6, 1125) < 0.3 * 40 * 1125  # 6 runs: < 30% of training
    # the anchor tasks (22 and 36 steps an epoch, 3 epochs) and the recipe's MNIST-1D: whole
    for epochs, per_epoch in ((3, 22), (3, 36), (6, 29), (12, 36)):
        assert short_run_steps(auto, epochs, per_epoch) == epochs * per_epoch
    assert short_run_steps(TuneConfig(short_run_epochs=6), 6, 1125) == 6750  # as configured
    # at a constant lr the pick is scaled by sqrt(short / full epochs), measured at ratios of
    # ~0.3 only: 12 of 40 epochs stay 12 (13,500 steps), not 2000 steps = 1.8 epochs (RT7)
    assert short_run_epochs(auto, 40, 1125, constant_lr=True) == 12
    assert short_run_steps(auto, 12, 1125, constant_lr=True) == 13_500


class _Counting:
    """The recipe's one-cycle, counting the steps it is given (OneCycleLR raises past
    total_steps, so a run longer than its schedule fails)."""

    def __init__(self) -> None:
        self.totals: list[int] = []
        self.schedulers: list = []

    def __call__(self, optimizer, total_steps):
        self.totals.append(total_steps)
        self.schedulers.append(onecycle(optimizer, total_steps))
        return self.schedulers[-1]


def test_a_capped_short_run_ends_mid_epoch_with_the_schedule_compressed_into_it(
        monkeypatch, tiny_tune):
    """40 epochs of 8 steps: 6 epochs (48 steps), raised to 7 (56) for the 50-step floor;
    capped at 20 here, so each run is 2.5 epochs: the schedule spans 20 steps and is stepped
    20 times, the third epoch is evaluated after its 4th step."""
    monkeypatch.setattr(search, "MAX_SHORT_RUN_STEPS", 20)
    train, val, model, adamw = tiny_tune
    schedule = _Counting()
    result = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=40,
                     config=TuneConfig(num_steps=30, num_seeds=1), make_scheduler=schedule)
    short = result.short
    assert short is not None and short.capped and short.num_steps == 20
    assert short.num_epochs == 7  # the length it stands for
    runs = schedule.schedulers[-len(short.candidates):]  # before them: tune_lr's input check
    assert schedule.totals[-len(runs):] == [20] * len(runs)
    assert all(s.last_epoch == 20 for s in runs)  # stepped 20 times, no more
    assert all(len(c.curve) == 3 for c in short.candidates)  # 8 + 8 + 4 steps
    assert short.horizon_epochs == 2.5
    (capped,) = [f for f in result.findings if f.code == "short_runs_capped"]
    assert capped.evidence["steps"] == 20 and capped.evidence["uncapped_epochs"] == 7
    assert "capped at 20 steps (2.5 epochs of 8 steps) on this data" in capped.message
    said = next(f.message for f in result.findings if f.code == "short_runs")
    assert "20 steps (2.5 epochs, capped) each" in said
    record = json.loads(json.dumps(result.to_dict()))
    assert record["num_steps"] == 20 and record["capped"] is True
    assert "short_runs_few_steps" in [f.code for f in result.findings]  # 20 < 50: still said


def test_a_cap_under_one_epoch_is_named_as_a_share_of_it(monkeypatch, tiny_tune):
    monkeypatch.setattr(search, "MAX_SHORT_RUN_STEPS", 6)
    train, val, model, adamw = tiny_tune
    result = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=40,
                     config=TuneConfig(num_steps=30, num_seeds=1))
    (capped,) = [f for f in result.findings if f.code == "short_runs_capped"]
    assert "capped at 6 steps (75% of an epoch of 8 steps)" in capped.message
    assert all(len(c.curve) == 1 and c.val_loss < float("inf") for c in result.short.candidates)


def test_a_constant_lr_run_is_not_capped(monkeypatch, tiny_tune):
    """Constant lr, 40 epochs: 12 epochs (96 steps) a run, kept whole under a cap of 20, so
    the candidates start at lr_low x sqrt(12/40) and the pick is scaled from the short runs'
    whole length: the sqrt horizon law was measured at short/long ratios of ~0.3, and the cap
    would have taken it to 2.5/40 (review s10 RT7). One-cycle runs are still capped (above)."""
    monkeypatch.setattr(search, "MAX_SHORT_RUN_STEPS", 20)
    train, val, model, adamw = tiny_tune
    result = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=40,
                     config=TuneConfig(num_steps=30, num_seeds=1, num_candidates=3,
                                       max_widenings=0), make_scheduler=None)
    short = result.short
    assert short.constant_lr and short.num_epochs == 12 and short.num_steps == 96
    assert not short.capped
    assert "short_runs_capped" not in [f.code for f in result.findings]
    first = [c.lr for c in short.candidates if c.round == 0]
    assert min(first) == pytest.approx(result.range_test.lr_low * (12 / 40) ** 0.5)
    assert all(len(c.curve) == 12 for c in short.candidates)
    assert result.horizon_factor == pytest.approx((short.horizon_epochs / 40) ** 0.5)
    assert 11 < short.horizon_epochs < 12  # scored over the last of its 12 epochs


def test_the_report_says_a_capped_run_in_steps(tmp_path):
    from trainwise.reporting import build_report

    candidates = [{"lr": lr, "val_loss": loss, "curve": [1.0, loss], "seconds": 1.0, "round": 0}
                  for lr, loss in ((0.001, 0.6), (0.01, 0.3), (0.1, 0.45))]
    tune = {"candidates": candidates, "chosen_lr": 0.012, "best_lr": 0.01, "widened": False,
            "spacing": "log", "num_epochs": 6, "num_steps": 2000, "capped": True}
    (tmp_path / "meta.json").write_text(json.dumps(
        {"name": "t", "verdict": "ok", "data": {"task": "classification"}}))
    (tmp_path / "tune.json").write_text(json.dumps(tune))
    html = build_report(tmp_path).read_text()
    assert "real schedule over 2000 steps (capped: 6 epoch(s) would" in html
    assert "over 6 epoch(s)." not in html
