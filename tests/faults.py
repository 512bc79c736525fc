"""Fault injection shared by tests/test_resume.py and bench/gpu_check.sh (which puts tests/ on
sys.path on a bare GPU machine): nothing here imports pytest."""

from __future__ import annotations

import io
import os
import signal


def die_at_save(kill_at: int, announce: bool = False) -> None:
    """From now on, SIGKILL this process halfway through writing checkpoint number `kill_at`:
    the first 4 KiB of it land in the ".tmp" file the atomic writer would have renamed."""
    import torch

    import trainwise.train.resume as resume

    original, calls = resume.save_checkpoint, []

    def dying_save(payload, path):
        calls.append(path)
        if len(calls) == kill_at:
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            path.with_name(path.name + ".tmp").write_bytes(buffer.getvalue()[:4096])
            if announce:
                print(f"killing myself while writing checkpoint {kill_at}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        original(payload, path)

    resume.save_checkpoint = dying_save


class CtrlC:
    """A fit callback raising KeyboardInterrupt at optimizer step `step`, as a notebook's stop
    button does (audit s16 N19, review s16 VX3)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state, rows) -> None:
        if state.step == self.step:
            raise KeyboardInterrupt
