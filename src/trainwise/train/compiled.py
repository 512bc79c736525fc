"""Fabric's setup of a model torch.compile'd before lightning_fabric was imported.

Fabric sets up the module inside a compiled one and compiles the result again with the
arguments torch.compile was given, which it records by patching torch.compile when
lightning_fabric is imported. `import trainwise` does not import it (the verbs load lazily), so
a user who imports trainwise, compiles, then calls fit met Lightning's "Make sure to import
lightning before torch.compile is used" (audit s14 G4). The compiled module holds its
compilation's settings (backend, mode, fullgraph) in its dynamo context: the set-up module is
wrapped in that same context, as Fabric would have compiled it.
"""

from __future__ import annotations

from typing import Any

from lightning_fabric import Fabric
from torch import nn


def _uncaptured_compile(model: nn.Module) -> Any:
    """The dynamo context of a model compiled without Fabric's record of its arguments;
    None for any other model."""
    try:
        from torch._dynamo.eval_frame import OptimizedModule
    except ImportError:  # a torch without dynamo compiles nothing
        return None
    if isinstance(model, OptimizedModule) and getattr(model, "_compile_kwargs", None) is None:
        return model.dynamo_ctx
    return None


def setup_model(fabric: Fabric, model: nn.Module, optimizer: Any) -> tuple[Any, Any]:
    """fabric.setup(model, optimizer), also for a model compiled before lightning_fabric was
    imported: its uncompiled module is set up (moved, wrapped for DDP), then the set-up
    forward module is compiled in the user's own dynamo context."""
    context = _uncaptured_compile(model)
    if context is None:
        return fabric.setup(model, optimizer)
    from torch._dynamo.eval_frame import OptimizedModule

    module, optimizer = fabric.setup(model._orig_mod, optimizer)
    compiled = OptimizedModule(module._forward_module, context)
    # Fabric unwraps a compiled module by this record (checkpoints, no_backward_sync): present,
    # it finds the module inside; the settings themselves live in `context`
    compiled._compile_kwargs = {}
    module._forward_module = compiled
    return module, optimizer
