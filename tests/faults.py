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
