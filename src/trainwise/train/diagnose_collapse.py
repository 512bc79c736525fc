"""A classifier that leaves classes out: it answers one class for (nearly) every validation
row (collapse), or never finds a class that has enough validation rows (missed_classes).

Audit s9 I2: on 2% positives a model answering '0' for every validation row had accuracy
0.98 (the majority share) and a validation loss of 0.061, and the run was called healthy:
the other rules read accuracy, confidence and the loss, and all three look fine. Balanced
accuracy (the mean per-class recall) does not: any constant answer scores 1/k on it, whatever
the class shares. I7: on six classes, recall 0 on two of them at 94% accuracy got an info.

"At chance" allows for noise and for uselessness (intervals.at_chance, the evaluate stage's
test too): balanced accuracy whose 95% interval reaches 1/k, or within one point of it. A
model that finds a real share of a rare class (1 of 8) is not called collapsed; one that finds
a lucky row (1 of 80) is.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import replace

from trainwise.data.audit import IMBALANCE_RATIO
from trainwise.findings import Finding, Severity
from trainwise.train.class_counts import class_counts_of
from trainwise.train.class_names import class_name
from trainwise.train.diagnose_capacity import GROW_MODEL
from trainwise.train.diagnose_common import (
    Row,
    TrainingPlan,
    best_epoch,
    class_weights_advice,
    longer_training,
    lr_advice,
    make,
    num,
    num_classes,
    plan_of,
    rows_of,
)
from trainwise.train.intervals import at_chance
from trainwise.train.loop_terms import CLASS_WEIGHTS_CODE
from trainwise.train.never_predicted import rare_classes
from trainwise.train.not_learned import lead_with, not_learned, steps_peak_lr, unlearned_loss
from trainwise.train.prior_loss import prior_loss
from trainwise.train.ranking import chance_auc_high, ranks_above_chance, too_few_to_rank

MIN_CLASS_ROWS = 5  # recall 0 on fewer validation rows is weak evidence: 0 of 5 right bounds
# the class's recall under 43% (95% Wilson), 0 of 2 only under 66%
SIGNAL_SHARE = 0.9  # without a ROC-AUC: a validation loss under 90% of the prior's entropy
# says the scores carry signal beyond the class shares (audit s9: 0.061 against 0.098,
# ROC-AUC 0.98); a weak but real ranker sits at 0.93-0.95 of it, so the AUC judges first
MAX_NAMED = 4  # classes named in a message
# class weights where no train.* key is the user's (fit; the Monitor rewrites the stage)
LOSS_WEIGHTS = f"Weigh the classes in the loss (train stage: {CLASS_WEIGHTS_CODE})"
# the evaluate stage's verdicts on the test argmax that a validation collapse already announced
ARGMAX_VERDICTS = ("argmax_misses_classes", "below_majority_baseline",
                   "balanced_accuracy_at_chance")


def _score(row: Row, key: str) -> float | None:
    value = row.get(f"val_{key}")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def collapsed(row: Row, history: list[Row]) -> bool:
    """Balanced accuracy at chance while accuracy is clearly above it: the model answers a
    frequent class for (nearly) every row. On balanced classes accuracy is then at chance
    too, and the confusion rule speaks ("lost on the validation set"). "At chance" is
    intervals.at_chance, as at the evaluate stage."""
    balanced, accuracy = _score(row, "balanced_accuracy"), _score(row, "accuracy")
    counts = class_counts_of(row)
    if balanced is None or accuracy is None:
        return False
    if counts is not None:  # the classes balanced accuracy averages over: those present
        rows, right, _ = counts
        k, n = sum(1 for r in rows if r > 0), sum(rows)
        return (k >= 2 and at_chance(balanced, k, rows, right)
                and not at_chance(accuracy, k, [n], [sum(right)]))
    k, n = num_classes(history), plan_of(history).val_rows
    if k is None or k < 2:
        return False
    # no per-class counts (a history from before they were recorded): the margin alone
    # judges balanced accuracy, and the plan's row count the accuracy
    total = None if n is None else [n]
    hits = None if n is None else [round(accuracy * n)]
    return at_chance(balanced, k) and not at_chance(accuracy, k, total, hits)


def name(history: list[Row], index: int) -> str:
    """The class as a message quotes it: "'fraud'", or "'1'" without names."""
    return f"'{class_name(plan_of(history).class_names, index)}'"


def _named(history: list[Row], indices: list[int], rows: list[int]) -> str:
    """"class '1' (8 rows)" or "classes '4' (3 rows), '5' (2 rows)"."""
    shown = [f"{name(history, i)} ({rows[i]} rows)" for i in indices[:MAX_NAMED]]
    more = f" and {len(indices) - MAX_NAMED} more" if len(indices) > MAX_NAMED else ""
    return ("class " if len(indices) == 1 else "classes ") + ", ".join(shown) + more


def _recalls(history: list[Row], indices: list[int], rows: list[int], right: list[int]) -> str:
    """"recall 0 on class '1' (8 rows)", or with a lucky row found "1 of 80 rows found of
    class '1'"."""
    if all(right[i] == 0 for i in indices):
        return f"recall 0 on {_named(history, indices, rows)}"
    shown = [f"{right[i]} of {rows[i]} rows found of class {name(history, i)}"
             for i in indices[:MAX_NAMED]]
    more = f" and {len(indices) - MAX_NAMED} more classes" if len(indices) > MAX_NAMED else ""
    return ", ".join(shown) + more


def _where(best: Row, epochs: list[Row], history: list[Row]) -> str:
    at_chance = sum(collapsed(row, history) for row in epochs)
    return (f"At epoch {best.get('epoch')} (best validation loss; balanced accuracy at chance "
            f"in {at_chance} of {len(epochs)} epochs)")


def _signal_note(best: Row, rows: list[int] | None, plan: TrainingPlan
                 ) -> tuple[str, bool | None]:
    """What the scores say beside the collapse, and whether they carry signal (None: nothing
    to judge by). The ROC-AUC decides where the epoch row has one, by the same test as the
    evaluate stage's verdict (ranking.ranks_above_chance), so the two stages agree; the loss
    against the class shares' entropy only when it has none (a Monitor given no
    probabilities, a history from before the AUC was recorded, over 20 classes), or when
    the rows cannot judge it (1 validation row of a class: the bound was 1.078, audit s16 S8)."""
    auc = _score(best, "roc_auc")
    bound = None if auc is None else chance_auc_high(rows)
    if auc is not None and bound is None:
        note, signal = _loss_note(best, rows, plan)
        return (f" Its validation ROC-AUC {auc:.3f} is not judged: "
                f"{too_few_to_rank(rows, plan.class_names, 'validation')}.{note}"), signal
    if auc is not None and bound is not None:
        if ranks_above_chance(auc, rows):
            return (f" Its validation ROC-AUC {auc:.3f} is at least the {bound:.3f} that "
                    "random scores rarely reach on these rows: the scores do carry signal, "
                    "but the rare classes never get the top score."), True
        return (f" Its validation ROC-AUC {auc:.3f} is under the {bound:.3f} that random "
                "scores rarely reach on these rows: the model learned the class shares and "
                "nothing more."), False
    return _loss_note(best, rows, plan)


def _loss_note(best: Row, rows: list[int] | None, plan: TrainingPlan
               ) -> tuple[str, bool | None]:
    """The fallback of _signal_note: the validation loss against what answering the class
    shares alone scores (None: no class counts to judge by). The shares are the training
    split's, as in the loss figure's 'prior only' line; a Monitor run has no training counts
    and uses the validation split's."""
    if rows is None or not isinstance(best.get("val_loss"), (int, float)):
        return "", None
    prior = prior_loss(plan.train_class_counts)
    if plan.class_weighted:  # a balanced class-weighted loss puts every class at equal
        # weight: its constant answer is the uniform guess, ln k
        level, what = (math.log(sum(1 for r in rows if r > 0)),
                       "ln k, the uniform guess (the loss is class-weighted)")
    elif prior is not None:
        level, what = prior, ("what answering the training split's class shares alone scores "
                              "(their entropy, the loss figure's 'prior only' line)")
    else:
        level, what = prior_loss(rows) or 0.0, ("what answering the class shares alone scores "
                                                "(their entropy, from the validation counts)")
    if best["val_loss"] < SIGNAL_SHARE * level:
        return (f" The validation loss {best['val_loss']:.3g} is below {SIGNAL_SHARE:.0%} of "
                f"{level:.3g}, {what}: the scores do carry signal "
                "(ranking metrics such as ROC-AUC may be good), but the rare classes never "
                "get the top score."), True
    return (f" The validation loss {best['val_loss']:.3g} is not below {SIGNAL_SHARE:.0%} of "
            f"{level:.3g}, {what}: the model learned the class shares and nothing more."), False


def _collapse_fix(history: list[Row], signal: bool | None, weighted: bool) -> str:
    # the threshold first, as the evaluate stage's argmax_misses_classes orders them: it
    # keeps the trained model
    threshold = ("Choose a decision threshold on the validation scores in place of the top "
                 f"score (a lower cut for the rare class), or {class_weights_advice()}")
    longer = (lr_advice(history, "raise", "rerun the range test and take a larger value")
              + f" or train longer ({longer_training(history)})")
    judge = " Judge the run by balanced accuracy or per-class recall, not accuracy."
    if weighted:
        return (f'train.class_weights is already "balanced": {longer}; if that does not '
                "help, check that the features carry signal for these classes (data stage).")
    if signal is None:
        return f"{threshold}. If the loss barely moved: {longer}.{judge}"
    if signal:
        return f"{threshold}.{judge}"
    return (f"{longer}: the scores are no better than the class shares alone; then "
            f"{threshold[0].lower()}{threshold[1:]}.{judge}")


def rule_collapse(history: list[Row]) -> list[Finding]:
    """Warning when the best epoch's balanced accuracy sits at chance (1/k) while accuracy is
    well above it: the model answers the majority class for (nearly) every validation row."""
    best = best_epoch(history)
    if best is None or not collapsed(best, history):
        return []
    counts = class_counts_of(best)
    plan = plan_of(history)
    weighted = bool(plan.class_weighted)
    balanced, accuracy = best["val_balanced_accuracy"], best["val_accuracy"]
    where = _where(best, rows_of(history, "epoch"), history)
    if counts is not None:
        rows, right, predicted = counts
        top = max(range(len(predicted)), key=lambda i: predicted[i])
        missed = [i for i, r in enumerate(rows) if r > 0 and right[i] == 0]
        others = [i for i, r in enumerate(rows) if r > 0 and i != top]
        what = (f"the model answers class {name(history, top)} for {predicted[top]} of "
                f"{sum(rows)} validation rows: {_recalls(history, others, rows, right)}")
    else:
        rows = missed = None
        what = "the model answers the most frequent class for (nearly) every validation row"
    note, signal = _signal_note(best, rows, plan)
    k = sum(1 for r in rows if r > 0) if rows else num_classes(history)
    message = (f"{where} {what}. Balanced accuracy {balanced:.2f} is chance for {k} classes, "
               f"while accuracy {accuracy:.2f} only reflects the majority's share: the model "
               f"collapsed to the class prior.{note}")
    return [make(Severity.WARNING, "collapse", message, _collapse_fix(history, signal, weighted),
                 best.get("step"), epoch=best.get("epoch"), balanced_accuracy=num(balanced),
                 accuracy=num(accuracy), num_classes=k, missed_classes=missed,
                 scores_carry_signal=signal)]


def confirming_collapse(found: Finding, history: list[Row],
                        reported: Collection[str] | None = None) -> Finding:
    """An evaluate-stage argmax verdict (ARGMAX_VERDICTS) on a run whose best epoch collapsed
    on validation, said as the test split's confirmation of the train stage's collapse
    warning: one event, told once and then confirmed, not two findings that read as two
    problems. Any other finding comes back unchanged, as it does when the train stage did not
    report the collapse (a root cause folded it away: audit s14 C3's evaluate stage confirmed
    a warning that was in neither the console, findings.json nor the report).
    `reported`: the codes the train stage reported, read once by the caller (stages_evaluate:
    its findings.json); None runs the diagnosis on `history` here, each call (review s14
    VT10: 0.37 s a call on 14k steps, and without the train stage's num_classes and plan)."""
    best = best_epoch(history)
    if found.code not in ARGMAX_VERDICTS or best is None or not collapsed(best, history):
        return found
    if reported is None:
        # imported here: diagnose.py imports this module for its rules
        from trainwise.train.diagnose import diagnose
        reported = {f.code for f in diagnose(history)}
    if "collapse" not in reported:
        return found
    return replace(found, message="The test split confirms the train stage's collapse "
                   f"warning (validation). {found.message}",
                   evidence={**found.evidence, "confirms": "collapse"})


def rule_missed_classes(history: list[Row]) -> list[Finding]:
    """Warning when, at the best epoch, a class with at least MIN_CLASS_ROWS validation rows
    has recall 0 (collapse, the extreme case, is said by rule_collapse instead)."""
    best = best_epoch(history)
    counts = None if best is None else class_counts_of(best)
    if counts is None or collapsed(best, history):
        return []
    rows, right, predicted = counts
    missed = [i for i, r in enumerate(rows) if r >= MIN_CLASS_ROWS and right[i] == 0]
    if not missed:
        return []
    never = [i for i in missed if predicted[i] == 0]
    share = sum(rows[i] for i in missed) / sum(rows)
    # audit s14 C15: 2 classes named while 22 more (under 5 rows each) were at recall 0 too
    few = sum(1 for r, ok in zip(rows, right, strict=True) if 0 < r < MIN_CLASS_ROWS and not ok)
    also = (f" {few} more class{'es' if few > 1 else ''} with fewer than {MIN_CLASS_ROWS} "
            "validation rows each (too few to name) also had recall 0." if few else "")
    how = ("never predicted" if len(never) == len(missed) else
           f"{len(never)} of them never predicted" if never else "predicted only for other rows")
    message = (f"At epoch {best.get('epoch')} (best validation loss) the model finds no "
               f"validation row of {_named(history, missed, rows)}: recall 0, {how}. "
               f"Accuracy {_score(best, 'accuracy') or 0:.2f} hides it, as these rows are "
               f"{share:.1%} of the validation split; balanced accuracy is "
               f"{_score(best, 'balanced_accuracy') or 0:.2f}.{also}")
    rare = bool(rare_classes(missed, list(plan_of(history).train_class_counts) or rows))
    fix = _missed_fix(history, missed, rare)
    found = make(Severity.WARNING, "missed_classes", message, fix, best.get("step"),
                 epoch=best.get("epoch"), missed_classes=missed, never_predicted=never,
                 classes_rare=rare,
                 missed_rows=[rows[i] for i in missed], min_class_rows=MIN_CLASS_ROWS,
                 few_row_classes_missed=few,
                 balanced_accuracy=num(_score(best, "balanced_accuracy")))
    # a loss above ln C: the lr and batch size first
    if _own_loop(history):
        return [lead_with(found, _loop_not_learned(history, len(rows)))]
    return [lead_with(found, not_learned(history, len(rows)))]


def _own_loop(history: list[Row]) -> bool:
    """fit or a Monitor: no TrainingPlan with the run's weight decay (trainwise run always
    passes one), so no train.* key is the user's to set (audit s15 B6)."""
    return plan_of(history).weight_decay is None


def _missed_fix(history: list[Row], missed: list[int], rare: bool) -> str:
    """Class weights only for classes rare in training (`rare`; the validation counts stand in
    for a loop's unknown training counts): on 4 balanced classes a width-2 MLP missed one, and
    weights of ~1 change nothing; there the model's size or training is the lever (s15 B10)."""
    plan = plan_of(history)
    longer = "train stage" if _own_loop(history) else longer_training(history)
    more = (f"train for more epochs ({longer}); if that does not help, "
            "check that the features tell these classes apart (data stage)")
    if plan.class_weighted:
        fix = ('train.class_weights is already "balanced": these classes may have too few '
               f"training rows to learn (data stage: more rows of them), or {more}")
    elif rare:
        weigh = LOSS_WEIGHTS if _own_loop(history) else class_weights_advice(first=True)
        fix = (f"{weigh}; if that is not enough, these classes may "
               f"have too few training rows to learn (data stage: more rows of them) or {more}")
    else:
        which = "These classes are" if len(missed) > 1 else "This class is"
        fix = (f"{which} not rare (at least {IMBALANCE_RATIO:.0%} of the largest class's "
               "rows), so class weights would "
               "change little: a model too small or trained too briefly tells too few classes "
               f"apart. {GROW_MODEL}, or {more}")
    return fix + ". Judge the run by per-class recall or balanced accuracy, not accuracy."


def _loop_not_learned(history: list[Row], num_classes: int) -> str:
    """not_learned's lead in a loop's terms: fit and the Monitor have no config keys for the
    lr or the batch size; their levers are the optimizer and loader the loop builds."""
    unlearned = unlearned_loss(history, num_classes)
    if unlearned is None:
        return ""
    loss, chance = unlearned
    top = steps_peak_lr(history)
    peak = "" if top is None else f" (the steps' lr reached {top:.3g} here)"
    return (f"The model did not learn: its best validation loss {loss:.3g} never "
            f"came clearly below chance (ln {num_classes} = {chance:.2f}, "
            "the uniform guess). Fix training first: check that the optimizer holds the "
            "model's parameters, measure the learning rate with trainwise.find_lr(model, "
            f"loss_fn, train_loader, make_optimizer) and train at what it suggests{peak}, and "
            "use a batch well under the training rows' count (a few optimizer steps per epoch "
            "learn little). Only then does what follows apply:")
