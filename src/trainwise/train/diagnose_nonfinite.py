"""A NaN/inf with no rise before it: a numerical fault in the model, loss or data, not a
learning rate too high (audit s12 L7; the AUTOTRAINER / DeepDiagnosis distinction).

Divergence announces itself: the loss or the gradient norm climbs for some steps before it
overflows (tests/test_diagnose.py's `diverged`: x150 over 40 steps). A log(0), a sqrt or a
division of 0, an inf in one input or a float16 overflow in one layer gives NaN in a step
whose predecessors were healthy (the audit's run: loss 0.066, gradient norm 0.2, lr falling,
then NaN). Lowering the lr there only hides the bug for a while.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainwise.train.diagnose_common import Row, column, finite

WINDOW = 10  # the steps just before the first NaN/inf, where a run-up would show
REFERENCE = 50  # the steps before those: what the loss and gradient norm were
MIN_REFERENCE = 5  # fewer steps before the window (a NaN in the first ~15): cannot tell
LOSS_RISE = 1.5  # the window's median loss above 1.5x the reference median is a rise...
GRAD_RISE = 2.0  # ...so is its median gradient norm above 2x (medians: one spike is noise)
LAST_JUMP = 3.0  # ...or the last finite value alone 3x the reference median (a sharp run-up)
LR_RISE = 1.05  # lr grew > 5% over the window (warmup, a range test): it may be the cause

NUMERICAL_FAULT = ("a numerical fault (log/sqrt/division of 0, an inf input, fp16 overflow) "
                   "rather than a too-high lr")


def _rise(steps: np.ndarray, values: np.ndarray, step: int) -> tuple[float, float] | None:
    """(window median, last finite value) before `step`, each as a ratio to the reference
    median; None when too few finite steps come before."""
    steps, values = finite(steps, values)
    before = values[steps < step]
    window, reference = before[-WINDOW:], before[-WINDOW - REFERENCE:-WINDOW]
    if len(reference) < MIN_REFERENCE or not len(window):
        return None
    normal = float(np.median(reference))
    if normal <= 0:
        return None
    return float(np.median(window)) / normal, float(window[-1]) / normal


def calm_before(history: list[Row], step: int) -> dict[str, Any] | None:
    """Evidence that the loss and gradient norm were flat or falling, and the lr not rising,
    over the WINDOW steps before `step` (the first non-finite one); None when any rose or
    there are too few steps before it to tell."""
    loss = _rise(*column(history, "step", "loss"), step)
    if loss is None or loss[0] > LOSS_RISE or loss[1] > LAST_JUMP:
        return None
    evidence = {"loss_ratio": round(loss[0], 3)}
    steps, grads = column(history, "step", "grad_norm")
    grad = _rise(steps, grads, step) if np.isfinite(grads).sum() else None
    if grad is not None:
        if grad[0] > GRAD_RISE or grad[1] > LAST_JUMP:
            return None
        evidence["grad_norm_ratio"] = round(grad[0], 3)
    if lr_rose(history, step, WINDOW):
        return None
    return {**evidence, "window_steps": WINDOW}


def lr_rose(history: list[Row], step: int, window: int | None = None) -> bool:
    """The lr grew more than LR_RISE over the `window` logged steps before `step` (all of
    them when None): a warm-up or a range test, which may have caused the NaN."""
    lr_steps, lrs = finite(*column(history, "step", "lr"))
    lrs = lrs[lr_steps < step][-window if window else None:]
    return len(lrs) >= 2 and bool(lrs[-1] > LR_RISE * lrs[0])


def too_early(history: list[Row], step: int) -> bool:
    """Too few finite losses before `step` for calm_before's reference (a NaN in the first
    WINDOW + MIN_REFERENCE = 15 steps; audit s14 G8's bad batch came at step 12)."""
    steps, _ = finite(*column(history, "step", "loss"))
    return int((steps < step).sum()) < WINDOW + MIN_REFERENCE


def early_doubt(history: list[Row], step: int, last: float | None,
                initial: float | None) -> str | None:
    """Why a NaN too early for calm_before cannot be cleared of the lr, in the words of
    unclear_message; None when the last finite loss is at or below the initial one (still
    falling) and the lr was not rising before `step`: then it is a fault (early_calm)."""
    if last is None or initial is None:
        return "and no finite loss came before to judge by"
    if last > initial:
        return "and the loss had risen"
    if lr_rose(history, step):  # review s14 VT5: a warm-up, the loss falling, said "risen"
        return "and the learning rate was rising (a warm-up)"
    return None


def early_calm(last: float, initial: float) -> dict[str, Any]:
    """The evidence against the lr for an early NaN that early_doubt found no doubt in."""
    return {"early": True, "loss_at_start": round(initial, 4), "loss_before": round(last, 4)}


def unclear_message(key: str, value: str, step: int, doubt: str) -> str:
    return (f"Training diverged: {key} became {value} at step {step}, too early to tell whether "
            "the learning rate or one batch caused it (fewer than "
            f"{WINDOW + MIN_REFERENCE} steps came before, {doubt}).")


def unclear_fix(where: str, lower_lr: str) -> str:
    """Both suspects on equal footing (METHOD §3: the lr too high or an abnormal batch), the
    cheap check first: one batch through detect_anomaly takes seconds, a range test minutes."""
    return (f"First rule out the batch: run its samples ({where}) through the model and loss "
            "inside `with torch.autograd.detect_anomaly():`, which names the operation whose "
            "backward made the NaN, and check them for inf or extreme values (data stage). If "
            f"the batch is clean, the lr is the suspect: {lower_lr[0].lower()}{lower_lr[1:]}.")


def fault_message(what: str, value: str, step: int, calm: dict[str, Any]) -> str:
    if calm.get("early"):
        return (f"A non-finite {what} ({value}) appeared at step {step} while the loss was "
                f"falling ({calm['loss_at_start']:.4g} at the start, {calm['loss_before']:.4g}"
                f" just before) and the learning rate was not rising: {NUMERICAL_FAULT}.")
    grad = (f", the gradient norm {calm['grad_norm_ratio']:.2f}x"
            if "grad_norm_ratio" in calm else "")
    return (f"A non-finite {what} ({value}) appeared at step {step} with no rise before it: "
            f"{NUMERICAL_FAULT}. Over the {calm['window_steps']} steps before, the median "
            f"loss was {calm['loss_ratio']:.2f}x that of the steps before them{grad}, and the "
            "learning rate was not rising.")


def fault_fix(where: str) -> str:
    """`where` names the saved batch: 'sample_indices in the evidence', nonfinite_batch.json."""
    return (f"Find the operation that made it: run that batch's samples ({where}) through the "
            "model and loss inside `with torch.autograd.detect_anomaly():`, which names the "
            "operation whose backward made the NaN. Guard log, sqrt and division against 0 "
            "(add an eps, clamp), check those samples for inf or extreme values (data stage), "
            "and under float16 train at run.precision = \"bf16-mixed\". The learning rate is "
            "not the suspect: nothing rose before the NaN.")


def _cells_said(entry: dict[str, Any]) -> str:
    where = entry["part"]
    if entry.get("columns") is not None:
        columns = ", ".join(map(str, entry["columns"]))
        where += f" column{'s' if len(entry['columns']) > 1 else ''} {columns}"
    elif entry.get("first_position") is not None:
        where += f" ({entry['cells']} cells, the first at {tuple(entry['first_position'])})"
    return f"sample {entry['sample']} has {entry['value'].upper()} in {where}"


def input_fault(history: list[Row], step: int) -> tuple[str, str, dict[str, Any]] | None:
    """(message, fix, evidence) when the step row of the first NaN/inf carries the batch's
    own NaN/inf cells (`nonfinite_inputs`, read back by fit at its stop): the data made it,
    so the fix leads with the data stage (audit s15 B16); None otherwise."""
    row = next((r for r in history if r.get("kind") == "step" and r.get("step") == step
                and r.get("nonfinite_inputs")), None)
    if row is None:
        return None
    found = row["nonfinite_inputs"]
    said = "; ".join(_cells_said(entry) for entry in found[:3])
    more = f" (and {len(found) - 3} more in the evidence)" if len(found) > 3 else ""
    message = (f"The loss became non-finite at step {step} because its batch holds non-finite "
               f"data: {said}{more} (samples index the training set). The data, not an "
               "operation of the model or the learning rate, made it.")
    fix = ("Fix the data first (data stage): drop, impute or clip the non-finite cells of these "
           "samples and of any like them (e.g. torch.nan_to_num, or pandas fillna / dropna "
           "before building the tensors), then train again. Only if the data are clean does "
           "the next suspect follow: an operation of the model or loss (detect_anomaly).")
    return message, fix, {"cause": "nonfinite_input", "nonfinite_inputs": found}
