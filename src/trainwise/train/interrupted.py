"""What fit keeps when it is interrupted (Ctrl-C, a notebook's stop button): the TrainState
measured so far, on the KeyboardInterrupt it re-raises (audit s16 N19: the steps and finished
epochs were lost, exactly when the user stopped a run because it looked wrong and wanted the
diagnosis). Re-raised, not returned: code after fit (saving the model, evaluating it) must not
run on as if training had finished."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trainwise.train.diagnose import INTERRUPTED, STOP_KIND


@contextmanager
def state_kept_on_interrupt(state: Any, monitor: Any) -> Iterator[None]:
    """On a KeyboardInterrupt: the monitor's pending step rows into the history, a
    stop_reason, the state as the exception's `.state`, and a note saying how to reach it."""
    try:
        yield
    except KeyboardInterrupt as interrupt:
        try:  # the steps since the last logged row (up to log_every of them)
            state.history.extend(monitor.flush())
        except Exception:  # noqa: BLE001 - the interrupt, not a flush failure, is the news
            pass
        state.should_stop = True
        state.stop_reason = state.stop_reason or \
            f"interrupted (KeyboardInterrupt) at step {state.step}"
        interrupt.state = state  # type: ignore[attr-defined]
        interrupt.add_note(_note(state))
        # the last row: diagnose(state.history) then withholds the rules that judge where
        # training ended, as the Monitor does after Ctrl-C (review s16 VX3)
        state.history.append({"kind": STOP_KIND, "reason": INTERRUPTED, "step": state.step,
                              "epoch": state.epoch})
        raise


def _note(state: Any) -> str:
    saved = (f" The last checkpoint (step {state.checkpoint_step}) resumes it: "
             "fit(..., resume_state=trainwise.train.checkpoint.load_checkpoint(path))."
             if state.checkpoint_step is not None else "")
    return (f"trainwise.fit was interrupted at step {state.step} (epoch {state.epoch}); the "
            f"model keeps its weights of that step, and the {len(state.history)} history rows "
            "measured so far are on this exception as .state: in the next notebook cell "
            "state = sys.last_value.state (import sys), or in code `except KeyboardInterrupt "
            "as stop: state = stop.state`; then trainwise.diagnose(state.history), which "
            "judges the steps run, not where training would have ended." + saved)
