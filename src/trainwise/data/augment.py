"""Augment little: natural images get a random horizontal flip (plus normalisation, which the
split fits on the training part only); data whose orientation carries meaning never flips."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from trainwise.data.task import TaskData
from trainwise.findings import Finding, info, warning

# built-in sets where a mirror image is another thing: a mirrored 2 or 7 is no digit, and
# MNIST-1D's templates are digit strokes read left to right
ORIENTED = {"digits": "handwritten digits", "mnist1d": "digit strokes read left to right"}
FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class AugmentPlan:
    flip: bool
    reason: str
    normalise: bool = True  # token ids never: a z-scored id no longer names its token

    def describe(self) -> str:
        steps = ["random horizontal flip (p=0.5)"] if self.flip else []
        scaling = "per-channel normalisation fitted on the training split" if self.normalise \
            else "no normalisation: token ids reach the model as int64"
        return " + ".join(steps + [scaling])


def augment_plan(data: TaskData, requested: str = "auto") -> tuple[AugmentPlan, list[Finding]]:
    """The preset for this data (auto), or the requested one when it is safe; a warning
    explains every request that is not followed. The split follows its `normalise`."""
    plan, findings = _preset(data, requested)
    return replace(plan, normalise=data.kind != "tokens"), findings


def _preset(data: TaskData, requested: str) -> tuple[AugmentPlan, list[Finding]]:
    oriented = ORIENTED.get(data.name)
    if requested == "none":
        return AugmentPlan(False, "data.augment = none"), []
    if requested == "flip" and oriented:
        return AugmentPlan(False, oriented), [warning(
            "data", "flip_refused", f"data.augment = flip asked for mirrored copies of "
            f"'{data.name}', whose {oriented} carry orientation: a flipped sample is no longer "
            "its class. Flips are not applied.", "Use data.augment = \"auto\" or \"none\".",
            requested=requested)]
    if requested == "flip" and data.kind != "image":
        return AugmentPlan(False, f"{data.kind} data"), [warning(
            "data", "flip_not_applicable", f"data.augment = flip applies to images; this is "
            f"{data.kind} data, where a mirror image means nothing. Not applied.",
            "Use data.augment = \"auto\".", requested=requested)]
    if data.kind == "image" and not oriented:
        return AugmentPlan(True, "natural images"), []
    if oriented:  # say why nothing is mirrored: a mirrored sample is no longer its class
        return AugmentPlan(False, f"no flips: {oriented} carry orientation"), []
    if data.kind == "tokens":  # METHOD.md §1: text augmentation changes meaning quietly
        return AugmentPlan(False, "token sequences: none applied; back-translation or synonym "
                                  "swaps, if you add them, can change a label's meaning, so "
                                  "read a sample of what they produce"), []
    return AugmentPlan(False, f"{data.kind} data"), []


def augment_findings(data: TaskData, requested: str = "auto") -> list[Finding]:
    plan, findings = augment_plan(data, requested)
    note = ("; if these images carry orientation (digits, text, many medical views), set "
            "data.augment = \"none\"") if plan.flip else ""
    return findings + [info("data", "augment", f"augmentation: {plan.describe()} "
                            f"({plan.reason}){note}.", flip=plan.flip)]


def random_flip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of a (B, C, H, W) batch along W, drawn from `generator` (never the
    global RNG), so an epoch's flips replay from the loader's seed."""
    chosen = torch.rand(len(batch), generator=generator) < FLIP_PROBABILITY
    return torch.where(chosen[:, None, None, None], batch.flip(-1), batch)
