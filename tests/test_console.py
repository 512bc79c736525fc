"""The terminal prints a finding's text as written: brackets in it are not rich markup."""

from __future__ import annotations

import os

import pytest
import torch
from rich.console import Console

from trainwise.console import configure_threads, console, print_findings, stage_table
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


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("load", [0.0, 8.0])
def test_a_thread_count_the_user_set_is_kept(monkeypatch, torch_threads, load):
    # OMP_NUM_THREADS=1 used to be raised to every idle core, and the warning claimed torch
    # "would start" one thread per core
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    torch.set_num_threads(3)  # as torch does at start-up with OMP_NUM_THREADS=3
    threads, findings = configure_threads(0)
    assert threads == 3 and torch.get_num_threads() == 3
    if load == 0.0:
        assert findings == []
    else:  # 3 threads on the ~1 idle core of 4 (load 8 leaves none; at least 1): named
        (busy,) = findings
        assert "OMP_NUM_THREADS=3 asks for 3 threads" in busy.message


def test_without_a_user_setting_threads_follow_the_idle_cores(monkeypatch, torch_threads):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.2, 2.0, 2.0))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    threads, (busy, picked) = configure_threads(0)
    assert threads == 2 == torch.get_num_threads()  # 4 cores - 2.2 busy, rounded
    assert "torch would start 4 threads" in busy.message and busy.severity.value == "warning"
    # audit s11 R2: the count depends on the load, so a rerun is bitwise only when pinned
    assert picked.code == "threads_auto" and picked.severity.value == "info"
    assert "--set run.threads=2" in picked.fix and picked.evidence["threads"] == 2


def test_an_automatic_count_on_an_idle_machine_says_how_to_pin_it(monkeypatch, torch_threads):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    threads, (picked,) = configure_threads(0)
    assert threads == 4 and picked.code == "threads_auto"
    assert "--set run.threads=4" in picked.fix
    assert configure_threads(3) == (3, [])  # pinned: nothing to say
