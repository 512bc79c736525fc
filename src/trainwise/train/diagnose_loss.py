"""Diagnosis rules on the training-loss curve: divergence, exploding loss, plateau, and a
learning rate too low to move the loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainwise.findings import Finding, Severity
from trainwise.train.diagnose_common import (
    Row,
    batch_samples,
    column,
    diff_noise,
    finite,
    longer_training,
    loss_curve,
    lr_advice,
    make,
    noise_scale,
    num,
    rolling_median,
    rows_of,
    smoothing_window,
)
from trainwise.train.diagnose_grad import warmup_hint
from trainwise.train.diagnose_nonfinite import (
    calm_before,
    early_calm,
    early_doubt,
    fault_fix,
    fault_message,
    input_fault,
    too_early,
    unclear_fix,
    unclear_message,
)
from trainwise.train.diagnose_schedule import LrJump, lr_jump
from trainwise.train.diagnose_trained import already_trained_words, far_below_chance
from trainwise.train.diagnose_transient import returns_to_floor, val_loss_rose

MIN_POINTS = 8  # fewer loss points than this: no shape to judge
MAX_SKIPPED_SHARE = 0.02  # float16 steps the loss scaler may skip after it found its scale (the
MIN_SKIPPED_WARN = 5  # first steps' skips do not count) before a warning: 2%, and at least 5
EXPLODE_FACTOR = 3.0  # smoothed loss above 3x its running minimum...
EXPLODE_CLIMB = 0.1  # ...having climbed back >= 10% of what training had gained
PLATEAU_DROP = 0.10  # the loss never got 10% below where it started. Within the batch noise
# a flat curve can dip 10% below its start (audit s10 G5: +-15% noise, 64 steps, a 22% dip);
# tests that also asked for a fall beyond that noise (a 6-sigma drop, two 10% windows 3
# standard errors apart, or a Kendall trend test) flagged 7-23% of healthy noisy short runs
# (20-50% falls at 15-25% noise over 64-256 steps) against this rule's 2%, and even a test that
# knows the curve's shape flags 5% to catch 95% of flat curves (review s10 RT3): so a noisy
# flat curve can pass for a fall, and the finding stays a low-false-alarm one
SLOW_DROP = 0.5  # lr too low: less than half the initial loss gained...
SLOW_LATE_SHARE = 0.2  # ...and the last third still gave >= 20% of it (no saturation)
SLOW_SIGNIFICANCE = 5.0  # that late gain is > 5 standard errors of the window medians
TINY_LR = 1e-5  # a flat loss at a peak lr this small: the steps are simply too short


def rule_divergence(history: list[Row]) -> list[Finding]:
    """Any non-finite loss (or a non-finite gradient norm that ended the run): error."""
    hits = []
    for kind, keys in (("step", ("loss",)), ("epoch", ("train_loss", "val_loss"))):
        for key in keys:
            steps, values = column(history, kind, key)
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                hits.append((int(steps[bad[0]]), key, str(values[bad[0]])))
    hit = _nonfinite_gradient(history)
    if hit is not None:
        hits.append(hit)
    if not hits:
        return []
    step, key, value = min(hits, key=lambda hit: hit[0])
    float16 = key == "grad_norm" and any(row.get("skipped") for row in rows_of(history, "step"))
    good_steps, good_loss, _ = loss_curve(history)
    before = good_steps < step
    last = float(good_loss[before][-1]) if before.any() else None
    message = f"Training diverged: {key} became {value} at step {step}."
    samples = batch_samples(history, [step]) if key in ("loss", "grad_norm") else None
    evidence: dict = {} if samples is None else {"sample_indices": samples[1]}
    fix = _divergence_fix(history, key, last)
    initial = float(good_loss[0]) if len(good_loss) else None
    if key in ("loss", "grad_norm") and not float16 and last is not None:
        where = "sample_indices in the evidence" if samples else "the rows of that step's batch"
        message, fix, cause = _nonfinite_cause(history, (step, key, value), (last, initial),
                                               where, (message, fix))
        evidence.update(cause)
    fault = input_fault(history, step)  # the batch itself held a NaN/inf (fit read it back)
    if fault is not None:
        message, fix, found = fault
        evidence.update(found)
    if samples is not None:
        message += " Its batch's samples are in the evidence (sample_indices)."
    if float16:  # the scaler skipped down to its floor: NaN/inf whatever the scale
        fix = ("The float16 loss scaler skipped every step down to its smallest scale, so "
               "the gradient is NaN or inf whatever the scale. If the loss was still falling, "
               "float16 cannot hold these gradients: train at run.precision = \"bf16-mixed\" "
               "or \"32-true\". Otherwise: " + fix)
    return [make(Severity.ERROR, "divergence", message, fix, step,
                 key=key, value=value, last_finite_loss=num(last),
                 initial_loss=num(float(good_loss[0])) if len(good_loss) else None,
                 **evidence)]


def _nonfinite_cause(history: list[Row], hit: tuple[int, str, str],
                     losses: tuple[float, float | None], where: str,
                     said: tuple[str, str]) -> tuple[str, str, dict]:
    """(message, fix, evidence) for a NaN/inf loss or gradient norm: a numerical fault when
    nothing rose before it, "too early to tell" when too few steps came before to judge a
    rise (audit s14 G8: not the lr by default), else the divergence's own `said` words."""
    step, key, value = hit
    calm = calm_before(history, step)
    if calm is None and too_early(history, step):
        doubt = early_doubt(history, step, *losses)
        if doubt is not None:
            lower = lr_advice(history, "lower", "rerun the range test and take a smaller value")
            return (unclear_message(key, value, step, doubt), unclear_fix(where, lower),
                    {"cause": "unclear"})
        calm = early_calm(*losses)
    if calm is None:
        return (*said, {})
    # nothing rose first: not divergence, and not the lr's fault
    message = fault_message(key.replace("grad_norm", "gradient norm"), value, step, calm)
    return message, fault_fix(where), {"cause": "numerical_fault", **calm}


def _nonfinite_gradient(history: list[Row]) -> tuple[int, str, str] | None:
    """(step, "grad_norm", value) of the non-finite gradient norm that counts as divergence.
    A float16 run marks the steps its loss scaler skipped ("skipped"): there any other
    non-finite norm is real (the monitor stopped on it). Rows without the marks (32-bit, or a
    user's own loop that may hide its scaler's skips) count only a non-finite last norm, the
    one a loop stops on."""
    rows = rows_of(history, "step")
    steps, grads = column(history, "step", "grad_norm")
    if not len(grads):
        return None
    if any(row.get("skipped") for row in rows):
        skipped = {row.get("step") for row in rows if row.get("skipped")}
        bad = [i for i, (step, g) in enumerate(zip(steps, grads, strict=True))
               if not np.isfinite(g) and int(step) not in skipped]
        return (int(steps[bad[0]]), "grad_norm", str(grads[bad[0]])) if bad else None
    if not np.isfinite(grads[-1]):
        return int(steps[-1]), "grad_norm", str(grads[-1])
    return None


def rule_loss_scaler_skips(history: list[Row]) -> list[Finding]:
    """float16 steps the loss scaler skipped (their scaled gradients overflowed): the first
    steps' while it finds its scale are normal; many after that mean fewer updates."""
    rows = rows_of(history, "step")
    skipped = [int(row["step"]) for row in rows if row.get("skipped")]
    if not skipped:
        return []
    # the first block of consecutive skips is the scaler settling its scale: at step 1, or
    # where float16 training began (a 32-bit run resumed at 16-mixed)
    settling = next((i for i in range(1, len(skipped)) if skipped[i] != skipped[i - 1] + 1),
                    len(skipped))
    later = len(skipped) - settling
    message = (f"The float16 loss scaler skipped {len(skipped)} of {len(rows)} steps (their "
               f"gradients overflowed float16 at its scale, {settling} of them in a row at "
               f"step {skipped[0]} while it lowered its scale to fit).")
    if later < MIN_SKIPPED_WARN or later <= MAX_SKIPPED_SHARE * len(rows):
        return [make(Severity.INFO, "loss_scaler_skips", message + " That is normal.",
                     "Nothing to do.", skipped[0], skipped=len(skipped), steps=len(rows))]
    return [make(Severity.WARNING, "loss_scaler_skips", message + f" {later} later skips are "
                 f"{later / len(rows):.0%} of the steps: training made that many fewer updates.",
                 "Train at run.precision = \"bf16-mixed\" (float32's range; GPUs since Ampere) "
                 "or \"32-true\"; if the gradients are simply huge, lower the learning rate "
                 "(tune stage) or clip them (train.grad_clip). The first skipped steps keep "
                 "their batch's samples (sample_indices) if a few batches cause it.",
                 skipped[settling] if later else skipped[0], skipped=len(skipped),
                 steps=len(rows), later=later)]


def _divergence_fix(history: list[Row], key: str, last_finite_loss: float | None) -> str:
    if last_finite_loss is None:
        return ("Not finite from the first step: check the inputs and targets for NaN, inf "
                "or extreme values (data stage) and the loss at initialisation (check stage).")
    if key == "val_loss":
        return ("Only the validation loss is not finite: check the validation data for NaN, "
                "inf or values far outside the training range (data stage).")
    lower = lr_advice(history, "lower", "rerun the range test and take a smaller value")
    warmup = warmup_hint(history, after=" or ")
    return (f"{lower}; {warmup}clip gradients (train.grad_clip); if it persists, look for "
            "extreme input values (data stage).")


def rule_loss_exploding(history: list[Row]) -> list[Finding]:
    """The smoothed loss climbs far above its own running minimum after having fallen, by
    more than the batch noise lets the running minimum of a smoothed curve dip."""
    curve = loss_curve(history)
    steps, loss = curve.steps, curve.values
    if len(loss) < MIN_POINTS:
        return []
    window = smoothing_window(len(loss))
    smooth = rolling_median(loss, window)
    # The running minimum starts from the loss at initialisation, so a loss that jumps
    # 1000x on the first updates (lr far too high) counts as exploding from step one.
    start = curve.start
    low = np.minimum.accumulate(np.minimum(smooth, start))
    gained = np.maximum(start - low, 0.0)
    swing = noise_swing(loss, window)
    factor = EXPLODE_FACTOR * swing
    exploded = (low > 0) & (smooth > factor * low) & (smooth - low > EXPLODE_CLIMB * gained)
    if not exploded.any():
        return []
    rose = val_loss_rose(history, int(steps[int(np.argmax(exploded))]))
    # a rise the next batches leave again is batch variance (audit s14 C3), but only while a
    # validation loss says the model did not get worse: None (no validation on both sides)
    # judges nothing, as diagnose.py's fold reads it (review s14 VT2)
    if rose is False:
        exploded &= ~returns_to_floor(loss, low, exploded, window, swing,
                                      (1 - PLATEAU_DROP) * start)
    if not exploded.any():
        return []
    first = int(np.argmax(exploded))
    turn = int(np.argmin(smooth[: first + 1]))  # where the curve turned upwards: the onset
    if smooth[turn] > start:
        turn = 0  # it never went down first: the onset is the first update
    # smoothed against smoothed: a single batch's loss against a smoothed low read 10x on
    # a flat band of 16-row batches (user audit s11 M8)
    peak = first + int(np.argmax(smooth[first:]))
    if peak == turn and peak + 1 < len(smooth):
        # a loss that jumps on the first update peaks in the first smoothed point, the start's
        # own step: "from 2.413 at step 1 to 9.046 at step 1" (user audit s15 M5)
        peak = peak + 1 + int(np.argmax(smooth[peak + 1:]))
    ended_lost = smooth[-1] > (1 - PLATEAU_DROP) * start  # nothing left of the training
    trained = far_below_chance(history, max(start, smooth[peak]))
    if trained and not ended_lost:
        return []  # a trained model's bump that settles again, far below chance (audit s16 N11)
    # one that ends above where it started undid this run's training: said, as a warning
    # since the model stays far below chance (review s16 VN1)
    severity = Severity.ERROR if ended_lost and not trained else Severity.WARNING
    low_point = min(smooth[turn], start)
    jump = lr_jump(history, int(steps[turn]), int(steps[peak]))
    message = (f"The loss exploded: smoothed over {window} steps, it rose from {low_point:.4g} "
               f"at step {steps[turn]} to {smooth[peak]:.4g} at step {steps[peak]} "
               f"({smooth[peak] / low_point:.3g}x, beyond the {factor:.3g}x the batch noise "
               "allows)"
               + ("; it ended no lower than where it started." if ended_lost else ".")
               + (f" It stayed far below chance: {already_trained_words(history, start)}."
                  if trained else "")
               + ("" if jump is None else f" Just before, {jump.words()}: the schedule raised "
                  "it, and the loss rose with it."))
    return [make(severity, "loss_exploding", message, _exploding_fix(history, jump), steps[turn],
                 min_loss=num(low_point), min_step=int(steps[turn]),
                 peak_loss=num(smooth[peak]), peak_step=int(steps[peak]),
                 peak_batch_loss=num(float(loss[first:].max())),
                 initial_loss=num(start), final_loss=num(smooth[-1]),
                 factor_threshold=num(factor), smoothing_window=window,
                 val_loss_rose=rose, **_jump_evidence(jump))]


def _jump_evidence(jump: LrJump | None) -> dict:
    if jump is None:
        return {}
    return {"lr_jump_step": jump.to_step, "lr_before": num(jump.before),
            "lr_after": num(jump.after)}


def _exploding_fix(history: list[Row], jump: LrJump | None) -> str:
    """Lower the lr, clip, look at the batches; led by the schedule when the lr rose
    LR_JUMP-fold before the rise (audit s15 B8 was sent to the range test instead)."""
    lower = lr_advice(history, "lower", "take a point left of the range test's steepest "
                      "descent")
    warmup = warmup_hint(history, after=" or ")
    fix = (f"{lower}; {warmup}clip gradients (train.grad_clip); check for abnormal batches "
           "near that step (data stage).")
    if jump is None:
        return fix
    return (f"Fix the schedule first (train stage): {jump.words()}, and the loss exploded "
            f"with it; keep the scheduled lr at or below {jump.before:.3g}, where it trained "
            "well (a scheduler that multiplies it by more than 1 raises it), or lower the "
            "schedule's peak. If the schedule is as intended: " + fix[0].lower() + fix[1:])


def noise_swing(loss: np.ndarray, window: int) -> float:
    """How far below a flat, noisy loss's level its running minimum of medians dips by
    chance, as a factor (>= 1): the low the rule compares with is the lowest of K = len /
    window nearly independent medians, about sqrt(2 ln K) standard errors out. Batch losses
    scatter by a factor (16-row batches of a converged classifier: 0.03 to 1.3 around 0.13),
    so the noise is measured on log(loss), from consecutive differences (a trend cancels),
    over the second half of the curve (a converged loss is noisier in log than a falling one:
    the whole curve read half the noise on a 20-step run), as the standard error of a median
    of `window` points (1.25 sigma / sqrt(window))."""
    tail = loss[len(loss) // 2:]
    positive = np.log(tail[tail > 0])
    if len(positive) < 3:
        return 1.0
    sigma = diff_noise(positive)
    picked = np.sqrt(2 * np.log(max(2.0, len(loss) / window)))
    return float(np.exp(picked * 1.25 * sigma / np.sqrt(window)))


@dataclass(frozen=True)
class Progress:
    """How far the training loss moved: medians over windows at the start, 2/3, and end."""

    first_step: int
    start: float  # where training started (LossCurve.start)
    initial: float  # median of the first 10% (at least 3 points)
    at_two_thirds: float
    final: float
    lowest: float  # minimum of the smoothed curve
    standard_error: float  # of one window median, from the robust point-to-point noise

    @property
    def drop(self) -> float:
        return (self.initial - self.final) / self.initial

    @property
    def lowest_drop(self) -> float:
        return (self.start - self.lowest) / self.start

    @property
    def late_share(self) -> float:
        gained = self.initial - self.final
        return (self.at_two_thirds - self.final) / gained if gained > 0 else 0.0


def progress(history: list[Row]) -> Progress | None:
    curve = loss_curve(history)
    steps, loss = curve.steps, curve.values
    n = len(loss)
    if n < MIN_POINTS:
        return None
    start, edge = curve.start, max(3, n // 10)
    initial = float(np.median(loss[:edge]))
    if min(start, initial) <= 0:
        return None  # relative drops need a positive starting loss
    smooth = rolling_median(loss, smoothing_window(n))
    centre = 2 * n // 3
    return Progress(
        first_step=int(steps[0]),
        start=start,
        initial=initial,
        at_two_thirds=float(np.median(loss[max(0, centre - edge // 2): centre + edge // 2 + 1])),
        final=float(np.median(loss[-edge:])),
        lowest=float(smooth.min()),
        standard_error=1.25 * noise_scale(loss, smooth) / np.sqrt(edge),
    )


def _peak_lr(history: list[Row]) -> float | None:
    _, lrs = finite(*column(history, "step", "lr"))
    if not len(lrs):
        _, lrs = finite(*column(history, "epoch", "lr"))
    return float(lrs.max()) if len(lrs) else None


def _grad_is_stationary(history: list[Row]) -> bool:
    """True when the gradient norm ends where it started (within 2x): weights barely moved."""
    _, grads = finite(*column(history, "step", "grad_norm"))
    if len(grads) < MIN_POINTS:
        return True  # no gradient signal to contradict the lr evidence
    edge = max(3, len(grads) // 10)
    early, late = np.median(grads[:edge]), np.median(grads[-edge:])
    return bool(early > 0 and 0.5 <= late / early <= 2.0)


def _val_still_improving(history: list[Row]) -> bool:
    """The validation loss ends within 5% of its best (True when there is too little of it).

    A training loss that falls steadily while validation rises is memorisation (shuffled
    labels, tiny data), which the overfitting rule names; a small lr slows both alike."""
    _, val = finite(*column(history, "epoch", "val_loss"))
    return len(val) < 3 or bool(val[-1] <= 1.05 * val.min())


def lr_too_low_reason(history: list[Row], prog: Progress) -> str | None:
    """Why the loss looks held back by a small learning rate, or None (never for a model
    trained before the run: little left to gain is not a small lr's sign, audit s16 N11)."""
    if far_below_chance(history, prog.start):
        return None
    late_gain = prog.at_two_thirds - prog.final
    if (0 < prog.drop < SLOW_DROP and prog.late_share >= SLOW_LATE_SHARE
            and late_gain > SLOW_SIGNIFICANCE * prog.standard_error
            and _val_still_improving(history)):
        return "steady"  # still falling at the same pace at the end: far from converged
    peak_lr = _peak_lr(history)
    if (prog.lowest_drop < PLATEAU_DROP and peak_lr is not None and peak_lr <= TINY_LR
            and _grad_is_stationary(history)):
        return "tiny_lr"
    return None


def rule_lr_too_low(history: list[Row]) -> list[Finding]:
    prog = progress(history)
    reason = lr_too_low_reason(history, prog) if prog else None
    if prog is None or reason is None:
        return []
    peak_lr = _peak_lr(history)
    if reason == "steady":
        what = (f"the loss fell only {prog.drop:.0%} and was still falling steadily at the end "
                f"({prog.late_share:.0%} of the gain came in the last third)")
    else:
        what = f"the loss did not move ({prog.lowest_drop:.0%} drop) at a peak lr of {peak_lr:.2g}"
    return [make(Severity.WARNING, "lr_too_low", f"Learning rate too low: {what}.",
                 lr_advice(history, "raise", "rerun the range test and take a larger value")
                 + f"; or train for more steps ({longer_training(history)}).", prog.first_step,
                 reason=reason, initial_loss=num(prog.initial), final_loss=num(prog.final),
                 relative_drop=num(prog.drop), late_share=num(prog.late_share),
                 peak_lr=num(peak_lr))]


def rule_plateau(history: list[Row]) -> list[Finding]:
    """The loss never got PLATEAU_DROP below its start, and not because of a tiny lr."""
    prog = progress(history)
    if prog is None or prog.lowest_drop >= PLATEAU_DROP or lr_too_low_reason(history, prog):
        return []
    # a smoothed low above the start read "(-1.1% lower)" (user audit s15 B6: frozen weights)
    below = (f"its lowest point was {prog.lowest:.4g} ({prog.lowest_drop:.1%} lower)"
             if prog.lowest < prog.start else
             f"it never went below it (its lowest smoothed point was {prog.lowest:.4g})")
    message = f"The training loss barely moved: from {prog.start:.4g} {below}"
    trained = already_trained_words(history, prog.start)
    if trained is not None:  # converged before this run: nothing to raise (audit s16 N11)
        return [make(Severity.INFO, "plateau", f"{message}; {trained}.",
                     "Nothing to fix if this run was meant to continue the earlier one; to "
                     "train from scratch, create the model and its optimizer again first.",
                     prog.first_step, initial_loss=num(prog.start), lowest_loss=num(prog.lowest),
                     final_loss=num(prog.final), relative_drop=num(prog.lowest_drop),
                     threshold=PLATEAU_DROP, already_trained=True)]
    r2 = _last_val_r2(history)
    if r2 is not None and r2 < 0:
        message += (f"; the validation R^2 is {r2:.3g}, worse than predicting the mean")
    fix = ("Check that inputs are normalised and labels match them (data stage), that "
           "the model can overfit one batch and gradients reach the first layers "
           "(check stage: saturating sigmoid/tanh stacks hide vanishing gradients from "
           "the global norm), then raise the learning rate (tune stage).")
    if r2 is not None:  # a regression: the first suspect is the target's scale
        fix = ("Standardise the regression target if it is not ((y - mean) / std of the "
               "training split, predictions times std plus mean; trainwise run does this, a "
               "loop of your own may not): a target far from 0 or with a large spread leaves "
               "the loss dominated by it and the steps too small to move it (data stage). "
               + fix)
    return [make(Severity.WARNING, "plateau", message + ".", fix, prog.first_step,
                 initial_loss=num(prog.start), lowest_loss=num(prog.lowest),
                 final_loss=num(prog.final), relative_drop=num(prog.lowest_drop),
                 threshold=PLATEAU_DROP, val_r2=num(r2))]


def _last_val_r2(history: list[Row]) -> float | None:
    """The last finite validation R^2 (regression histories only), or None."""
    _, r2 = finite(*column(history, "epoch", "val_r2"))
    return float(r2[-1]) if len(r2) else None
