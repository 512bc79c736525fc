"""diagnose() in `trainwise run`'s words, for the tests that pin the rules' own texts (config
keys, "(tune stage)"): without a plan diagnose() speaks the Python API's words (audit s16 N9),
which tests/test_diagnose_unfinished.py pins."""

from __future__ import annotations

from typing import Any

from trainwise.findings import Finding
from trainwise.train.diagnose import diagnose as diagnose_in_any_words


def diagnose(history: list[dict[str, Any]], num_classes: int | None = None, plan: Any = None
             ) -> list[Finding]:
    return diagnose_in_any_words(history, num_classes, plan, fix_terms="config")
