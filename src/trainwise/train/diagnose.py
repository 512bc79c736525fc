"""Diagnose a finished (or running) training from its history rows alone.

`diagnose(history)` runs every rule in `RULES` (pure functions: history rows in, Findings
out), lets a root cause hide the symptoms it explains, and orders what is left so the
first finding is the one to act on. Thresholds live next to each rule, with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from trainwise.findings import (
    Finding,
    Findings,
    Severity,
    check_fix_terms,
    info,
    worst,
)
from trainwise.findings import rank as severity_rank
from trainwise.train.diagnose_accuracy import rule_systematically_wrong
from trainwise.train.diagnose_capacity import rule_capacity, rule_heavy_regularisation
from trainwise.train.diagnose_collapse import rule_collapse, rule_missed_classes
from trainwise.train.diagnose_common import (
    PLAN_KEY,
    STAGE,
    History,
    Row,
    TrainingPlan,
    best_epoch,
    column,
    finite,
    loss_curve,
    num,
    rows_of,
)
from trainwise.train.diagnose_confidence import (
    rule_confusion,
    rule_overconfidence,
    rule_underconfidence,
)
from trainwise.train.diagnose_dip import rule_gradient_dip
from trainwise.train.diagnose_grad import rule_gradient_spike, rule_vanishing_gradients
from trainwise.train.diagnose_leak import rule_validation_leak
from trainwise.train.diagnose_loss import (
    rule_divergence,
    rule_loss_exploding,
    rule_loss_scaler_skips,
    rule_lr_too_low,
    rule_plateau,
)
from trainwise.train.diagnose_order import rule_ordered_batches
from trainwise.train.diagnose_perfect import rule_too_good
from trainwise.train.diagnose_rising import rule_loss_rising
from trainwise.train.diagnose_target import rule_target_scale
from trainwise.train.diagnose_unfinished import rule_still_improving, solved
from trainwise.train.diagnose_val import rule_overfitting
from trainwise.train.loop_terms import for_own_loop
from trainwise.train.monitor_misuse import loop_interrupted

Rule = Callable[[list[Row]], list[Finding]]

# Registry order is also the tie-break order: root causes before downstream symptoms.
RULES: dict[str, Rule] = {
    "divergence": rule_divergence,
    "loss_scaler_skips": rule_loss_scaler_skips,
    "ordered_batches": rule_ordered_batches,
    "loss_exploding": rule_loss_exploding,
    "vanishing_gradients": rule_vanishing_gradients,
    # a regression target far from unit scale: the root of its slow fall (audit s15 B1)
    "target_scale": rule_target_scale,
    # before lr_too_low: dropout's noise holds the training loss up, which reads as a slow lr
    "heavy_regularisation": rule_heavy_regularisation,
    "lr_too_low": rule_lr_too_low,
    "plateau": rule_plateau,
    # the training loss rose back at a non-rising lr: over-regularised (audit s15 B3)
    "loss_rising": rule_loss_rising,
    "gradient_spike": rule_gradient_spike,
    "gradient_dip": rule_gradient_dip,
    "systematically_wrong": rule_systematically_wrong,  # below chance: before what it explains
    "overfitting": rule_overfitting,
    # best epoch = last, still falling: the epoch budget ended a run that was still learning
    "still_improving": rule_still_improving,
    "validation_leak": rule_validation_leak,
    "overconfidence": rule_overconfidence,
    "underconfidence": rule_underconfidence,
    "confusion": rule_confusion,
    # accuracy at the majority's share, balanced accuracy at chance: no other rule sees it
    "collapse": rule_collapse,
    "missed_classes": rule_missed_classes,
    # a warning, so "healthy" (which would vouch for a leaked score) is not given with it
    "too_good": rule_too_good,
}

# A root cause explains these symptoms: they are folded into its evidence ("also_seen")
# instead of being listed as separate diagnoses, so the report leads with one cause.
EXPLAINS: dict[str, tuple[str, ...]] = {
    "divergence": ("ordered_batches", "loss_exploding", "gradient_spike", "gradient_dip",
                   "vanishing_gradients", "lr_too_low", "plateau", "overfitting",
                   "validation_leak", "overconfidence", "underconfidence", "confusion",
                   "collapse", "missed_classes", "still_improving", "loss_rising"),
    # each stretch of one class drags the model to it: spikes where the class changes, near-zero
    # losses inside a stretch, dead units after them, validation predictions of the last class;
    # the training loss, swinging with each stretch, averages above the validation loss
    "ordered_batches": ("loss_exploding", "gradient_spike", "gradient_dip", "vanishing_gradients",
                        "lr_too_low", "plateau", "overfitting", "validation_leak",
                        "overconfidence", "confusion", "collapse", "missed_classes"),
    # a wrecked model scores alike everywhere: validation no worse than training, no leak needed
    "loss_exploding": ("gradient_spike", "gradient_dip", "vanishing_gradients", "lr_too_low",
                       "plateau", "overfitting", "validation_leak", "overconfidence",
                       "confusion", "collapse", "missed_classes", "loss_rising"),
    # dead units give every row the same output: one class for all
    "vanishing_gradients": ("lr_too_low", "plateau", "confusion", "collapse", "missed_classes"),
    # a loss dominated by the target's scale falls slowly whatever the lr or the epochs
    "target_scale": ("lr_too_low", "plateau", "still_improving"),
    # its fix already says to train for more steps
    "lr_too_low": ("confusion", "still_improving"),
    "plateau": ("confusion",),
    # squashed outputs (a softmax before CrossEntropyLoss) also shrink the gradients
    "underconfidence": ("vanishing_gradients", "lr_too_low", "plateau"),
    # same cause (trained past the best epoch, or memorised), same fix
    "overfitting": ("overconfidence", "confusion"),
    # training at a fraction of itself: a slow training loss, unsure predictions (audit s15 B5)
    # a rising training loss with train above validation: dropout or noise holds it up, and
    # its fix names a weight decay above the usual too (review s15 VT4: both fired, two levers)
    "heavy_regularisation": ("lr_too_low", "plateau", "still_improving", "underconfidence",
                             "loss_rising"),
    "systematically_wrong": ("overfitting", "overconfidence", "confusion", "missed_classes"),
}
# the training loss of these swings or explodes above validation: not regularisation
ABOVE_VALIDATION = ("divergence", "ordered_batches", "loss_exploding")

SPIKES_AS_CAUSE = 3  # at most this many spikes for one to be the explosion's cause

# The rules that judge where training ended, which a run cut short by Ctrl-C cannot support
# (audit s16 N12: 15 steps of 30, interrupted, were judged "learning rate too low"; review s16
# VX3: missed_classes' "The model did not learn" from 1 validated epoch of 10, and an
# overconfidence whose fix says the same, evidence not_learned): withheld, and
# the interrupt note names them. One rule for the Monitor and for fit's history.
END_RULES = ("lr_too_low", "plateau", "still_improving", "missed_classes")
STOP_KIND = "stop"  # fit's last history row after Ctrl-C: {"kind": "stop", "reason": ...}
INTERRUPTED = "interrupted"
FIT_RESUME = ("Nothing to fix. To go on, call trainwise.fit again on the same model (it keeps "
              "the weights of the step it stopped at), or pass resume_state= from its last "
              "checkpoint.")


def list_rules() -> list[str]:
    """Names of the diagnosis rules, in the order they run."""
    return list(RULES)


def diagnose(history: list[dict[str, Any]], num_classes: int | None = None,
             plan: TrainingPlan | None = None, *, fix_terms: str | None = None) -> Findings:
    """Findings (stage "train") for a training history; never mutates `history`.

    `num_classes`, when known, sharpens the confusion rule (chance = 1/num_classes); rows
    that carry a "num_classes" key serve the same purpose. `plan`, when known, says how
    training was set up (an lr from the config, the schedule and its length): the fixes then
    name what the user set, and a schedule cut short is found. `fix_terms`, as find_lr's and
    tune_lr's: "config" says the fixes in `trainwise run`'s config keys and stages, "api" in
    the Python API's (fit's max_epochs=, torch calls, trainwise.find_lr); None: "config" with
    a plan (only the recipe has one), else "api" (audit s16 N9: diagnose(state.history) after
    fit named train.max_epochs and the "train stage"). A Findings: a notebook shows it as a
    table.
    """
    terms = fix_terms or ("config" if plan is not None else "api")
    check_fix_terms(terms)  # an unknown value is refused, not read as the Python wording
    found = _diagnose(history, num_classes, plan)
    stop = interrupted_at(history)
    if stop is not None:  # fit's Ctrl-C: judge the steps run, not where training "ended"
        found, withheld = withheld_at_interrupt(found)
        found.append(loop_interrupted(*stop, withheld, FIT_RESUME))
    return Findings(found if terms == "config" else [for_own_loop(f, fit=True) for f in found])


def interrupted_at(history: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(step, epoch) when the history's last row says training was interrupted (fit's Ctrl-C;
    a resumed run's rows come after it, so only the last row counts), else None."""
    last = history[-1] if history else None
    if not isinstance(last, dict) or last.get("kind") != STOP_KIND or \
            last.get("reason") != INTERRUPTED:
        return None
    return int(last.get("step") or 0), int(last.get("epoch") or 0)


def withheld_at_interrupt(found: list[Finding]) -> tuple[list[Finding], list[str]]:
    """(the findings less END_RULES, "healthy" and an overconfidence whose fix says the model
    did not learn, all of which judge where a run cut short ended; the codes withheld)."""
    ended = [f for f in found if f.code in END_RULES or f.evidence.get("not_learned") is True]
    withheld = [f.code for f in ended]
    return [f for f in found if f not in ended and f.code != "healthy"], withheld


def _diagnose(history: list[dict[str, Any]], num_classes: int | None,
              plan: TrainingPlan | None) -> list[Finding]:
    """diagnose()'s findings in the rules' own (`trainwise run`) words."""
    extra = [] if num_classes is None else [{"kind": "meta", "num_classes": num_classes}]
    extra += [] if plan is None else [{"kind": "meta", PLAN_KEY: plan}]
    rows = History([*history, *extra])
    if not len(column(rows, "step", "loss")[1]) and not rows_of(rows, "epoch"):
        return [info(STAGE, "insufficient_history",
                     "No step rows with a loss and no epoch rows: nothing to diagnose.")]
    found = [finding for name, rule in RULES.items() for finding in _run(name, rule, rows)]
    found = _fold_explained(found)
    found.sort(key=_order)
    if any(f.severity is not Severity.INFO for f in found):
        # not even beside missed_classes (review s15 VT2): for a class that is not rare its fix
        # already says to grow the model (GROW_MODEL), for a rare one it says to weigh it
        return found
    # a sound run may still be too small for its data (METHOD §2: only then grow the model);
    # a problem to fix comes first, so this note is given only here
    return found + [healthy(rows)] + _run("capacity", rule_capacity, rows)


def _run(name: str, rule: Rule, rows: list[Row]) -> list[Finding]:
    # A rule that trips over an odd history must not cost the user the rest of the report
    # after a long training; the failure is reported, not hidden.
    try:
        return rule(rows)
    except Exception as exc:
        return [info(STAGE, "rule_failed", f"Diagnosis rule '{name}' failed: {exc!r}.",
                     rule=name)]


def spike_opened_explosion(found: list[Finding]) -> bool:
    """A few isolated gradient spikes, the first inside the loss explosion's rise: one abnormal
    batch wrecked the weights (lr far too high spikes over and over, or not at all)."""
    spikes = [f for f in found if f.code == "gradient_spike"]
    explosions = [f for f in found if f.code == "loss_exploding"]
    if not spikes or not explosions:
        return False
    first = spikes[0].evidence.get("spike_steps", [None])[0]
    rise = explosions[0].evidence
    return (spikes[0].evidence.get("num_spikes", 0) <= SPIKES_AS_CAUSE and first is not None
            and rise.get("min_step", first + 1) <= first <= rise.get("peak_step", first - 1))


def _explains(found: list[Finding]) -> dict[str, tuple[str, ...]]:
    explains = dict(EXPLAINS)
    for cause in ABOVE_VALIDATION:
        explains[cause] = (*explains.get(cause, ()), "heavy_regularisation")
    if any(f.code == "underconfidence" and f.evidence.get("outputs_squashed") is False
           or f.code == "lr_too_low" for f in found):
        # raw logits: under-confidence is under-training, a symptom of too low an lr (or a
        # plateau), not squashed outputs that shrink the gradients. A loss still falling
        # steadily (lr_too_low) says the same: at lr 100x too low a barely trained 4-class model
        # stays under the squash cap (top 0.45 < 0.48), and confidence alone cannot tell it
        # from a softmax (audit s15 B2); the zoo's double-softmax runs never fire lr_too_low
        explains["underconfidence"] = ()
        for cause in ("lr_too_low", "plateau"):
            explains[cause] = (*explains[cause], "underconfidence")
    if any(f.code == "overfitting" and f.evidence.get("memorising") for f in found):
        # memorising is read off a validation loss at epoch 1's level; at chance, confusion
        # names the same cause with the same checks and leads (the two cannot explain each other)
        explains["overfitting"] = tuple(s for s in explains["overfitting"] if s != "confusion")
        explains["confusion"] = ("overfitting",)
    if any(f.code == "loss_exploding" and f.evidence.get("val_loss_rose") is False
           for f in found):
        # the validation loss did not rise: the model was not wrecked, so a collapse to the
        # class prior is its own problem, not the explosion's (audit s14 C3 hid it)
        explains["loss_exploding"] = tuple(s for s in explains["loss_exploding"]
                                           if s not in ("collapse", "missed_classes"))
    if any(f.code == "overfitting" and f.evidence.get("validation_differs") for f in found):
        # a class missed on validation rows whose inputs differ from training is the shift's
        # symptom; missed_classes' "did not learn: revisit the lr" sends the user the wrong way
        # (audit s15 case c09: a feature recorded differently in validation only)
        explains["overfitting"] = (*explains["overfitting"], "missed_classes")
    if any(f.code == "missed_classes" and f.evidence.get("classes_rare") is False
           for f in found):
        # a class that is not rare, missed under heavy dropout: the model trains at a fraction
        # of itself, and growing it (missed_classes' fix) is the wrong lever (review s15 VT3)
        explains["heavy_regularisation"] = (*explains["heavy_regularisation"], "missed_classes")
    if not spike_opened_explosion(found):
        return explains
    caused = tuple(s for s in explains["loss_exploding"] if s != "gradient_spike")
    return {**explains, "loss_exploding": caused, "gradient_spike": ("loss_exploding", *caused)}


def _fold_explained(found: list[Finding]) -> list[Finding]:
    codes = {f.code for f in found}
    explains = _explains(found)
    explained_by: dict[str, str] = {}
    for cause in RULES:  # registry order: the most fundamental cause claims a symptom first
        for symptom in explains.get(cause, ()):
            if cause in codes and symptom in codes and symptom not in explained_by:
                explained_by[symptom] = cause
    for symptom, cause in explained_by.items():  # a cause hidden itself hands over to its root
        while cause in explained_by:
            cause = explained_by[cause]
        explained_by[symptom] = cause
    kept = []
    for finding in found:
        if finding.code in explained_by:
            continue
        seen = [f for f in found if explained_by.get(f.code) == finding.code]
        if seen:  # flat lists: the report prints evidence as key=value
            # the cause is as severe as the worst symptom it explains (an exploded run that
            # never recovered stays an error whatever its root cause)
            severity = worst([finding, *seen])
            finding = dataclasses.replace(finding, severity=severity, evidence={
                **finding.evidence, "also_seen": [f.code for f in seen],
                "also_seen_steps": [f.step for f in seen]})
        kept.append(finding)
    return kept


def _order(finding: Finding) -> tuple[int, float, int]:
    step = float("inf") if finding.step is None else float(finding.step)
    names = list(RULES)
    rank = names.index(finding.code) if finding.code in names else len(names)
    return -severity_rank(finding.severity), step, rank


def healthy(history: list[Row]) -> Finding:
    """The info finding when no rule fired: where the run was best and how it ended."""
    epochs = [row for row in rows_of(history, "epoch")
              if isinstance(row.get("val_loss"), (int, float)) and np.isfinite(row["val_loss"])]
    _, grads = finite(*column(history, "step", "grad_norm"))
    loss = loss_curve(history).values
    evidence: dict[str, Any] = {
        "final_grad_norm": num(float(grads[-1])) if len(grads) else None,
        "final_train_loss": num(float(loss[-1])) if len(loss) else None,
    }
    step, message = None, "No training problem found"
    row = best_epoch(history)
    if row is not None:
        best = next(i for i, epoch in enumerate(epochs) if epoch is row)
        step = row.get("step")
        num_epochs = _num_epochs(history, len(epochs))
        evidence.update(best_epoch=row.get("epoch", best),
                        best_val_loss=num(row["val_loss"]),
                        num_epochs=num_epochs, num_validated=len(epochs),
                        final_val_loss=num(epochs[-1]["val_loss"]))
        if isinstance(row.get("val_accuracy"), (int, float)):
            evidence["best_val_accuracy"] = num(row["val_accuracy"])
        validated = "" if num_epochs == len(epochs) else f", {len(epochs)} of them validated"
        message += (f": best validation loss {row['val_loss']:.4g} at epoch "
                    f"{evidence['best_epoch']} of {num_epochs}{validated}")
        if row is epochs[-1] and len(epochs) > 1:  # audit s15 M4: not "done" either
            message += _last_was_best(epochs)
    finding = info(STAGE, "healthy", message + ".", **evidence)
    return dataclasses.replace(finding, step=None if step is None else int(step))


def _last_was_best(epochs: list[Row]) -> str:
    """The last epoch's own fall, in numbers; "more epochs may gain a little" only when the run
    is not solved (review s15 VT7: at accuracy 1.0 training longer raised the test loss)."""
    before, last = epochs[-2]["val_loss"], epochs[-1]["val_loss"]
    fall = (f"the last one, which took {(before - last) / before:.1%} off the loss"
            if before > 0 else "the last one")
    if solved(epochs[-1]):
        return (f" ({fall}; validation is already solved (accuracy 1.0 or a loss near 0): "
                "more epochs would only sharpen right answers)")
    return f" ({fall}; more epochs may still gain a little)"


def _num_epochs(history: list[Row], num_validated: int) -> int:
    """Epochs run: the highest epoch number any epoch row carries. A loop that validates every
    2nd epoch (a Monitor user calling end_epoch() on the others) writes epoch rows without a
    val_loss; counting only the validated ones read "epoch 6 of 3" (user audit s11 D2)."""
    _, numbers = finite(*column(history, "epoch", "epoch"))
    return max(num_validated, int(numbers.max())) if len(numbers) else num_validated
