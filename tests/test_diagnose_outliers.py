"""Single-batch outliers on a real history: the warm-up guard of the spike rule, and dips.

tests/data/mnist1d_default_history.jsonl.gz is the history of the default `trainwise run`
(MNIST-1D, one-cycle schedule, 97.8% test accuracy; step and epoch rows, numbers cut to 4
significant digits) in which CI saw a false gradient_spike: a 6x bounce at step 234 of the
one-cycle warm-up. Faults are written into copies of it where a real fault would show.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest

from run_words import diagnose
from trainwise.train import diagnose_grad
from trainwise.train.diagnose import RULES
from trainwise.train.diagnose_dip import epoch_end_steps
from trainwise.train.diagnose_grad import warmup_steps

HISTORY = Path(__file__).parent / "data" / "mnist1d_default_history.jsonl.gz"
BOUNCE_STEP = 234  # the CI false positive: 6.0x the trailing median, lr still rising


@pytest.fixture(scope="module")
def recorded() -> list[dict]:
    with gzip.open(HISTORY, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.fixture
def history(recorded: list[dict]) -> list[dict]:
    return copy.deepcopy(recorded)


def _row(history: list[dict], step: int) -> dict:
    (row,) = [r for r in history if r["kind"] == "step" and r["step"] == step]
    return row


def _problems(history: list[dict]) -> list[tuple[str, int | None]]:
    return [(f.code, f.step) for f in diagnose(history, num_classes=10)
            if f.severity.value != "info"]


def test_the_recorded_healthy_run_gets_no_warning(history: list[dict]) -> None:
    assert _problems(history) == []
    assert [f.code for f in diagnose(history, num_classes=10)] == ["healthy"]


def test_the_ci_false_positive_is_reproduced_without_the_warmup_guard(
        history: list[dict], monkeypatch: pytest.MonkeyPatch) -> None:
    """Proof that the fixture holds the bounce and the guard is what silences it."""
    monkeypatch.setattr(diagnose_grad, "SPIKE_RATIO_WARMUP", diagnose_grad.SPIKE_RATIO)
    (finding,) = RULES["gradient_spike"](history)
    assert finding.step == BOUNCE_STEP and finding.evidence["max_ratio"] == pytest.approx(6.0,
                                                                                       abs=0.05)


def test_warmup_ends_where_the_one_cycle_lr_reaches_its_peak(history: list[dict]) -> None:
    steps = [r["step"] for r in history if r["kind"] == "step"]
    lrs = [r["lr"] for r in history if r["kind"] == "step"]
    end = warmup_steps(history)
    assert end is not None and BOUNCE_STEP < end <= steps[lrs.index(max(lrs))]
    assert lrs[steps.index(end)] >= 0.99 * max(lrs)
    for row in history:
        if row["kind"] == "step":
            row["lr"] = 0.01
    assert warmup_steps(history) is None  # a constant lr has no warm-up


def test_a_corrupt_batch_inside_the_warmup_still_spikes(history: list[dict]) -> None:
    # a batch scaled 1000x that the model gets wrong: the zoo measured 500-10000x norms
    row = _row(history, 150)
    row["grad_norm"] *= 300
    row["loss"] *= 50
    row["sample_indices"] = [3, 1, 2]
    codes = _problems(history)
    assert ("gradient_spike", 150) in codes
    (spike,) = [f for f in diagnose(history) if f.code == "gradient_spike"]
    assert spike.evidence["sample_indices"] == [3, 1, 2]
    assert spike.evidence["warmup_end_step"] == warmup_steps(history)


def test_a_batch_fitted_to_zero_is_a_dip_with_its_samples(history: list[dict]) -> None:
    row = _row(history, 400)
    row.update(loss=0.0, grad_norm=0.0, sample_indices=[17, 4, 99])
    (finding,) = [f for f in diagnose(history, num_classes=10) if f.severity.value != "info"]
    assert (finding.code, finding.step) == ("gradient_dip", 400)
    assert finding.evidence["dip_steps"] == [400]
    assert finding.evidence["sample_indices"] == [17, 4, 99]
    assert "17, 4, 99" in finding.message and "data stage" in finding.fix


def test_a_dip_needs_both_loss_and_gradient_to_collapse(history: list[dict]) -> None:
    _row(history, 400)["loss"] = 0.0  # a logging glitch: the gradient says the batch trained
    _row(history, 420)["grad_norm"] = 0.0  # a skipped step (AMP overflow): loss was normal
    assert RULES["gradient_dip"](history) == []


def test_the_short_last_batch_of_an_epoch_may_reach_zero(history: list[dict]) -> None:
    ends = sorted(epoch_end_steps(history))
    assert ends[:3] == [29, 58, 87]  # 29 batches of 128 per epoch
    _row(history, ends[10]).update(loss=0.0, grad_norm=0.0)
    assert RULES["gradient_dip"](history) == []


def test_a_stretch_at_zero_is_not_a_dip(history: list[dict]) -> None:
    for step in range(400, 403):  # gradients dying is vanishing_gradients' business
        _row(history, step).update(loss=0.0, grad_norm=0.0)
    assert RULES["gradient_dip"](history) == []


def test_a_converged_run_may_fit_a_batch_to_zero(history: list[dict]) -> None:
    for row in history:
        if row["kind"] == "step" and row["step"] > 300:
            row["loss"] *= 1e-3  # ~1e-4: the run has memorised its training set
    _row(history, 400).update(loss=0.0, grad_norm=0.0)
    assert RULES["gradient_dip"](history) == []
