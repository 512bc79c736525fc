"""A model that learned nothing beside a line at chance: the data stage first (audit s15 M7)."""

from __future__ import annotations

import json

import numpy as np

from trainwise.train.class_metrics import class_results
from trainwise.train.data_first import LINEAR_AT_CHANCE, data_evidence, linear_at_chance

# 3 balanced classes, 100 test rows each, answered at random: 34 right per class (34% vs 33.3%)
AT_CHANCE = [[34, 33, 33], [33, 34, 33], [33, 33, 34]]
TRAIN = np.repeat(np.arange(3), 360)
LEAD = "The run's own evidence points one stage earlier, at the data"


def test_the_line_at_chance_is_read_by_the_networks_rule():
    """34 of 100 per class: balanced accuracy 34%, within the interval's reach of 33.3%;
    70 of 100 per class is far above it."""
    assert linear_at_chance(np.array(AT_CHANCE))
    assert not linear_at_chance(np.array([[70, 15, 15], [15, 70, 15], [15, 15, 70]]))
    assert not linear_at_chance(np.array([[50, 0], [0, 0]]))  # one class: nothing to judge


def test_the_evidence_names_the_line_and_the_short_runs_only_when_they_hold():
    row = {LINEAR_AT_CHANCE: True, "test_linear_balanced_accuracy": 0.342}
    said = data_evidence(row, {"short_runs_no_learning"})
    assert "linear model fitted on the same training rows is at chance too (balanced " \
        "accuracy 34.2%)" in said and "short_runs_no_learning" in said
    assert data_evidence({LINEAR_AT_CHANCE: False}, {"lr_too_low"}) == ""
    assert "short_runs_no_learning" in data_evidence({}, {"short_runs_no_learning"})


def test_a_model_at_chance_beside_a_line_at_chance_is_sent_to_the_data_stage():
    """The audit's noise.csv: the fix said "the fault is in training" though the line and the
    short runs said the labels do not follow the inputs."""
    evidence = data_evidence({LINEAR_AT_CHANCE: True, "test_linear_balanced_accuracy": 0.34},
                             set())
    _, [finding] = class_results(AT_CHANCE, TRAIN, ["a", "b", "c"], lr=0.01,
                                 data_first=evidence)
    assert finding.code == "below_majority_baseline" and "learned nothing" in finding.message
    assert finding.fix.startswith(LEAD)
    assert finding.fix.index("data stage") < finding.fix.index("learning rate")
    assert "do the labels follow the inputs" in finding.fix and "peak 0.01" in finding.fix
    assert "fault is in training" not in finding.fix


def test_without_the_datas_evidence_training_leads_but_is_not_called_the_fault():
    _, [finding] = class_results(AT_CHANCE, TRAIN, ["a", "b", "c"], lr=0.01)
    assert finding.fix.startswith("Read the train stage's findings first")
    assert "fault is in training" not in finding.fix
    assert "labels follow the inputs" in finding.fix  # the data stage still named, after


def test_a_run_on_random_labels_leads_its_verdict_with_the_data_stage(tmp_path):
    """End to end: labels drawn independently of the features; the line scored beside the
    network is at chance, and the evaluate verdict's fix opens with the data stage."""
    import trainwise

    rng = np.random.default_rng(1)
    x = rng.normal(size=(900, 6)).astype(np.float32)
    y = rng.integers(0, 3, 900)
    result = trainwise.run(data=(x, y), report=False, overrides=[
        "train.max_epochs=2", "run.threads=1", "run.checks=false", "train.lr=0.01",
        "train.batch_size=64", f"run.out_dir=\"{tmp_path}\""])
    test = json.loads((result.path / "meta.json").read_text())["test"]
    assert test[LINEAR_AT_CHANCE] is True
    [verdict] = [f for f in result.findings if f.code == "below_majority_baseline"]
    assert verdict.fix.startswith(LEAD)


def _line_level_with_the_network():
    """The audit's weak.csv numbers: 191 of 300 right against the line's 195."""
    from trainwise.train.linear_reference import LinearFit, class_finding

    fit = LinearFit(np.zeros(300), "logistic regression", 1080, 1080)
    return class_finding(191, 195, 300, fit, (20, 16))


def test_a_line_as_good_as_the_network_answers_the_capacity_note_with_the_data_stage():
    """Audit s15 M2: the train stage said "grow the model" beside a line that scored as well."""
    from trainwise.train.data_first import CAPACITY_ANSWER, capacity_answered

    found = _line_level_with_the_network()
    assert found is not None and found.code == "below_linear_reference"
    answered = capacity_answered(found, {"capacity", "healthy"})
    assert answered.fix.startswith(CAPACITY_ANSWER)
    assert "more capacity will not help" in answered.fix and "data stage" in answered.fix
    assert answered.evidence["answers"] == "capacity"
    assert capacity_answered(found, {"healthy"}) == found  # no capacity note: nothing to answer


def test_a_run_where_a_line_does_as_well_does_not_end_on_grow_the_model(tmp_path):
    """End to end on the audit's weak.csv recipe: label = 1[x0 + 2 noise > 0]."""
    import trainwise

    rng = np.random.default_rng(1)  # the audit's make_noise.py, draw for draw
    x = rng.normal(size=(1500, 6))
    rng.choice(3, 1500)  # noise.csv's labels, drawn before weak.csv's noise
    y = (x[:, 0] + 2.0 * rng.normal(size=1500) > 0).astype(np.int64)
    result = trainwise.run(data=(x.astype(np.float32), y), report=False, overrides=[
        "train.max_epochs=20", "run.threads=1", "run.checks=false", "train.lr=0.0122",
        "train.batch_size=64", f"run.out_dir=\"{tmp_path}\""])
    codes = {f.code for f in result.findings}
    assert {"capacity", "below_linear_reference"} <= codes, codes
    [line] = [f for f in result.findings if f.code == "below_linear_reference"]
    assert "more capacity will not help" in line.fix
