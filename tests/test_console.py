"""The terminal prints a finding's text as written: brackets in it are not rich markup."""

from __future__ import annotations

from rich.console import Console

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


def test_a_long_headline_is_cut_at_a_sentence_or_a_word():
    two = "Learning rate 0.0175 chosen, e.g. for digits. Then a long second sentence."
    assert stage_table_headline(two) == "Learning rate 0.0175 chosen, e.g. for digits."
    long = "Training uses learning rate 0.0175 " + "and more words " * 10
    cut = stage_table_headline(long)
    assert cut.endswith("…") and len(cut) <= 110
    assert long.startswith(cut[:-1]) and long[len(cut) - 1] == " "  # ends at a whole word


def stage_table_headline(message: str) -> str:
    finding = warning("tune", "x", message, "")
    wide = Console(width=400)  # one line per row, so the cell reads back whole
    with wide.capture() as captured:
        wide.print(stage_table([{"name": "tune", "seconds": 0.1, "findings": [finding]}]))
    row = next(line for line in captured.get().splitlines() if line.count("│") == 5)
    return row.split("│")[4].strip()
