"""The model stage's words on initialisation: which init model.init chose and why, what it
kept (frozen, tied, default embeddings), and a warm start from an earlier run. The init rules
themselves are in model/init.py; these are messages about them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from trainwise.findings import Finding, Severity, info
from trainwise.model.init import _EMBEDDINGS, EMBEDDING_STD, init_summary, init_weights
from trainwise.model.init_default import DEFAULT_SHRINK, KEPT_DEFAULT, default_layers

POLICY = ("He for ReLU layers, Xavier otherwise, orthogonal recurrent weights, embeddings "
          f"N(0, {EMBEDDING_STD:g}), zero biases")
# nn.Embedding draws N(0, 1); a weight std this close to 1 means the user's __init__ left it
DEFAULT_EMBEDDING_STD_BAND = (0.9, 1.1)


def apply_init_policy(model: nn.Module, policy: str, *, own: bool,
                      trained_by: str | None = None, loaded: bool = False) -> list[Finding]:
    """model.init as the model stage applies it: the policy for the baselines; a user's own
    class (`own`) keeps the weights its __init__ gave it (pretrained, frozen) unless
    model.init = "policy" asks otherwise. One finding says which was done. `trained_by`: the
    run folder whose training left the (user's) module's weights as they are; `loaded`: they
    are its best.pt as trainwise.load_model gave them."""
    name = type(model).__name__
    if trained_by is not None and (policy == "keep" or (policy == "auto" and own)):
        return [_loaded_from(name, trained_by) if loaded else _continued_from(name, trained_by)]
    if policy == "keep" or (policy == "auto" and own):
        whose = f"your {name}'s weights as its __init__ made them" if own else \
            f"PyTorch's default init for the {name} baseline"
        why = ' (model.init = "auto" re-initialises only the built-in baselines)' \
            if policy == "auto" else ' (model.init = "keep")'
        how = (f"To apply trainwise's init policy instead ({POLICY}; PyTorch's defaults "
               "shrink the signal layer by layer in deep ReLU nets), set model.init = "
               '"policy" or call trainwise.init_weights(model) before passing the model (either '
               "way frozen layers, requires_grad=False, keep their weights).")
        embeddings = _default_embeddings(model)
        kept = Finding("model", Severity.INFO, "init_kept",
                       f"Kept {whose}{why}." + _embedding_text(embeddings),
                       {"default_init_embeddings": embeddings} if embeddings else {}, how)
        # only where the user did not choose: "keep" says to, a baseline's "keep" is a choice
        return [at_default(kept, model, name) if policy == "auto" and own else kept]
    records = init_weights(model, keep_frozen=own)
    drawn = [r for r in records if not r["rule"].startswith(("kept", "tied to"))]
    whose = f" of your {type(model).__name__} (model.init = \"policy\")" if own else ""
    message = f"Initialised {_layers(len(drawn))}{whose}: {init_summary(drawn)}." + \
        _kept_text(records)
    return [info("model", "init", message, layers=records)]


def _default_embeddings(model: nn.Module) -> dict[str, float]:
    """{name: weight std} of trainable embeddings still at nn.Embedding's N(0, 1): the policy
    would redraw them at EMBEDDING_STD (METHOD.md §2); frozen ones are pretrained, not default."""
    low, high = DEFAULT_EMBEDDING_STD_BAND
    found = {}
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, _EMBEDDINGS) and isinstance(weight, torch.Tensor) \
                and weight.requires_grad and weight.numel() > 1:
            std = float(weight.detach().float().std())
            if low <= std <= high:
                found[name or "(model)"] = std
    return found


def _embedding_text(embeddings: dict[str, float]) -> str:
    """' Its embedding layers ('emb' std 1.00) keep PyTorch's default N(0, 1) ...': a text model's
    kept embeddings start 100x larger than the method's, which the policy sentence alone hides."""
    if not embeddings:
        return ""
    shown = ", ".join(f"'{name}' std {std:.2f}" for name, std in list(embeddings.items())[:4])
    more = " ..." if len(embeddings) > 4 else ""
    return (f" Its embedding layers ({shown}{more}) keep PyTorch's default N(0, 1); the method "
            f"suggests N(0, {EMBEDDING_STD:g}), which model.init = \"policy\" "
            "applies.")


def _continued_from(name: str, run_folder: str) -> Finding:
    """A module trainwise trained in place, passed again: a warm start the user may not mean
    (a notebook cell run twice gives a different, better-looking result)."""
    return Finding("model", Severity.WARNING, "init_from_earlier_run",
                   f"Your {name}'s weights come from run {run_folder}'s training (trainwise.run "
                   "trains the model you pass in place): this run continues from them, so it "
                   "does not measure a fresh model and will not repeat that run's results.",
                   {"trained_by": run_folder},
                   f"Build the {name} again, the way you built it (a new object with fresh "
                   "weights), before calling trainwise.run to start fresh, or set "
                   "model.init = \"policy\" to re-draw its weights. To continue "
                   "training on purpose, keep it and ignore this warning.")


def _loaded_from(name: str, run_folder: str) -> Finding:
    """trainwise.load_model's module passed on purpose (README's "train more epochs from a
    run's weights"): an info, not the accident _continued_from warns of (review s16 VX1)."""
    return info("model", "init_from_loaded_run",
                f"Your {name} starts from run {run_folder}'s trained weights (its "
                "checkpoints/best.pt, loaded by trainwise.load_model or predict(..., model=)): "
                "this run continues training them; the checks and the range test read it as "
                "fine-tuning.",
                trained_by=run_folder)


def _layers(count: int) -> str:
    return f"{count} layer{'' if count == 1 else 's'}"


def _kept_text(records: list[dict[str, Any]]) -> str:
    """' Kept as they were: 1 frozen layer (body); 1 tied ...': what init_weights left alone
    (frozen, shared with a layer drawn above, or of a type it has no rule for)."""
    kinds = [("frozen", lambda rule: rule == "kept (frozen)"),
             ("sharing a weight drawn above", lambda rule: rule.startswith("tied to")),
             ("of a type with no init rule", lambda rule: rule == "kept")]
    parts = []
    for words, matches in kinds:
        names = [r["name"] for r in records if matches(r["rule"])]
        if names:
            shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
            parts.append(f"{_layers(len(names))} {words} ({shown})")
    return f" Kept as they were: {'; '.join(parts)}." if parts else ""


def at_default(kept: Finding, model: nn.Module, name: str) -> Finding:
    """init_kept with the user's Linear / Conv layers as kept (the report's init table), and a
    warning when some still hold PyTorch's default draw and feed a ReLU with no norm layer to
    rescale them (init_default.py): they shrink the signal, the init METHOD.md §2 says not to
    trust (audit s15 M6). A default layer that shrinks nothing (a fine-tuned model's fresh
    head, Linear -> BatchNorm -> ReLU) is named at info (review s15 VE1, VE5)."""
    records = default_layers(model)
    if not records:
        return kept
    evidence = {**kept.evidence, "layers": records}
    flagged = [r for r in records if r["rule"] == KEPT_DEFAULT]
    if not flagged:
        return replace(kept, evidence=evidence)
    evidence["default_init_layers"] = [r["name"] for r in flagged]
    shrinking = [r for r in flagged if r["shrinks"]]
    if not shrinking:
        return replace(kept, evidence=evidence, message=(
            f"{kept.message} {_layers(len(flagged))} ({_names(flagged)}) still "
            f"hold{'s' if len(flagged) == 1 else ''} PyTorch's default init; none feeds a ReLU "
            "without a norm layer to rescale it, so that init does not shrink the signal."))
    first = shrinking[0]
    message = (
        f"{kept.message} {len(shrinking)} of its {len(records)} Linear/Conv layers "
        f"({_names(shrinking)}) still hold PyTorch's default init, not pretrained or hand-set "
        f"weights: uniform, std 1/sqrt(3 fan_in) ({first['std']:.3g} for '{first['name']}'), "
        "with non-zero biases. Each feeds a ReLU with no norm layer between, and drawn so it "
        f"shrinks the signal's std about sqrt(6) = {DEFAULT_SHRINK:.2g}x; trainwise's policy "
        f"would draw '{first['name']}' at std {first['policy_std']:.3g} "
        f"({first['policy_rule'].split(':')[0]}) and zero its biases.")
    return replace(kept, severity=Severity.WARNING, message=message,
                   fix=_default_fix(records, shrinking), evidence=evidence)


def _names(records: list[dict[str, Any]]) -> str:
    return ", ".join(f"'{r['name']}'" for r in records[:6]) + (" ..." if len(records) > 6
                                                                else "")


def _default_fix(records: list[dict[str, Any]], shrinking: list[dict[str, Any]]) -> str:
    """Redraw the whole model only when no layer holds weights set before: "policy" and
    init_weights(model) redraw every trainable layer, so a mixed model (a pretrained body
    and a fresh head) would lose its pretrained weights (review s15 VE1)."""
    kept_as_built = [r for r in records if r["rule"] != KEPT_DEFAULT]
    keep = ("the report's Model section lists each layer's std beside the policy's. To keep "
            'these weights on purpose, set model.init = "keep".')
    if not kept_as_built:
        return (f'To apply trainwise\'s init policy ({POLICY}), set model.init = "policy" '
                "(frozen layers keep their weights) or call trainwise.init_weights(model) "
                f"before passing the model; {keep}")
    # the He draw the warning states, written out per layer: init_weights on a lone layer
    # reads it as an output layer (xavier, gain 0.1: std 0.0072 where He gives 0.088, review
    # s15 VF1), and every shrinking layer feeds a ReLU
    fresh = "; ".join(_he_code(_module_path(r["name"])) for r in shrinking[:3])
    verb = "holds" if len(kept_as_built) == 1 else "hold"
    return (f"{_layers(len(kept_as_built))} ({_names(kept_as_built)}) {verb} weights set before "
            '(pretrained or hand-set): model.init = "policy" and init_weights(model) would '
            "redraw those too, so leave model.init as it is and draw the fresh layers only, "
            f"before passing the model: {fresh}{' ...' if len(shrinking) > 3 else ''}; {keep}")


def _he_code(layer: str) -> str:
    """The policy's He draw of one fresh layer that feeds a ReLU, as code to paste."""
    return (f'nn.init.kaiming_normal_({layer}.weight, nonlinearity="relu"); '
            f"nn.init.zeros_({layer}.bias)")


def _module_path(name: str) -> str:
    """'head.0' -> 'model.head[0]': the fresh layer as the user's code reaches it."""
    return "model" + "".join(f"[{part}]" if part.isdigit() else f".{part}"
                             for part in name.split("."))
