"""The diagnosis's fixes in the words of a hand-written loop.

The rules write their fixes for `trainwise run`: config keys (train.grad_clip) and the stage to
go back to (tune stage). A loop under `trainwise.Monitor` has neither, so the Monitor rewrites
them into what that loop's code would do (torch.nn.utils.clip_grad_norm_, a OneCycleLR
scheduler, trainwise.find_lr). Rewriting here, rather than a second text in every rule, keeps
the rules' `trainwise run` texts as they are; tests/test_monitor_loop.py fails when a rule
names a config key that has no entry below.
"""

from __future__ import annotations

import re
from dataclasses import replace

from trainwise.findings import Finding

_BF16 = "torch.autocast(device_type, dtype=torch.bfloat16) without a GradScaler"
# class weights in code: this rewrite and missed_classes' own loop text share it (review s15 VT8)
CLASS_WEIGHTS_CODE = ("nn.CrossEntropyLoss(weight=w), w[c] = n / (k * n_c) from the training "
                      "labels' counts")
# config key (and the words around it) -> the same advice in code
CONFIG_KEYS = {
    'train.schedule = "onecycle" has one': "torch.optim.lr_scheduler.OneCycleLR has one, "
                                           "stepped after each optimizer.step()",
    "train.grad_clip": "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) after "
                       "monitor.step, before optimizer.step()",
    # before "train.max_epochs": audit s14 G15c read "raise more epochs in your loop"
    "raise train.max_epochs": "run more epochs in your loop",
    "train.max_epochs": "more epochs in your loop",
    "train.max_minutes": "your loop's time limit",
    'train.class_weights = "balanced" (train stage)':
        f"a weight per class in your loss ({CLASS_WEIGHTS_CODE})",
    "train.patience": "the patience of your early stopping",
    "train.weight_decay": "your optimizer's weight_decay (AdamW, on weights only)",
    "model.dropout": "nn.Dropout in your model",
    # before the "(model stage" rewrite below: the built-in baselines are `trainwise run`'s
    "model stage: double model.width for the built-in baselines, whose default 0 sizes it "
    "from the data; more units or layers in your own": "more units or layers in your model",
    'run.precision = "bf16-mixed" or "32-true"': _BF16 + " or float32 (no autocast)",
    'run.precision = "bf16-mixed" (float32\'s range; GPUs since Ampere) or "32-true"':
        _BF16 + " (float32's range; GPUs since Ampere) or float32 (no autocast)",
    # after the two above, which it is the start of (audit s14 G15a: the NaN fault's fix)
    'under float16 train at run.precision = "bf16-mixed"': "in place of float16 use " + _BF16,
}
# words that assume the recipe ran its tune stage (a Monitor's loop never did)
RUN_PHRASES = {"rerun the range test": "run the range test",
               # an own loop has no evaluate stage (audit s14 C11, G15c)
               "The evaluate stage judges a model that had not finished learning.":
                   "A test score now would judge a model that had not finished learning."}
# "(X stage)" and "(X stage: why)" -> where that lives in a hand-written loop
STAGES = {
    "data": "your data",
    "split": "your train/validation split",
    "split/data": "your split and data preprocessing",
    "model": "your model",
    "check": "trainwise.check(model, loss_fn, x, y, ...) runs these checks",
    "tune": "measure it with trainwise.find_lr(model, loss_fn, train_loader, make_optimizer)",
    "train": "your training loop",
}
_STAGE = re.compile(r"\b(" + "|".join(re.escape(s) for s in sorted(STAGES, key=len,
                                                                      reverse=True))
                    + r") stage\b")


# `trainwise.diagnose(state.history)` after `trainwise.fit` (audit s16 N9): the same code
# terms, but fit has these as arguments (a Monitor's loop has them in its own code)
FIT_KEYS = {
    "raise train.max_epochs": "raise fit's max_epochs= (or run more epochs in your own loop)",
    "train.max_epochs": "fit's max_epochs= (or your own loop's epochs)",
    # fit has no early-stopping argument: the callback that stops and keeps the best weights
    "let early stopping find the best epoch": "let early stopping find the best epoch "
    "(from trainwise.train.callbacks import BestWeights; fit(..., callbacks=[BestWeights("
    "patience=5)]) stops there and restores its weights)",
    "train.grad_clip": "fit's grad_clip=max_norm (in your own loop: "
                       "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) before "
                       "optimizer.step())",
}
FIT_STAGES = STAGES | {"train": "your fit() call or training loop"}


def in_loop_terms(text: str, fit: bool = False) -> str:
    """`text` with its config keys and stage names said in code terms (`fit`: fit()'s
    arguments where it has them)."""
    # FIT_KEYS first: "raise train.max_epochs" before the table's own entries
    keys = FIT_KEYS | {k: v for k, v in CONFIG_KEYS.items() if k not in FIT_KEYS} if fit \
        else CONFIG_KEYS
    stages = FIT_STAGES if fit else STAGES
    for key, words in (keys | RUN_PHRASES).items():
        text = text.replace(key, words)
    return _STAGE.sub(lambda match: stages[match.group(1)], text)


def for_own_loop(finding: Finding, fit: bool = False) -> Finding:
    """The finding with its fix (and message) in loop terms (`fit`: in fit()'s)."""
    fix, message = in_loop_terms(finding.fix, fit), in_loop_terms(finding.message, fit)
    if fix == finding.fix and message == finding.message:
        return finding
    return replace(finding, fix=fix, message=message)
