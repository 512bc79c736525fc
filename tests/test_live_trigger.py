"""A validation loss far above its best is diagnosed live at once (user audit s15 B13: on
0.02 s epochs the CPU share alone put the overfitting line at epoch 22-29, where diagnose()
found it at epoch 9)."""

from __future__ import annotations

from types import SimpleNamespace

import trainwise.train.live_diagnosis as live_module
import trainwise.train.monitor_findings as monitor_module
from trainwise.train.diagnose import diagnose
from trainwise.train.live_diagnosis import LiveDiagnosis
from trainwise.train.live_trigger import ValRiseTrigger
from trainwise.train.monitor_findings import MonitorFindings

# best 0.8 at epoch 2; 1.05 > 1.25 x 0.8 = 1.0 at epoch 4 sets it off for 3 epochs; the next
# rise must pass 1.5 x 1.05 = 1.575: 1.5 does not, 1.6 does
VAL = [1.0, 0.8, 0.9, 1.05, 1.0, 1.0, 1.0, 1.5, 1.6, 1.4]
DUE = [False, False, False, True, True, True, False, False, True, True]


def test_a_rise_forces_three_diagnoses_and_rearms_higher():
    trigger = ValRiseTrigger()
    assert [trigger.due(v) for v in VAL] == DUE


def test_no_validation_loss_forces_nothing():
    trigger = ValRiseTrigger()
    assert [trigger.due(v) for v in (None, float("nan"), 1.0, None)] == [False] * 4


def _rows() -> list[dict]:
    # the training loss falls throughout: its own trigger (above epoch 1's) stays quiet
    return [{"kind": "epoch", "epoch": i + 1, "step": 10 * (i + 1), "train_loss": 1.0 / (i + 1),
             "val_loss": v} for i, v in enumerate(VAL)]


def test_fit_diagnoses_at_once_after_a_rise_whatever_the_share(monkeypatch):
    diagnosed = []

    def counting(history, **kwargs):
        diagnosed.append(history[-1]["epoch"])
        return diagnose(history, **kwargs)

    monkeypatch.setattr(live_module, "diagnose", counting)
    live = LiveDiagnosis(2, share=1e-12, stop=False)  # by the share: the first epoch only
    state = SimpleNamespace(should_stop=False, history=[])
    for row in _rows():
        state.history.append(row)
        live.on_epoch_end(state, row)
    assert diagnosed == [1] + [i + 1 for i, due in enumerate(DUE) if due]


def test_the_monitor_diagnoses_at_once_after_a_rise(monkeypatch):
    diagnosed = []
    monkeypatch.setattr(monitor_module, "diagnose_own_loop",
                        lambda history, classes: diagnosed.append(history[-1]["epoch"]) or [])
    monkeypatch.setattr(monitor_module, "LIVE_DIAGNOSIS_SHARE", 1e-12)
    found = MonitorFindings(SimpleNamespace(num_unusual=0, first_nonfinite_step=None), None,
                            console=False)
    history: list[dict] = []
    for row in _rows():
        history.append(row)
        found.after_epoch(history, 2)
    assert diagnosed == [1] + [i + 1 for i, due in enumerate(DUE) if due]


def test_the_trigger_follows_the_overfitting_rules_constants(monkeypatch):
    # review s15 VT9: VAL_RISE and FORCED_EPOCHS restated 1.25 and 3; a retuned OVERFIT_RISE
    # would have left the trigger firing where the rule cannot
    import importlib

    from trainwise.train import diagnose_val, live_trigger
    monkeypatch.setattr(diagnose_val, "OVERFIT_RISE", 0.4)
    monkeypatch.setattr(diagnose_val, "OVERFIT_PATIENCE", 5)
    try:
        reloaded = importlib.reload(live_trigger)
        assert (reloaded.VAL_RISE, reloaded.FORCED_EPOCHS) == (1.4, 5)
    finally:
        monkeypatch.undo()
        importlib.reload(live_trigger)
