"""train.class_weights = "balanced": weights as scikit-learn's, torch's weighted cross-entropy
(a scale that does not move with a batch's count of rare rows), and weights taken from the
training split only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from trainwise.config import from_dict, to_toml
from trainwise.data.task import TaskData
from trainwise.model.baselines import loss_function
from trainwise.model.class_weights import (
    ClassWeightedCrossEntropy,
    balanced_class_weights,
    extreme_weights,
    extreme_weights_finding,
)
from trainwise.rundir import RunDir
from trainwise.stages import Arrays, RunContext, stage_model


def test_weights_match_sklearn_balanced_and_skip_an_absent_class() -> None:
    y = np.array([0] * 90 + [1] * 7 + [3] * 3)  # class 2 has no training row
    ours = balanced_class_weights(y, 4)
    present = np.array([0, 1, 3])
    expected = compute_class_weight("balanced", classes=present, y=y)
    np.testing.assert_allclose(ours[present].numpy(), expected, rtol=1e-6)
    assert ours[2] == 0
    assert float(ours[torch.tensor(y)].mean()) == pytest.approx(1.0)  # keeps the loss scale


def test_loss_is_torchs_weighted_cross_entropy_with_a_steady_scale() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 3, generator=generator)
    y = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0])
    weights = balanced_class_weights(y.numpy(), 3)
    loss = loss_function("classification", weights)
    assert isinstance(loss, ClassWeightedCrossEntropy)
    reference = torch.nn.CrossEntropyLoss(weight=weights)
    assert float(loss(logits, y)) == pytest.approx(float(reference(logits, y)))
    # uniform predictions: log C in every batch, however many rare rows it holds (the
    # loss-at-init check's expectation; a plain mean of weighted terms gave 0.6x-3x of it)
    for rows in (slice(0, 8), slice(6, 12), slice(0, 12)):
        assert float(loss(torch.zeros(12, 3)[rows], y[rows])) == pytest.approx(np.log(3))
    padded = torch.cat([y[:11], torch.tensor([-100])])  # ignore_index rows are left out
    assert float(loss(logits, padded)) == pytest.approx(float(reference(logits[:11], y[:11])))


def test_the_setting_is_documented_and_validated() -> None:
    assert from_dict({"train": {"class_weights": "balanced"}}).train.class_weights == "balanced"
    with pytest.raises(Exception, match="class_weights"):
        from_dict({}, ["train.class_weights=\"inverse\""])
    explained = to_toml(from_dict({}), notes=True)
    assert "n / (k * n_c)" in explained and 'class_weights = "none"' in explained


def _model_stage(tmp_path, task: str = "classification"):
    """The model stage on a pool of 95 "no" and 5 "yes" whose training split holds 30 and 10:
    weights from the training split differ from the pool's."""
    rng = np.random.default_rng(0)
    y_pool = np.array([0] * 95 + [1] * 5)
    y_train = np.array([0] * 30 + [1] * 10)
    data = TaskData("toy", "vector", task, rng.normal(size=(100, 4)).astype(np.float32),
                    y_pool if task == "classification" else y_pool.astype(np.float32),
                    class_names=["no", "yes"] if task == "classification" else [])
    ctx = RunContext(from_dict({"train": {"class_weights": "balanced"}}), RunDir(tmp_path),
                     fabric=None, data=data)
    ctx.splits = {"train": Arrays(rng.normal(size=(40, 4)).astype(np.float32),
                                  y_train if task == "classification"
                                  else y_train.astype(np.float32))}
    return ctx, stage_model(ctx), y_train


def test_model_stage_weights_the_loss_from_the_training_split_only(tmp_path) -> None:
    ctx, findings, y_train = _model_stage(tmp_path)
    expected = compute_class_weight("balanced", classes=np.arange(2), y=y_train)  # 2/3, 2
    found = next(f for f in findings if f.code == "class_weights")
    np.testing.assert_allclose(found.evidence["weights"], expected, rtol=1e-5)
    assert "'no' 0.667, 'yes' 2" in found.message
    logits, y = torch.randn(6, 2), torch.tensor([0, 1, 1, 0, 0, 1])
    reference = torch.nn.functional.cross_entropy(
        logits, y, weight=torch.tensor(expected, dtype=torch.float32))
    assert float(ctx.loss_fn(logits, y)) == pytest.approx(float(reference))


def test_regression_ignores_class_weights_and_says_so(tmp_path) -> None:
    ctx, findings, _ = _model_stage(tmp_path, task="regression")
    assert not isinstance(ctx.loss_fn, ClassWeightedCrossEntropy)
    assert [f.code for f in findings if "class_weights" in f.code] == ["class_weights_ignored"]


def test_a_weighted_runs_confidence_gap_is_said_to_be_expected() -> None:
    """Weights overstate the rare classes' probabilities on purpose: label smoothing or
    temperature scaling is not the fix there."""
    from trainwise.findings import Severity, info, warning
    from trainwise.stages_training import _weighted_calibration

    gap = warning("train", "overconfidence", "Over-confident: 0.59 vs 0.41.",
                  "add label smoothing (0.1) or temperature scaling")
    said = _weighted_calibration(gap)
    assert said.severity is Severity.INFO and "by design" in said.message
    assert "label smoothing" not in said.fix and "class_weights" in said.fix
    other = info("train", "healthy", "No training problem found.")
    assert _weighted_calibration(other) is other


def test_the_model_stage_names_the_baseline_and_why(tmp_path) -> None:
    # it said only "Sequential with N parameters": neither the baseline nor the rule
    _, findings, _ = _model_stage(tmp_path)
    built = next(f for f in findings if f.code == "built")
    assert built.message.startswith('The mlp baseline (model.name = "auto" for vector data; '
                                    "a Sequential) with ")


def test_extreme_weights_name_the_heavy_class_and_its_training_rows() -> None:
    # the audit's tiny.csv: a class of 2 training rows weighs 1080 / (4 * 2) = 135
    y = np.array([0] * 540 + [1] * 300 + [2] * 238 + [3] * 2)
    weights = balanced_class_weights(y, 4)
    extreme = extreme_weights(weights, y, ["a", "b", "c", "rare2"])
    assert extreme is not None and [name for name, _, _ in extreme.heavy] == ["rare2"]
    assert extreme.heavy[0][1:] == (pytest.approx(135.0), 2)
    assert extreme.ratio == pytest.approx(540 / 2)  # the weights' ratio is the counts' ratio
    warn = extreme_weights_finding(extreme)
    assert warn.severity == "warning" and "'rare2' weighs 135 (2 training rows)" in warn.message
    assert "merge" in warn.fix and 'class_weights = "none"' in warn.fix
    # 2% positives (49x) trained cleanly in the audit: no warning there
    fraud = np.array([0] * 3920 + [1] * 80)
    assert extreme_weights(balanced_class_weights(fraud, 2), fraud, ["no", "yes"]) is None


def test_spikes_and_a_flat_range_test_blame_extreme_weights_first(tmp_path) -> None:
    from trainwise.findings import info, warning
    from trainwise.stages_training import blame_extreme_weights

    ctx, findings, _ = _model_stage(tmp_path)
    assert "class_weights_extreme" not in [f.code for f in findings]  # 30 vs 10 rows: 3x
    spike = warning("train", "gradient_spike", "Gradient norm spiked 3 time(s).",
                    "Look at the samples of the spiking batch (data stage).")
    flat = warning("tune", "lr_range_no_descent", "the loss did not fall.", "Check the model.")
    other = info("train", "trained", "Trained 5 epochs.")
    assert blame_extreme_weights(ctx, [spike, flat, other]) == [spike, flat, other]
    y_train = np.array([0] * 300 + [1] * 2)  # 'yes' weighs 75.5, 150x 'no'
    ctx.splits["train"].y = y_train
    ctx.loss_fn = loss_function("classification", balanced_class_weights(y_train, 2))
    blamed = blame_extreme_weights(ctx, [spike, flat, other])
    for before, after in zip((spike, flat), blamed, strict=False):
        assert after.message.startswith(before.message)
        assert "'yes' weighs 75.5, 150x the lightest class, with 2 training rows" \
            in after.message
        # two classes: the rare class is the task, the weights may be what works (s14 C7)
        assert after.fix.startswith("If the weighted run beats an unweighted one")
        # 2 * 2 * 75.5 = 302 -> 512, beyond the 302 training rows: the whole split (VE3, VF1)
        assert "raise train.batch_size to 302 or more" in after.fix
        assert "merge" not in after.fix and after.fix.endswith(before.fix)
    assert blamed[2] is other


def test_two_classes_are_never_told_to_merge_or_drop_the_rare_class() -> None:
    """Audit s14 C7: at 1% positives the warning told a fraud user to merge or drop 'Fraud'
    or turn the weights off, on the run that worked (balanced accuracy 92.6% weighted, 50.0%
    unweighted). 5940 + 60 rows: 'fraud' weighs 6000 / (2 * 60) = 50, 99x; a batch holds
    ~2 of its rows at 2 * 2 * 50 = 200 -> 256."""
    y = np.array([0] * 5940 + [1] * 60)
    extreme = extreme_weights(balanced_class_weights(y, 2), y, ["ok", "fraud"])
    assert extreme is not None and extreme.batch_for_two == 256
    warn = extreme_weights_finding(extreme)
    assert "merge" not in warn.fix and "drop" not in warn.fix
    assert "train.batch_size to 256" in warn.fix and "--threshold best" in warn.fix
    # over more classes merging the rare ones stays the advice
    many = np.array([0] * 540 + [1] * 300 + [2] * 2)
    assert "merge" in extreme_weights_finding(
        extreme_weights(balanced_class_weights(many, 3), many, ["a", "b", "c"])).fix


def test_the_two_class_fix_can_be_followed() -> None:
    """review s14 VE3: the fix said `predict --threshold best` where the run keeps no threshold
    (under 5 validation positives), told 148 + 2 rows to raise the batch to 256, and a run
    already at 512 to raise it to 256."""
    y = np.array([0] * 5940 + [1] * 60)  # batch_for_two 256
    weights = balanced_class_weights(y, 2)
    fix = extreme_weights_finding(extreme_weights(weights, y, ["ok", "fraud"], 64)).fix
    assert "--threshold best" in fix and "raise train.batch_size to 256" in fix
    assert "holds 5 or more 'fraud' rows" in fix and "split.num_folds = 5" in fix
    at_512 = extreme_weights(weights, y, ["ok", "fraud"], 512)
    assert "train.batch_size" not in extreme_weights_finding(at_512).fix
    few = np.array([0] * 148 + [1] * 2)  # 2 rare rows: only the whole split holds both
    small = extreme_weights(balanced_class_weights(few, 2), few, ["ok", "fraud"], 32)
    assert small.batch_for_two == 150 and small.train_rows == 150
    three = np.array([0] * 197 + [1] * 3)  # final review VF1: 134 of 200 rows hold 2 of 3
    assert extreme_weights(balanced_class_weights(three, 2), three, ["ok", "fraud"],
                           32).batch_for_two == 134
    one = np.array([0] * 199 + [1])  # one rare row: no batch holds 2
    lone = extreme_weights(balanced_class_weights(one, 2), one, ["ok", "fraud"], 32)
    assert lone.batch_for_two == 0
    fix = extreme_weights_finding(lone).fix
    assert "raise train.batch_size" not in fix and "no train.batch_size helps" in fix
