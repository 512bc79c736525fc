"""Training checkpoints: one file with everything a resumed run needs, written atomically.

A kill at any moment leaves either the previous complete file or the new one: we write
`last.pt.<random>.tmp` (safe_write.replacing), fsync it, then `os.replace` it over `last.pt`
(atomic on POSIX and Windows).
Loading uses `torch.load(weights_only=True)`: a checkpoint is data, never code, so a file from
elsewhere cannot run anything when loaded. Everything saved is tensors and plain Python values
(numpy's RNG state is stored as a tensor for that reason, see position.capture_rng).
"""

from __future__ import annotations

import re
import signal
import textwrap
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from trainwise.findings import TrainwiseError
from trainwise.safe_write import replacing

FORMAT = "trainwise-checkpoint"
VERSION = 1


class CheckpointError(TrainwiseError):
    """A checkpoint cannot be used: missing, truncated, not ours, or from another config."""


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write `payload` to `path` atomically, creating its folder (a notebook's
    fit(checkpoint_path="ck/last.pt") failed with a bare FileNotFoundError: audit s16 N18). A
    Ctrl-C meanwhile stops the run once the file is complete and live."""
    path = Path(path)
    with interrupts_deferred():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a fresh random temporary name (audit s16 S3, review VS9): never a planted link
            with replacing(path, "wb", fsync=True) as handle:
                torch.save({"format": FORMAT, "version": VERSION, **payload}, handle)
        except OSError as exc:  # a full disk: replacing leaves no .tmp (audit s15 O1), and
            exc.filename = exc.filename or str(path)  # the error names the file (torch's
            raise  # write does not)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) and SIGTERM (kill, a cluster's time limit) until the block ends,
    then deliver them as usual. torch's C++ writer calls the file's write(); a
    KeyboardInterrupt raised in there comes out as a RuntimeError ('unexpected pos 49280 vs
    49176'), and the run stopped as if with a bug instead of saying how to resume. Signal
    handlers can only be set in the main thread: elsewhere, no change."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda got, frame: received.append(got))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for signum in dict.fromkeys(received):
        _deliver(signum, previous[signum])


def _deliver(signum: int, handler: Any) -> None:
    """What the signal would have done: its handler (Python's SIGINT one raises
    KeyboardInterrupt; the command line's SIGTERM one too), or the default action."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.raise_signal(signum)  # SIGTERM's default ends the process, as it would have


def rerun_after_deleting(command: str) -> str:
    """What to do with an unreadable last.pt, said alike on --resume and after Ctrl-C: without
    it a resumed run has no checkpoint, so it reruns from the first stage."""
    return f"delete it and `{command}` reruns the run from the data stage (every stage is seeded)"


def _read(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at '{path}'. Pass the run folder of a run that "
                              "reached training (it writes checkpoints/last.pt), or start anew.")
    try:
        with warnings.catch_warnings():  # torch warns about a foreign pickle protocol before
            warnings.simplefilter("ignore")  # refusing it: our error below says it all
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(
            f"'{path}' is not a readable checkpoint: it is damaged or not a trainwise "
            f"checkpoint ({why_unreadable(exc)}). Start a fresh run with your config, point "
            "--resume at another run folder, or "
            f"{rerun_after_deleting('trainwise run --resume ' + str(path.parent.parent))}."
        ) from None


def why_unreadable(exc: Exception) -> str:
    """torch.load's error in one short clause. Its own text is paragraphs long and, for a
    weights-only refusal, advises weights_only=False, which would run whatever code the file
    carries: we never relay that advice."""
    text = str(exc)
    if "Weights only load failed" in text:
        refused = re.search(r"(?:Trying to load )?[Uu]nsupported [^\n]*", text)
        detail = _first_sentence(refused.group()) if refused else "content it cannot name"
        return ("it holds more than tensors and plain values, which a trainwise checkpoint "
                f"never does: {detail}; it was not loaded, as loading it could run code")
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    return f"truncated, or not written by PyTorch: {type(exc).__name__}: " \
        f"{_first_sentence(text) if text.strip() else 'no detail'}"


def _first_sentence(text: str) -> str:
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].splitlines()[0]
    return textwrap.shorten(first.rstrip("."), 160, placeholder=" ...")


def load_checkpoint(path: Path, *, tag: str | None = None,
                    config: dict[str, Any] | None = None,
                    defaults: dict[str, Any] | None = None,
                    routes: dict[str, str] | None = None) -> dict[str, Any]:
    """Read and validate a checkpoint; `tag` must match the one saved (the config fingerprint).

    `config` (the flat training config now) lets the error name the keys that differ;
    `defaults` (the flat default config) lets a checkpoint from an older trainwise, whose
    config lacks keys added since, resume when those keys are at their defaults. `routes`:
    for a key that differs, a sentence the refusal adds (another way to what the change asked).
    """
    path = Path(path)
    payload = _read(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is a PyTorch file but not a trainwise checkpoint (no "
                              f"'format': '{FORMAT}' entry). Resume only from checkpoints/last.pt "
                              "of a trainwise run folder.")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"'{path}' has checkpoint version {payload.get('version')!r}; this "
                              f"trainwise reads version {VERSION}. Resume it with the trainwise "
                              "version that wrote it, or start the run again.")
    saved_tag = payload.get("extra", {}).get("tag")
    saved_config = payload.get("extra", {}).get("config", {})
    if tag is not None and saved_tag != tag and not _same_but_newer(saved_config, config,
                                                                    defaults):
        differences = describe_differences(saved_config, config or {})
        extra = "".join(f" {text}" for key, text in (routes or {}).items()
                        if saved_config.get(key) != (config or {}).get(key))
        raise CheckpointError(f"'{path}' was written by a run with another config ({differences})."
                              " Resume with the run's own config.toml (trainwise run --resume "
                              "RUN_DIR without --set for these keys), or start a new run."
                              + extra)
    return payload


def _same_but_newer(saved: dict[str, Any], now: dict[str, Any] | None,
                    defaults: dict[str, Any] | None) -> bool:
    """The same training config, but for keys added to trainwise since the checkpoint was
    written, which must be at their defaults (what the older version did)."""
    if not now or defaults is None or not isinstance(saved, dict) or set(saved) - set(now):
        return False
    return all(saved[key] == value if key in saved else value == defaults.get(key, object())
               for key, value in now.items())


def describe_differences(saved: dict[str, Any], now: dict[str, Any], limit: int = 5) -> str:
    keys = sorted(set(saved) | set(now))
    changed = [f"{key}: {saved.get(key)!r} then, {now.get(key)!r} now" for key in keys
               if saved.get(key) != now.get(key)]
    if not changed:
        return "the fingerprints differ"
    more = f", and {len(changed) - limit} more" if len(changed) > limit else ""
    return "; ".join(changed[:limit]) + more


def load_into(module: Any, state: dict[str, Any], what: str) -> None:
    """`module.load_state_dict(state)` with an actionable error for a model that changed."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint's {what} state does not fit this {what} "
                              f"({str(exc).splitlines()[0][:300]}). The {what} changed since "
                              "the checkpoint was written; resume with the same model and "
                              "config, or start a new run.") from None
