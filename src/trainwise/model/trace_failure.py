"""shape_trace on a forward that raises: one error, raised from the user's own exception, with
the layers that ran before it and the shape the failing layer got.

torchinfo wraps the model's exception in its own RuntimeError ("Failed to run torchinfo"),
and rerunning the forward with hooks raised it a second time: three chained tracebacks and
no shapes, when the shapes are what a trace is for (audit s14 G16).
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from trainwise.findings import TrainwiseError
from trainwise.model.forward_errors import layer_that_raised
from trainwise.model.user_frame import at_user_line

MAX_SHOWN = 12  # layers listed before the failure; a deep model's first ones say little


class CallRecorder:
    """Forward pre/post hooks on every module while a forward runs: the leaf modules that
    finished, (name, input shapes, output shapes), and the input shapes of each one entered."""

    def __init__(self, model: nn.Module, shape_of: Any) -> None:
        self.names = {id(m): n or "(model)" for n, m in model.named_modules()}
        self.finished: list[tuple[str, Any, Any]] = []
        self.entered: dict[str, Any] = {}
        leaves = [m for m in model.modules() if not list(m.children())]
        self.handles = [h for m in leaves for h in (
            m.register_forward_pre_hook(lambda m, a: self._enter(m, shape_of(a))),
            m.register_forward_hook(lambda m, a, o: self._leave(m, shape_of(a), shape_of(o))))]

    def _enter(self, module: nn.Module, shapes: Any) -> None:
        self.entered[self.names.get(id(module), "?")] = shapes

    def _leave(self, module: nn.Module, shapes: Any, out: Any) -> None:
        self.finished.append((self.names.get(id(module), "?"), shapes, out))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def models_own_failure(failure: BaseException, model: nn.Module) -> BaseException | None:
    """The model's exception that torchinfo wrapped, when it was raised in the model's forward
    (no torchinfo frame deeper than the model's last forward frame); None when torchinfo
    itself failed, which the hook fallback then works around."""
    cause = failure.__cause__
    if cause is None or layer_that_raised(cause, model) is None:
        return None
    import torchinfo

    package = os.path.dirname(os.path.abspath(torchinfo.__file__)) + os.sep
    names = {id(m) for m in model.modules()}
    last_model = last_torchinfo = -1
    tb, depth = cause.__traceback__, 0
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "forward" and id(frame.f_locals.get("self")) in names:
            last_model = depth
        if os.path.abspath(frame.f_code.co_filename).startswith(package):
            last_torchinfo = depth
        tb, depth = tb.tb_next, depth + 1
    return cause if last_model > last_torchinfo else None


def _shape_text(shape: Any) -> str:
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        return ", ".join(_shape_text(s) for s in shape)
    return str(tuple(shape)) if isinstance(shape, list) else "?"


def trace_failed(model: nn.Module, cause: BaseException, recorder: CallRecorder) -> Exception:
    """The TrainwiseError shape_trace raises (from `cause`): the layers that ran, the layer that
    raised and the shape it got, the user's line."""
    layer = layer_that_raised(cause, model)
    line, _ = at_user_line(cause)
    ran = [f"{name} {_shape_text(shapes)} -> {_shape_text(out)}"
           for name, shapes, out in recorder.finished]
    shown = "; ".join(ran[-MAX_SHOWN:]) or "none"
    earlier = f"(+{len(ran) - MAX_SHOWN} earlier) " if len(ran) > MAX_SHOWN else ""
    got = recorder.entered.get(layer or "")
    then = f"; then '{layer}' got {_shape_text(got)} and raised" if got is not None else ""
    return TrainwiseError(
        f"shape_trace: the model's forward raised{line}: {type(cause).__name__}: "
        f"{str(cause).strip()[:300]}. Layers that ran before it (input -> output): "
        f"{earlier}{shown}{then}. Compare those shapes with what the failing layer expects "
        "(e.g. nn.Linear's in_features) and fix the forward line named above.")

