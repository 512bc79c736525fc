"""Layers of a user's own model still at PyTorch's default init, and what the policy would draw.

Audit s15 M6: nn.Sequential(Linear(30, 64), ReLU, Linear(64, 64), ReLU, Linear(64, 2)) built
and passed in kept its default init under model.init = "auto" with only an info. PyTorch's
Linear and Conv draw weight ~ U(-b, b), b = 1 / sqrt(fan_in) (kaiming_uniform with a = sqrt(5)),
so std b / sqrt(3), and bias ~ U(-b, b): after a ReLU the signal's variance is
fan_in * b^2 / 3 / 2 = 1/6 of its input's, a std sqrt(6) = 2.4x smaller per layer
(DEFAULT_SHRINK); He's sqrt(2 / fan_in) keeps it. Only a layer that feeds a ReLU-like activation
with no norm layer before the next matmul shrinks so (review s15 VE1, VE5): a BatchNorm rescales
whatever the init (Linear-BN-ReLU x2 kept std 0.585 then 0.584 after each ReLU), and an output
layer or a fine-tuned model's fresh head feeds no ReLU. A layer that is still that draw (every
|w| <= b, the range filled, the std b / sqrt(3), biases non-zero inside (-b, b)) is no
pretrained or hand-set weight: trained or custom-drawn weights leave the bound or the std (a
normal draw of the same std passes b in 8% of its entries, 1 - erf(sqrt(3 / 2))).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from trainwise.model.init import (
    MATMUL,
    describe_rule,
    is_frozen,
    is_last_layer,
    model_leaves,
    next_activation,
    norm_follows,
    rule_for,
    rule_label,
)

KEPT_DEFAULT = "kept (PyTorch default)"  # the record's rule for such a layer
KEPT_AS_BUILT = "kept (as built)"
MIN_ENTRIES = 8  # fewer weights say too little about their distribution
# the largest of n U(-b, b) weights within FILL / n of b: all n fall short with probability
# (1 - FILL / n)^n < e^-7 = 0.09%, so a fresh draw is missed about once in 1,100
FILL = 7.0
STD_BAND = 0.1  # the std within 10% of b / sqrt(3) on large layers ...
STD_NOISE = 4.0  # ... or 4 standard errors (0.45 / sqrt(n) relative for a uniform) on small
DEFAULT_SHRINK = math.sqrt(6)  # the std lost per ReLU layer at PyTorch's default (docstring)


def default_layers(model: nn.Module) -> list[dict[str, Any]]:
    """One record per trainable Linear / Conv layer {name, type, rule, std, policy_std,
    policy_rule, shrinks}: rule KEPT_DEFAULT when its weights still look like PyTorch's default
    draw, else KEPT_AS_BUILT; std as measured, policy_std what init_weights would draw; shrinks
    when at the default it feeds a ReLU-like layer with no norm to rescale it."""
    leaves = model_leaves(model)
    records = []
    for index, (name, module) in enumerate(leaves):
        if not isinstance(module, MATMUL) or isinstance(module, nn.Bilinear) \
                or is_frozen(module):
            continue
        weight = module.weight.detach().float()
        rule, kwargs = rule_for(next_activation(leaves, index), None,
                                is_last_layer(leaves, index))
        default = _at_default(weight, getattr(module, "bias", None))
        records.append({"name": name or "(model)", "type": type(module).__name__,
                        "rule": KEPT_DEFAULT if default else KEPT_AS_BUILT,
                        "std": float(weight.std()) if weight.numel() > 1 else 0.0,
                        "policy_std": policy_std(weight, rule, kwargs),
                        "policy_rule": describe_rule(rule_label(rule, kwargs)),
                        "shrinks": default and rule == "kaiming_normal"
                        and not norm_follows(leaves, index)})
    return records


def _at_default(weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """The weight (and bias) as nn.Linear / nn.ConvNd's reset_parameters draws them."""
    n = weight.numel()
    if n < MIN_ENTRIES:
        return False
    bound = 1 / math.sqrt(nn.init._calculate_fan_in_and_fan_out(weight)[0])
    top = float(weight.abs().max())
    # U(-b, b): no entry past b, and the largest of n within FILL / n of it: all n fall short
    # with probability (1 - FILL / n)^n < e^-FILL = 0.09%
    if top > bound * (1 + 1e-5) or top < bound * (1 - FILL / n):
        return False
    ratio = float(weight.std()) / (bound / math.sqrt(3))
    if abs(ratio - 1) > max(STD_BAND, STD_NOISE * 0.45 / math.sqrt(n)):
        return False
    if bias is None:
        return True
    reach = float(bias.detach().float().abs().max()) if bias.numel() else 0.0
    return 0 < reach <= bound * (1 + 1e-5)  # the policy's biases are 0


def policy_std(weight: torch.Tensor, rule: str, kwargs: dict[str, Any]) -> float:
    """The std init_weights' rule gives this weight: He (fan-in) gain / sqrt(fan_in), LeCun
    1 / sqrt(fan_in), Xavier gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    if rule in ("kaiming_normal", "lecun_normal"):
        gain = nn.init.calculate_gain(kwargs.get("nonlinearity", "relu"), kwargs.get("a", 0.0))
        return gain / math.sqrt(fan_in)
    return kwargs.get("gain", 1.0) * math.sqrt(2 / (fan_in + fan_out))

