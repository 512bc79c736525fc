"""Checks (b) and (c) at initialisation: the loss is where theory puts it, every parameter gets a
finite, non-zero gradient of a sensible relative size, and ReLUs are not dead from the start.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from trainwise.checks._common import STAGE, LossFn, MakeOptimizer, fitting_mode, names_list
from trainwise.checks.gradients import check_gradients
from trainwise.findings import Finding, Severity, error, info, warning
from trainwise.model.input_tree import num_rows
from trainwise.train.diagnose_capacity import DROPOUT_RAISE, DROPOUT_RANGE
from trainwise.train.prior_loss import prior_loss

# Cross-entropy at init is ln C when logits start near 0. Default PyTorch init gives ~1.4 ln C
# on our baselines (logit std ~1.5), which is noise, not a bug; 2x is a mis-scaled model/data.
LOSS_HIGH_WARNING = 2.0
LOSS_HIGH_INFO = 1.5
# No input-independent predictor beats the label entropy H; a random net at half of it has
# seen the answer (leakage) or the loss is not the one we think.
LOSS_LOW = 0.5
# The commonest cause of a too-good loss at init in a notebook is no leak at all: the module
# passed is the one an earlier cell trained (trainwise.run, fit and a Monitor loop train it in
# place), so its weights know the answers (user audit s16 N3: 0.063 where H = 2.3).
TRAINED_ALREADY = ("If you passed your own module, it may be trained already (the same object "
                   "as an earlier trainwise.run, fit or training loop, e.g. a notebook cell run "
                   "twice: they train it in place): build it again (net = Net()) and pass the "
                   "new one.")
REGRESSION_HIGH = 3.0  # x var(y): the best constant predictor scores var(y)
REGRESSION_LOW = 0.1
DEAD_FRACTION = 0.5  # of a ReLU layer's units that output 0 for every sample
# Dropout drops p of the units at every step: p = 0.9 keeps 1 in 10 and trains on noise; 0.5
# is a classic for wide layers (AlexNet's 4096) but halves a small model's capacity. The checks
# themselves run with dropout off, so nothing else would show it.
DROPOUT_WARNING = 0.8
DROPOUT_SMALL_MODEL = 0.5
SMALL_MODEL_PARAMS = 100_000


def check_loss_at_init(loss: float, y: torch.Tensor, task: str,
                       num_classes: int) -> list[Finding]:
    """Check (b): cross-entropy ~ ln C, MSE ~ var(y) (Karpathy: 'verify loss @ init')."""
    if not math.isfinite(loss):
        return [error(STAGE, "loss_not_finite", f"the loss at init is {loss}.",
                      "look for log(0), division by zero or overflow in the model/loss; "
                      "revisit the model stage.", loss=loss)]
    if task == "classification":
        return _classification_loss(loss, y, num_classes)
    return _regression_loss(loss, y)


def _classification_loss(loss: float, y: torch.Tensor, num_classes: int) -> list[Finding]:
    counts = torch.bincount(y.flatten().long(), minlength=num_classes).tolist()
    expected, entropy = math.log(num_classes), prior_loss(counts) or 0.0
    evidence = {"loss": loss, "expected": expected, "label_entropy": entropy,
                "ratio": loss / expected}
    if loss > LOSS_HIGH_WARNING * expected:
        return [warning(STAGE, "loss_at_init_off",
                        f"cross-entropy at init is {loss:.3g}, {loss / expected:.1f}x the "
                        f"ln C = {expected:.3g} of a model that starts uncertain: the logits "
                        "start large (confidently wrong).",
                        "normalise the inputs, and init the final layer small "
                        "(trainwise.model.init.init_weights does); revisit the model stage.",
                        direction="high", revisit="model", **evidence)]
    if loss < LOSS_LOW * entropy:
        return [warning(STAGE, "loss_at_init_off",
                        f"cross-entropy at init is {loss:.3g}, below half the label entropy "
                        f"{entropy:.3g}: an untrained model should not know the answers.",
                        f"{TRAINED_ALREADY} If it is freshly built: look for the label "
                        "leaking into the inputs, or a loss that is not cross-entropy on "
                        "logits; revisit the data stage.",
                        direction="low", revisit="data", **evidence)]
    note = " (logits start somewhat large)" if loss > LOSS_HIGH_INFO * expected else ""
    return [info(STAGE, "loss_at_init_ok",
                 f"cross-entropy at init {loss:.3g} vs ln C = {expected:.3g}{note}.", **evidence)]


def _regression_loss(loss: float, y: torch.Tensor) -> list[Finding]:
    var = float(y.double().var()) if y.numel() > 1 else 0.0
    mean_sq = float(y.double().mean()) ** 2
    evidence = {"loss": loss, "target_var": var, "target_mean_sq": mean_sq}
    scale = max(var, 1e-12)
    if loss > REGRESSION_HIGH * scale:
        cause, fix, stage = (("the targets sit far from 0", "standardise the targets (or "
                              "set the final layer's bias to their mean); revisit the data "
                              "stage.", "data")
                             if mean_sq > var else
                             ("the outputs start large", "normalise the inputs and init the "
                              "final layer small; revisit the model stage.", "model"))
        return [warning(STAGE, "loss_at_init_off",
                        f"MSE at init is {loss:.3g}, {loss / scale:.3g}x the target variance "
                        f"{var:.3g} (what predicting the mean scores): {cause}.", fix,
                        direction="high", revisit=stage, **evidence)]
    if loss < REGRESSION_LOW * scale:
        return [warning(STAGE, "loss_at_init_off",
                        f"MSE at init is {loss:.3g}, under a tenth of the target variance: an "
                        "untrained model should not predict this well.",
                        f"{TRAINED_ALREADY} If it is freshly built: look for the target "
                        "leaking into the inputs; revisit the data stage.",
                        direction="low", revisit="data", **evidence)]
    return [info(STAGE, "loss_at_init_ok",
                 f"MSE at init {loss:.3g} vs target variance {var:.3g}.", **evidence)]


def from_kept_weights(findings: list[Finding], kept: str) -> list[Finding]:
    """The too-low loss at init as an info when the run kept the weights of a module the user
    built (`kept`: how, e.g. 'model.init = "keep"'; "" when the weights were drawn fresh): a
    random net cannot know the answers, leak or not, so trained weights are the cause (audit
    s16 D1: README's "train more epochs from a run's weights" read 0.045 where ln C = 2.30,
    and the warning sent the user to hunt a label leak in clean data)."""
    if not kept:
        return findings
    return [_trained_start(f, kept) if f.code == "loss_at_init_off"
            and f.evidence.get("direction") == "low" else f for f in findings]


def _trained_start(finding: Finding, kept: str) -> Finding:
    evidence = finding.evidence
    loss_name, against = (("cross-entropy", f"ln C = {evidence['expected']:.3g}")
                          if "expected" in evidence else
                          ("MSE", f"the target variance {evidence.get('target_var', 0.0):.3g}"))
    return Finding(
        STAGE, Severity.INFO, "loss_at_init_trained",
        f"The model starts from trained weights ({kept}): {loss_name} at init "
        f"{evidence['loss']:.3g} against {against}; nothing to check.",
        {**evidence, "kept": kept},
        "Nothing to do to continue training or fine-tune. If you meant a fresh model: build it "
        "again (net = Net()) and pass the new one, or set model.init = \"policy\" to re-draw "
        "its weights.")


def _watch_relus(model: nn.Module) -> tuple[dict[str, torch.Tensor], list]:
    """Hooks recording, per ReLU module, which units were > 0 for at least one sample."""
    alive: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(_module: nn.Module, _args: object, out: torch.Tensor) -> None:
            units = out.detach().transpose(0, 1).reshape(out.shape[1], -1) if out.ndim > 1 \
                else out.detach().reshape(1, -1)
            seen = (units > 0).any(1)
            alive[name] = alive[name] | seen if name in alive else seen
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, (nn.ReLU, nn.ReLU6))]
    return alive, handles


def _dead_relus(alive: dict[str, torch.Tensor], num_samples: int) -> list[Finding]:
    dead = {n: 1.0 - float(a.float().mean()) for n, a in alive.items()}
    bad = {n: f for n, f in dead.items() if f > DEAD_FRACTION}
    if not bad:
        return []
    worst = max(bad, key=bad.get)
    return [warning(STAGE, "dead_relu",
                    f"{len(bad)} ReLU layer(s) output 0 for every one of {num_samples} samples "
                    f"in most units (layer '{worst}': {bad[worst]:.0%} dead); no gradient "
                    "flows through a dead unit.",
                    "re-initialise (He init, zero biases: trainwise.model.init.init_weights), "
                    "normalise the inputs, or use LeakyReLU; revisit the model stage.",
                    dead_fraction=bad, threshold=DEAD_FRACTION)]


def _frozen(model: nn.Module) -> list[Finding]:
    """Some parameters frozen: right when fine-tuning a pretrained part on purpose, a silent bug
    when a freezing snippet runs on a model trained from scratch (its random layers stay
    random). Say which, so the user can tell."""
    params = list(model.named_parameters())
    frozen = [(n, p) for n, p in params if not p.requires_grad]
    if not frozen:
        return []
    count, total = sum(p.numel() for _, p in frozen), sum(p.numel() for _, p in params)
    return [warning(STAGE, "params_frozen",
                    f"{len(frozen)} of {len(params)} parameter tensors ({count:,} of {total:,} "
                    f"values, {count / total:.0%}) have requires_grad=False and will not "
                    f"train: {names_list([n for n, _ in frozen])}.",
                    "if the model trains from scratch, unfreeze them "
                    "(model.requires_grad_(True)); if they are a pretrained part you freeze "
                    "on purpose, ignore this; revisit the model stage.",
                    frozen=[n for n, _ in frozen], frozen_values=count, total_values=total)]


def heavy_dropout_layers(model: nn.Module) -> dict[str, float]:
    """{layer: p} of the dropout layers with p >= 0.8, or >= 0.5 in a model under
    SMALL_MODEL_PARAMS: the check here and fit's and the Monitor's epoch rows (for the train
    stage's heavy_regularisation to name) read the same test."""
    limit = _dropout_limit(model)
    return {n: float(m.p) for n, m in model.named_modules()
            if isinstance(m, nn.modules.dropout._DropoutNd) and m.p >= limit}


def _dropout_limit(model: nn.Module) -> float:
    size = sum(p.numel() for p in model.parameters())
    return DROPOUT_SMALL_MODEL if size < SMALL_MODEL_PARAMS else DROPOUT_WARNING


def _heavy_dropout(model: nn.Module) -> list[Finding]:
    heavy = heavy_dropout_layers(model)
    if not heavy:
        return []
    size, limit = sum(p.numel() for p in model.parameters()), _dropout_limit(model)
    # an info (with its fix) below DROPOUT_WARNING: p = 0.5 can be right, it is worth a look
    severity = Severity.WARNING if max(heavy.values()) >= DROPOUT_WARNING else Severity.INFO
    worst = max(heavy, key=heavy.get)
    return [Finding(STAGE, severity, "dropout_heavy",
                    f"{len(heavy)} dropout layer(s) with p >= {limit:g} in a model of {size:,} "
                    f"parameters; the heaviest, '{worst}', drops {heavy[worst]:.0%} of its "
                    "units at every training step: the model trains on a fraction of itself "
                    "and may underfit. The checks here run with dropout off, so they cannot "
                    "show it.",
                    {"dropout": heavy, "num_params": size, "threshold": limit},
                    f"lower p to {DROPOUT_RANGE} ({DROPOUT_RAISE}); revisit the model stage.")]


def check_at_init(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *,
                  task: str, num_classes: int, make_optimizer: MakeOptimizer) -> list[Finding]:
    """Checks (b), (c) and dead ReLUs on a copy: one forward with hooks, one backward."""
    probe = fitting_mode(copy.deepcopy(model))
    if not any(p.requires_grad for p in probe.parameters()):
        return [error(STAGE, "no_trainable_params",
                      "no parameter of the model has requires_grad=True: nothing can train.",
                      "unfreeze the layers to train (p.requires_grad_(True)); revisit the "
                      "model stage.", num_params=sum(p.numel() for p in probe.parameters()))]
    findings = _frozen(probe) + _heavy_dropout(probe)
    alive, handles = _watch_relus(probe)
    try:
        loss = loss_fn(probe(x), y)
    finally:
        for handle in handles:
            handle.remove()
    findings += check_loss_at_init(float(loss.detach()), y, task, num_classes)
    if not math.isfinite(float(loss.detach())):
        return findings
    findings += _dead_relus(alive, num_rows(x))
    return findings + check_gradients(probe, loss_fn, loss, x, y, make_optimizer)
