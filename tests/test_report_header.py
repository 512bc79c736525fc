"""The report's header: what a reader sees before any section (the verdict, the headline numbers,
and what went wrong: errors and warnings, each with its fix)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from trainwise.findings import Finding, Severity, info
from trainwise.reporting import build_report

LR_TOO_LOW = Finding("train", Severity.WARNING, "lr_too_low",
                     "Learning rate too low: the loss did not move (2% drop).", {"drop": 0.02},
                     "Raise the learning rate.", step=1)
BASELINE = Finding("evaluate", Severity.WARNING, "below_majority_baseline",
                   "Test accuracy 9.20% is less than 1 point above the majority class.",
                   {"test_accuracy": 0.092}, "Judge the model by balanced accuracy.")
BUSY = Finding("setup", Severity.WARNING, "busy_cpu", "Other processes keep the cores busy.",
               {"load": 2.4}, "Find the busy processes, or set run.threads.")
CONSTANT = Finding("data", Severity.WARNING, "constant_features", "3 features are constant.",
                   {}, "Drop them.")


def _run(tmp_path: Path, findings: list[Finding], test: dict | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "meta.json").write_text(json.dumps({
        "name": "t", "verdict": "Test accuracy 9.2%; 4 warning(s) to read in the report.",
        "data": {"task": "classification"}}))
    (tmp_path / "findings.json").write_text(json.dumps([f.to_dict() for f in findings]))
    if test is not None:
        (tmp_path / "history.jsonl").write_text(json.dumps({"kind": "test", **test}) + "\n")
    return tmp_path


def _header(run: Path) -> str:
    text = build_report(run).read_text(encoding="utf-8")
    header = text[text.index("<header>"):text.index("<nav>")]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", header)))


def test_the_header_lists_every_warning_with_its_fix_result_stages_first(tmp_path) -> None:
    header = _header(_run(tmp_path, [BUSY, CONSTANT, info("data", "loaded", "Loaded 4000."),
                                     BASELINE, LR_TOO_LOW]))
    assert "4 warnings to read first" in header
    positions = [header.index(f.message) for f in (LR_TOO_LOW, BASELINE, BUSY, CONSTANT)]
    assert positions == sorted(positions)  # train, evaluate, then METHOD order
    for f in (LR_TOO_LOW, BASELINE, CONSTANT, BUSY):
        assert f"{f.message} Fix: {f.fix}" in header
    assert "Loaded 4000." not in header  # infos stay in the Findings section
    assert "drop=" not in header  # evidence too: the header says what and what to do


def test_a_run_without_warnings_has_no_warning_list(tmp_path) -> None:
    header = _header(_run(tmp_path, [info("data", "loaded", "Loaded 4000.")]))
    assert "to read first" not in header and "warning busy_cpu" not in header


def test_the_test_accuracy_has_its_95_percent_interval_and_row_count(tmp_path) -> None:
    test = {"test_accuracy": 1.0, "test_confusion": [[12, 0, 0], [0, 14, 0], [0, 0, 10]]}
    run = _run(tmp_path, [], test)
    header = _header(run)
    assert "95% interval, 36 test rows 90.4–100 %" in header  # wine: 36 of 36 right
    text = build_report(run).read_text(encoding="utf-8")
    section = text[text.index('id="test"'):text.index('id="findings"')]
    section = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", section)))
    assert ("test accuracy 100.0 % test accuracy, 95% interval 90.4 – 100 % (Wilson score, "
            "36 of 36 rows right)") in section
    (run / "meta.json").write_text(json.dumps({"name": "t", "data": {"task": "classification"}}))
    verdict = re.search(r'<div class="verdict[^>]*>(.*?)</div>',
                        build_report(run).read_text(encoding="utf-8")).group(1)
    assert verdict == "Finished: test accuracy 100.0 % (95% CI 90.4-100%, 36 rows)."


def test_the_headline_verdict_and_caveat_word_few_groups_alike() -> None:
    """Review s11 VA8: the headline said "(too narrow: 6 groups)", the verdict "from 6 groups:
    too narrow", each with its own plural; one short form (intervals.few_groups) now."""
    from trainwise.recipe_verdict import _beside_accuracy
    from trainwise.reporting.context import _headline
    from trainwise.reporting.run_data import RunData
    from trainwise.reporting.scores import score_table
    from trainwise.train.intervals import few_groups

    assert (few_groups(24, 6), few_groups(20, 1), few_groups(400, 40)) == \
        ("6 groups: too narrow", "1 group: too narrow", "")
    row = {"test_accuracy": 1.0, "test_confusion": [[12, 0], [0, 12]], "test_groups": 6}
    labels = [label for label, _ in _headline(RunData(path=Path("."), meta={}, test=row))]
    assert "95% interval, 24 test rows (6 groups: too narrow)" in labels
    assert "24 rows from 6 groups: too narrow" in _beside_accuracy(row)
    assert "the 24 rows come from 6 groups: too narrow" in \
        dict(score_table(row))["test accuracy, 95% interval"]
