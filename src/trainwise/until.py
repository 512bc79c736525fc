"""Where run(until=...) may stop: checked before anything runs, so a stop that would never
happen (a misspelt stage, or one a resumed run skips) cannot turn into hours of training."""

from __future__ import annotations

import difflib
from pathlib import Path

from trainwise.config import ConfigError

# the recipe's stages in order (recipe.STAGES; a test keeps the two alike)
STAGE_NAMES = ("data", "split", "model", "check", "tune", "train", "crossval", "evaluate")
# what a run resumed from a training checkpoint runs (recipe.RESUME_STAGES): the check and
# tune stages' findings are kept from the first attempt
RESUMED_STAGE_NAMES = ("data", "split", "model", "train", "crossval", "evaluate")

# The Python verbs and CLI subcommands that stop at a stage, for a did-you-mean on `until`
# that difflib cannot make ("preflight" looks nothing like "check").
_UNTIL_SYNONYMS = {"preflight": "check", "audit": "data", "find_lr": "tune", "find-lr": "tune",
                   "tune_lr": "tune", "fit": "train", "report": "evaluate", "test": "evaluate"}


def check_until(until: str) -> None:
    """`until` must name a stage: a misspelt one would otherwise match nothing and run every
    stage, training included (hours on a real data set)."""
    if until in STAGE_NAMES:
        return
    closest = _UNTIL_SYNONYMS.get(str(until).lower()) or next(
        iter(difflib.get_close_matches(str(until).lower(), STAGE_NAMES, n=1, cutoff=0.5)), None)
    hint = f"Did you mean until=\"{closest}\"? " if closest else ""
    raise ConfigError(f"until={until!r} is not a stage, so the run would never stop early. "
                      f"{hint}The stages, in order: {', '.join(STAGE_NAMES)} (the report is "
                      "written after the last one run unless report=False).")


def check_resumed_until(until: str, run_dir: Path) -> None:
    """A run resumed from a training checkpoint runs RESUMED_STAGE_NAMES: an `until` naming a
    stage it keeps from the first attempt (check, tune) would match nothing, and it would
    train."""
    if until in RESUMED_STAGE_NAMES or not (run_dir / "checkpoints" / "last.pt").exists():
        return
    raise ConfigError(f"until={until!r} cannot stop this resumed run: {run_dir} has a training "
                      f"checkpoint (checkpoints/last.pt), so it keeps the {until} stage's "
                      "findings from the first attempt and runs only "
                      f"{', '.join(RESUMED_STAGE_NAMES)}; it would go on to train. Pass "
                      "until=\"train\" or \"evaluate\" to continue training, or "
                      "until=\"model\" to stop before it (the first attempt's findings are in "
                      "its findings.json).")
