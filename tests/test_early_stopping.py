"""EarlyStopping: Keras semantics (patience = epochs without improvement), resumable."""

from __future__ import annotations

import math

import pytest

from trainwise.train.early_stopping import EarlyStopping


def keras_reference(losses: list[float], patience: int, min_delta: float) -> int | None:
    """Keras 3 `EarlyStopping.on_epoch_end` (mode="min", no baseline), transcribed: the
    epoch at which it sets stop_training, or None."""
    best, wait = math.inf, 0
    for epoch, current in enumerate(losses):
        wait += 1
        if current - (-min_delta) < best:  # Keras flips min_delta's sign for mode="min"
            best, wait = current, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch
    return None


def run(stopper: EarlyStopping, losses: list[float]) -> int | None:
    for epoch, loss in enumerate(losses):
        stopper.update(epoch, loss)
        if stopper.should_stop:
            return epoch
    return None


CURVES = [
    [1.0, 0.8, 0.7, 0.71, 0.72, 0.73, 0.74],
    [1.0, 0.9, 0.95, 0.85, 0.86, 0.87, 0.80, 0.81, 0.82, 0.83],
    [1.0, 1.0, 1.0, 1.0],  # equal is not better
    [3.0, 2.0, 1.0, 0.5, 0.25],  # always improving: never stops
    [1.0, 0.999, 0.998, 0.997, 0.996],  # tiny gains, rejected by min_delta
]


@pytest.mark.parametrize("losses", CURVES)
@pytest.mark.parametrize("patience", [0, 1, 2, 3])
@pytest.mark.parametrize("min_delta", [0.0, 0.01])
def test_stops_where_keras_stops(losses, patience, min_delta):
    assert run(EarlyStopping(patience, min_delta), losses) == keras_reference(
        losses, patience, min_delta)


def test_update_reports_improvement_and_tracks_the_best():
    stopper = EarlyStopping(patience=2)
    assert [stopper.update(e, v) for e, v in enumerate([1.0, 0.5, 0.6, 0.4])] == [
        True, True, False, True]
    assert (stopper.best_epoch, stopper.best_loss, stopper.wait) == (3, 0.4, 0)


def test_patience_counts_epochs_without_improvement():
    stopper = EarlyStopping(patience=3)
    for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.6]):
        stopper.update(epoch, loss)
    assert not stopper.should_stop  # two epochs without improvement
    stopper.update(4, 0.7)
    assert stopper.should_stop and stopper.stopped_epoch == 4 and stopper.best_epoch == 1


def test_min_delta_is_the_smallest_decrease_that_counts():
    stopper = EarlyStopping(patience=5, min_delta=0.1)
    assert stopper.update(0, 1.0)
    assert not stopper.update(1, 0.95)
    assert stopper.update(2, 0.89)


def test_non_finite_loss_stops_at_once_unless_disabled():
    stopper = EarlyStopping(patience=10)
    stopper.update(0, 1.0)
    assert not stopper.update(1, float("nan"))
    assert stopper.should_stop and stopper.stopped_epoch == 1 and stopper.best_loss == 1.0
    lenient = EarlyStopping(patience=2, check_finite=False)
    assert run(lenient, [1.0, float("inf"), 0.5, float("nan"), float("nan")]) == 4


def test_state_dict_round_trip_resumes_like_an_uninterrupted_run():
    losses = [1.0, 0.8, 0.85, 0.7, 0.75, 0.76, 0.77, 0.78]
    uninterrupted = EarlyStopping(patience=3)
    expected = run(uninterrupted, losses)
    first = EarlyStopping(patience=3)
    for epoch, loss in enumerate(losses[:5]):
        first.update(epoch, loss)
    resumed = EarlyStopping(patience=99)  # the saved patience wins
    resumed.load_state_dict(first.state_dict())
    stopped = None
    for epoch, loss in enumerate(losses[5:], start=5):
        resumed.update(epoch, loss)
        if resumed.should_stop:
            stopped = epoch
            break
    assert stopped == expected == 6
    assert resumed.state_dict() == uninterrupted.state_dict()


def test_state_dict_is_plain_data():
    state = EarlyStopping(patience=2, min_delta=0.1).state_dict()
    assert all(isinstance(v, (int, float, bool, type(None))) for v in state.values())
    with pytest.raises(KeyError, match="state_dict"):
        EarlyStopping(patience=1).load_state_dict({"patience": 1})


@pytest.mark.parametrize(("patience", "min_delta"), [(-1, 0.0), (1.5, 0.0), (2, -0.1),
                                                     (2, float("nan"))])
def test_bad_arguments_say_what_is_expected(patience, min_delta):
    with pytest.raises(ValueError, match="must be"):
        EarlyStopping(patience, min_delta)


def _stop_reason_of(val_losses: list[float], patience: int, min_epochs: int) -> tuple[int, str]:
    """(epoch BestWeights stopped at, its stop reason) over epochs 1.. of `val_losses`."""
    from types import SimpleNamespace

    from torch import nn

    from trainwise.train.callbacks import BestWeights

    best = BestWeights(patience, min_epochs=min_epochs)
    state = SimpleNamespace(step=0, should_stop=False, stop_reason="")
    model = nn.Linear(2, 1)
    for epoch, loss in enumerate(val_losses, start=1):
        best.on_epoch_end(state, {"epoch": epoch, "val_loss": loss}, model)
        if state.should_stop:
            return epoch, state.stop_reason
    return 0, ""


def test_the_stop_reason_counts_the_epochs_since_the_best_when_patience_started_late():
    """Audit s12 L2: patience 2 counted from epoch 20, best at epoch 4: training stops at
    epoch 21, 17 epochs past the best, and the reason must say 17 (it said 2)."""
    losses = [0.5, 0.3, 0.2, 0.16] + [0.2 + 0.01 * i for i in range(26)]
    epoch, reason = _stop_reason_of(losses, patience=2, min_epochs=20)
    assert epoch == 21
    assert "no better validation loss for 17 epochs since epoch 4" in reason
    assert "train.patience = 2, counted from epoch 20" in reason


def test_the_stop_reason_without_a_delay_is_keras_count():
    epoch, reason = _stop_reason_of([0.5, 0.3, 0.4, 0.45, 0.5], patience=2, min_epochs=0)
    assert epoch == 4
    assert reason == ("early stopping at epoch 4: no better validation loss for 2 epochs "
                      "since epoch 2 (train.patience = 2)")


def test_one_helper_words_the_patience_delay():
    from trainwise.train.diagnose_common import patience_words

    assert patience_words(8, 26) == "train.patience = 8, counted from epoch 26"
    assert patience_words(8, 1) == patience_words(8, 0) == "train.patience = 8"


def test_the_trained_summary_says_the_delay_once_and_only_where_patience_could_act():
    """Review s12 VT4: the summary said "counted its patience (8 epochs) from epoch 2" for a
    2-epoch run (patience 8 can never fire) and "from epoch 8" for a run stopped at epoch 3,
    and said the delay a second time after an early stop's reason, which says it already."""
    from trainwise.stages_training import _patience_note
    from trainwise.train.callbacks import BestWeights

    def note(max_epochs: int, last_epoch: int, min_epochs: int, stopped: bool = False) -> str:
        best = BestWeights(8, min_epochs=min_epochs)
        best.early_stopping.should_stop = stopped
        return _patience_note(best, last_epoch, max_epochs)

    assert note(40, 40, 26) == (
        " Early stopping (train.patience = 8, counted from epoch 26) waited until one-cycle "
        "had annealed the lr to half its peak: before that the validation loss is noisy by "
        "design (train.schedule = \"cosine\" or \"constant\" counts from epoch 1).")
    assert note(40, 26, 26) != ""  # it reached the first epoch patience counts
    assert note(40, 25, 26) == ""  # stopped (time budget, live diagnosis) before it
    assert note(2, 2, 2) == ""  # 2 + 8 - 1 = 9 > 2 epochs: patience could never act
    assert note(12, 12, 8) == ""  # 8 + 8 - 1 = 15 > 12
    assert note(40, 33, 26, stopped=True) == ""  # the stop reason says it
    assert note(40, 40, 0) == ""  # counted from epoch 1, as a Keras user expects


def test_a_nan_validation_loss_never_stops_on_patience():
    """Why stop_reason has no NaN wording (review s12 VT3): on_epoch_end keeps a NaN from
    EarlyStopping, so patience never runs out on one; the loop stops on the NaN itself."""
    assert _stop_reason_of([0.5, 0.4, float("nan"), float("nan")], patience=1,
                           min_epochs=0) == (0, "")
