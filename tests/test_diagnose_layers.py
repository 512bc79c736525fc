"""The diagnosis extensions of issue 5: per-layer vanishing gradients, the samples of a spike or
a NaN in the evidence, a spike that opened a loss explosion, ordered batches, a saturating
overfit. Histories are synthetic rows in the loop's format (docs/run_folder.md)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from trainwise.findings import Severity
from trainwise.train.diagnose import diagnose
from trainwise.train.diagnose_confidence import rule_underconfidence
from trainwise.train.diagnose_layers import rule_vanishing_layers
from trainwise.train.diagnose_order import (
    order_threshold,
    repeat_correlation,
    rule_ordered_batches,
)
from trainwise.train.diagnose_val import rule_overfitting

STEPS, PER_EPOCH = 400, 20


def steps(loss: np.ndarray, grad: np.ndarray, lr: np.ndarray | None = None,
          layers: dict[str, np.ndarray] | None = None, every: int = 10) -> list[dict]:
    rows = []
    for i in range(len(loss)):
        row = {"kind": "step", "step": i + 1, "epoch": i // PER_EPOCH + 1,
               "loss": float(loss[i]), "grad_norm": float(grad[i]),
               "lr": float(lr[i]) if lr is not None else 1e-3}
        if layers and (i == 0 or (i + 1) % every == 0):
            row["layer_grad_norms"] = {name: float(v[i]) for name, v in layers.items()}
        rows.append(row)
    return rows


def noisy(rng: np.random.Generator, level: np.ndarray | float, sigma: float = 0.1) -> np.ndarray:
    return level * np.exp(rng.normal(0, sigma, STEPS))


def test_dead_first_layers_are_named_while_the_global_norm_looks_normal():
    rng = np.random.default_rng(0)
    loss, grad = noisy(rng, 2.3, 0.02), noisy(rng, 0.5)  # plateau; the head's norm only
    layers = {"0": np.zeros(STEPS), "2": noisy(rng, 1e-6), "4": grad}
    found = diagnose(steps(loss, grad, layers=layers))
    assert [f.code for f in found if f.severity is not Severity.INFO] == ["vanishing_gradients"]
    evidence = found[0].evidence
    assert evidence["layers"] == ["0", "2"] and evidence["largest_layer"] == "4"
    assert evidence["per_layer"] and found[0].step == 1
    assert not evidence["dead"]  # layer "2" is tiny, not zero


def test_frozen_layers_neither_count_nor_hide_the_dead_ones():
    """A frozen backbone's layers log NaN (no gradient): the dead layer is still named, and
    "of N layers" counts the trained ones; with only frozen layers beside it, a vanished
    gradient everywhere trained is left to the global rule."""
    rng = np.random.default_rng(0)
    loss, grad = noisy(rng, 2.3, 0.02), noisy(rng, 0.5)
    frozen = {f"backbone.{k}": np.full(STEPS, np.nan) for k in range(3)}
    layers = {**frozen, "0": np.zeros(STEPS), "4": grad}
    (finding,) = rule_vanishing_layers(steps(loss, grad, layers=layers))
    assert finding.evidence["layers"] == ["0"] and finding.evidence["num_layers"] == 2
    assert "1 of 2 trained layers" in finding.message
    only_dead = {**frozen, "0": np.zeros(STEPS), "4": np.zeros(STEPS)}
    assert rule_vanishing_layers(steps(loss, grad, layers=only_dead)) == []


def test_healthy_spread_recovery_convergence_and_all_layers_stay_quiet():
    rng = np.random.default_rng(1)
    t = np.arange(STEPS) / STEPS
    loss, grad = noisy(rng, 0.1 + 2.2 * np.exp(-5 * t)), noisy(rng, 1.0)
    spread = {"0": grad / 30, "2": grad / 3, "4": grad}  # 30x apart: ordinary
    assert rule_vanishing_layers(steps(loss, grad, layers=spread)) == []
    recovers = {"0": np.where(t < 0.6, 1e-6, 0.3), "4": grad}  # dead early, alive at the end
    assert rule_vanishing_layers(steps(loss, grad, layers=recovers)) == []
    converged = noisy(rng, 2.3 * np.exp(-12 * t))  # loss at 0.001% of its start
    tiny = {"0": grad * 1e-5, "4": grad}
    assert rule_vanishing_layers(steps(converged, grad, layers=tiny)) == []
    everywhere = {"0": np.zeros(STEPS), "4": np.zeros(STEPS)}  # the global rule's case
    assert rule_vanishing_layers(steps(noisy(rng, 2.3, 0.02), grad, layers=everywhere)) == []


def _with_samples(rows: list[dict], step: int, indices: list[int]) -> list[dict]:
    rows[step - 1]["sample_indices"] = indices
    return rows


def test_spike_evidence_and_message_name_the_batch_samples():
    rng = np.random.default_rng(2)
    t = np.arange(STEPS) / STEPS
    loss, grad = noisy(rng, 0.1 + 2.2 * np.exp(-5 * t)), noisy(rng, 1.0)
    grad[199] *= 200
    rows = _with_samples(steps(loss, grad), 200, list(range(100, 164)))
    found = [f for f in diagnose(rows) if f.code == "gradient_spike"]
    assert found[0].evidence["sample_indices"] == list(range(100, 164))
    assert found[0].evidence["sample_indices_step"] == 200
    assert "samples 100, 101" in found[0].message and "..." in found[0].message


def test_divergence_evidence_carries_the_nan_batch_samples():
    rng = np.random.default_rng(3)
    loss, grad = noisy(rng, 1.0)[:50], noisy(rng, 1.0)[:50]
    loss[49] = grad[49] = np.nan
    found = diagnose(_with_samples(steps(loss, grad), 50, [7, 8, 9]))
    assert found[0].code == "divergence" and found[0].evidence["sample_indices"] == [7, 8, 9]


def _exploding(rng: np.random.Generator, spikes: list[int]) -> list[dict]:
    """Loss falls to 0.3, jumps at step 150 and decays back: one wrecked update."""
    t = np.arange(STEPS)
    base = 0.3 + 2.0 * np.exp(-t / 30)
    loss = noisy(rng, np.where(t < 150, base, 0.3 + 3.0 * np.exp(-(t - 150) / 60)), 0.05)
    grad = noisy(rng, 1.0)
    for step in spikes:
        grad[step - 1] *= 500
    return steps(loss, grad)


def test_a_spike_that_opens_a_loss_explosion_is_the_cause():
    found = [f for f in diagnose(_exploding(np.random.default_rng(4), [151]))
             if f.severity is not Severity.INFO]
    assert [f.code for f in found] == ["gradient_spike"]
    assert found[0].evidence["also_seen"] == ["loss_exploding"]
    chronic = diagnose(_exploding(np.random.default_rng(4), [40, 90, 151, 200, 260]))
    assert chronic[0].code == "loss_exploding"  # many spikes: instability, not one batch


def test_ordered_batches_are_found_but_not_under_warm_restarts_every_epoch():
    rng = np.random.default_rng(5)
    t = np.arange(STEPS) / STEPS
    position = np.arange(STEPS) % PER_EPOCH % 4  # 5 class blocks of 4 steps per epoch
    loss = noisy(rng, (0.2 + 2 * np.exp(-4 * t)) * np.exp(1.0 - 0.5 * position))
    grad = noisy(rng, 1.0)
    found = rule_ordered_batches(steps(loss, grad))
    assert [f.code for f in found] == ["ordered_batches"] and found[0].step == PER_EPOCH + 1
    assert found[0].evidence["repeat_correlation"] > 0.9
    assert rule_ordered_batches(steps(noisy(rng, 0.2 + 2 * np.exp(-4 * t)), grad)) == []
    restarts = 1e-3 * (1 + np.cos(np.pi * (np.arange(STEPS) % PER_EPOCH) / PER_EPOCH)) / 2
    assert rule_ordered_batches(steps(loss, grad, lr=restarts + 1e-5)) == []


DIGITS = Path(__file__).parent / "data" / "digits_shuffled_history.jsonl.gz"


def test_a_short_last_batch_on_a_shuffled_loader_is_not_an_order():
    """The audit's run (`trainwise run`, digits, 12 epochs, lr 0.003; step and epoch rows):
    a shuffled loader of ten batches of 128 and one of 14 per epoch. The loss falls steeply
    within the early epochs and the 14-row batch reads about +0.5 in log-loss every epoch, at
    the same position: over all 11 positions the epochs correlate 0.57, read as an order."""
    with gzip.open(DIGITS, "rt", encoding="utf-8") as lines:
        history = [json.loads(line) for line in lines]
    rows = [r for r in history if r["kind"] == "step"]
    losses = np.log([[r["loss"] for r in rows if r["epoch"] == e] for e in range(1, 13)])
    assert repeat_correlation(losses) > 0.5  # what the rule read before
    assert rule_ordered_batches(history) == []
    no_sizes = [{k: v for k, v in row.items() if k != "batch_size"} for row in history]
    assert rule_ordered_batches(no_sizes) == []  # a loop that does not log batch sizes


def test_the_order_threshold_holds_shuffled_runs_of_few_steps_and_epochs():
    """Shuffled batches: the per-position losses are independent draws. Over 3-4 epochs of 8-12
    steps the median correlation alone passes 0.5 in 1-4% of runs; the threshold, raised with
    the chance spread, lets none of 400 through, while 24 steps x 6 epochs keep 0.5."""
    rng = np.random.default_rng(0)
    for epochs, per_epoch in ((3, 8), (4, 10), (6, 12), (12, 11)):
        threshold = order_threshold(epochs, per_epoch)
        chance = [repeat_correlation(rng.normal(size=(epochs, per_epoch))) for _ in range(400)]
        assert max(chance) < threshold
    assert order_threshold(6, 24) == 0.5 and order_threshold(3, 8) > 1


# The audit's under-trained model (wine, 13-32-3 MLP returning logits, 15 steps at lr 0.01):
# validation accuracy 1.00, mean confidence stalled at 0.57, its last epoch's histogram
WINE_HIST = [0] * 8 + [2, 1, 3, 4, 1, 0, 2, 1] + [0] * 4  # 14 rows, top bin [0.75, 0.80)
CAPPED_HIST = [0] * 8 + [2, 1, 3, 8] + [0] * 8  # the same, none above 0.60: what a softmax
# before the loss allows for 3 classes is e / (e + 2) = 0.576


def _stalled(hist: list[int], classes: int | None) -> list[dict]:
    rows = _val_rows([1.0] * 4, [0.567, 0.573, 0.574, 0.574])
    for row in rows:
        row["val_confidence_hist"] = hist
        if classes:
            row["num_classes"] = classes
    return rows


def test_underconfidence_of_raw_logits_says_train_longer_not_remove_a_softmax():
    (found,) = rule_underconfidence(_stalled(WINE_HIST, 3))
    assert found.evidence["squash_cap"] == pytest.approx(np.e / (np.e + 2), abs=1e-4)
    assert found.evidence["outputs_squashed"] is False
    assert "raw logits" in found.fix and "remove a softmax" not in found.fix
    assert "train.max_epochs" in found.fix and "aise the learning rate" in found.fix
    (unknown,) = rule_underconfidence(_stalled(WINE_HIST, None))  # C = 2: 0.73 < 0.75
    assert unknown.evidence["outputs_squashed"] is False
    (capped,) = rule_underconfidence(_stalled(CAPPED_HIST, 3))
    assert capped.evidence["outputs_squashed"] is True
    assert capped.fix.startswith("The outputs are squashed before the loss: remove a softmax")


def test_underconfidence_of_raw_logits_is_a_symptom_of_too_low_an_lr():
    """A slow run whose outputs are logits: lr_too_low is the cause, under-confidence folds
    into it (with squashed outputs it is the other way round)."""
    rng = np.random.default_rng(0)
    history = steps(noisy(rng, 2.3 - np.linspace(0, 0.5, STEPS), 0.02), noisy(rng, 1.0),
                    lr=np.full(STEPS, 1e-6))
    accuracy = np.linspace(0.3, 1.0, STEPS // PER_EPOCH).tolist()
    for row in _val_rows(accuracy, [0.4] * (len(accuracy) - 4) + [0.57] * 4):
        row["step"] = row["epoch"] * PER_EPOCH
        history.append({**row, "val_confidence_hist": WINE_HIST, "num_classes": 3})
    found = [f for f in diagnose(history) if f.severity is not Severity.INFO]
    assert [f.code for f in found] == ["lr_too_low"]
    assert "underconfidence" in found[0].evidence["also_seen"]


def test_a_saturating_rise_of_the_validation_loss_is_overfitting():
    """64 images memorised: val loss lowest near epoch 10, then rising to 0.9 and flattening
    (a straight line fits the rise badly; the epoch-to-epoch noise is what matters)."""
    epochs = np.arange(1, 61)
    val = np.where(epochs <= 9, 2.0 * np.exp(-(epochs - 1) / 4) + 0.3,
                   0.9 - 0.55 * np.exp(-(epochs - 9) / 8))
    train = 2.0 * np.exp(-epochs / 2)
    rows = [{"kind": "epoch", "epoch": int(e), "step": int(e) * 2, "val_loss": float(v),
             "train_loss": float(tl)} for e, v, tl in zip(epochs, val, train, strict=True)]
    found = rule_overfitting(rows)
    assert [f.code for f in found] == ["overfitting"]
    assert found[0].evidence["best_epoch"] == int(np.argmin(val)) + 1


def _val_rows(accuracy: list[float], confidence: list[float]) -> list[dict]:
    return [{"kind": "epoch", "epoch": e + 1, "step": 10 * (e + 1), "val_loss": 1.0,
             "val_accuracy": a, "val_mean_confidence": c}
            for e, (a, c) in enumerate(zip(accuracy, confidence, strict=True))]


def test_underconfidence_needs_a_lasting_gap_at_a_stalled_confidence():
    squashed = _val_rows([0.5, 0.8, 0.85, 0.87, 0.88], [0.15, 0.2, 0.21, 0.22, 0.22])
    found = rule_underconfidence(squashed)
    assert [f.code for f in found] == ["underconfidence"] and found[0].step == 10
    catching_up = _val_rows([0.82, 0.89, 0.91], [0.27, 0.58, 0.76])  # a healthy first 3 epochs
    assert rule_underconfidence(catching_up) == []
    assert rule_underconfidence(squashed[:2]) == []  # too early to tell
