"""The learning-rate range test: exact ramp, group ratios, no trace, stops and errors."""

from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.data.tensors import to_loader
from trainwise.findings import Severity, TrainwiseError
from trainwise.tune import lr_range_test, suggest_lr, suggest_range
from trainwise.tune.lr_range import _diverged
from trainwise.tune.lr_verdict import verdict


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(16, 3))


def loader(blobs, batch_size: int = 32, **kw) -> DataLoader:
    return DataLoader(TensorDataset(*blobs), batch_size=batch_size, shuffle=True, **kw)


def codes(result) -> list[str]:
    return [f.code for f in result.findings]


# ---------------------------------------------------------------- the ramp
def test_ramp_is_exactly_exponential_from_start_to_end(blobs):
    result = lr_range_test(net(), F.cross_entropy, loader(blobs), adamw, start_lr=1e-5,
                           end_lr=1e-2, num_steps=30)
    lrs = result.curves[0].lrs
    assert len(lrs) == 30 and not result.curves[0].diverged  # 1e-2 is safe for AdamW here
    assert lrs[0] == 1e-5 and lrs[-1] == 1e-2
    np.testing.assert_allclose(np.diff(np.log(lrs)), math.log(1e3) / 29, rtol=1e-9)
    assert len(result.curves[0].losses) == len(result.curves[0].smoothed) == 30


def test_a_short_loader_is_cycled(blobs):
    few = DataLoader(TensorDataset(blobs[0][:64], blobs[1][:64]), batch_size=32)  # 2 batches
    result = lr_range_test(net(), F.cross_entropy, few, adamw, end_lr=1e-3, num_steps=12)
    assert len(result.curves[0].lrs) == 12


def test_group_lr_ratios_are_kept(blobs):
    seen = []

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.append([g["lr"] for g in self.param_groups])
            return super().step(closure)

    def two_groups(model):
        return Spy([{"params": model[0].parameters(), "lr": 1e-3},
                    {"params": model[4].parameters(), "lr": 1e-4}], lr=1.0)

    result = lr_range_test(net(), F.cross_entropy, loader(blobs), two_groups, start_lr=1e-4,
                           end_lr=1e-2, num_steps=10, seeds=(0,))
    assert len(seen) == 10
    for (head, tail), lr in zip(seen, result.curves[0].lrs, strict=True):
        assert head == pytest.approx(lr) and tail == pytest.approx(lr / 10)


# ---------------------------------------------------------------- no trace
def _train(model: nn.Module, data: DataLoader, steps: int = 6) -> None:
    optimizer = adamw(model)
    batches = iter(data)
    for _ in range(steps):
        x, y = next(batches)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def _weights_after_training(blobs, with_range_test: bool, **loader_kw) -> list[torch.Tensor]:
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    model = net(7)
    data = loader(blobs, **loader_kw)
    if with_range_test:
        lr_range_test(model, F.cross_entropy, data, adamw, num_steps=20, seeds=(0, 1))
    _train(model, data)
    return [t.clone() for t in (*model.parameters(), *model.buffers())] + [
        torch.tensor(np.random.rand()), torch.tensor(random.random())]


@pytest.mark.parametrize("own_generator", [False, True])
def test_training_after_the_test_is_bitwise_identical_to_training_without(blobs, own_generator):
    kw = {"generator": torch.Generator().manual_seed(5)} if own_generator else {}
    plain = _weights_after_training(blobs, False, **kw)
    kw = {"generator": torch.Generator().manual_seed(5)} if own_generator else {}
    tested = _weights_after_training(blobs, True, **kw)
    assert len(plain) == len(tested)
    for a, b in zip(plain, tested, strict=True):
        assert torch.equal(a, b)


def test_modes_flags_and_grads_are_restored(blobs):
    model = net()
    model.eval()
    model[4].weight.requires_grad_(False)
    model[0].weight.grad = torch.ones_like(model[0].weight)
    lr_range_test(model, F.cross_entropy, loader(blobs), adamw, num_steps=10)
    assert not any(m.training for m in model.modules())
    assert not model[4].weight.requires_grad and model[0].bias.requires_grad
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight))
    assert model[0].bias.grad is None


def test_state_is_restored_when_the_loss_function_raises(blobs):
    model = net()
    before = [t.clone() for t in model.state_dict().values()]
    state = torch.get_rng_state()
    calls = []

    def broken(out, y):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("boom")
        return F.cross_entropy(out, y)

    with pytest.raises(RuntimeError, match="boom"):
        lr_range_test(model, broken, loader(blobs), adamw, num_steps=10)
    assert all(torch.equal(a, b) for a, b in zip(before, model.state_dict().values(),
                                                  strict=True))
    assert torch.equal(state, torch.get_rng_state())


# ---------------------------------------------------------------- stops and errors
def test_divergence_stops_early(blobs):
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    result = lr_range_test(net(), F.cross_entropy, loader(blobs), sgd, start_lr=1e-3,
                           end_lr=1e4, num_steps=100)
    curve = result.curves[0]
    assert curve.diverged and len(curve.lrs) < 100
    last = curve.smoothed[-1]
    assert not math.isfinite(last) or last > 4 * min(curve.smoothed[:-1])


def test_divergence_criterion_also_works_for_losses_below_zero():
    assert _diverged(4.1, best=1.0, first=2.0, factor=4.0)  # the usual smoothed > 4 x best
    assert not _diverged(3.9, best=1.0, first=2.0, factor=4.0)
    # best -2, started at 0: the scale is the fall (2) + |best| (2) = 4; threshold -2 + 3 * 4
    assert not _diverged(9.9, best=-2.0, first=0.0, factor=4.0)
    assert _diverged(10.1, best=-2.0, first=0.0, factor=4.0)


def test_nan_from_the_first_step_is_an_error_that_points_back(blobs):
    x = blobs[0].clone()
    x[:, 0] = float("nan")
    result = lr_range_test(net(), F.cross_entropy, loader((x, blobs[1])), adamw, num_steps=10)
    (finding,) = result.findings
    assert finding.severity is Severity.ERROR and finding.stage == "tune"
    assert finding.code == "lr_range_nan_at_start" and "'data'" in finding.fix
    assert math.isnan(result.lr) and result.to_dict()["lr"] is None


def _in_order(x, y) -> DataLoader:
    """No shuffle: batch k holds rows 32k .. 32k + 31, so a planted row is met at step k."""
    return DataLoader(TensorDataset(x, y), batch_size=32)


def test_a_nan_row_met_after_the_first_step_is_a_data_error_not_divergence(blobs):
    """The audit's case: one NaN feature, reached at step 4 (lr ~ 1.7e-6): not a reason to
    lower start_lr, and no lr for the short runs to train at."""
    x = blobs[0].clone()
    x[4 * 32 + 5, 2] = float("nan")
    result = lr_range_test(net(), F.cross_entropy, _in_order(x, blobs[1]), adamw)
    (finding,) = result.findings
    assert finding.severity is Severity.ERROR and finding.code == "lr_range_nan_in_data"
    assert finding.evidence["step"] == 4 and finding.evidence["non_finite"] == {"inputs": 1}
    assert "'data'" in finding.fix and "start_lr" not in finding.fix
    assert math.isnan(result.lr) and len(result.curves) == 0
    # the fix's Python call must run: it once read trainwise.audit(x, y), which audit refuses
    call = re.search(r"trainwise\.audit\(.*?\)+", finding.fix).group()
    found, summary = eval(call, {"trainwise": trainwise, "x": x.numpy(), "y": blobs[1].numpy()})
    assert summary["missing"]


class _RowStandardised(nn.Module):
    """Standardises each row by its own std: a constant row divides 0 by 0 (a model fault)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head((x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True))


def test_a_nan_before_the_loss_rose_blames_the_model_not_the_lr(blobs):
    """Finite data, a NaN out of the forward at step 5 while the loss is flat at lr ~ 2e-6:
    a learning rate that is too high makes the loss climb first."""
    x = blobs[0].clone()
    x[5 * 32] = 1.0  # a constant row: finite, but its std is 0
    result = lr_range_test(_RowStandardised(), F.cross_entropy, _in_order(x, blobs[1]),
                           adamw)
    (finding,) = result.findings
    assert finding.severity is Severity.ERROR and finding.code == "lr_range_nan_before_rise"
    assert finding.evidence["step"] == 5 and "'check'" in finding.fix
    assert math.isnan(result.lr)


def test_a_loss_that_climbs_to_nan_is_still_divergence(blobs):
    """The rule above must not take a real divergence for a fault: SGD on MSE to lr 1e8 (no
    4x stop) climbs by orders of magnitude, then overflows."""
    targets = F.one_hot(blobs[1], 3).float()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    result = lr_range_test(model, F.mse_loss, loader((blobs[0], targets), 16), sgd,
                           end_lr=1e8, diverge_factor=1e30)
    curve = result.curves[0]
    assert curve.diverged and not math.isfinite(curve.losses[-1])
    assert curve.losses[-2] > 1e3 * min(curve.losses)  # it climbed before
    assert not [f for f in result.findings if f.severity is Severity.ERROR]


def test_a_frozen_model_is_an_error(blobs):
    model = net().requires_grad_(False)
    result = lr_range_test(model, F.cross_entropy, loader(blobs), adamw, num_steps=10)
    assert codes(result) == ["lr_range_nothing_to_train"]
    (finding,) = result.findings
    assert finding.severity is Severity.ERROR and "requires_grad" in finding.fix
    empty = lr_range_test(nn.Flatten(), F.cross_entropy, loader(blobs),
                          lambda m: torch.optim.SGD([torch.zeros(1, requires_grad=True)]),
                          num_steps=10)  # a model with no parameters at all
    (finding,) = empty.findings
    assert "no parameters at all" in finding.message and "Unfreeze" not in finding.fix


def test_a_dataset_smaller_than_one_batch_is_an_error(blobs):
    tiny = DataLoader(TensorDataset(blobs[0][:10], blobs[1][:10]), batch_size=32, drop_last=True)
    result = lr_range_test(net(), F.cross_entropy, tiny, adamw, num_steps=10)
    assert codes(result) == ["lr_range_no_batch"]
    assert "10 samples" in result.findings[0].message and result.curves == []


def test_a_dataset_smaller_than_one_batch_without_drop_last_is_an_error(blobs):
    """20 rows, batch 32, drop_last=False: every step would train on the same 20 rows (audit
    s7 #8: 100 steps, then lr 0.061 and only a 'no_rise' warning)."""
    tiny = DataLoader(TensorDataset(blobs[0][:20], blobs[1][:20]), batch_size=32)
    result = lr_range_test(net(), F.cross_entropy, tiny, adamw, num_steps=10)
    (finding,) = result.findings
    assert finding.severity is Severity.ERROR
    assert finding.code == "lr_range_data_smaller_than_batch"
    assert "20 samples" in finding.message and "batch_size=32" in finding.message
    assert "batch_size" in finding.fix and result.curves == [] and math.isnan(result.lr)
    # audit s13 T13: it led with batch 2 (10 steps on 20 rows); more data comes first, and
    # the small batch with its batch-norm caveat
    assert finding.fix.startswith("More data first: check stage 'split'")
    assert "2 gives >= 10 steps per pass, but below ~16-32 batch-norm" in finding.fix


def test_a_loader_without_batching_warns_one_sample_per_step(blobs):
    """batch_size=None turns the DataLoader's batching off: each step is one sample (audit
    s7 #13: it ran silently and answered 0.053)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    single = DataLoader(TensorDataset(*blobs), batch_size=None, shuffle=True)
    result = lr_range_test(model, F.cross_entropy, single, adamw, num_steps=20)
    (found,) = [f for f in result.findings if f.code == "lr_range_one_sample_per_step"]
    assert found.severity is Severity.WARNING and "batch_size=" in found.fix
    batched = lr_range_test(model, F.cross_entropy, loader(blobs), adamw, num_steps=20)
    assert "lr_range_one_sample_per_step" not in codes(batched)
    # trainwise's own loaders have batch_size=None too, with a sampler of whole batches
    # (the demo run warned falsely that each step trained one sample)
    ours = to_loader(*blobs, 32, shuffle=True, seed=0)
    assert ours.batch_size is None
    assert "lr_range_one_sample_per_step" not in codes(
        lr_range_test(model, F.cross_entropy, ours, adamw, num_steps=20))


@pytest.mark.parametrize("seeds,num_steps", [((0, 1), 10), ((0,), 12)])
def test_a_one_shot_generator_is_said_to_be_exhausted_not_empty(blobs, seeds, num_steps):
    """10 batches from a generator: a second seed, or a restart after the tenth step, finds
    it used up; it did yield batches, so 'yielded no batch' was false (audit s7 #7)."""
    def batches():
        for i in range(0, 300, 32):
            yield blobs[0][i:i + 32], blobs[1][i:i + 32]

    result = lr_range_test(net(), F.cross_entropy, batches(), adamw, num_steps=num_steps,
                           seeds=seeds)
    (finding,) = result.findings
    assert finding.severity is Severity.ERROR and finding.code == "lr_range_loader_exhausted"
    assert "one pass" in finding.message and "DataLoader" in finding.fix
    assert math.isnan(result.lr)
    listed = [(x, y) for x, y in batches()]  # the re-iterable fix: the same batches as a list
    ok = lr_range_test(net(), F.cross_entropy, listed, adamw, num_steps=num_steps, seeds=seeds)
    assert len(ok.curves) == len(seeds) and math.isfinite(ok.lr)


def test_find_lr_runs_three_seeds_by_default_as_the_cli(blobs):
    """The API's default is the CLI's tune.num_seeds (3): a range and its spread (audit s7
    #12: one seed, so spread 0 and never a spread warning)."""
    import trainwise
    from trainwise.config import TuneConfig

    result = trainwise.find_lr(net(), F.cross_entropy, loader(blobs), adamw, num_steps=10)
    assert [c.seed for c in result.curves] == [0, 1, 2] == list(range(TuneConfig().num_seeds))
    assert len(result.suggestions) == 3  # the spread is over these


def test_num_steps_has_one_minimum_in_the_api_and_the_config(blobs):
    from pydantic import ValidationError

    from trainwise.config import TuneConfig

    with pytest.raises(TrainwiseError, match=">= 10"):
        lr_range_test(net(), F.cross_entropy, loader(blobs), adamw, num_steps=9)
    with pytest.raises(ValidationError):
        TuneConfig(num_steps=9)
    assert TuneConfig(num_steps=10).num_steps == 10


def test_bad_arguments_raise(blobs):
    for kw in ({"start_lr": 1.0, "end_lr": 1e-3}, {"num_steps": 2}, {"seeds": ()},
               {"rule": "nope"}):
        with pytest.raises(TrainwiseError):
            lr_range_test(net(), F.cross_entropy, loader(blobs), adamw, **kw)


# ---------------------------------------------------------------- results
def test_same_seed_same_suggestion(blobs):
    run = lambda: lr_range_test(net(), F.cross_entropy, loader(blobs), adamw,  # noqa: E731
                                num_steps=40, seeds=(0, 1))
    first, second = run(), run()
    assert first.suggestions == second.suggestions and first.lr == second.lr
    assert first.curves[0].losses != first.curves[1].losses  # seeds change order and dropout


def test_an_anchor_rule_picks_the_point_and_ours_the_range(blobs):
    result = lr_range_test(net(), F.cross_entropy, loader(blobs), adamw, num_steps=30,
                           rule="fastai.valley", seeds=(0,))  # one curve: its pick is the lr
    curve = result.curves[0]
    assert result.rule == "fastai.valley"
    assert result.lr == pytest.approx(suggest_lr(curve.lrs, curve.losses, "fastai.valley"))
    ours = suggest_range(curve.lrs, curve.losses)
    assert (result.lr_low, result.lr_high) == pytest.approx((ours.lr_low, ours.lr_high))


def test_to_dict_is_lr_range_json(blobs):
    result = lr_range_test(net(), F.cross_entropy, loader(blobs), adamw, num_steps=20)
    row = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(row) == {"curves", "lr", "lr_low", "lr_high", "spread_decades", "rule"}
    assert set(row["curves"][0]) == {"seed", "lrs", "losses", "smoothed"}
    assert row["rule"] == "trainwise" and row["lr"] == result.lr


def test_repr_is_a_summary_and_the_points_stay_in_the_fields(blobs):
    """repr printed every lr and loss of every curve (audit s7 #11)."""
    result = lr_range_test(net(), F.cross_entropy, loader(blobs), adamw, num_steps=60)
    text = repr(result)
    assert len(text) < 400 and "\n" not in text
    assert f"lr={result.lr:.3g}" in text and "spread_decades=" in text
    assert "seeds=[0, 1, 2]" in text and "points=[" in text
    assert len(repr(result.curves[0])) < 150
    assert len(result.curves[0].losses) == len(result.curves[0].lrs) > 10  # still all there


def test_seeds_that_disagree_give_a_spread_warning():
    lrs = list(np.geomspace(1e-6, 1, 100))
    x = np.log10(lrs)

    class Curve:
        def __init__(self, seed, centre):
            self.seed, self.lrs = seed, lrs
            self.losses = list(2.3 - 2 / (1 + np.exp(-3 * (x - centre))) + 5 * np.clip(
                x - centre - 1, 0, None) ** 2)

    v = verdict([Curve(0, -4.0), Curve(1, -3.0), Curve(2, -2.0)], "trainwise")
    assert v.spread_decades == pytest.approx(2.0, abs=0.1)
    assert v.lr == pytest.approx(v.suggestions[1])  # the geometric median is the middle seed
    assert "lr_range_unstable" in [f.code for f in v.findings]


def test_one_seed_has_no_spread_to_report():
    """Audit s13 T11: one seed gave spread_decades 0.0, printed "0.00 decades", which reads
    as perfectly stable; it is unknown (nan, null in lr_range.json) and said so."""
    lrs = list(np.geomspace(1e-6, 1, 100))

    class Curve:
        seed, losses = 0, list(2.3 - 2 / (1 + np.exp(-3 * (np.log10(lrs) + 3))))

    Curve.lrs = lrs
    v = verdict([Curve()], "trainwise")
    assert math.isnan(v.spread_decades)
    assert "lr_range_unstable" not in [f.code for f in v.findings]
    assert "spread unknown (1 seed; tune.num_seeds >= 3 measures it)" in v.findings[0].message


def test_the_summary_does_not_claim_a_fall_that_no_seed_showed():
    """Audit s8 R4: 'the loss did not fall' beside '95% of the loss's fall done'."""
    lrs = list(np.geomspace(1e-6, 1, 100))

    class Curve:
        def __init__(self, seed, fall):
            self.seed, self.lrs = seed, lrs
            noise = 0.02 * np.random.default_rng(seed).standard_normal(100)
            self.losses = list(2.3 - fall / (1 + np.exp(-3 * (np.log10(lrs) + 2))) + noise)

    flat = verdict([Curve(s, 0.0) for s in range(3)], "trainwise").findings
    fell = verdict([Curve(s, 2.0) for s in range(3)], "trainwise").findings
    assert "lr_range_no_descent" in [f.code for f in flat]
    assert "a guess" in flat[0].message and "95% of the loss's fall" not in flat[0].message
    assert "lr_range_no_descent" not in [f.code for f in fell]
    assert "95% of the loss's fall done" in fell[0].message


def test_no_descent_in_seeds_that_rose_does_not_advise_a_higher_end_lr():
    """Audit s13 T13: 'or raise end_lr' beside 'the loss rose again in seed(s) [0, 1]': the
    test already diverged, so a higher end_lr adds only more divergence."""
    lrs = list(np.geomspace(1e-6, 1, 100))
    x = np.log10(lrs)

    class Curve:
        def __init__(self, seed):
            noise = 0.02 * np.random.default_rng(seed).standard_normal(100)
            self.seed, self.lrs = seed, lrs
            self.losses = list(2.3 + noise + 5 * np.clip(x + 2, 0, None) ** 2)  # no fall

    findings = verdict([Curve(s) for s in range(3)], "trainwise").findings
    (no_descent,) = [f for f in findings if f.code == "lr_range_no_descent"]
    assert "lr_range_no_rise" not in [f.code for f in findings]
    assert "raise end_lr" not in no_descent.fix.lower()
    assert "would add only more of that rise" in no_descent.fix


@pytest.mark.parametrize("end_lr", [0.1, 1.0, 10.0])
def test_a_range_that_never_rose_is_not_labelled_rising_nor_told_to_raise_end_lr_forever(end_lr):
    """Audit s9 I12: '... to 1 (loss rising again)' beside 'the loss was still falling at
    end_lr ... Raise end_lr (e.g. 10x)', which came again at end_lr 10."""
    lrs = list(np.geomspace(1e-6, end_lr, 100))

    class Curve:
        def __init__(self, seed):
            self.seed, self.lrs = seed, lrs
            noise = 0.02 * np.random.default_rng(seed).standard_normal(100)
            x = np.log10(lrs) - np.log10(end_lr)  # falling until the end of the ramp
            self.losses = list(2.3 - 2 / (1 + np.exp(-3 * (x + 1))) + noise)

    findings = verdict([Curve(s) for s in range(2)], "trainwise").findings
    summary, [no_rise] = findings[0], [f for f in findings if f.code == "lr_range_no_rise"]
    assert "(the end of the test: the loss never rose)" in summary.message
    assert "rising again" not in summary.message
    if end_lr < 1:
        assert no_rise.severity is Severity.WARNING and "Raise end_lr" in no_rise.fix
        # not past the lr where the INFO below then says to keep end_lr (review s9 A10)
        assert "up to 1:" in no_rise.fix and "at most 10" not in no_rise.fix
    else:
        assert no_rise.severity is Severity.INFO and "Raise end_lr" not in no_rise.fix
        assert "Keep end_lr" in no_rise.fix


def test_digits_mlp_suggestion_is_sane_for_adamw():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    data = DataLoader(TensorDataset(torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)),
                      batch_size=64, shuffle=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    result = lr_range_test(model, F.cross_entropy, data, adamw, seeds=(0, 1))
    # grid search with a one-cycle schedule (8 epochs): best peak 0.056, within +30% 0.018..0.1
    assert 1e-3 < result.lr_low < result.lr < result.lr_high < 1.0
    assert 1e-2 <= result.lr <= 1e-1
    assert not [f for f in result.findings if f.severity is Severity.ERROR]


def test_a_noisy_regression_that_falls_5x_is_not_called_flat_or_falling_at_start():
    """The audit's regression (s7 #6, t07): MSE at batch 32 falls from ~10 to ~2 between
    1e-3 and 0.3 after a flat start. Before: 'falls_at_start' on all three seeds ("lower
    start_lr") and 'no_descent' on seed 1; the picks were right all along. (Seed 2 still
    falls at end_lr = 1: its 'no_rise' is true.)"""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(300, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    result = lr_range_test(model, F.mse_loss, loader((x, y)),
                           lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3),
                           seeds=(0, 1, 2))
    assert not {"lr_range_no_descent", "lr_range_falls_at_start"} & set(codes(result))
    assert 1e-2 < result.lr_low < result.lr < result.lr_high


def test_accumulated_micro_batches_give_the_range_test_of_whole_batches(blobs):
    """Micro-batches weighted by their share: the same gradients, so the same curve (no
    batch norm, whose statistics would differ)."""
    x, y = blobs
    loader = to_loader(x, y, 64, shuffle=True, seed=0, drop_last=True)
    curves = []
    for accumulate in (1, 3):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        result = lr_range_test(model, nn.CrossEntropyLoss(), loader,
                               lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3),
                               num_steps=30, accumulate=accumulate)
        curves.append(result.curves[0])
    assert len(curves[0].losses) == len(curves[1].losses) > 10
    np.testing.assert_allclose(curves[1].losses, curves[0].losses, rtol=1e-4, atol=1e-6)


def test_accumulate_with_batch_norm_is_not_the_same_step_and_the_docstring_says_so(blobs):
    """Audit s13 T12: the docstring promised "the same step, less memory"; with BatchNorm
    each micro-batch is normalised alone, so the curve moves."""
    x, y = blobs
    loader = to_loader(x, y, 64, shuffle=True, seed=0, drop_last=True)
    losses = []
    for accumulate in (1, 4):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
        result = lr_range_test(model, nn.CrossEntropyLoss(), loader,
                               lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3),
                               num_steps=20, seeds=(0,), accumulate=accumulate)
        losses.append(np.array(result.curves[0].losses))
    n = min(map(len, losses))
    assert np.abs(losses[0][:n] - losses[1][:n]).max() > 1e-3  # not the same step
    doc = " ".join(lr_range_test.__doc__.split())
    assert "the same step with less memory for models without batch-dependent layers" in doc
    assert "BatchNorm normalises each micro-batch" in doc


def test_a_range_where_only_some_seeds_rose_says_which_rose():
    """Reverify s9 I12: 'to 1 (loss rising again; in seed(s) [0, 1] the end of the test, with
    no rise)' opened with the rise that 2 of 3 seeds never had."""
    from trainwise.tune.lr_verdict import _high_end

    label = _high_end([0, 1, 2], [0, 1])
    assert label.startswith("the loss rose again in seed(s) [2]")
    assert "in seed(s) [0, 1] it never rose" in label and "rising again" not in label


def test_one_batch_of_extreme_targets_is_no_divergence():
    """Audit s14 R2: a batch holding one extreme regression target jumps the squared loss
    ~30x in one step; the next batches' losses are back at the flat start, so the ramp goes
    on (it stopped there, at step 3 of 40, and the test chose its start_lr)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40 * 32, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) * 0.3 + 0.1 * torch.randn(40 * 32, 1, generator=g)
    y[3 * 32 + 5] = 100.0  # met at step 3: its batch's squared error ~ 100**2 / 32 ~ 300
    torch.manual_seed(0)
    result = lr_range_test(nn.Linear(8, 1), F.mse_loss, _in_order(x, y), adamw,
                           end_lr=1e-2, num_steps=40, seeds=(0,))
    curve = result.curves[0]
    assert curve.losses[3] > 30 * max(curve.losses[:3])  # the spike the old rule stopped on
    assert not curve.diverged and len(curve.lrs) == 40


def test_a_confirmed_divergence_ends_the_curve_where_the_smoothed_loss_crossed(blobs):
    """The later steps only confirm: the curve ends at the first smoothed loss above 4x the
    best so far, as the unconfirmed rule cut it (the calibration picks stay the same)."""
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    result = lr_range_test(net(), F.cross_entropy, loader(blobs), sgd, start_lr=1e-3,
                           end_lr=1e4, num_steps=100, seeds=(0,))
    smoothed = result.curves[0].smoothed
    best = [min(smoothed[: i + 1]) for i in range(len(smoothed))]
    crossed = [i for i, s in enumerate(smoothed) if not s <= 4 * best[i]]
    assert result.curves[0].diverged and crossed == [len(smoothed) - 1]
