"""Short real runs: spacing rule, known-best pick, edge widening, no trace, errors; tune_lr."""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainwise.config import TuneConfig
from trainwise.data.tensors import to_loader
from trainwise.findings import Severity, TrainwiseError
from trainwise.tune.candidates import beyond_edge, candidate_lrs, refine
from trainwise.tune.search import horizon_factor, short_run_epochs, tune_lr
from trainwise.tune.short_runs import short_runs


class Linear(nn.Module):
    """y = w.x + b: for plain SGD the best lr of a fixed short budget sits between one that
    barely moves (1e-3) and one that blows up (>= 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x).squeeze(1)


@pytest.fixture
def regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=256)).astype(np.float32)
    train = to_loader(x[:192], y[:192], 32, shuffle=True, seed=0)  # 6 steps per epoch
    val = to_loader(x[192:], y[192:], 64, shuffle=False, seed=0)
    torch.manual_seed(0)
    return Linear(), train, val


def sgd(model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr or 1e-3)


def run(regression, **kw):
    model, train, val = regression
    kw.setdefault("num_epochs", 1)
    return short_runs(model, nn.MSELoss(), train, val, sgd, task="regression", **kw)


def codes(findings) -> list[str]:
    return [f.code for f in findings]


# ---------------------------------------------------------------- candidates
def test_log_spacing_above_a_factor_of_3_even_spacing_below():
    lrs, spacing = candidate_lrs(1e-3, 1e-2, 3)
    assert spacing == "log"
    np.testing.assert_allclose(lrs, [1e-3, 10 ** -2.5, 1e-2], rtol=1e-12)
    lrs, spacing = candidate_lrs(1e-3, 2.5e-3, 4)
    assert spacing == "even"
    np.testing.assert_allclose(lrs, [1e-3, 1.5e-3, 2e-3, 2.5e-3], rtol=1e-12)
    assert candidate_lrs(1.0, 3.0, 3)[1] == "even"  # exactly 3x is not "more than 3x"


def test_auto_count_keeps_neighbours_within_2_5x_and_3_to_5_points():
    assert len(candidate_lrs(1.0, 2.5)[0]) == 3  # never fewer than 3
    assert len(candidate_lrs(1.0, 10.0)[0]) == 4  # 3 points would be 3.16x apart
    assert len(candidate_lrs(1.0, 1e3)[0]) == 5  # capped at 5 (5.6x apart)
    lrs, _ = candidate_lrs(1.0, 10.0)
    assert max(b / a for a, b in zip(lrs, lrs[1:], strict=False)) <= 2.5


def test_a_point_range_is_stretched_to_a_factor_of_2():
    lrs, spacing = candidate_lrs(0.01, 0.01, 3)
    assert spacing == "even" and lrs[-1] / lrs[0] == pytest.approx(2.0)
    assert math.sqrt(lrs[0] * lrs[-1]) == pytest.approx(0.01)


def test_a_narrow_range_is_widened_only_inside_what_the_range_test_tried():
    """Audit s15 K1: range 0.28 to 0.5 from a test ending at end_lr 0.5 gave 0.266, 0.399 and
    0.532 (stretched around the middle); 0.532, never tried, won and training exploded."""
    lrs, spacing = candidate_lrs(0.28, 0.5, 3, min_lr=1e-5, max_lr=0.5)
    np.testing.assert_allclose(lrs, [0.25, 0.375, 0.5], rtol=1e-12)  # moved down to 2x
    lrs, _ = candidate_lrs(1.1e-5, 1.5e-5, 3, min_lr=1e-5, max_lr=0.5)
    np.testing.assert_allclose(lrs, [1e-5, 1.5e-5, 2e-5], rtol=1e-12)  # moved up to 2x
    lrs, _ = candidate_lrs(1.0, 1.2, 3, min_lr=1.0, max_lr=1.5)
    np.testing.assert_allclose(lrs, [1.0, 1.25, 1.5], rtol=1e-12)  # the test spans 1.5x only
    assert candidate_lrs(0.28, 0.5, 3, max_lr=0.6)[0] == candidate_lrs(0.28, 0.5, 3)[0]


def test_short_runs_train_no_candidate_above_max_lr(regression):
    model, train, val = regression
    built = []

    def fixed(m, lr=None):  # the lr ignored: short_runs stops after its first grid
        built.append(lr)
        return torch.optim.SGD(m.parameters(), lr=0.01)

    with pytest.raises(TrainwiseError, match="same losses"):
        short_runs(model, nn.MSELoss(), train, val, fixed, lr_low=0.28, lr_high=0.5,
                   num_epochs=1, task="regression", max_lr=0.5, min_lr=1e-5)
    assert max(built) == pytest.approx(0.5) and min(built) == pytest.approx(0.25)


def test_a_narrow_range_s_stretch_is_recorded_apart_from_widening(regression):
    """Review s15 VE9: a 1.2x range stretched to 2x around its middle sqrt(0.01 * 0.012)
    moved the candidates to 0.00775 - 0.0155, and tune.json said only widened: false."""
    result = run(regression, lr_low=0.01, lr_high=0.012, num_candidates=3, max_widenings=0)
    middle = math.sqrt(0.01 * 0.012)
    assert result.to_dict()["stretched"] == pytest.approx([middle / math.sqrt(2),
                                                           middle * math.sqrt(2)])
    assert result.to_dict()["widened"] is False
    wide = run(regression, lr_low=1e-3, lr_high=1e-2, num_candidates=3, max_widenings=0)
    assert wide.to_dict()["stretched"] is None


@pytest.mark.parametrize("low, high, num", [(0, 1, 3), (1e-2, 1e-3, 3), (1e-3, 1e-2, 2),
                                            (1e-3, 1e-2, 6), (1e-3, math.nan, 3)])
def test_bad_ranges_and_counts_raise(low, high, num):
    with pytest.raises(TrainwiseError):
        candidate_lrs(low, high, num)


def test_beyond_edge_steps_one_grid_step_past_the_best_edge():
    assert beyond_edge([(1.0, 3.0), (2.0, 2.0), (4.0, 1.0)]) == 8.0  # best at the top
    assert beyond_edge([(1.0, 1.0), (2.0, 2.0), (4.0, 3.0)]) == 0.5  # best at the bottom
    assert beyond_edge([(1.0, 2.0), (2.0, 1.0), (4.0, 3.0)]) is None  # inside
    assert beyond_edge([(1.0, math.inf), (3.0, math.inf)]) == pytest.approx(1 / 3)  # all dead


def test_refine_finds_the_vertex_clips_it_and_keeps_an_edge():
    def curve(centre: float) -> list[tuple[float, float]]:
        return [(10.0 ** k, math.exp((k - centre) ** 2)) for k in (-4, -3, -2, -1, 0)]

    assert refine(curve(-2.3)) == pytest.approx(10 ** -2.3)  # exact on a true parabola
    assert refine(curve(-2.7)) == pytest.approx(10 ** -2.7)
    lopsided = [(1e-4, 5.0), (1e-3, 1.0), (1e-2, 1.0001), (1e-1, 9.0), (1.0, math.inf)]
    assert 1e-4 <= refine(lopsided) <= 1e-2  # never beyond the best's neighbours
    assert refine([(1e-3, 1.0), (1e-2, 2.0), (1e-1, 3.0)]) == 1e-3  # best at the edge


def test_refine_is_steadier_than_the_argmin_on_a_noisy_flat_bottom():
    rng = np.random.default_rng(0)
    ks = np.arange(-4.0, 0.5, 0.5)  # 9 points, true minimum at 10^-2
    argmins, refined = [], []
    for _ in range(200):
        pairs = [(10 ** k, (k + 2) ** 2 / 4 + 1 + rng.normal(0, 0.05)) for k in ks]
        argmins.append(math.log10(min(pairs, key=lambda p: p[1])[0]))
        refined.append(math.log10(refine(pairs)))
    assert np.std(refined) < 0.7 * np.std(argmins)
    assert abs(np.mean(refined) + 2) < 0.05


# ---------------------------------------------------------------- picking and widening
def test_picks_the_known_best_between_a_too_small_and_a_too_large_lr(regression):
    result = run(regression, lr_low=1e-3, lr_high=10.0, num_candidates=5)
    losses = {round(c.lr, 6): c.val_loss for c in result.candidates}
    assert result.best_lr == pytest.approx(0.1) and not result.widened
    assert 0.01 < result.chosen_lr < 1.0  # refined between the best's neighbours
    assert losses[0.001] > 10 * losses[0.1] and losses[1.0] > 10 * losses[0.1]
    assert codes(result.findings) == ["short_runs"]


def test_best_at_the_edge_widens_until_it_is_inside(regression):
    result = run(regression, lr_low=0.01, lr_high=0.0464, num_candidates=3)
    lrs = [c.lr for c in result.candidates]
    assert result.widened and [c.round for c in result.candidates] == [0, 0, 0, 1, 2]
    np.testing.assert_allclose(lrs[3:], [0.1, 0.215], rtol=0.01)  # one log step each
    assert result.best_lr == pytest.approx(lrs[3])  # 0.1, now with a worse lr above it
    assert "short_runs_edge" not in codes(result.findings)


def test_widening_is_bounded_and_says_so(regression):
    result = run(regression, lr_low=1e-3, lr_high=1e-2, num_candidates=3, max_widenings=2)
    assert len(result.candidates) == 5 and result.widened
    assert result.chosen_lr == result.best_lr == max(c.lr for c in result.candidates)
    assert "short_runs_edge" in codes(result.findings)
    assert run(regression, lr_low=1e-3, lr_high=1e-2, num_candidates=3,
               max_widenings=0).widened is False


def test_every_candidate_diverging_widens_downwards_then_errors(regression):
    result = run(regression, lr_low=1e20, lr_high=1e21, num_candidates=3, max_widenings=1)
    assert all(not math.isfinite(c.val_loss) for c in result.candidates)
    assert len(result.candidates) == 4 and result.candidates[-1].lr < 1e20  # stepped down
    assert math.isnan(result.chosen_lr) and codes(result.findings) == ["short_runs_all_diverged"]


# ---------------------------------------------------------------- no trace, determinism
def test_leaves_the_model_and_the_random_state_as_found(regression):
    model, train, _ = regression
    before = [t.clone() for t in model.state_dict().values()]
    generator = train.sampler.generator.get_state()
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    run(regression, lr_low=1e-3, lr_high=1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.state_dict().values(), strict=True))
    assert torch.equal(train.sampler.generator.get_state(), generator)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])


def test_same_seed_same_result_and_every_candidate_starts_alike(regression, monkeypatch):
    first = run(regression, lr_low=1e-3, lr_high=1.0, num_candidates=3)
    second = run(regression, lr_low=1e-3, lr_high=1.0, num_candidates=3)
    assert [c.val_loss for c in first.candidates] == [c.val_loss for c in second.candidates]
    model, train, val = regression
    dropout = nn.Sequential(Linear(), nn.Dropout(0.5))  # draws from the global RNG
    # the lr is ignored: all alike, which short_runs refuses; with no tolerance, only when
    # every candidate's loss is bit-identical
    monkeypatch.setattr(importlib.import_module("trainwise.tune.short_runs"), "LR_NO_EFFECT",
                        0.0)
    with pytest.raises(TrainwiseError, match="same losses"):
        short_runs(dropout, nn.MSELoss(), train, val, lambda m, lr: sgd(m, 0.05),
                   lr_low=1e-3, lr_high=1.0, num_epochs=2, make_scheduler=None,
                   task="regression", max_widenings=0)


# ---------------------------------------------------------------- bad input
def test_nan_from_the_first_step_is_an_error_that_points_back(regression):
    _, train, val = regression

    class Broken(Linear):
        def forward(self, x):
            return super().forward(x) * float("nan")

    result = short_runs(Broken(), nn.MSELoss(), train, val, sgd, lr_low=1e-3, lr_high=1e-2,
                        num_epochs=1, task="regression")
    assert codes(result.findings) == ["short_runs_nan_at_start"]
    assert result.findings[0].severity is Severity.ERROR and "'data'" in result.findings[0].fix


def test_a_frozen_model_is_an_error(regression):
    model, train, val = regression
    model.requires_grad_(False)
    result = short_runs(model, nn.MSELoss(), train, val, sgd, lr_low=1e-3, lr_high=1e-2,
                        num_epochs=1, task="regression")
    assert codes(result.findings) == ["short_runs_nothing_to_train"]
    assert "requires_grad" in result.findings[0].fix


def test_a_dataset_smaller_than_one_batch_is_an_error(regression):
    model, _, val = regression
    tiny = DataLoader(TensorDataset(torch.zeros(5, 4), torch.zeros(5)), batch_size=8,
                      drop_last=True)
    result = short_runs(model, nn.MSELoss(), tiny, val, sgd, lr_low=1e-3, lr_high=1e-2,
                        num_epochs=1, task="regression")
    assert codes(result.findings) == ["short_runs_no_batch"]
    assert "batch_size" in result.findings[0].fix


def test_candidates_that_all_train_alike_are_an_error_before_any_widening(regression):
    """A make_optimizer that ignores its lr (short_runs is public: no tune_lr check before
    it) trained every candidate alike; the search widened and picked an edge."""
    model, train, val = regression
    built = []

    def fixed(m, lr=None):
        built.append(lr)
        return torch.optim.SGD(m.parameters(), lr=0.01)

    with pytest.raises(TrainwiseError, match="same losses.*make_optimizer"):
        short_runs(model, nn.MSELoss(), train, val, fixed, lr_low=1e-3, lr_high=1e-1,
                   num_epochs=1, task="regression")
    assert built == candidate_lrs(1e-3, 1e-1)[0]  # the first grid only: no widening
    result = run(regression, lr_low=1e-3, lr_high=1e-1)  # the same grid, lr used: no error
    assert len({c.val_loss for c in result.candidates}) == len(result.candidates)


def test_short_runs_called_alone_check_the_validation_loader_too(regression):
    """tune_lr checks it before its range test; short_runs itself is public, and an empty
    validation loader met torch.cat() of no batch after the first candidate's training."""
    model, train, _ = regression
    empty = DataLoader(TensorDataset(torch.zeros(0, 4), torch.zeros(0)), batch_size=8)
    result = short_runs(model, nn.MSELoss(), train, empty, sgd, lr_low=1e-3, lr_high=1e-2,
                        num_epochs=1, task="regression")
    assert codes(result.findings) == ["short_runs_no_val_batch"]


# ---------------------------------------------------------------- tune_lr: both steps
def test_tune_lr_runs_the_range_test_then_short_runs_and_writes_tune_json(tiny_tune):
    train, val, model, adamw = tiny_tune
    result = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=10,
                     config=TuneConfig(num_steps=30, num_seeds=2))
    assert result.short is not None and result.lr == result.short.chosen_lr
    assert result.lr in [c.lr for c in result.short.candidates]
    record = json.loads(json.dumps(result.to_dict()))  # JSON-clean
    assert record["source"] == "short_runs" and record["chosen_lr"] == result.lr
    assert {"lr", "val_loss", "curve", "train_curve", "round"} <= set(record["candidates"][0])
    assert len(record["candidates"][0]["curve"]) == short_run_epochs(TuneConfig(), 10, 8) == 5
    assert short_run_epochs(TuneConfig(), 40, 29) == 6  # 15% of 40 epochs: 174 steps
    assert short_run_epochs(TuneConfig(), 40, 2) == 20  # 25 for 50 steps, capped at half
    assert short_run_epochs(TuneConfig(short_run_epochs=3), 40, 2) == 3  # as configured
    assert short_run_epochs(TuneConfig(), 10, 36, constant_lr=True) == 3  # 30% at constant lr
    (few,) = [f for f in result.findings if f.code == "short_runs_few_steps"]  # 5 x 8 < 50
    assert few.severity is Severity.WARNING and few.evidence["steps"] == 40
    roomy = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=20,
                    config=TuneConfig(num_steps=30, num_seeds=1))  # 7 epochs x 8 = 56 steps
    assert "short_runs_few_steps" not in [f.code for f in roomy.findings]
    assert record["range"]["lr_low"] <= record["range"]["lr_high"]
    off = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw,
                  config=TuneConfig(num_steps=30, num_seeds=1, short_runs=False))
    assert off.short is None and off.lr == off.range_test.lr


def test_a_tune_result_prints_as_one_line_of_its_choice_and_evidence():
    """The generated repr printed every lr and loss of every curve (18.5k characters)."""
    from trainwise.findings import info
    from trainwise.tune.lr_range import LrCurve, LrRangeResult
    from trainwise.tune.search import TuneResult
    from trainwise.tune.short_run_result import Candidate, ShortRunResult

    ramp = list(np.geomspace(1e-6, 1.0, 100))
    curves = [LrCurve(seed, ramp, [2.0] * 100, [2.0] * 100) for seed in range(3)]
    range_test = LrRangeResult(0.03, 0.01, 0.1, 0.2, "trainwise", curves)
    candidates = [Candidate(lr, loss, [loss] * 6, [loss] * 6, 1.0)
                  for lr, loss in ((0.1, 0.31), (0.01, 0.35), (0.0316, 0.3))]
    short = ShortRunResult(0.03, candidates, False, "log", 6)
    result = TuneResult(0.0295, range_test, short, findings=[info("tune", "short_runs", "")])
    assert repr(result) == (
        "TuneResult(lr=0.0295, candidates={0.01: 0.35, 0.0316: 0.3, 0.1: 0.31} (peak lr: "
        "validation loss), range=0.01..0.1 (range test's point 0.03), widened=False, "
        "horizon_factor=1, findings=[info short_runs])")
    assert result.range_test.curves == curves  # the fields keep everything


def test_horizon_factor_is_the_square_root_of_the_epoch_ratio_and_never_raises():
    assert horizon_factor(2, 8) == 0.5
    assert horizon_factor(3, 12) == 0.5
    assert horizon_factor(8, 8) == horizon_factor(10, 8) == 1.0


def test_a_constant_lr_is_scaled_from_the_short_runs_horizon_to_the_full_run(
        monkeypatch, tiny_tune):
    """No scheduler (train.schedule = "constant"): the short runs' pick times
    sqrt(short epochs / max_epochs), said in a finding and in tune.json; with one-cycle the
    short runs end annealed and their pick stands."""
    short_runs_module = importlib.import_module("trainwise.tune.short_runs")  # not the function
    extra_evaluations = []  # the tail's own, beyond fit's evaluation after each epoch
    counted = short_runs_module.loss_across_ranks
    monkeypatch.setattr(short_runs_module, "loss_across_ranks",
                        lambda *a: extra_evaluations.append(1) or counted(*a))
    train, val, model, adamw = tiny_tune
    config = TuneConfig(num_steps=30, num_seeds=1, short_run_epochs=2)
    constant = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=18,
                       config=config, make_scheduler=None)
    assert constant.short is not None and constant.short.constant_lr
    # 8 steps an epoch, scored at 0, 1, 3, 4, 5 and 7 steps before the end: 20/6/8 epochs
    # before it on average
    horizon = 2 - 20 / 6 / 8
    assert constant.short.horizon_epochs == pytest.approx(horizon)
    assert constant.horizon_factor == pytest.approx((horizon / 18) ** 0.5)
    assert constant.lr == pytest.approx(constant.short.chosen_lr * (horizon / 18) ** 0.5)
    for candidate in constant.short.candidates:  # the median of 6, the end's among them
        assert len(candidate.tail) == 6 and candidate.tail[-1] == candidate.curve[-1]  # reused
        assert candidate.val_loss == pytest.approx(float(np.median(candidate.tail)))
    assert len(extra_evaluations) == 5 * len(constant.short.candidates)  # the end: fit's own
    assert "short_runs_horizon" in codes(constant.findings)
    said = next(f.message for f in constant.findings if f.code == "short_runs")
    assert "validation loss (the median of 6 over the last epoch)" in said
    first = [c.lr for c in constant.short.candidates if c.round == 0]  # from lower down:
    assert min(first) == pytest.approx(constant.range_test.lr_low / 3)  # sqrt(2/18)
    rt = constant.range_test  # as many as the range test's own range asks for
    assert len(first) == len(candidate_lrs(rt.lr_low, rt.lr_high, "auto")[0])
    record = json.loads(json.dumps(constant.to_dict()))
    assert record["horizon_factor"] == pytest.approx((horizon / 18) ** 0.5)
    assert record["constant_lr"] and len(record["candidates"][0]["tail"]) == 6
    assert record["tail_evals"] == 6
    assert record["chosen_lr"] == pytest.approx(constant.lr)
    annealed = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=18,
                       config=config)
    assert annealed.short is not None and not annealed.short.constant_lr
    assert annealed.horizon_factor == 1.0 and annealed.lr == annealed.short.chosen_lr
    assert "short_runs_horizon" not in codes(annealed.findings)
    assert all(not c.tail for c in annealed.short.candidates)  # one-cycle: the end alone
    assert annealed.short.horizon_epochs == 2
    off = TuneConfig(num_steps=30, num_seeds=1, short_runs=False)
    range_only = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=18,
                         config=off, make_scheduler=None)
    assert range_only.lr == range_only.range_test.lr  # the one-cycle reading, with a warning
    assert "range_point_at_constant_lr" in codes(range_only.findings)
    assert "range_point_at_constant_lr" not in codes(tune_lr(
        model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=18, config=off).findings)


def test_auto_short_runs_are_longer_when_the_lr_stays_constant(tiny_tune):
    """8 batches per epoch, 40 epochs: one-cycle short runs take 15% (6 epochs, raised to 7
    for 50 steps), constant-lr ones 30% (12), and the constant pick is scaled by
    about sqrt(12/40)."""
    train, val, model, adamw = tiny_tune
    config = TuneConfig(num_steps=30, num_seeds=1)
    constant = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=40,
                       config=config, make_scheduler=None)
    annealed = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=40,
                       config=config)
    assert len(train) == 8
    assert constant.short.num_epochs == 12 and annealed.short.num_epochs == 7
    assert all(len(c.curve) == 12 for c in constant.short.candidates)
    factor = ((12 - 20 / 6 / 8) / 40) ** 0.5  # scored over the last epoch (test above)
    assert constant.horizon_factor == pytest.approx(factor)
    assert constant.lr == pytest.approx(constant.short.chosen_lr * factor)



def test_a_warmed_up_constant_lr_is_still_scaled_and_micro_batches_change_nothing(tiny_tune):
    """stage_tune says constant_lr for train.schedule="constant" even when a large batch adds
    a warmup scheduler; accumulating micro-batches gives the same short runs (no batch norm)."""
    train, val, model, adamw = tiny_tune
    def warmup(optimizer, steps):
        return torch.optim.lr_scheduler.LinearLR(optimizer, 0.5, total_iters=2)

    config = TuneConfig(num_steps=30, num_seeds=1, short_run_epochs=2)
    runs = [tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=18,
                    config=config, make_scheduler=warmup, constant_lr=True,
                    accumulate=(accumulate, accumulate)) for accumulate in (1, 2)]
    factor = ((2 - 20 / 6 / 8) / 18) ** 0.5  # scored over the last epoch (test above)
    assert runs[0].horizon_factor == pytest.approx(factor)
    assert runs[0].lr == pytest.approx(runs[0].short.chosen_lr * factor)
    ours, theirs = ([c.val_loss for c in run.short.candidates] for run in runs)
    np.testing.assert_allclose(theirs, ours, rtol=1e-4)
    inferred = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=18,
                       config=config, make_scheduler=warmup)
    assert inferred.horizon_factor == 1.0  # a scheduler and nothing said: not constant


def test_the_tails_loss_only_evaluation_equals_fits_own(tiny_tune):
    """Why the short runs reuse fit's evaluation at the end as the tail's last: the tail's
    loss-only pass and fit's full evaluation give the same number on the same weights."""
    from lightning_fabric import Fabric

    from trainwise.train.sharding import evaluate_across_ranks, loss_across_ranks

    _, val, model, _ = tiny_tune
    fabric = Fabric(accelerator="cpu", devices=1)
    full = evaluate_across_ranks(fabric, model, val, nn.CrossEntropyLoss(), "classification")
    assert loss_across_ranks(fabric, model, val, nn.CrossEntropyLoss()) == full["val_loss"]


def test_tail_evaluations_spread_over_the_last_epoch():
    from trainwise.tune.short_runs import _tail_offsets

    assert _tail_offsets(36, 6) == [0, 6, 12, 18, 24, 30]
    assert _tail_offsets(8, 6) == [0, 1, 3, 4, 5, 7]
    assert _tail_offsets(3, 6) == [0, 1, 2]  # never more than the epoch's steps
    assert _tail_offsets(10, 1) == [0]  # one: the end alone


def test_a_score_is_the_last_loss_or_the_tails_median_and_inf_if_any_is_not_finite():
    from trainwise.tune.short_runs import _score

    assert _score(0.5, []) == 0.5
    assert _score(0.5, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == 3.5
    assert _score(0.5, [1.0, 2.0, 3.0, 4.0, 5.0, math.inf]) == math.inf  # median would be 3.5
    assert _score(0.5, [1.0, math.nan, 3.0]) == math.inf
    assert _score(math.inf, [1.0] * 6) == math.inf  # diverged: stays diverged


def test_short_runs_as_long_as_the_run_are_not_scaled(tiny_tune):
    train, val, model, adamw = tiny_tune
    whole = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=2,
                    config=TuneConfig(num_steps=30, num_seeds=1, short_run_epochs=2),
                    make_scheduler=None)
    assert whole.short.constant_lr and whole.short.horizon_epochs < 2  # scored over epoch 2
    assert whole.horizon_factor == 1.0 and whole.lr == whole.short.chosen_lr
    assert "short_runs_horizon" not in codes(whole.findings)


def test_an_unstable_range_point_is_only_information_once_short_runs_chose():
    from trainwise.findings import warning
    from trainwise.tune.lr_range import LrRangeResult
    from trainwise.tune.search import _settled
    from trainwise.tune.short_run_result import ShortRunResult

    found = warning("tune", "lr_range_unstable", "The seeds disagree by 0.67 decades.",
                    "Trust the range, not the point: run `trainwise tune`.", spread_decades=0.67)
    rt = LrRangeResult(0.03, 0.02, 0.1, 0.0, "trainwise", [])
    inside = ShortRunResult(0.05, [], False, "log", 1)
    settled = _settled(found, rt, inside)
    assert settled.severity is Severity.INFO and settled.code == found.code
    assert settled.message.endswith("The short runs chose 0.05 instead, inside the range "
                                    "(0.02 to 0.1).")
    assert "tune.num_steps" in settled.fix and settled.evidence == found.evidence


def test_an_unstable_range_stays_a_warning_when_the_short_runs_chose_nothing(
        monkeypatch, tiny_tune):
    import trainwise.tune.search as search
    from trainwise.findings import error, warning
    from trainwise.tune.lr_range import LrRangeResult
    from trainwise.tune.short_run_result import ShortRunResult

    unstable = warning("tune", "lr_range_unstable", "The seeds disagree.", "Run tune.")
    monkeypatch.setattr(search, "lr_range_test", lambda *a, **k: LrRangeResult(
        0.01, 0.001, 0.1, 1.0, "trainwise", [], findings=[unstable]))
    failed = ShortRunResult(math.nan, [], False, "log", 2, [error(
        "tune", "short_runs_all_diverged", "Every short run diverged.", "Lower the lr.")])
    monkeypatch.setattr(search, "short_runs", lambda *a, **k: failed)
    train, val, model, adamw = tiny_tune
    result = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=10)
    (kept,) = [f for f in result.findings if f.code == "lr_range_unstable"]
    assert kept.severity is Severity.WARNING
    assert "with an error" in kept.fix  # not "Run tune.", just run (review s13 VT2)


def test_without_a_fabric_the_short_runs_stay_on_the_models_device(regression, monkeypatch):
    from lightning_fabric import Fabric

    module = importlib.import_module("trainwise.tune.short_runs")
    asked = []
    monkeypatch.setattr(module, "model_device", lambda model: {"accelerator": "cuda",
                                                                "devices": [1]})

    def recording_fabric(**kwargs):  # no GPU here: record what was asked, train on the CPU
        asked.append(kwargs)
        return Fabric(accelerator="cpu", devices=1)

    monkeypatch.setattr(module, "Fabric", recording_fabric)
    run(regression, lr_low=1e-3, lr_high=1e-2, max_widenings=0)
    assert asked == [{"accelerator": "cuda", "devices": [1]}]  # was always the CPU


# ---------------------------------------------------------------- range top, small validation
def test_widening_never_trains_above_max_lr_and_says_why(regression):
    # audit s11 M1: on iris the widening went from the range test's top (0.19, where its loss
    # rose again) to 0.41 and 0.91, and training at 0.91 thrashed
    capped = run(regression, lr_low=1e-3, lr_high=1e-2, num_candidates=3, max_widenings=2,
                 max_lr=0.05)
    lrs = [c.lr for c in capped.candidates]
    np.testing.assert_allclose(lrs, [1e-3, 10 ** -2.5, 1e-2, 10 ** -1.5], rtol=1e-6)
    assert max(lrs) <= 0.05 and capped.chosen_lr == capped.best_lr == max(lrs)
    top = [f for f in capped.findings if f.code == "short_runs_at_range_top"]
    assert top and top[0].severity is Severity.INFO and "max_widenings" not in top[0].fix
    assert "short_runs_edge" not in codes(capped.findings)
    at_top = run(regression, lr_low=1e-3, lr_high=1e-2, num_candidates=3, max_lr=1e-2)
    assert len(at_top.candidates) == 3 and not at_top.widened


def test_paired_gap_matches_scipys_paired_t_statistic():
    from scipy.stats import ttest_rel

    from trainwise.tune.short_run_noise import paired_gap
    rng = np.random.default_rng(3)
    best = rng.exponential(0.1, size=24)
    reference = best + rng.normal(0.01, 0.05, size=24)
    gap, se = paired_gap(list(best), list(reference))
    assert gap == pytest.approx(np.mean(reference - best))
    assert gap / se == pytest.approx(ttest_rel(reference, best).statistic)


def _small_val(regression, rows: int):
    model, train, val = regression
    x, y = val.dataset.x, val.dataset.y
    return model, train, to_loader(x[:rows].numpy(), y[:rows].numpy(), 64, shuffle=False,
                                   seed=0)


@pytest.mark.parametrize("rows", [3, 64])
def test_on_few_validation_rows_the_range_point_is_kept_unless_the_best_beats_its_noise(
        regression, rows):
    from trainwise.tune.short_run_noise import NOISE_Z, TIE_CEILING, paired_gap
    model, train, val = _small_val(regression, rows)
    kw = dict(lr_low=0.03, lr_high=0.3, num_candidates=3, num_epochs=1, max_widenings=0,
              task="regression")
    plain = short_runs(model, nn.MSELoss(), train, val, sgd, **kw)
    result = short_runs(model, nn.MSELoss(), train, val, sgd, range_lr=0.03, **kw)
    first, best = result.candidates[0], min(result.candidates, key=lambda c: c.val_loss)
    for c in result.candidates:  # each row's loss, averaged, is the run's validation loss
        assert len(c.row_losses) == rows and np.mean(c.row_losses) == pytest.approx(c.val_loss)
    assert best is not first  # 0.03 is too low for 6 SGD steps: the range point is not best
    gap, se = paired_gap(best.row_losses, first.row_losses)
    assert (gap > NOISE_Z * se) == (rows == 64)  # 3 rows: t = 1.7 (losses 16 vs 0.54); 64: 5.7
    # but 16 is 30x 0.54: over TIE_CEILING, never a tie (review s13 VT3)
    assert first.val_loss > TIE_CEILING * best.val_loss
    if gap > NOISE_Z * se or first.val_loss > TIE_CEILING * best.val_loss:  # told apart
        assert result.chosen_lr == plain.chosen_lr
        assert "short_runs_indistinguishable" not in codes(result.findings)
    else:  # tied: refine's pick stays strictly inside the tied lrs, else their middle
        tied = result.findings[0].evidence["tied_lrs"]
        inside = tied[0] < plain.chosen_lr < tied[-1]
        assert first.lr in tied and not result.told_apart
        assert result.chosen_lr == pytest.approx(plain.chosen_lr if inside else
                                                 math.sqrt(tied[0] * tied[-1]))
        assert ("short_runs_indistinguishable" in codes(result.findings)) != inside



def test_the_widening_ceiling_is_the_median_lr_where_the_range_tests_diverged():
    from trainwise.tune.lr_range import LrCurve, LrRangeResult
    from trainwise.tune.search import divergence_lr
    lrs = list(np.geomspace(1e-4, 1.0, 20))
    falls = [1.0] * 5 + [0.2] * 9
    rises = LrCurve(0, lrs, falls + [5.0] * 6, [])  # 5-point median above 1.0 from index 14
    never = LrCurve(1, lrs, [1.0] * 5 + [0.2] * 15, [])  # no rise: the test's end
    nan = LrCurve(2, lrs[:11], [1.0] * 5 + [0.2] * 5 + [math.nan], [])  # stopped at index 10
    rt = LrRangeResult(0.01, 0.001, 0.1, 0.0, "trainwise", [rises, never, nan])
    assert divergence_lr(rt) == pytest.approx(lrs[14])  # the middle of lrs[9], lrs[14], 1.0
    rt.curves = [never]
    assert divergence_lr(rt) == pytest.approx(1.0)  # a peak above end_lr was never measured
    rt.curves = [nan]
    assert divergence_lr(rt) == pytest.approx(lrs[9])


def _settled(chosen_lr: float, scores: dict[float, tuple[float, list[float]]],
             range_lr: float = 0.017, few: bool = True):
    """settle_within_noise on hand-made candidates: lr -> (score, each row's loss)."""
    from trainwise.findings import info
    from trainwise.tune.short_run_noise import settle_within_noise
    from trainwise.tune.short_run_result import Candidate, ShortRunResult
    candidates = [Candidate(lr, score, [score], [score], 0.0, row_losses=rows)
                  for lr, (score, rows) in scores.items()]
    result = ShortRunResult(chosen_lr, candidates, False, "log", 1,
                            [info("tune", "short_runs", "Short runs: ...")])
    settle_within_noise(result, range_lr, few)
    return result


# best 0.0078 (rows' mean 0.25) vs the candidate nearest 0.017, 0.0221 (0.275): row
# differences 0.05, 0, 0.05, 0 -> gap 0.025, standard error 0.0289 / 2 = 0.0144, 2 of them
# 0.0289 > 0.025: within noise
WITHIN_NOISE = {0.0078: (0.25, [0.1, 0.2, 0.3, 0.4]), 0.0221: (0.275, [0.15, 0.2, 0.35, 0.4]),
                0.0625: (0.5, [0.5, 0.5, 0.5, 0.5])}


def test_within_noise_refines_pick_stays_when_nearer_the_range_point_than_the_grids():
    # review s11 VT1: on the built-in digits (144 rows) refine's 0.0166, beside the range
    # point 0.017, was replaced by the grid's 0.0221, and test accuracy fell 97.21 -> 95.82%
    kept = _settled(0.0166, WITHIN_NOISE)  # 0.010 decades from 0.017; the grid's 0.114
    assert kept.chosen_lr == 0.0166
    assert "short_runs_indistinguishable" not in codes(kept.findings)
    moved = _settled(0.0078, WITHIN_NOISE)  # the best itself, at the edge of the tie
    assert moved.chosen_lr == pytest.approx(math.sqrt(0.0078 * 0.0221))  # their middle
    assert "short_runs_indistinguishable" in codes(moved.findings)
    said = moved.findings[0].evidence
    assert said["runner_up_gap"] == pytest.approx(0.025) and said["tied_lrs"] == [0.0078, 0.0221]
    assert said["noise_bound"] == pytest.approx(2 * 0.05 / math.sqrt(3) / 2)


def test_the_gap_is_between_the_scores_that_ranked_the_candidates_never_negative():
    # review s11 VT2: with a constant lr the score is the median of the last epoch's losses,
    # which the rows' end losses need not follow: here their mean says 0.0221 is better by
    # 0.09, the scores say 0.0078 by 0.01 (printed "beats by -0.0125" on digits)
    scores = {0.0078: (0.20, [0.3, 0.3, 0.3, 0.3]), 0.0221: (0.21, [0.2, 0.22, 0.2, 0.22])}
    result = _settled(0.0078, scores)  # row differences -0.1, -0.08 twice: se 0.0058
    said = result.findings[0]
    assert said.evidence["runner_up_gap"] == pytest.approx(0.01) and "by 0.01," in said.message
    assert result.chosen_lr == pytest.approx(math.sqrt(0.0078 * 0.0221))  # 0.01 < 0.0115
    apart = {0.0078: (0.20, [0.3, 0.3, 0.3, 0.3]), 0.0221: (0.22, [0.2, 0.22, 0.2, 0.22])}
    assert _settled(0.0078, apart).chosen_lr == 0.0078  # 0.02 > 0.0115: told apart


def test_row_losses_of_a_class_weighted_loss_average_to_its_weighted_mean():
    # review s11 VT2: a one-row batch of a weighted cross-entropy is the unweighted row loss
    from trainwise.tune.short_run_noise import row_losses
    log_probs = torch.log(torch.tensor([[np.exp(-1.0), 1 - np.exp(-1.0)],
                                        [1 - np.exp(-2.0), np.exp(-2.0)],
                                        [0.5, 0.5]], dtype=torch.float32))  # losses 1, 2, -
    targets = torch.tensor([0, 1, -100])
    loss_fn = nn.NLLLoss(weight=torch.tensor([3.0, 1.0]))
    shares = row_losses(loss_fn, log_probs, targets)  # (3 * 1 + 1 * 2) / 4 = 1.25 over 3 rows
    np.testing.assert_allclose(shares, [3 * 1 * 3 / 4, 1 * 2 * 3 / 4, 0.0], rtol=1e-6)
    assert np.mean(shares) == pytest.approx(float(loss_fn(log_probs, targets)))
    plain = row_losses(nn.CrossEntropyLoss(), log_probs[:2], targets[:2])
    assert np.mean(plain) == pytest.approx(float(nn.CrossEntropyLoss()(log_probs[:2],
                                                                         targets[:2])))


def test_row_losses_of_trainwises_own_class_weighted_loss_average_to_it():
    # review s11 final F3: train.class_weights = "balanced" builds ClassWeightedCrossEntropy,
    # whose row losses stayed unweighted (mean 0.894 against the weighted 0.786)
    from trainwise.model.class_weights import ClassWeightedCrossEntropy
    from trainwise.tune.short_run_noise import row_losses
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 2), torch.tensor([0, 0, 0, 0, 1, 1])
    loss_fn = ClassWeightedCrossEntropy(torch.tensor([0.75, 1.5]))
    reference = nn.CrossEntropyLoss(weight=torch.tensor([0.75, 1.5]))(logits, targets)
    assert np.mean(row_losses(loss_fn, logits, targets)) == pytest.approx(float(reference),
                                                                         rel=1e-6)


def test_a_kept_range_point_at_a_constant_lr_is_not_scaled_to_the_horizon(
        monkeypatch, tiny_tune):
    # review s13 VT1: on random labels with train.schedule = constant, lr_chosen said "the
    # range test's point, kept" while the lr was 0.66x it and short_runs_horizon credited the
    # short runs with the range test's point
    import trainwise.tune.search as search
    from trainwise.tune.short_run_learning import check_learning
    from trainwise.tune.short_run_result import Candidate, ShortRunResult

    def at_chance(*args, range_lr, **kwargs):
        candidates = [Candidate(lr, 1.1, [1.1], [1.1], 0.0) for lr in (1e-3, 1e-2, 1e-1)]
        result = ShortRunResult(1e-2, candidates, False, "log", 2, constant_lr=True,
                                horizon_epochs=2.0)
        assert not check_learning(result, math.log(3), range_lr)
        return result

    monkeypatch.setattr(search, "short_runs", at_chance)
    train, val, model, adamw = tiny_tune
    result = tune_lr(model, nn.CrossEntropyLoss(), train, val, adamw, max_epochs=18,
                     config=TuneConfig(num_steps=30, num_seeds=1, short_run_epochs=2),
                     make_scheduler=None)
    assert result.lr == result.range_test.lr and result.horizon_factor == 1.0
    assert "short_runs_horizon" not in codes(result.findings)


@pytest.mark.parametrize("case", ["tie", "no_learning"])
def test_an_unsettled_unstable_range_never_asks_for_the_tune_just_run(case):
    # review s13 VT2: after a tie or no learning the warning's fix said "run `trainwise tune`"
    from trainwise.findings import warning
    from trainwise.tune.search import _unsettled
    from trainwise.tune.short_run_result import ShortRunResult

    found = warning("tune", "lr_range_unstable", "The seeds disagree by 0.67 decades.",
                    "Trust the range, not the point: run `trainwise tune` (tune.short_runs "
                    "= true).", spread_decades=0.67)
    short = ShortRunResult(0.05, [], False, "log", 1, told_apart=False)
    if case == "no_learning":
        short.findings.append(warning("tune", "short_runs_no_learning", "Nothing.", "Data."))
        short.kept_range_point = "no_learning"
    kept = _unsettled(found, short)
    assert kept.severity is Severity.WARNING and kept.message == found.message
    assert "trainwise tune" not in kept.fix
    assert ("short_runs_no_learning" if case == "no_learning" else "split.val_fraction") \
        in kept.fix


def test_a_short_run_capped_below_an_epoch_does_not_warn_of_a_schedule_in_epochs(regression):
    """review s14 VT12: tune's cosine over a run capped at 3 of an epoch's 6 steps is a bare
    CosineAnnealingLR(T_max=3), trainwise's own; the warning is for a user's fit call."""
    import warnings

    from trainwise.train.loop import fit

    def cosine(optimizer, total_steps):
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)

    said = "steps it after every optimizer step"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(regression, lr_low=1e-3, lr_high=1e-1, num_candidates=3, make_scheduler=cosine,
            max_steps=3)
    assert not [w for w in caught if said in str(w.message)]
    model, train, val = regression
    optimizer = sgd(model, 0.01)
    with pytest.warns(UserWarning, match=said):  # the same schedule in a user's own fit
        fit(model, train, val, optimizer=optimizer, loss_fn=nn.MSELoss(), max_epochs=1,
            task="regression", scheduler=cosine(optimizer, 3))


def test_only_the_first_short_run_reads_fits_first_batch(regression, monkeypatch):
    """VF4 (review s16): every short run's fit read the first validation batch for check()'s
    loss rules, on copies of the same model with the same loss and loaders."""
    import trainwise.train.fit_task as fit_task_module

    reads = []
    original = fit_task_module.batch_outputs
    monkeypatch.setattr(fit_task_module, "batch_outputs",
                        lambda *args: reads.append(1) or original(*args))
    result = run(regression, lr_low=1e-3, lr_high=1e-1, num_candidates=3, max_widenings=0)
    assert len(result.candidates) == 3 and len(reads) == 1
