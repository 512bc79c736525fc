"""The terminal prints a finding's text as written: brackets in it are not rich markup."""

from __future__ import annotations

from trainwise.console import console, print_findings, stage_table
from trainwise.findings import warning


def test_brackets_in_findings_are_printed():
    finding = warning("data", "x", "cells ['?'] in [data] and [bold]", "set na_values in [data]")
    with console.capture() as captured:
        print_findings([finding])
        console.print(stage_table([{"name": "data", "seconds": 0.1, "findings": [finding]}]))
    text = captured.get()
    assert "warning [data] cells ['?'] in [data] and [bold]" in text
    assert "fix: set na_values in [data]" in text
    assert text.count("in [data] and [bold]") == 2  # the list and the stage table's headline
