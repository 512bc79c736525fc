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
