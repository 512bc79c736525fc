"""loss_exploding on rare-positive batches (user audit s14 C3): small_fraud.csv, 600 rows with
12 positives, 16-row batches. A batch holding a positive scored 0.1-0.29, one without
0.003-0.007; the rule called the 3-step median's 0.19 at steps 39-40 an explosion (41x its
low of 0.0046) and folded the real collapse warning away. The losses below are that run's."""

from __future__ import annotations

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose import RULES, diagnose
from trainwise.train.diagnose_collapse import confirming_collapse

FRAUD_STEPS = [
    0.7199, 0.6928, 0.6499, 0.6343, 0.5808, 0.5111, 0.4429, 0.3593, 0.3903, 0.1989, 0.3726,
    0.0998, 0.0652, 0.039, 0.1635, 0.1241, 0.0118, 0.0127, 0.009, 0.0073, 0.1111, 0.0046,
    0.0042, 0.1406, 0.0071, 0.2528, 0.1178, 0.0029, 0.1103, 0.0203, 0.0244, 0.0506, 0.0226,
    0.044, 0.0588, 0.0338, 0.0103, 0.065, 0.195, 0.1897, 0.004, 0.006, 0.0903, 0.0074, 0.0043,
    0.0577, 0.0095, 0.0081, 0.0046, 0.1478, 0.0681, 0.0907, 0.0028, 0.0132, 0.0113, 0.2885,
    0.0943, 0.0039, 0.0835, 0.0477, 0.0537, 0.0334, 0.0835, 0.0149, 0.0134, 0.0963, 0.0586,
    0.0118, 0.0579, 0.0081]
FRAUD_VAL = [0.108, 0.0467, 0.0485, 0.0375, 0.0393]  # epochs 1-5, 14 steps each


def _history(losses: list[float], val: list[float]) -> list[dict]:
    rows = [{"kind": "step", "step": i + 1, "epoch": i // 14 + 1, "loss": v}
            for i, v in enumerate(losses)]
    # 47 negatives and 1 positive in validation, all answered negative: a collapse
    counts = {"rows": [1, 47], "right": [0, 47], "predicted": [0, 48]}
    rows += [{"kind": "epoch", "epoch": e + 1, "step": 14 * (e + 1), "val_loss": v,
              "val_accuracy": 47 / 48, "val_balanced_accuracy": 0.5,
              "val_class_counts": counts, "val_roc_auc": 0.98} for e, v in enumerate(val)]
    return rows


def test_batches_with_and_without_a_rare_positive_are_not_an_explosion():
    history = _history(FRAUD_STEPS, FRAUD_VAL)
    assert RULES["loss_exploding"](history) == []
    # the collapse the explosion hid is the run's warning
    assert [f.code for f in diagnose(history, num_classes=2)] == ["collapse"]


def test_the_same_swings_with_a_rising_validation_loss_still_explode():
    (finding,) = RULES["loss_exploding"](_history(FRAUD_STEPS, [0.108, 0.0467, 0.3, 0.4, 0.5]))
    assert finding.evidence["val_loss_rose"] is True and finding.evidence["peak_step"] == 39


def test_an_explosion_that_stays_does_not_hide_a_collapse_the_validation_loss_never_shared():
    # the loss rises 20x at step 40 and stays there, the validation loss keeps falling
    losses = FRAUD_STEPS[:39] + [0.1] * 31
    history = _history(losses, FRAUD_VAL)
    codes = {f.code: f for f in diagnose(history, num_classes=2)}
    assert codes["loss_exploding"].evidence["val_loss_rose"] is False
    assert "collapse" in codes


def test_the_test_split_confirms_only_a_collapse_the_train_stage_reported():
    verdict = Finding("evaluate", Severity.WARNING, "argmax_misses_classes", "Misses 1.", {}, "")
    history = _history(FRAUD_STEPS, FRAUD_VAL)
    assert confirming_collapse(verdict, history).evidence["confirms"] == "collapse"
    # a NaN at the last step: divergence explains (and hides) the collapse
    diverged = _history([*FRAUD_STEPS[:-1], float("nan")], FRAUD_VAL)
    assert "collapse" not in [f.code for f in diagnose(diverged)]
    assert confirming_collapse(verdict, diverged) is verdict


def _burst_history() -> list[dict]:
    # a loss settled at ~0.03 that runs 100x (3, 4, 5, 2) for steps 46-49, then returns
    settled = [0.7 * 0.9 ** i for i in range(30)] + [0.03 + 0.006 * (i % 5) / 5
                                                      for i in range(30)]
    losses = settled[:45] + [3.0, 4.0, 5.0, 2.0] + settled[49:]
    return [{"kind": "step", "step": i + 1, "epoch": 1, "loss": v} for i, v in enumerate(losses)]


def test_a_burst_with_no_validation_to_judge_by_still_explodes():
    # review s14 VT2: no epoch row means no evidence the model stayed sound, not evidence it did
    history = _burst_history()
    (finding,) = RULES["loss_exploding"](history)
    assert finding.evidence["val_loss_rose"] is None
    with_one_epoch = [*history, {"kind": "epoch", "epoch": 1, "step": 60, "val_loss": 0.03}]
    assert [f.code for f in RULES["loss_exploding"](with_one_epoch)] == ["loss_exploding"]


def test_an_overfit_epochs_after_the_swing_does_not_bring_the_explosion_back():
    # review s14 VT1: epoch 5 (step 70) rises to 0.06; epoch 3, right after step 39, fell
    history = _history(FRAUD_STEPS, [0.108, 0.0467, 0.0485, 0.0375, 0.06])
    assert RULES["loss_exploding"](history) == []
    assert [f.code for f in diagnose(history, num_classes=2)] == ["collapse"]
