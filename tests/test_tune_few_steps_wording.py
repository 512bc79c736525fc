"""Audit s16 D10: a 45-row table's short runs read "only 1 optimizer steps"."""

from trainwise.tune.search import _few_short_run_steps


def test_one_short_run_step_is_said_in_the_singular():
    assert "only 1 optimizer step (1 of 3 epochs;" in _few_short_run_steps(1, 1, 3).message
    assert "only 8 optimizer steps (2 of 5 epochs;" in _few_short_run_steps(8, 2, 5).message
