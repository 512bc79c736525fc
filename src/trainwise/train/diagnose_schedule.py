"""A decaying learning-rate schedule cut by early stopping before its annealing.

One-cycle and cosine schedules gain much of their final accuracy in the low-lr end; early
stopping that fires while the lr is still near its peak never reaches it. Not a rule of
diagnose(): the history cannot tell a schedule cut short from one that ends there, nor early
stopping from a stop on a NaN, so the train stage, which knows both (the plan it built and
its EarlyStopping), calls `after_early_stopping`. Pure functions, as the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import Row, TrainingPlan, column, finite, make, num
from trainwise.train.diagnose_nonfinite import lr_rose

CUT_LR_SHARE = 0.5  # the lr at the stop above half its peak: the annealing had barely begun.
# Measured on the default `trainwise run` (MNIST-1D, one-cycle over 40 epochs, patience 8,
# lr 0.0468; seeds 0-5): seed 0 stopped at epoch 23 with the lr at 66% of its peak: 97.8%
# test accuracy, against 99.2% with the schedule run out (patience 100). The others stopped
# below half (seed 1 at 44%: running it out gave the same weights, 98.3%; seeds 4, 5 at 28%
# and 23%) or ran out their schedule.
LR_JUMP = 3.0  # the lr rose 3x or more between a loss's low and its explosion's peak: the
# schedule's rise is the suspect, not the starting lr (user audit s15 B8: 100x at step 251, the
# loss from 0.11 to 1.46 by step 264, after 10 epochs at 93% validation accuracy)
VAL_SOLVED = 1e-4  # a best validation loss at or below this leaves annealing nothing to gain
# there (the wine data: 14 validation rows, loss 0.0 from epoch 9, so no epoch could be better)


def schedule_cut(history: list[Row], plan: TrainingPlan) -> Finding | None:
    """A warning when a run that stopped early (the caller knows it did) ended before its
    decaying schedule's planned steps with the lr above CUT_LR_SHARE of its peak."""
    if not plan.decays or not plan.planned_steps:
        return None
    steps, lrs = finite(*column(history, "step", "lr"))
    if len(lrs) < 2 or steps[-1] >= plan.planned_steps:
        return None  # ran to its end (or no lr rows to judge)
    peak, final = float(lrs.max()), float(lrs[-1])
    _, val = finite(*column(history, "epoch", "val_loss"))
    if peak <= 0 or final < CUT_LR_SHARE * peak or (len(val) and val.min() <= VAL_SOLVED):
        return None
    _, epochs = column(history, "epoch", "epoch")
    epoch = int(epochs[-1]) if len(epochs) else None
    where = (f"epoch {epoch} of {plan.planned_epochs}" if epoch is not None and
             plan.planned_epochs else f"step {int(steps[-1])} of {plan.planned_steps}")
    name = {"onecycle": "one-cycle", "cosine": "cosine"}.get(plan.schedule or "", "decaying")
    message = (f"Early stopping ended training at {where} with the learning rate still at "
               f"{final / peak:.0%} of its peak ({final:.3g} of {peak:.3g}): the {name} "
               "schedule was cut before annealing, the low-lr end where it gains much of its "
               "final accuracy.")
    fix = ("Raise train.patience (early stopping reacts to the noise of a high lr), or lower "
           "train.max_epochs so the decay fits in the epochs early stopping allows (train "
           "stage).")
    return make(Severity.WARNING, "schedule_cut", message, fix, int(steps[-1]),
                stop_step=int(steps[-1]), planned_steps=plan.planned_steps, stop_epoch=epoch,
                planned_epochs=plan.planned_epochs, final_lr=num(final), peak_lr=num(peak),
                lr_share=num(final / peak), threshold_lr_share=CUT_LR_SHARE,
                schedule=plan.schedule)


def after_early_stopping(findings: list[Finding], history: list[Row],
                         plan: TrainingPlan) -> list[Finding]:
    """diagnose()'s findings for a run early stopping ended: with a schedule_cut warning
    when it cut the schedule, which then replaces the "No training problem found" summary."""
    cut = schedule_cut(history, plan)
    if cut is None:
        return findings
    return [f for f in findings if f.code != "healthy"] + [cut]


@dataclass(frozen=True)
class LrJump:
    """The lr's rise before a loss explosion: from `before` at `from_step` to `after` at
    `to_step` (a scheduler's jump: two adjacent logged steps; a warm-up: a ramp)."""

    from_step: int
    to_step: int
    before: float
    after: float

    def words(self) -> str:
        return (f"the learning rate rose {self.after / self.before:.3g}x, from {self.before:.3g} "
                f"at step {self.from_step} to {self.after:.3g} at step {self.to_step}")


def lr_jump(history: list[Row], first: int, last: int) -> LrJump | None:
    """The lr's rise over logged steps [first, last] (an explosion's onset to its peak) when
    it rose LR_JUMP-fold or more (diagnose_nonfinite's lr_rose judges that a rise at all)."""
    steps, lrs = finite(*column(history, "step", "lr"))
    inside = (steps >= first) & (steps <= last)
    if inside.sum() < 2 or not lr_rose(history, last + 1, int(inside.sum())):
        return None
    steps, lrs = steps[inside], lrs[inside]
    top = int(lrs.argmax())
    if lrs[0] <= 0 or lrs[top] < LR_JUMP * lrs[0]:
        return None
    low = int(max(i for i in range(top) if lrs[i] <= lrs[0]))  # the last step still at the start
    return LrJump(int(steps[low]), int(steps[top]), float(lrs[low]), float(lrs[top]))
