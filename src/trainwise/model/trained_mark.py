"""A mark on a user's module that a run changed its weights in place.

`trainwise.run(model=net)` trains `net` itself (the user wants their net trained). Calling it
again on the same object (a notebook cell run twice) then starts from the trained weights; the
mark lets that second run say so instead of calling them the weights `__init__` made.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

MARK = "_trainwise_trained_by"  # (run folder, weights version, how) on the module itself
LOADED = "loaded"  # how: best.pt loaded by load_model, not trained in place by a run

Version = tuple[tuple[int, int], ...]


def weights_version(model: nn.Module) -> Version | None:
    """Per parameter: the object's id and its in-place version counter, which every write
    bumps (an optimizer step, copy_, load_state_dict, reset_parameters) and no read does; a
    parameter replaced by another object (load_state_dict(assign=True)) changes the id. Exact,
    and O(1) per tensor: no copy, no device sync, unlike a checksum of the values (a float64
    copy of a 500M-parameter embedding is 4 GB). Buffers are left out: .to(device) replaces
    them with new tensors, and a move is not a change of weights. None when a parameter keeps
    no counter (made under torch.inference_mode)."""
    try:
        return tuple((id(param), param._version) for param in model.parameters())
    except RuntimeError:  # "Inference tensors do not track version counter"
        return None


def mark_trained(model: nn.Module, run_folder: Path, how: str = "trained") -> None:
    """Record on the module which run last changed its weights, how (trained in place, or
    LOADED from its best.pt), and their version then."""
    object.__setattr__(model, MARK, (str(run_folder), weights_version(model), how))


def trained_by(model: nn.Module) -> str | None:
    """The run folder whose training left the module's weights as they are now, or None (never
    trained by trainwise, or changed since: re-initialised, trained or loaded by the user)."""
    mark = _valid_mark(model)
    return mark[0] if mark is not None else None


def loaded_from_run(model: nn.Module) -> bool:
    """Whether the weights are a run's best.pt as load_model gave them (a deliberate start from
    them), not a module a run trained in place (maybe passed again by accident)."""
    mark = _valid_mark(model)
    return mark is not None and mark[1] == LOADED


def _valid_mark(model: nn.Module) -> tuple[str, str] | None:
    """(run folder, how) while the weights are still the ones marked, else None."""
    mark = getattr(model, MARK, None)
    if not (isinstance(mark, tuple) and len(mark) in (2, 3)):
        return None
    folder, version, how = (*mark, "trained")[:3]
    if version is None or version != weights_version(model):
        return None
    return str(folder), str(how)
