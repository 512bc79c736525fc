"""AdamW parameter groups: weight decay on matmul weights only (METHOD.md §4).

Each public rule alone has a failure mode (anchors §5): an ndim rule decays ViT `pos_embed`
and embeddings; a name rule misses a custom norm called `ln_f`; tied and frozen parameters
need deduplication. So the rules are combined, in this order (first match decides):
listed in the model's no_weight_decay() -> bias -> normalisation layer (by type, then by
name) -> 1-D (scales, gains) -> embedding (by type or a name like pos_embed/cls_token) ->
decay (a weight of Linear/ConvNd or another matmul weight, ndim >= 2).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import torch
from torch import nn

from trainwise.findings import TrainwiseError
from trainwise.model.init import _NORMS

_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
# Lazy layers whose not-yet-shaped weight is a matmul weight (Linear: 2-D, ConvNd: 3-D+), so
# its decay is known before the first forward pass gives it a shape; lazy norms are norms.
_LAZY_MATMUL = (nn.LazyLinear, nn.modules.conv._LazyConvXdMixin)
# A name part like norm, norm1, layer_norm, ln, ln_f, ln2, bn1, rmsnorm, batchnorm: HF's
# patterns plus the short names (ln, bn) that nanoGPT- and ResNet-style code uses.
_NORM_NAME = re.compile(r"(^|[._])(\w*norm\d*|ln\d*|bn\d*)($|[._])")
# A parameter's own attribute name that marks it as an embedding table or a learned token.
_EMBED_NAME = re.compile(r"(embed|embedding|_token|^token)", re.IGNORECASE)


def _no_decay_patterns(model: nn.Module) -> tuple[set[str], set[str]]:
    """timm's hooks: no_weight_decay() names (fnmatch), no_weight_decay_keywords() substrings."""
    names = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    keywords = (set(model.no_weight_decay_keywords())
                if hasattr(model, "no_weight_decay_keywords") else set())
    return names, keywords


def _owners(model: nn.Module) -> dict[int, list[tuple[str, nn.Module]]]:
    """id(param) -> every (full name, owning module) it appears under: tied weights have several."""
    owners: dict[int, list[tuple[str, nn.Module]]] = {}
    for module_name, module in model.named_modules(remove_duplicate=False):
        for pname, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{pname}" if module_name else pname
            entries = owners.setdefault(id(param), [])
            if full not in (n for n, _ in entries):
                entries.append((full, module))
    return owners


def _reason(owners: list[tuple[str, nn.Module]], param: torch.Tensor,
            patterns: tuple[set[str], set[str]], decay_embeddings: bool) -> tuple[bool, str]:
    """(decay?, why) for one parameter, judged over every name it is reachable by."""
    names = [n for n, _ in owners]
    modules = [m for _, m in owners]
    listed, keywords = patterns
    if any(fnmatch.fnmatch(n, p) for n in names for p in listed) or any(
            k in n for n in names for k in keywords):
        return False, "listed in no_weight_decay()"
    if any(n.rsplit(".", 1)[-1].endswith("bias") for n in names):
        return False, "bias"
    norm = next((m for m in modules if isinstance(m, _NORMS)), None)
    if norm is not None:
        return False, f"normalisation layer ({_kind(norm).__name__})"
    if any(_NORM_NAME.search(n.lower()) for n in names):
        return False, "normalisation layer (by name)"
    if _ndim(param, owners) < 2:
        return False, "1-D parameter (scale or gain)"
    is_embedding = any(isinstance(m, _EMBEDDINGS) for m in modules) or any(
        _EMBED_NAME.search(n.rsplit(".", 1)[-1]) for n in names)
    if is_embedding:
        return decay_embeddings, "embedding" + (" (decay_embeddings=True)" if decay_embeddings
                                                 else "")
    kinds = sorted({_kind(m).__name__ for m in modules})
    return True, f"weight of {'/'.join(kinds)}"


def _kind(module: nn.Module) -> type:
    """A lazy layer's class as it will be after its first forward (LazyLinear -> Linear), so
    its groups read the same before and after."""
    return getattr(type(module), "cls_to_become", None) or type(module)


def _ndim(param: torch.Tensor, owners: list[tuple[str, nn.Module]]) -> int:
    """param.ndim; for a lazy layer's uninitialised weight, that of the weight it becomes
    (torch refuses to tell the shape of an uninitialised parameter: audit s11 D3)."""
    if not isinstance(param, nn.parameter.UninitializedParameter):
        return param.ndim
    if any(isinstance(m, _LAZY_MATMUL) for _, m in owners):
        return 2
    name, module = owners[0]
    raise TrainwiseError(
        f"{name} ({type(module).__name__}) is not initialised yet: its shape, which decides "
        "whether it gets weight decay, is unknown until the model's first forward pass. "
        "Run one forward pass on a batch, model(x[:1]), before param_groups/make_adamw.")


def _classify(model: nn.Module, decay_embeddings: bool) -> list[dict[str, Any]]:
    """One row per distinct parameter (tied ones once, under their first name)."""
    patterns = _no_decay_patterns(model)
    owners = _owners(model)
    rows = []
    for name, param in model.named_parameters():  # remove_duplicate=True: tied counted once
        decay, why = _reason(owners[id(param)], param, patterns, decay_embeddings)
        tied = [n for n, _ in owners[id(param)] if n != name]
        if tied:
            why += f"; tied with {', '.join(tied)}"
        if not param.requires_grad:
            decay, why = False, "frozen (requires_grad=False): not optimised"
        rows.append({"name": name, "shape": _shape(param), "decay": decay, "reason": why,
                     "param": param})
    return rows


def _shape(param: torch.Tensor) -> list[int] | None:
    """None until a lazy parameter's first forward pass gives it a shape."""
    if isinstance(param, nn.parameter.UninitializedParameter):
        return None
    return list(param.shape)


def param_groups(model: nn.Module, weight_decay: float, *,
                 decay_embeddings: bool = False) -> list[dict[str, Any]]:
    """AdamW groups: [{params, weight_decay, param_names}, ...], each trainable param in one.

    Frozen parameters are left out. Empty groups are dropped (a model with no matmul weights
    has only the no-decay group). `param_names` travels with the group (torch keeps it in
    state_dict), so a checkpoint says which tensor is which. Lazy layers (LazyLinear,
    LazyConvNd, lazy norms) may still be uninitialised: their groups are those they will
    have after the first forward pass, which fills the same parameter objects in place.
    """
    rows = [r for r in _classify(model, decay_embeddings) if r["param"].requires_grad]
    groups = []
    for decay in (True, False):
        chosen = [r for r in rows if r["decay"] is decay]
        if chosen:
            groups.append({"params": [r["param"] for r in chosen],
                           "weight_decay": weight_decay if decay else 0.0,
                           "param_names": [r["name"] for r in chosen]})
    return groups


def make_adamw(model: nn.Module, lr: float, weight_decay: float, *,
               decay_embeddings: bool = False, **kwargs: Any) -> torch.optim.AdamW:
    """AdamW over `param_groups`; kwargs (betas, eps, fused...) go to torch.optim.AdamW."""
    groups = param_groups(model, weight_decay, decay_embeddings=decay_embeddings)
    if not groups:
        raise ValueError("the model has no trainable parameters (all requires_grad=False); "
                         "unfreeze the layers to train, or check that the model was built.")
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, **kwargs)


def group_table(model: nn.Module, weight_decay: float, *,
                decay_embeddings: bool = False) -> list[dict[str, Any]]:
    """Rows {name, shape, decay, weight_decay, reason} for printing and the report."""
    return [{"name": r["name"], "shape": r["shape"], "decay": r["decay"],
             "weight_decay": weight_decay if r["decay"] else 0.0, "reason": r["reason"]}
            for r in _classify(model, decay_embeddings)]
