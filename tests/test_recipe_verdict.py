"""The run's one-line verdict (recipe_verdict.py)."""

from types import SimpleNamespace

from trainwise.config import from_dict
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


def test_a_measured_batch_size_is_named_beside_the_lr():
    verdict = run_verdict(_tuned(0.01, "auto"), [], None)
    assert "--set train.lr=0.01 --set train.batch_size=64 to `trainwise run`" in verdict
