"""Short runs that tie, learn nothing or blow up: the pick and the words (audit s13 T3-T7,
T14, P1, I14)."""

from __future__ import annotations

import importlib
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from trainwise.config import TuneConfig
from trainwise.data.tensors import to_loader
from trainwise.findings import Severity, info, warning
from trainwise.tune.candidates import blown_up, refine_how
from trainwise.tune.short_run_noise import settle_within_noise
from trainwise.tune.short_run_result import Candidate, ShortRunResult, verdict
from trainwise.tune.short_runs import short_runs

SHORT_RUNS = importlib.import_module("trainwise.tune.short_runs")


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def _rows(best: float, gap: float, spread: float, n: int) -> list[float]:
    """n row losses averaging best + gap whose paired difference from the best's rows
    (_rows(best, 0, 0, n)) alternates gap +- spread: standard error spread / sqrt(n - 1)."""
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return list(best + 0.1 * signs + gap + spread * signs)


def _result(scores: dict[float, float], chosen: float, spread: float, n: int
            ) -> ShortRunResult:
    best = min(scores.values())
    candidates = [Candidate(lr, v, [v], [v], 0.0,
                            row_losses=_rows(best, v - best, spread if v > best else 0.0, n))
                  for lr, v in scores.items()]
    return ShortRunResult(chosen, candidates, False, "log", 1,
                          [info("tune", "short_runs", "Short runs: ...")])


# ---------------------------------------------------------------- T6: nothing learns
def test_short_runs_that_learn_nothing_warn_and_keep_the_range_point():
    # audit s13 T6: on random labels every candidate sat at chance (ln 3 = 1.099) and tune
    # "chose" the one with the highest loss, saying "Nothing to do"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=400)
    train = to_loader(x[:280], y[:280], 40, shuffle=True, seed=0)
    val = to_loader(x[280:], y[280:], 60, shuffle=False, seed=0)
    torch.manual_seed(0)
    result = short_runs(nn.Linear(8, 3), nn.CrossEntropyLoss(), train, val,
                        lambda m, lr: torch.optim.SGD(m.parameters(), lr=lr), lr_low=1e-3,
                        lr_high=0.1, num_epochs=2, num_candidates=3, max_widenings=0,
                        range_lr=0.02)
    best = min(c.val_loss for c in result.candidates)
    assert best > math.log(3) * 0.99  # truly nothing learnt: the premise
    (found,) = [f for f in result.findings if f.code == "short_runs_no_learning"]
    assert found.severity is Severity.WARNING and "stage 'data'" in found.fix
    assert found.evidence["start_loss"] <= math.log(3) + 1e-9
    assert result.chosen_lr == 0.02 and not result.told_apart  # the range test's point
    assert result.kept_range_point == "no_learning"


def test_the_loss_to_beat_is_the_untrained_models_or_chance_whichever_is_lower():
    from trainwise.tune.short_run_learning import start_loss
    targets = torch.tensor([0, 1, 2, 0])
    confident = torch.tensor([[5.0, 0.0, 0.0]] * 4)  # 3 of 4 rows badly wrong: above ln 3
    assert start_loss(nn.CrossEntropyLoss(), confident, targets) == pytest.approx(math.log(3))
    good = torch.nn.functional.one_hot(targets, 3).float() * 5
    assert start_loss(nn.CrossEntropyLoss(), good, targets) == pytest.approx(
        float(nn.CrossEntropyLoss()(good, targets)))
    mse = start_loss(nn.MSELoss(), torch.zeros(4), torch.ones(4))
    assert mse == pytest.approx(1.0)  # no chance level: the untrained model's


# ---------------------------------------------------------------- P1: a practical floor
def test_a_flat_grid_is_a_tie_whatever_the_paired_error_and_keeps_the_range_point():
    # audit s13 P1: six candidates at 1.13568 +- 2e-5 with a paired error of ~1e-6; the
    # highest lr "won" and trained to a loss of 3.9
    scores = {0.0175: 1.1356864, 0.0351: 1.1356858, 0.0705: 1.1356843, 0.1417: 1.1356812,
              0.2848: 1.1356753}
    result = _result(scores, 0.2848, 0.0, 300)  # every row moved alike: se 0
    settle_within_noise(result, 0.035, False)  # 300 rows: the 200-row rule is off
    assert result.chosen_lr == 0.035 and not result.told_apart
    assert result.kept_range_point == "flat_grid"
    (found,) = [f for f in result.findings if f.code == "short_runs_indistinguishable"]
    assert "range test's point 0.035" in found.message


def test_a_flat_grid_is_not_widened(monkeypatch):
    def never(*args):
        raise AssertionError("widened on a tie")

    monkeypatch.setattr(SHORT_RUNS, "_train", never)
    flat = [Candidate(lr, 1.0 - lr * 1e-4, [], [], 0.0) for lr in (0.01, 0.03, 0.1)]
    setup = SimpleNamespace(max_lr=math.inf, progress=None, total_steps=1)
    assert SHORT_RUNS._widen(setup, flat, 2) is False  # the top lr wins by 1e-5: a tie


# ---------------------------------------------------------------- T14: few rows
DIGITS = {0.0073: 0.1274, 0.0161: 0.0543, 0.036: 0.1138, 0.0788: 0.1331}  # audit s13 T14


def test_on_few_rows_refines_pick_inside_a_tie_stays_and_the_range_point_never_wins():
    # 144 rows: the range point 0.0788 (2.5x the best's loss) replaced refine's 0.0209
    inside = _result(DIGITS, 0.0209, 0.8, 144)  # 2 se = 0.13 > every gap: all tied
    settle_within_noise(inside, 0.0788, True)
    assert inside.chosen_lr == 0.0209
    assert "short_runs_indistinguishable" not in codes(inside.findings)
    edge = _result(DIGITS, 0.0161, 0.8, 144)  # the best itself, inside but at no middle
    edge.candidates = [c for c in edge.candidates if c.lr >= 0.0161]  # now at the edge
    settle_within_noise(edge, 0.0788, True)
    # 0.036 and 0.0788 score 2.1x and 2.5x the best's loss: never a tie (TIE_CEILING), so
    # the pick no longer moves to sqrt(0.0161 * 0.0788) = 0.0356 (review s13 VT3)
    assert edge.chosen_lr == 0.0161 and edge.told_apart
    assert "short_runs_indistinguishable" not in codes(edge.findings)


# ---------------------------------------------------------------- T3: any size
def test_a_tie_is_said_at_any_validation_size_without_changing_the_pick():
    scores = {0.01: 0.60, 0.02: 0.61, 0.04: 0.62, 0.08: 0.70}
    result = _result(scores, 0.015, 0.3, 600)  # se 0.3 / sqrt(599) = 0.0123: 2 se 0.0245
    settle_within_noise(result, 0.02, False)
    said = result.findings[0]
    assert "trails the best by 0.01, within noise: 0.01 to 0.04 cannot be told apart from " \
        "the best on 600 rows" in said.message
    assert said.evidence["noise_bound"] == pytest.approx(2 * 0.3 / math.sqrt(599))
    assert result.chosen_lr == 0.015 and not result.told_apart
    apart = _result(scores, 0.015, 0.01, 600)  # 2 se 0.0008, floor 0.006: 0.01 is real
    settle_within_noise(apart, 0.02, False)
    assert "beyond noise" in apart.findings[0].message and apart.told_apart


def test_row_losses_are_kept_at_any_size_capped_at_max_noise_rows(monkeypatch):
    monkeypatch.setattr(SHORT_RUNS, "MAX_NOISE_ROWS", 50)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0])).astype(np.float32)
    train = to_loader(x[:192], y[:192], 32, shuffle=True, seed=0)
    val = to_loader(x[192:], y[192:], 20, shuffle=False, seed=0)  # 64 rows in batches of 20
    torch.manual_seed(0)
    result = short_runs(nn.Sequential(nn.Linear(4, 1), nn.Flatten(0)), nn.MSELoss(), train,
                        val, lambda m, lr: torch.optim.SGD(m.parameters(), lr=lr),
                        lr_low=0.01, lr_high=0.1, num_epochs=1, num_candidates=3,
                        max_widenings=0, task="regression")  # no range_lr: said, not settled
    assert all(len(c.row_losses) == 50 for c in result.candidates)
    assert "runner-up" in result.findings[0].message


# ---------------------------------------------------------------- T7, T4: refine's words
T7 = [(0.0071, 0.2434), (0.018, 0.1941), (0.046, 0.1787), (0.12, 1.382)]


def test_a_blown_up_candidate_in_the_fit_is_named():
    # audit s13 T7: the fit through 1.382 put the vertex at 0.019, below the best 0.046; left
    # out, the same shape on digits-anchor seed 130 moved a calibrated pick 0.015 -> 0.040, so
    # it stays in the fit and the message says so
    assert refine_how(T7) == (pytest.approx(0.019, rel=0.01), "vertex",
                              [0.0071, 0.018, 0.046, 0.12])
    assert blown_up(T7) == [0.12]
    steep = [(0.0016, 0.6899), (0.0055, 0.4351), (0.018, 0.4946), (0.061, 1.419)]  # MNIST-1D
    assert blown_up(steep) == []  # 2.06x the lowest's: a steep side, not a cliff
    found = verdict([Candidate(lr, v, [v], [v], 0.0) for lr, v in T7], True, "log", 5, 2)
    assert "0.12 blew up (loss over 3x the best's and the lowest lr's) and is in the fit" in \
        found.findings[0].message
    smooth = verdict([Candidate(lr, v, [v], [v], 0.0) for lr, v in T7[:3] + [(0.12, 0.25)]],
                     True, "log", 5, 2)
    assert "blew up" not in smooth.findings[0].message


def test_the_message_says_how_refine_chose():
    # audit s13 T4: "the minimum of a parabola" when refine returned the best itself
    top = [(0.12, 0.09111), (0.28, 0.04281), (0.66, 0.03683)]
    message = verdict([Candidate(lr, v, [v], [v], 0.0) for lr, v in top], False, "log", 5,
                      0).findings[0].message
    assert "parabola" not in message and "lowest or highest lr fitted" in message
    concave = [(1.0, 0.5), (2.0, 0.8), (4.0, 0.4), (8.0, 0.8), (16.0, 0.5)]
    assert refine_how(concave) == (4.0, "concave", [1.0, 2.0, 4.0, 8.0, 16.0])


# ---------------------------------------------------------------- T4, T5: the range's spread
def test_the_unstable_range_note_says_where_the_pick_lies():
    from trainwise.tune.lr_range import LrRangeResult
    from trainwise.tune.search import _settled
    found = warning("tune", "lr_range_unstable", "The seeds disagree.", "Run tune.")
    rt = LrRangeResult(0.07, 0.035, 0.14, 0.0, "trainwise", [])
    widened = ShortRunResult(0.209, [Candidate(0.14, 1.0, [], [], 0.0),
                                     Candidate(0.209, 0.9, [], [], 0.0, round=1)],
                             True, "log", 1)
    assert _settled(found, rt, widened).message.endswith(
        "chose 0.209 instead, above the range (0.035 to 0.14), after 1 widening(s).")


def test_an_unstable_range_stays_a_warning_when_the_short_runs_tie(monkeypatch, blobs):
    # audit s13 T5: a 12-38x seed disagreement became "info ... Nothing to do" on a tie
    import trainwise.tune.search as search
    from trainwise.tune.lr_range import LrRangeResult

    unstable = warning("tune", "lr_range_unstable", "The seeds disagree.", "Run tune.")
    monkeypatch.setattr(search, "lr_range_test", lambda *a, **k: LrRangeResult(
        0.01, 0.001, 0.1, 1.0, "trainwise", [], findings=[unstable]))
    tied = ShortRunResult(0.01, [], False, "log", 2, told_apart=False)
    monkeypatch.setattr(search, "short_runs", lambda *a, **k: tied)
    x, y = blobs
    train = to_loader(x[:240], y[:240], 32, shuffle=True, seed=0)
    val = to_loader(x[240:], y[240:], 60, shuffle=False, seed=0)
    result = search.tune_lr(nn.Linear(8, 3), nn.CrossEntropyLoss(), train, val,
                            lambda m, lr=None: torch.optim.SGD(m.parameters(), lr=lr or 0.1),
                            max_epochs=10, config=TuneConfig(num_steps=30))
    (kept,) = [f for f in result.findings if f.code == "lr_range_unstable"]
    assert kept.severity is Severity.WARNING


# ---------------------------------------------------------------- I14: the count
def test_a_widened_run_is_counted_without_a_total():
    setup = SimpleNamespace(runs_done=3, runs_planned=3)
    line = SHORT_RUNS._progress_line(setup, Candidate(0.2, 0.5, [], [], 1.0, round=1))
    assert line.startswith("short run 4 (widening 1): peak lr 0.2")


def test_the_noise_of_a_score_over_all_rows_is_scaled_from_the_rows_sampled():
    # review s13 VT4: the gap is the scores' (all N rows), the error came from the first
    # <= 2000 rows' losses alone, sqrt(N / 2000) too wide: here 2000 of 10000 rows
    from trainwise.tune.short_run_noise import gap_and_bound, paired_gap
    best = Candidate(0.01, 0.5, [0.5], [0.5], 0.0, row_losses=_rows(0.5, 0.0, 0.0, 2000))
    other = Candidate(0.03, 0.52, [0.52], [0.52], 0.0,
                      row_losses=_rows(0.5, 0.02, 0.5, 2000))
    sampled = paired_gap(best.row_losses, other.row_losses)[1]  # 0.5 / sqrt(1999) = 0.011
    gap, se, bound = gap_and_bound(best, other, val_rows=10_000)
    assert se == pytest.approx(sampled * math.sqrt(2000 / 10_000))
    assert gap == pytest.approx(0.02) and bound == pytest.approx(2 * se) and gap > bound
    assert gap < 2 * sampled  # a tie by the 2000 rows' error alone
    result = ShortRunResult(0.01, [best, other], False, "log", 1,
                            [info("tune", "short_runs", "Short runs: ...")], val_rows=10_000)
    settle_within_noise(result, 0.02, False)
    assert result.told_apart
    assert "over the first 2000 of 10000 validation rows" in result.findings[0].message


def _candidate(lr: float, score: float, spread: float, n: int = 144) -> Candidate:
    return Candidate(lr, score, [score], [score], 0.0,
                     row_losses=_rows(0.1, score - 0.1, spread, n))


def test_a_tie_is_the_run_around_the_best_within_noise_and_125_percent_of_its_loss():
    # review s13 VT3: on digits 0.107 "tied" at 2.56x the best's 0.0644 (its own paired
    # error grew with its gap) while 0.0045 did not, and on < 200 rows the pick moved to
    # the middle of such a tie
    far = [_candidate(0.01, 0.1, 0.0), _candidate(0.03, 0.11, 0.6),
           _candidate(0.1, 0.2, 3.0)]  # 0.2: 2x, yet within 2 se = 0.5 of the best
    result = ShortRunResult(0.01, far, False, "log", 1, [info("tune", "short_runs", "...")])
    settle_within_noise(result, 0.03, True)
    assert result.findings[0].evidence["tied_lrs"] == [0.01, 0.03]  # not 0.1 (the ceiling)
    assert result.chosen_lr == pytest.approx(math.sqrt(0.01 * 0.03))  # the run's middle
    (moved,) = [f for f in result.findings if f.code == "short_runs_indistinguishable"]
    assert "cannot be told apart from the best (0.01, loss 0.1) on 144 rows" in moved.message
    gapped = [_candidate(0.01, 0.1, 0.0), _candidate(0.03, 0.115, 0.0),
              _candidate(0.1, 0.12, 0.6)]  # 0.03 beaten beyond noise; 0.1 within it
    result = ShortRunResult(0.01, gapped, False, "log", 1, [info("tune", "short_runs", "")])
    settle_within_noise(result, 0.03, True)
    assert result.findings[0].evidence["tied_lrs"] == [0.01]  # no run past 0.03
    assert result.told_apart and result.chosen_lr == 0.01


def _said(pairs) -> str:
    return verdict([Candidate(lr, v, [v], [v], 0.0) for lr, v in pairs], False, "log", 5,
                   0).findings[0].message


def test_a_blown_up_lr_is_named_only_when_in_a_fitted_vertex():
    # review s13 VT5: "is in the fit" with no fit (the best at the edge) and for an lr
    # outside the fit window (FIT_NEIGHBOURS each side of the best)
    edge = _said([(0.01, .2), (0.03, .25), (0.1, .3), (0.3, 1.5)])
    assert "lowest or highest lr fitted" in edge and "blew up" not in edge
    outside = _said([(0.001, .31), (0.003, .3), (0.01, .2), (0.03, .25), (0.1, .3),
                     (0.3, 2.0), (1.0, 2.2)])  # window: 0.001-0.1 around the best 0.01
    assert "parabola" in outside and "blew up" not in outside
    two = _said([(0.003, .3), (0.01, .25), (0.03, .2), (0.1, 1.0), (0.3, 1.1)])
    assert "0.1, 0.3 blew up" in two and "and are in the fit, which they pull" in two


def test_best_and_chosen_agree_on_bit_equal_losses():
    # review s13 VT5: "Best 5.64e-08; chosen peak lr 4.5e-09 (the best itself ...)"
    found = verdict([Candidate(lr, 1.094, [1.094], [1.094], 0.0) for lr in (0.01, 5.64e-08,
                     4.5e-09)], False, "log", 5, 0)
    assert found.best_lr == found.chosen_lr == 4.5e-09


# ---------------------------------------------------------------- review s13 VT6, VT8
def test_short_runs_that_learned_nothing_are_not_widened(monkeypatch):
    # review s13 VT6: on random labels two widenings trained at 5.6e-08 and 4.5e-09
    def never(*args):
        raise AssertionError("widened after nothing learned")

    monkeypatch.setattr(SHORT_RUNS, "_train", never)
    at_chance = [Candidate(lr, v, [], [], 0.0) for lr, v in
                 ((1e-6, 1.094), (1e-4, 1.10), (0.017, 1.142))]  # 4% apart: not flat
    setup = SimpleNamespace(max_lr=math.inf, progress=None, total_steps=1)
    assert SHORT_RUNS._widen(setup, at_chance, 2, math.log(3)) is False


def test_learning_is_judged_by_one_margin_in_tune_and_train():
    # review s13 VT8: 1.090 on 3 classes was "not learned" in tune (within 1%) but learned
    # for train.not_learned (below ln 3 = 1.0986)
    from trainwise.train.not_learned import chance_loss, not_learned
    from trainwise.tune.short_run_learning import learned
    history = [{"kind": "epoch", "epoch": 1, "val_loss": 1.090, "train_loss": 1.1}]
    assert not learned([Candidate(0.01, 1.090, [], [], 0.0)], chance_loss(3))
    assert not_learned(history, 3).startswith("The model did not learn")
    assert learned([Candidate(0.01, 1.05, [], [], 0.0)], chance_loss(3))


# ---------------------------------------------------------------- review s13 VT7
def _losses_to_compare():
    from trainwise.model.class_weights import ClassWeightedCrossEntropy
    torch.manual_seed(0)
    logits, labels = torch.randn(300, 5), torch.randint(0, 5, (300,))
    ignored = labels.clone()
    ignored[::7] = -100
    maps, map_labels = torch.randn(40, 3, 4, 4), torch.randint(0, 3, (40, 4, 4))
    values, targets = torch.randn(300, 2), torch.randn(300, 2)
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.75])
    return [
        (nn.CrossEntropyLoss(), logits, labels, 0.0),
        (nn.CrossEntropyLoss(weight=weight), logits, ignored, 1e-5),
        (nn.NLLLoss(weight=weight), torch.log_softmax(logits, 1), labels, 1e-5),
        (nn.CrossEntropyLoss(weight=weight[:3]), maps, map_labels, 1e-5),  # rows of 16 pixels
        (ClassWeightedCrossEntropy(weight), logits, labels, 1e-5),
        (nn.CrossEntropyLoss(), logits, torch.softmax(torch.randn(300, 5), 1), 1e-6),
        (nn.MSELoss(), values, targets, 1e-6),
        (nn.L1Loss(), values, targets, 1e-6),
    ]


def test_unreduced_row_losses_equal_the_per_row_loop():
    from trainwise.tune.short_run_noise import _row_weights, looped_row_losses, row_losses
    for loss_fn, outputs, targets, rtol in _losses_to_compare():
        looped = looped_row_losses(loss_fn, outputs, targets,
                                   _row_weights(loss_fn, targets))
        fast = row_losses(loss_fn, outputs, targets)
        np.testing.assert_allclose(fast, looped, rtol=rtol, atol=1e-7,
                                   err_msg=type(loss_fn).__name__)
        if rtol == 0.0:
            assert fast == looped  # bit-equal for the plain cross-entropy
        assert getattr(loss_fn, "reduction", "mean") == "mean"  # the user's loss untouched


def test_row_losses_call_the_loss_once_for_the_standard_losses(monkeypatch):
    calls = []
    loss_fn = nn.CrossEntropyLoss()
    original = nn.CrossEntropyLoss.forward
    monkeypatch.setattr(nn.CrossEntropyLoss, "forward",
                        lambda self, *a: calls.append(1) or original(self, *a))
    from trainwise.tune.short_run_noise import row_losses
    row_losses(loss_fn, torch.randn(500, 4), torch.randint(0, 4, (500,)))
    assert len(calls) == 1  # was 500: one call per row


def test_the_noise_word_names_the_rule_that_decided():
    """Review s13 final F2: a runner-up refused only by the 1.25x ceiling was said "beyond
    noise" with a gap under its own 2-se bound; a tie made only by the 1% floor "within
    noise" with a gap over it."""
    ceiling = _result({0.01: 0.10, 0.02: 0.14}, 0.01, 0.8, 144)  # gap 0.04 < 2 se 0.13
    settle_within_noise(ceiling, 0.02, False)
    said = ceiling.findings[0].message
    assert "trails the best by 0.04: over 25% of the best's loss, so the pick is kept (a gap " \
        "that size is not counted as a tie), but under the noise of 144 validation rows (2 " \
        "standard errors: 0.13), so the pick is not measurably better than the runner-up; " \
        "more validation rows would settle it." in said
    # audit s16 N22: one verdict, not "never a tie" beside "the noise bound is wider still"
    assert "never a tie" not in said and "wider still" not in said and "never)" not in said
    assert "beyond noise" not in said
    assert "within noise" not in said  # audit s15 K1: "within noise ... so no tie" read as a
    # contradiction: under the bound is a tie in the message's own words
    floor = _result({0.01: 1.000, 0.02: 1.005}, 0.01, 0.0001, 600)  # 2 se ~1e-5, floor 0.01
    settle_within_noise(floor, 0.02, False)
    assert "a tie (under 1% of the loss): 0.01 to 0.02 cannot be told apart" in \
        floor.findings[0].message


def test_the_indistinguishable_note_counts_rows_as_the_short_runs_finding_does():
    """Review s13 final F3: 'on 2000 validation rows' when the scores average 10000."""
    flat = _result({0.01: 1.0, 0.02: 1.001, 0.04: 1.002}, 0.04, 0.001, 2000)
    flat.val_rows = 10000
    settle_within_noise(flat, 0.02, False)
    (note,) = [f for f in flat.findings if f.code == "short_runs_indistinguishable"]
    assert "on the first 2000 of 10000 validation rows" in note.message
    assert note.evidence["val_rows"] == 10000
