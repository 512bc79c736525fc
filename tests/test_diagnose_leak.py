"""validation_leak: a validation set drawn from the training rows, told from the epoch losses.

tests/data/mnist1d_leaked_validation.json.gz holds the epoch rows of two real runs of one user
loop (MNIST-1D, 2000 training rows, 40-128-10 MLP, AdamW 3e-3, 60 epochs, seed 0): validated
on 400 of its own training rows ("leaked") and on held-out rows ("held_out"). The training is
the same in both; only the validation loss differs (0.17 against 1.80 at the end).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from run_words import diagnose
from trainwise.findings import Severity
from trainwise.train.diagnose_leak import rule_validation_leak

DATA = Path(__file__).parent / "data"


def _read(name: str) -> object:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as text:
        if name.endswith(".jsonl.gz"):
            return [json.loads(line) for line in text]
        return json.load(text)


@pytest.fixture(scope="module")
def runs() -> dict[str, list[dict]]:
    return _read("mnist1d_leaked_validation.json.gz")


def test_validation_cut_from_the_training_rows_is_a_warning(runs):
    (found,) = [f for f in diagnose(runs["leaked"]) if f.severity is not Severity.INFO]
    assert found.code == "validation_leak" and found.severity is Severity.WARNING
    assert found.evidence["median_val_train_ratio"] <= 1.0
    assert found.evidence["share_at_or_below"] >= 0.7
    assert "split stage" in found.fix
    # the first epoch judged: the training loss past a quarter of its first epoch's
    train = [row["train_loss"] for row in runs["leaked"]]
    first = next(i for i in range(len(train) - 1)
                 if (train[i] * train[i + 1]) ** 0.5 <= 0.25 * train[0])
    assert found.step == runs["leaked"][first]["step"]


def test_held_out_validation_of_the_same_training_is_not(runs):
    assert rule_validation_leak(runs["held_out"]) == []


def test_too_early_to_tell_before_the_training_loss_fell_far(runs):
    """The audit's 25-epoch run: validation tracked training (0.59 against 0.62), but the
    training loss had only fallen to 30% of its first epoch's: a model that has learned
    little shows no gap on held-out rows either (the zoo's GRU: 0.95-1.0)."""
    assert rule_validation_leak(runs["leaked"][:25]) == []


@pytest.mark.parametrize("name", ["mnist1d_default_history.jsonl.gz",
                                  "digits_shuffled_history.jsonl.gz",
                                  "breast_cancer_history.jsonl.gz"])
def test_built_in_baselines_with_dropout_stay_quiet(name):
    """Dropout raises the training-mode loss: the digits baseline's validation loss sits at
    1.02x the end-of-epoch training loss, below it in 3 of 7 epochs; breast_cancer's 46
    validation rows score a third of the training loss in every epoch (it was flagged)."""
    assert rule_validation_leak(_read(name)) == []
