"""When a model that learned nothing points at the data, not at training.

Audit s15 M7: labels drawn at random (noise.csv, 3 classes). The tune stage said no short run
lowered the validation loss at any lr (short_runs_no_learning: "go back to the data"), the
logistic regression fitted beside the network scored 34.7% against chance 33.3%, and the
evaluate stage's fix still said "the fault is in training". METHOD's preamble: when a stage
stalls, the fault is usually one stage earlier. A line at chance too, or short runs that
learned at no lr, is the run's own evidence that the inputs say nothing about the labels;
the fix then leads with the data stage, and the lr comes second. So does a network no better
than the line, where the train stage's capacity note said to grow the model (M2).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

import numpy as np

from trainwise.findings import Finding
from trainwise.train.intervals import at_chance

# the history's test-row key: the linear reference's balanced accuracy is no better than 1 / k
LINEAR_AT_CHANCE = "test_linear_at_chance"


def linear_at_chance(matrix: np.ndarray) -> bool:
    """The linear reference's (C, C) test confusion matrix (row = true class) tells the
    classes apart no better than a constant answer: its balanced accuracy at chance over the
    classes present, by the rule the network's verdict uses (intervals.at_chance)."""
    support, right = matrix.sum(axis=1), np.diagonal(matrix)
    present = support > 0
    if present.sum() < 2:  # one class on test: chance is 100%, nothing to judge
        return False
    balanced = float((right[present] / support[present]).mean())
    return at_chance(balanced, int(present.sum()), support[present].tolist(),
                     right[present].tolist())


def data_evidence(row: dict[str, object], tune_codes: Collection[str]) -> str:
    """Why the data comes first, from the test row (the linear reference's keys) and the
    codes the tune stage reported; '' when neither says so."""
    said = []
    if row.get(LINEAR_AT_CHANCE):
        said.append("a linear model fitted on the same training rows is at chance too "
                    f"(balanced accuracy {row.get('test_linear_balanced_accuracy', 0):.1%})")
    if "short_runs_no_learning" in tune_codes:
        said.append("the tune stage's short runs lowered the validation loss at no learning "
                    "rate (short_runs_no_learning)")
    return "; ".join(said)


def data_first_fix(evidence: str, used: str) -> str:
    """The learned-nothing fix led by the data stage (`evidence`: data_evidence's text;
    `used`: "peak 0.01; " or "", the lr training used)."""
    return (f"The run's own evidence points one stage earlier, at the data: {evidence}. Go "
            "back to the data stage first: do the labels follow the inputs (a shuffled or "
            "misaligned target column, the wrong column named as data.target)? Do the features "
            "carry any signal for the label (plot a few against it: trainwise audit)? Only once "
            "they do, read the train stage's findings and check the learning rate training used "
            f"({used}train.lr = \"auto\" measures one with the range test).")


# Audit s15 M2: weak.csv (label = 1[x0 + 2 noise > 0], about 65% at best) ended with the train
# stage's capacity note "grow the model" beside a line scoring 65.0% to the network's 63.7%.
# A network no better than a line is direct evidence that its size is not the limit.
CAPACITY_ANSWER = (
    "The train stage's capacity note said to grow the model; a line that does as well says "
    "more capacity will not help here. Look at the features and labels first (data stage: "
    "labels that a model cannot predict from these inputs, noisy or ambiguous labels, "
    "features with little signal for the target), and grow the model only if they are sound.")


def capacity_answered(finding: Finding, train_codes: Collection[str]) -> Finding:
    """below_linear_reference (the network level with or behind the line) when the train
    stage reported `capacity`: its fix leads with the data stage, not with a bigger model;
    any other finding comes back unchanged."""
    if finding.code != "below_linear_reference" or "capacity" not in train_codes:
        return finding
    return replace(finding, fix=f"{CAPACITY_ANSWER} {finding.fix}".strip(),
                   evidence={**finding.evidence, "answers": "capacity"})
