"""The init policy: He for layers that feed a ReLU, Xavier/LeCun elsewhere, orthogonal recurrences.

PyTorch's defaults (kaiming_uniform with a=sqrt(5), i.e. std = 1/sqrt(3 fan_in)) shrink the
signal by ~sqrt(6) per ReLU layer; METHOD.md §2 says not to trust them. `init_weights` applies
the policy in place and returns one record per layer for the report.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# Layers whose weight is a matmul we initialise by the activation that follows them.
MATMUL = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)
_NORMS: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.LayerNorm,
                                       nn.GroupNorm, nn.LocalResponseNorm)
if hasattr(nn, "RMSNorm"):
    _NORMS = (*_NORMS, nn.RMSNorm)
# Modules that sit between a layer and its activation without changing which one it is:
# Conv -> BatchNorm -> ReLU feeds a ReLU; Conv -> MaxPool -> ReLU too (max commutes with ReLU).
_TRANSPARENT = (*_NORMS, nn.modules.dropout._DropoutNd, nn.Identity, nn.Flatten, nn.Unflatten,
                nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd)
# GELU, SiLU and friends are ReLU-shaped for positive inputs: He's fan_in gain of 2 fits them.
_RELU_LIKE = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Mish, nn.ELU, nn.CELU, nn.Softplus,
              nn.Hardswish)
_OTHER_ACTIVATIONS = (nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.SELU, nn.Softmax, nn.LogSoftmax,
                      nn.Hardsigmoid, nn.Softsign, nn.Tanhshrink)
_RECURRENT = (nn.RNNBase,)
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
EMBEDDING_STD = 0.01
# The output layer (last matmul, nothing after it) is drawn 10x smaller than Xavier, as
# Karpathy's makemore does (big_vision even zero-inits ViT heads): with std-1 features the
# logits start near 0, so cross-entropy at init is ln C instead of ~2 ln C.
OUTPUT_GAIN = 0.1


def model_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules without children, in registration order: for nn.Sequential, the forward order."""
    return [(name, m) for name, m in model.named_modules() if not list(m.children())]


def next_activation(leaves: list[tuple[str, nn.Module]], index: int) -> nn.Module | None:
    """The activation module that follows leaves[index], skipping norms/dropout/pooling."""
    for _, module in leaves[index + 1:]:
        if isinstance(module, _TRANSPARENT):
            continue
        if isinstance(module, (*_RELU_LIKE, nn.LeakyReLU, nn.PReLU, *_OTHER_ACTIVATIONS)):
            return module
        return None  # another layer comes first: this one feeds no activation we can see
    return None


def norm_follows(leaves: list[tuple[str, nn.Module]], index: int) -> bool:
    """A norm layer sits between leaves[index] and the next matmul (Linear -> BatchNorm -> ReLU,
    or Linear -> ReLU -> LayerNorm): it rescales the signal whatever the layer's init."""
    for _, module in leaves[index + 1:]:
        if isinstance(module, _NORMS):
            return True
        if isinstance(module, (*MATMUL, *_RECURRENT)):
            return False
    return False


def is_last_layer(leaves: list[tuple[str, nn.Module]], index: int) -> bool:
    return not any(isinstance(m, (*MATMUL, *_RECURRENT)) for _, m in leaves[index + 1:])


def rule_for(activation: nn.Module | None, hint: str | None, last: bool) -> tuple[str, dict]:
    """(rule name, kwargs) for the weight of a layer whose output feeds `activation`."""
    if activation is None and hint is not None and not last:
        activation = {"relu": nn.ReLU(), "gelu": nn.ReLU(), "silu": nn.ReLU(),
                      "leaky_relu": nn.LeakyReLU(), "tanh": nn.Tanh(), "selu": nn.SELU(),
                      "sigmoid": nn.Sigmoid()}.get(hint.lower())
    if isinstance(activation, nn.LeakyReLU):
        return "kaiming_normal", {"a": activation.negative_slope, "nonlinearity": "leaky_relu"}
    if isinstance(activation, nn.PReLU):
        slope = float(activation.weight.detach().mean())
        return "kaiming_normal", {"a": slope, "nonlinearity": "leaky_relu"}
    if isinstance(activation, _RELU_LIKE):
        return "kaiming_normal", {"a": 0.0, "nonlinearity": "relu"}
    if isinstance(activation, nn.SELU):  # LeCun normal: what self-normalising nets assume
        return "lecun_normal", {"a": 0.0, "nonlinearity": "linear"}
    if isinstance(activation, nn.Tanh):
        return "xavier_normal", {"gain": nn.init.calculate_gain("tanh")}
    if last:  # small logits at init: loss at init ~ ln C, no confident-wrong hockey stick
        return "xavier_normal", {"gain": OUTPUT_GAIN}
    return "xavier_normal", {"gain": 1.0}  # sigmoid, or no activation we can see


def rule_label(rule: str, kwargs: dict[str, Any]) -> str:
    """The rule as a layer's record names it ("xavier_normal(gain=0.1)"); describe_rule reads it."""
    if kwargs.get("a"):
        return f"{rule}(leaky_relu a={kwargs['a']:.3g})"
    return rule if kwargs.get("gain", 1.0) == 1.0 else f"{rule}(gain={kwargs['gain']:.3g})"


def _apply(weight: torch.Tensor, rule: str, kwargs: dict, gen: torch.Generator | None) -> None:
    if rule in ("kaiming_normal", "lecun_normal"):
        nn.init.kaiming_normal_(weight, mode="fan_in", generator=gen, **kwargs)
    else:
        nn.init.xavier_normal_(weight, generator=gen, **kwargs)


def _zero_bias(module: nn.Module) -> None:
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor):
        nn.init.zeros_(bias)


def _record(name: str, module: nn.Module, rule: str, weight: torch.Tensor | None) -> dict:
    std = float(weight.detach().float().std()) if weight is not None and weight.numel() > 1 else 0.0
    return {"name": name or "(model)", "type": type(module).__name__, "rule": rule, "std": std}


def _init_recurrent(name: str, rnn: nn.RNNBase, gen: torch.Generator | None) -> list[dict]:
    """Orthogonal per gate for hidden-to-hidden (keeps the recurrence's gain at 1), Xavier per
    gate for input-to-hidden, zero biases. GRU stacks 3 gates, LSTM 4: weight_ih is
    (gates*H, D), weight_hh (gates*H, H). Each gate is its own (H, D) matrix, so Xavier's
    fan-out is H, not gates*H: drawn over the stack, a GRU with D=128, H=64 got std 0.079
    instead of sqrt(2 / (128 + 64)) = 0.102."""
    gates = {"LSTM": 4, "GRU": 3}.get(rnn.mode, 1)
    records = []
    for pname, param in rnn.named_parameters(recurse=False):
        if pname.startswith("bias"):
            nn.init.zeros_(param)
            continue
        rule = "orthogonal" if pname.startswith("weight_hh") else "xavier_normal"
        # weight_hr (an LSTM's proj_size projection, (P, H)) has no gates: drawn whole
        blocks = gates if pname.startswith(("weight_ih", "weight_hh")) else 1
        with torch.no_grad():
            for chunk in param.chunk(blocks, dim=0):
                if rule == "orthogonal":
                    nn.init.orthogonal_(chunk, generator=gen)
                else:
                    nn.init.xavier_normal_(chunk, generator=gen)
        records.append(_record(f"{name}.{pname}" if name else pname, rnn, rule, param))
    return records


def _init_embedding(name: str, module: nn.Module, gen: torch.Generator | None) -> dict:
    nn.init.normal_(module.weight, 0.0, EMBEDDING_STD, generator=gen)
    padding_idx = getattr(module, "padding_idx", None)
    if padding_idx is not None:  # the padding row stays zero, as nn.Embedding makes it
        with torch.no_grad():
            module.weight[padding_idx].zero_()
    return _record(name, module, f"normal(std={EMBEDDING_STD})", module.weight)


def _init_norm(name: str, module: nn.Module) -> dict | None:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return None  # affine=False: nothing to set
    nn.init.ones_(weight)
    _zero_bias(module)
    return {"name": name, "type": type(module).__name__, "rule": "ones/zeros", "std": 0.0}


def _init_mha(name: str, module: nn.MultiheadAttention, gen: torch.Generator | None) -> dict:
    """Fused q/k/v projections feed a softmax, not a ReLU: Xavier, as PyTorch itself does."""
    weights = [w for w in (module.in_proj_weight, module.q_proj_weight, module.k_proj_weight,
                           module.v_proj_weight) if w is not None]
    for weight in weights:
        nn.init.xavier_normal_(weight, generator=gen)
    if module.in_proj_bias is not None:
        nn.init.zeros_(module.in_proj_bias)
    return _record(f"{name}.in_proj" if name else "in_proj", module, "xavier_normal",
                   weights[0])


def _init_module(name: str, module: nn.Module, leaves: list, index: int,
                 hint: str | None, gen: torch.Generator | None) -> list[dict]:
    if isinstance(module, MATMUL):
        rule, kwargs = rule_for(next_activation(leaves, index), hint,
                                is_last_layer(leaves, index))
        _apply(module.weight, rule, kwargs, gen)
        _zero_bias(module)
        return [_record(name, module, rule_label(rule, kwargs), module.weight)]
    if isinstance(module, _RECURRENT):
        return _init_recurrent(name, module, gen)
    if isinstance(module, _EMBEDDINGS):
        return [_init_embedding(name, module, gen)]
    if isinstance(module, _NORMS):
        record = _init_norm(name, module)
        return [record] if record else []
    if isinstance(module, nn.MultiheadAttention):
        return [_init_mha(name, module, gen)]
    return []


def init_weights(model: nn.Module, nonlinearity_hint: str | None = None,
                 generator: torch.Generator | None = None, *,
                 keep_frozen: bool = True) -> list[dict[str, Any]]:
    """Initialise `model` in place by the policy; one record {name, type, rule, std} per layer.

    Which activation a layer feeds is read from the module that follows it in registration
    order (exact for nn.Sequential; a heuristic for custom forward()). When a model applies its
    activations functionally (F.relu), pass `nonlinearity_hint="relu"`: every layer but the last
    then gets He init. Parameters of modules we do not know (e.g. a raw `cls_token`) keep their
    values and are recorded with rule "kept". Random draws come from `generator` when given.
    `keep_frozen` (default True): modules with a frozen parameter (requires_grad False) keep
    their values and are recorded as "kept (frozen)": a pretrained layer redrawn at random would
    never learn back (audit s14 G9: the default redrew them). keep_frozen=False redraws them too.
    """
    modules = [(n, m) for n, m in model.named_modules()]
    leaves = model_leaves(model)
    leaf_index = {id(m): i for i, (_, m) in enumerate(leaves)}
    records: list[dict[str, Any]] = []
    done: dict[int, str] = {}  # id(weight) -> name, so a tied weight is drawn once
    for name, module in modules:
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and id(weight) in done:
            records.append(_record(name, module, f"tied to {done[id(weight)]} (kept)", weight))
            continue
        if isinstance(weight, torch.Tensor):
            done[id(weight)] = name
        if keep_frozen and is_frozen(module):
            records.append(_record(name, module, "kept (frozen)", weight))
            continue
        handled = _init_module(name, module, leaves, leaf_index.get(id(module), len(leaves)),
                               nonlinearity_hint, generator)
        records.extend(handled)
        if not handled:
            records.extend(_kept(name, module))
    return records


def is_frozen(module: nn.Module) -> bool:
    return any(not p.requires_grad for p in module.parameters(recurse=False))


def _kept(name: str, module: nn.Module) -> list[dict]:
    """Records for parameters the policy has no rule for (left as the model made them)."""
    if isinstance(module, (*_NORMS, *MATMUL, *_RECURRENT, *_EMBEDDINGS, nn.MultiheadAttention)):
        return []
    return [_record(f"{name}.{p}" if name else p, module, "kept", param)
            for p, param in module.named_parameters(recurse=False)]



# init_weights' rule names that need no argument, in words
_RULE_WORDS = {
    "lecun_normal": "LeCun normal: feeds a SELU",
    "xavier_normal": "Xavier normal",
    "orthogonal": "orthogonal per gate: recurrent weights keep their gain through time",
    "ones/zeros": "weight 1, bias 0: normalisation layer",
    "kept": "kept as built: no rule for this module",
    "kept (frozen)": "kept: frozen (pretrained)",
    "kept (PyTorch default)": "kept: still PyTorch's default uniform init",
    "kept (as built)": "kept: as your model set them",
}


def describe_rule(rule: str) -> str:
    """A record's rule ("xavier_normal(gain=0.1)", "normal(std=0.01)") in words for the
    report and the model stage's message."""
    base, _, args = rule.partition("(")
    args = args.rstrip(")")
    if base == "kaiming_normal":
        slope = f", leaky ReLU slope {args.split('a=')[-1]}" if "a=" in args else ""
        return f"He normal (fan-in{slope}): feeds a ReLU-like activation"
    if base == "xavier_normal" and args.startswith("gain="):
        gain = float(args.removeprefix("gain="))
        if gain == OUTPUT_GAIN:
            return f"Xavier normal x {gain:g}: the output layer, small outputs at init"
        return f"Xavier normal, gain {gain:.3g}"
    if base == "normal" and args.startswith("std="):
        return f"normal, std {args.removeprefix('std=')}: embedding"
    if rule.startswith("tied to"):
        return f"{rule}: drawn once, with the tensor it shares"
    return _RULE_WORDS.get(rule, rule)


def init_groups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """init_weights' records grouped by (layer type, rule), in the model's order: one row
    {type, rule (in words), names, std_low, std_high} per group; kept layers' records
    (init_default.py) also by the policy's rule, with policy_rule and policy_std_low/high."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        rule = describe_rule(str(record.get("rule", "")))
        # a kept layer (init_default.py) also by the rule the policy would use on it
        policy = str(record.get("policy_rule", "")).split(":")[0]
        row = groups.setdefault((str(record.get("type", "?")), rule, policy), {
            "type": str(record.get("type", "?")), "rule": rule, "names": [], "stds": [],
            **({"policy_rule": policy} if policy else {})})
        row["names"].append(str(record.get("name", "?")))
        row["stds"].append(float(record.get("std") or 0.0))
        if record.get("policy_std") is not None:  # a kept layer: what the policy would draw
            row.setdefault("policy_stds", []).append(float(record["policy_std"]))
    return [{"type": r["type"], "rule": r["rule"], "names": r["names"],
             **({"policy_rule": r["policy_rule"]} if "policy_rule" in r else {}),
             "std_low": min(r["stds"]), "std_high": max(r["stds"]),
             **({"policy_std_low": min(r["policy_stds"]), "policy_std_high":
                 max(r["policy_stds"])} if r.get("policy_stds") else {})}
            for r in groups.values()]


def init_summary(records: list[dict[str, Any]]) -> str:
    """'He normal (...) for 2 Linear; Xavier normal x 0.1 (...) for 1 Linear', biases 0 for
    the matmul and recurrent layers."""
    parts = [f"{row['rule'].split(':')[0]} for {len(row['names'])} {row['type']}"
             for row in init_groups(records)]
    return "; ".join(parts) + "; biases 0" if parts else "nothing to initialise"
