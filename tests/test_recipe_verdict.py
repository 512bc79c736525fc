"""The run's one-line verdict (recipe_verdict.py)."""

from types import SimpleNamespace

from trainwise.config import from_dict, load_config
from trainwise.recipe_verdict import run_verdict


def _tuned(lr, tune_batch="default"):
    config = from_dict({"tune": {"batch_size": tune_batch}} if tune_batch == "auto" else {})
    config.train.batch_size = 64  # what the tune stage chose
    return SimpleNamespace(config=config, meta={}, lr=lr, data=None)


def test_the_lr_to_copy_after_tuning_has_full_precision():
    """Audit s11 R5: `--set train.lr=1.05` for a tuned 1.0476157527896686 gave another run
    (there it stopped on a gradient spike); the exact value reproduces the tuned run."""
    verdict = run_verdict(_tuned(1.0476157527896686), [], None)
    assert "Learning rate 1.05 chosen" in verdict  # the human-readable part stays short
    assert "--set train.lr=1.0476157527896686 " in verdict
    assert float(verdict.split("train.lr=")[1].split()[0]) == 1.0476157527896686
    assert "batch_size" not in verdict


def test_a_measured_batch_size_is_named_beside_the_lr_and_not_measured_again():
    """Review s11 VA3: with tune.batch_size still "auto" the rerun measured the batch again
    and replaced train.batch_size=64, so the copied lr could train at another batch."""
    verdict = run_verdict(_tuned(0.01, "auto"), [], None)
    assert ("--set train.lr=0.01 --set train.batch_size=64 --set tune.batch_size=fixed "
            "to `trainwise run`") in verdict
    settings = verdict.split("add ")[1].split(" to `trainwise run`")[0].split()[1::2]
    rerun = load_config(None, ["tune.batch_size=auto", *settings])  # the user's config + them
    assert (rerun.tune.batch_size, rerun.train.batch_size, rerun.train.lr) == ("fixed", 64, 0.01)


def _found_by_range_test(spread, low=0.0087, high=0.57):
    from trainwise.findings import info

    return [info("tune", "lr_chosen", "...", lr=0.017475284000076828, lr_low=low,
                 lr_high=high, spread_decades=spread, source="range_test")]


def test_find_lr_names_its_range_and_spread_and_rounds_the_point():
    """Audit s13 T1: find-lr's closing line pinned the point with 17 digits and never named
    the range; a stable test now gives the range, the spread and the point to 3 digits."""
    verdict = run_verdict(_tuned(0.017475284000076828), _found_by_range_test(0.12), None)
    assert "(range 0.0087-0.57, spread 0.12 decades (1.3x))" in verdict
    assert "--set train.lr=0.0175 to `trainwise run`" in verdict


def test_find_lr_over_the_spread_limit_sends_to_tune_not_to_the_point():
    """Audit s13 T1: after lr_range_unstable (0.85 decades, 7.1x) the line still said
    `--set train.lr=0.017475284000076828`: over 0.3 decades it sends to `trainwise tune`."""
    verdict = run_verdict(_tuned(0.017475284000076828), _found_by_range_test(0.85), None)
    assert "spread 0.85 decades (7.1x)" in verdict and "run `trainwise tune`" in verdict
    assert "train.lr=" not in verdict


def test_find_lr_with_one_seed_says_its_spread_is_unknown():
    """Audit s13 T11: one seed printed "0.00 decades", which reads as perfectly stable."""
    verdict = run_verdict(_tuned(0.0175), _found_by_range_test(None), None)
    assert "spread unknown (1 seed; tune.num_seeds >= 3 measures it)" in verdict
    assert "0.00 decades" not in verdict


def test_a_too_good_warning_leads_the_verdict():
    """Audit s13 F3: "Test RMSE 2.114 ..., R^2 0.988 (a linear model: RMSE 6.36e-06)" read as
    a result when the data audit had flagged a copy of the target."""
    from trainwise.findings import Finding, Severity

    ctx = SimpleNamespace(config=from_dict({}), data=None, lr=0.0,
                          meta={"test": {"test_rmse": 2.114, "test_linear_rmse": 6.36e-6}})
    leak = Finding("evaluate", Severity.WARNING, "too_good", "m", {"leak_columns": ["lag"]}, "f")
    verdict = run_verdict(ctx, [leak], None)
    assert verdict.startswith("Too good to trust: a target leak ('lag', data stage)")
    assert "Test RMSE 2.114" in verdict
    assert run_verdict(ctx, [], None).startswith("Test RMSE 2.114")


def test_after_short_runs_that_learned_nothing_no_lr_is_recommended():
    """Audit s13 T6: the closing line said "Learning rate 0.0175 chosen; to train with it..."
    right after the warning that no short run learned anything."""
    from trainwise.findings import warning

    said = warning("tune", "short_runs_no_learning", "No short run lowered the loss.", "f")
    verdict = run_verdict(_tuned(0.0175), [said], None)
    assert "kept from the range test, but no short run learned" in verdict
    assert "train.lr=" not in verdict and "chosen" not in verdict
