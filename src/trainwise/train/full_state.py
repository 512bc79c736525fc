"""Whole-model state under any strategy: a checkpoint holds full, unsharded state dicts.

Under FSDP each process holds a slice of every parameter and of its optimizer state. Our
checkpoint holds the whole model and optimizer instead, gathered to global rank 0 and written
as one file by checkpoint.save_checkpoint (atomic, read back with weights_only=True), with the
keys of a one-device run. So a run saved under FSDP resumes under FSDP with any number of
processes, under DDP or on one device, and the other way round.

Fabric's own FSDP save would break our two rules: state_dict_type="sharded" writes a DCP
folder per save (no atomic rename), and "full" is read back by a full unpickler
(lightning_fabric/utilities/load.py, `_lazy_load`) and written without a temporary file. So we
gather with torch.distributed.checkpoint.state_dict (FSDP1, which Fabric's "fsdp" is, and
FSDP2) and write the file ourselves. The cost: the whole model passes through rank 0's CPU
memory at each save, fine while the model fits one machine's memory (not one device's).
"""

from __future__ import annotations

import copy
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

_SCATTER = StateDictOptions(full_state_dict=True)  # every process passes the whole state
# what FSDP1 (use_orig_params) and activation checkpointing add to parameter names
_WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def inner_module(model: nn.Module) -> nn.Module:
    """The strategy's module (FSDP, DDP) inside Fabric's wrapper and torch.compile's."""
    module = getattr(model, "_forward_module", model)
    return getattr(module, "_orig_mod", module)  # torch.compile wraps after the strategy


def raw_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    return getattr(optimizer, "optimizer", optimizer)  # Fabric's wrapper keeps it there


def is_sharded_module(model: nn.Module) -> bool:
    """True when the processes hold slices of the parameters (FSDP1 or FSDP2)."""
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.distributed.tensor import DTensor

    module = inner_module(model)
    return isinstance(module, FullyShardedDataParallel) or any(
        isinstance(p, DTensor) for p in module.parameters())


def _gather_options(module: nn.Module) -> StateDictOptions:
    """Rank 0 receives the whole state on the CPU, the others empty dicts. Not for parameters
    already on the CPU: torch 2.14 then hands back one reused gather buffer for every state
    tensor of a parameter (Adam's exp_avg came back equal to exp_avg_sq; found by
    tests/test_fsdp.py), so every process gathers onto its own device instead."""
    on_cpu = all(p.device.type == "cpu" for p in module.parameters())
    return StateDictOptions(full_state_dict=True, cpu_offload=not on_cpu)


def parameter_names(module: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The optimizer's parameters' names in param_groups order, the order of a plain
    optimizer state dict's integer ids."""
    names = {}
    for name, parameter in module.named_parameters():
        for prefix in _WRAPPER_PREFIXES:
            name = name.replace(prefix, "")
        names[id(parameter)] = name
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def ids_from_names(state: dict[str, Any]) -> dict[str, Any]:
    """A name-keyed optimizer state dict (torch.distributed.checkpoint's) as a plain one:
    parameters numbered 0.. in param_groups order, as `Optimizer.state_dict()` numbers them."""
    order = [name for group in state["param_groups"] for name in group["params"]]
    index = {name: number for number, name in enumerate(order)}
    return {"state": {index[name]: value for name, value in state["state"].items()},
            "param_groups": [{**group, "params": [index[n] for n in group["params"]]}
                             for group in state["param_groups"]]}


def names_from_ids(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A plain optimizer state dict keyed by `names` (this optimizer's, in param_groups order),
    matching ids by position as `Optimizer.load_state_dict` does."""
    saved = list(chain.from_iterable(group["params"] for group in state["param_groups"]))
    if len(saved) != len(names):
        raise ValueError(f"the saved optimizer has {len(saved)} parameters, this one "
                         f"{len(names)}")
    name_of = dict(zip(saved, names, strict=True))
    return {"state": {name_of[key]: value for key, value in state["state"].items()},
            "param_groups": [{**group, "params": [name_of[k] for k in group["params"]]}
                             for group in state["param_groups"]]}


def full_state_dicts(model: nn.Module, optimizer: Any, *, has_state: bool,
                     is_global_zero: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, optimizer) state dicts of the whole model, as on one device. Sharded: every
    process must call it (it gathers); global rank 0 gets the dicts, the others empty ones.

    `has_state`: whether any process's optimizer has state yet (agreed across processes).
    Before the first step there is nothing to gather, and torch would take a dummy step to
    create the state (state_dict._init_optim_state), bumping Adam's step count."""
    if not is_sharded_module(model):
        return model.state_dict(), optimizer.state_dict()
    module, raw = inner_module(model), raw_optimizer(optimizer)
    options = _gather_options(module)
    model_state = get_model_state_dict(module, options=options)
    if not has_state:
        return model_state, raw.state_dict()  # hyperparameters only, ids in group order
    optimizer_state = get_optimizer_state_dict(module, raw, options=options)
    return model_state, ids_from_names(optimizer_state) if is_global_zero else {}


def load_full_state(model: nn.Module, optimizer: Any, model_state: dict[str, Any],
                    optimizer_state: dict[str, Any]) -> None:
    """Put whole-model state dicts back into a sharded model and its optimizer (every process
    calls it with the same dicts; each keeps its slice). Raises RuntimeError, KeyError or
    ValueError when they do not fit."""
    module, raw = inner_module(model), raw_optimizer(optimizer)
    set_model_state_dict(module, model_state, options=_SCATTER)
    if not optimizer_state["state"]:  # saved before the first step: nothing to shard
        raw.load_state_dict(optimizer_state)
        return
    named = names_from_ids(optimizer_state, parameter_names(module, raw))
    set_optimizer_state_dict(module, raw, named, options=_SCATTER)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the whole model's weights, e.g. to keep the best weights: the user's
    module keys, as on one device. Sharded (every process must call it): on GPUs only global
    rank 0 gets it, gathered onto its CPU, the others an empty dict, so no device ever holds
    the whole model (FSDP is for models that do not fit one); on the CPU every process gets
    it (see _gather_options)."""
    if not is_sharded_module(model):
        return copy.deepcopy(getattr(model, "module", model).state_dict())
    module = inner_module(model)
    options = _gather_options(module)
    gathered = get_model_state_dict(module, options=options)
    return {key: value.detach().cpu().clone() for key, value in gathered.items()}


def load_full_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load `full_model_state`'s weights (every process, with what it returned there: on GPUs
    rank 0's dict is broadcast to the others)."""
    if not is_sharded_module(model):
        getattr(model, "module", model).load_state_dict(state)
        return
    module = inner_module(model)
    rank0_only = _gather_options(module).cpu_offload
    set_model_state_dict(module, state, options=StateDictOptions(
        full_state_dict=True, broadcast_from_rank0=rank0_only))
