"""The report's model section: which tensors AdamW decays (audit s8 R1) and which init rule
each layer got (R7). Rendered without figures: fast."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import torch
from torch import nn

import trainwise
from trainwise.findings import info
from trainwise.model.init import EMBEDDING_STD, OUTPUT_GAIN, init_weights
from trainwise.model.optim import group_table, make_adamw
from trainwise.reporting.context import report_context
from trainwise.reporting.html import render_html
from trainwise.reporting.run_data import load_run


def _model_section(run: Path) -> str:
    context = report_context(load_run(run))
    context.update(figures={}, extra_figures=[], problems=[])
    text = render_html(context)
    return html.unescape(text[text.index('id="model"'):text.index('id="tuning"')])


def _numbers(text: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]


def test_weight_decay_table_counts_what_adamw_decays(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"data": {"task": "classification"}}))
    (run / "model_summary.json").write_text(json.dumps({
        "rows": [], "total_params": 107, "trainable_params": 107,
        "weight_decay": {"value": 0.05, "params": group_table(model, 0.05)}}))
    section = _model_section(run)
    # the reference: the optimizer's own groups, as training builds them
    groups = {g["weight_decay"]: g["params"] for g in make_adamw(model, 1e-3, 0.05).param_groups}
    decayed = sum(p.numel() for p in groups[0.05])  # 4*8 + 8*3
    kept = sum(p.numel() for p in groups[0.0])  # two biases, BatchNorm's weight and bias
    assert (len(groups[0.05]), decayed, len(groups[0.0]), kept) == (2, 56, 4, 27)
    start = section.index("AdamW with weight decay")
    sentence = re.sub(r"<[^>]+>", "", section[start:section.index("</p>", start)])
    assert "0.05" in sentence
    assert _numbers(sentence.split("(train.weight_decay)")[1])[:4] == [2, decayed, 4, kept]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td class=\"num\">(\d+)</td>"
                      r"<td class=\"num\">(\d+)</td>", section)
    assert ("0.05", "weight of Linear", "2", "56") in rows
    assert ("0", "bias", "3", "19") in rows  # BatchNorm1d's bias among them
    assert ("0", "normalisation layer (BatchNorm1d)", "1", "8") in rows  # its bias: "bias"


def test_model_stage_records_the_decay_groups_and_the_init_rules(tmp_path: Path) -> None:
    result = trainwise.run({"data": {"source": "digits"}}, overrides=[
        f"run.out_dir=\"{tmp_path}\"", "run.threads=1", "train.weight_decay=0.02"],
        until="model", report=False)
    summary = json.loads((result.path / "model_summary.json").read_text())
    recorded = summary["weight_decay"]
    assert recorded["value"] == 0.02
    params = {row["name"]: row for row in recorded["params"]}
    assert sum(torch.Size(r["shape"]).numel() for r in params.values()) == summary["total_params"]
    # the wiring; the split itself is checked against make_adamw in the test above
    decayed = {name for name, r in params.items() if r["decay"]}
    assert decayed and decayed != set(params)
    assert all(len(params[name]["shape"]) >= 2 for name in decayed)
    assert any("normalisation" in r["reason"] or r["reason"] == "bias"
               for r in params.values() if not r["decay"])


class Tagger(nn.Module):
    """Embedding -> GRU -> Linear: three init rules the old fixed sentence ("He for ReLU
    layers, Xavier otherwise") did not name."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.head = nn.Linear(16, 3)


def test_init_rules_are_a_table_per_layer_type(tmp_path: Path) -> None:
    model = Tagger()
    records = init_weights(model)
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"data": {"task": "classification"}}))
    (run / "model_summary.json").write_text(json.dumps({"rows": [], "total_params": 1}))
    (run / "findings.json").write_text(json.dumps([info(
        "model", "init", "Initialised.", layers=records).to_dict()]))
    section = _model_section(run)
    rows = re.findall(r"<tr><td>(\w+)</td><td>([^<]*)</td><td class=\"num\">(\d+)</td>"
                      r"<td><code>([^<]*)</code></td><td class=\"num\">([^<]*)</td>", section)
    by_rule = {(t, rule.split(":")[0]): (n, names, std) for t, rule, n, names, std in rows}
    embed_std = float(model.embed.weight.detach().std())
    assert by_rule[("Embedding", f"normal, std {EMBEDDING_STD}")][:2] == ("1", "embed")
    assert float(by_rule[("Embedding", f"normal, std {EMBEDDING_STD}")][2]) == \
        float(f"{embed_std:.4g}")  # the weights as drawn
    assert by_rule[("GRU", "orthogonal per gate")][:2] == ("1", "rnn.weight_hh_l0")
    assert by_rule[("GRU", "Xavier normal")][:2] == ("1", "rnn.weight_ih_l0")
    assert by_rule[("Linear", f"Xavier normal x {OUTPUT_GAIN:g}")][:2] == ("1", "head")
    # the findings list no longer prints the records cut off (the GRU gives two: 4 in all)
    findings = html.unescape(render_html({**report_context(load_run(run)), "figures": {},
                                          "extra_figures": [], "problems": []}))
    assert "4 records, as a table in" in findings and "'rule': " not in findings


def test_init_message_names_the_rules_it_used() -> None:
    from trainwise.model.init import init_summary

    text = init_summary(init_weights(Tagger()))
    assert "orthogonal" in text and f"std {EMBEDDING_STD}" in text and "He" not in text
    relu = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert init_summary(init_weights(relu)).startswith("He normal (fan-in) for 1 Linear; ")


def _layer_rows(section: str) -> list[str]:
    """The layer table's rows as text: '1 0 Flatten B × 8 × 8 B × 64 0'."""
    body = section[section.index("<tbody>"):section.index("</tbody>")]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in body.split("</tr>") if "<td" in row]


def _traced_run(tmp_path: Path, model: nn.Module, x: torch.Tensor, **drop: bool) -> str:
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"data": {"task": "classification"}}))
    trace = trainwise.shape_trace(model, x)
    if drop.get("batch_size"):  # a run folder written before the trace recorded it
        trace.pop("batch_size")
    (run / "model_summary.json").write_text(json.dumps(trace))
    return _model_section(run)


def test_the_shape_table_writes_the_traced_batch_as_b(tmp_path: Path) -> None:
    """Reverify s8 R13: digits showed 'Flatten 64 × 64 -> 64 × 64', which reads as a square
    matrix: nothing said the first 64 is the batch the trace ran on."""
    section = _traced_run(tmp_path, nn.Sequential(nn.Flatten(), nn.Linear(64, 3)),
                          torch.zeros(32, 8, 8))
    assert _layer_rows(section) == ["1 0 Flatten B × 8 × 8 B × 64 0",
                                    "2 1 Linear B × 64 B × 3 195"]
    caption = section[:section.index("<table")]
    assert "B stands for the batch of 32 training samples the shapes were traced on" in caption


def test_a_leading_number_that_is_not_the_batch_stays_a_number(tmp_path: Path) -> None:
    """A sequence-first layer gets (T, B, F) = (5, 3, 4): its leading 5 is not the batch,
    which a batch read off the first layer would take it for; the trace records the 3 samples
    it ran on. Only a leading number is written B: a batch in the middle stays a number."""
    class SeqFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(4, 6)  # batch_first=False: (T, B, F)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x.transpose(0, 1))[0][-1]

    section = _traced_run(tmp_path, SeqFirst(), torch.zeros(3, 5, 4))
    assert "batch of 3 training samples" in section
    assert _layer_rows(section) == ["1 rnn GRU 5 × 3 × 4 5 × 3 × 6 216"]  # no 'B × 3 × 4'


def test_an_older_run_folder_reads_the_batch_off_the_first_layer(tmp_path: Path) -> None:
    section = _traced_run(tmp_path, nn.Sequential(nn.Linear(64, 3)), torch.zeros(16, 64),
                          batch_size=True)
    assert "batch of 16 training samples" in section
    assert _layer_rows(section) == ["1 0 Linear B × 64 B × 3 195"]


def test_the_model_section_shows_the_preflight_checks(tmp_path: Path) -> None:
    """Audit s13 P10: the checks METHOD §2 asks to see sat only at the bottom of Findings."""
    from trainwise.findings import warning

    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"data": {"task": "classification"}}))
    (run / "model_summary.json").write_text(json.dumps({
        "rows": [], "total_params": 10, "trainable_params": 10}))
    found = [info("check", "loss_at_init_ok", "cross-entropy at init 2.35 vs ln C = 2.3."),
             warning("check", "overfit_batch_slow", "loss 2.35 -> 1.9 in 25 steps.",
                     "Check the model stage."),
             info("data", "loaded", "Loaded 10 rows.")]
    (run / "findings.json").write_text(json.dumps([f.to_dict() for f in found]))
    section = _model_section(run)
    table = section[section.index("Preflight checks"):]
    assert "cross-entropy at init 2.35 vs ln C = 2.3." in table
    assert "overfit_batch_slow" in table and "sev-warning" in table
    assert "Loaded 10 rows." not in section  # only the check stage's findings
