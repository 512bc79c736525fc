"""A run that starts from trained weights (README's "train more epochs from a run's weights",
fine-tuning a pretrained module): the low loss at init and the range test's flat curve are
said as what they are, not blamed on a label leak or a model that cannot learn (audit s16
D1). A model whose weights were drawn fresh keeps the usual verdicts."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import trainwise
from trainwise.checks.initial import check_loss_at_init, from_kept_weights
from trainwise.findings import Severity, warning
from trainwise.stages import kept_weights
from trainwise.tune.range_blame import fine_tuning

BLAMING = {"loss_at_init_off", "lr_range_no_descent", "lr_range_unstable"}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A tiny finished run: wine, 2 epochs, whose weights the tests start from."""
    out = tmp_path_factory.mktemp("runs")
    return trainwise.run("wine", overrides=["train.max_epochs=2", "tune.short_runs=false",
                                            f'run.out_dir="{out}"', "run.threads=1"],
                         report=False, quiet=True)


def _more_epochs(first, net, init: str, *more: str):
    """README's recipe: a new run from the run's config and its trained module."""
    return trainwise.run(f"{first.path}/config.toml", model=net, report=False, quiet=True,
                         overrides=["train.max_epochs=1", f'model.init="{init}"', *more])


def test_more_epochs_from_a_runs_weights_blames_no_earlier_stage(first_run):
    """The audit's case: 'cross-entropy at init is 0.0451 ... should not know the answers'
    and 'the loss did not fall ... stage check ... stage data' on README's own recipe."""
    result = _more_epochs(first_run, trainwise.load_model(first_run.path), "keep")
    warned = {f.code for f in result.findings if f.severity is not Severity.INFO}
    assert warned.isdisjoint(BLAMING), warned
    (start,) = [f for f in result.findings if f.code == "loss_at_init_trained"]
    assert start.severity is Severity.INFO and 'model.init = "keep"' in start.message
    assert start.evidence["loss"] < 0.5 * start.evidence["label_entropy"]
    assert f"against ln C = {math.log(3):.3g}" in start.message


def test_the_same_module_redrawn_gets_the_usual_check(first_run):
    """The reference: model.init = "policy" re-draws the module, so its loss at init is an
    untrained model's and no finding calls it trained."""
    result = _more_epochs(first_run, trainwise.load_model(first_run.path), "policy")
    codes = {f.code for f in result.findings}
    assert "loss_at_init_ok" in codes and "loss_at_init_trained" not in codes


def test_a_low_loss_with_no_kept_weights_keeps_the_warning():
    """Where nothing says the weights were kept (trainwise.check, a baseline's fresh draw) the
    rule still fires, with the trained-already cause first (audit s16 N3)."""
    low = check_loss_at_init(0.02, torch.tensor([0, 1, 2] * 20), "classification", 3)
    assert low[0].code == "loss_at_init_off" and low[0].severity is Severity.WARNING
    assert from_kept_weights(low, "") == low
    assert "may be trained already" in low[0].fix


def test_kept_weights_converts_only_the_low_loss():
    y = torch.tensor([0, 1, 2] * 20)
    low = check_loss_at_init(0.02, y, "classification", 3)
    high = check_loss_at_init(5.0, y, "classification", 3)  # 4.6x ln 3: logits start large
    (started,) = from_kept_weights(low, 'model.init = "keep"')
    assert (started.code, started.severity) == ("loss_at_init_trained", Severity.INFO)
    assert started.message == ('The model starts from trained weights (model.init = "keep"): '
                               "cross-entropy at init 0.02 against ln C = 1.1; nothing to "
                               "check.")
    assert from_kept_weights(high, 'model.init = "keep"') == high
    regression = check_loss_at_init(0.01, torch.arange(40.0) / 10, "regression", 0)
    (kept,) = from_kept_weights(regression, "x")
    assert kept.code == "loss_at_init_trained" and "MSE at init 0.01" in kept.message


def test_only_weights_the_user_built_count_as_kept():
    """A built-in baseline under model.init = "keep" holds a fresh PyTorch draw: a low loss
    there is still the mystery the warning names."""
    def ctx(init, user_model=None, name="auto"):
        return SimpleNamespace(user_model=user_model,
                               config=SimpleNamespace(model=SimpleNamespace(init=init, name=name)))
    net = torch.nn.Linear(2, 2)
    assert kept_weights(ctx("keep")) == ""
    assert kept_weights(ctx("keep", net)) == 'model.init = "keep"'
    assert "auto" in kept_weights(ctx("auto", net))
    assert "auto" in kept_weights(ctx("auto", name="pkg.mod:Net"))
    assert kept_weights(ctx("policy", net)) == "" and kept_weights(ctx("auto")) == ""


def test_fine_tuning_rewrites_the_range_warnings_only_for_a_trained_start():
    flat = warning("tune", "lr_range_no_descent", "Range test, seed(s) [0]: flat.",
                   "Check that the model can learn at all (stage 'check')", seeds=[0])
    rise = warning("tune", "lr_range_no_rise", "no rise.", "Raise end_lr", seeds=[0])
    assert fine_tuning([flat, rise], "", 0.015) == [flat, rise]
    told, kept = fine_tuning([flat, rise], "its loss at init, 0.02, is low", 0.015)
    assert kept == rise and told.severity is Severity.INFO
    assert "reads a fine-tuning lr" in told.message and "stage 'check'" not in told.fix
    assert "--set train.lr=0.0001" in told.fix and "0.015" in told.fix
    (low_end,) = fine_tuning([flat], "x", 3e-4)  # 10x below the upper end, under 1e-4
    assert "--set train.lr=3e-05" in low_end.fix


@pytest.fixture(scope="module")
def churn_run(tmp_path_factory):
    """examples/churn.toml at 3 epochs: a 73%-accuracy table whose trained loss (~0.57) is not
    far below chance (ln 2 = 0.69), so only the mark says the weights are trained."""
    out = tmp_path_factory.mktemp("churn_runs")
    return trainwise.run("examples/churn.toml", report=False, quiet=True,
                         overrides=["train.max_epochs=3", "train.lr=0.003", "run.threads=1",
                                    f'run.out_dir="{out}"'])


def test_readme_recipe_on_a_table_starts_from_the_loaded_weights(churn_run):
    """Review s16 VX1: load_model's module was called 'Kept ... as its __init__ made them' and
    the flat range test sent the user to the check and data stages (a WARNING)."""
    net = trainwise.load_model(churn_run.path)
    result = _more_epochs(churn_run, net, "keep", 'train.lr="auto"')  # the range test runs
    by_code = {f.code: f for f in result.findings}
    assert "init_kept" not in by_code and "init_from_earlier_run" not in by_code
    loaded = by_code["init_from_loaded_run"]
    assert loaded.severity is Severity.INFO and str(churn_run.path) in loaded.message
    warned = {f.code for f in result.findings if f.severity is not Severity.INFO}
    assert warned.isdisjoint(BLAMING), warned
    assert "lr_range_no_descent" in by_code  # the flat test is still said, as fine-tuning
    assert "starts from trained weights" in by_code["lr_range_no_descent"].message


def test_load_models_mark_goes_when_the_weights_change(churn_run):
    from trainwise.model.trained_mark import loaded_from_run, trained_by

    net = trainwise.load_model(churn_run.path)
    assert trained_by(net) == str(churn_run.path) and loaded_from_run(net)
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    assert trained_by(net) is None and not loaded_from_run(net)
