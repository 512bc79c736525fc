"""The check stage inside `trainwise run`/`trainwise check`: what it trains at, when it runs,
what it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

from trainwise.cli import main
from trainwise.findings import Severity, TrainwiseError
from trainwise.recipe import run
from trainwise.rundir import read_findings
from trainwise.shape_table import HEAD_ROWS, TAIL_ROWS, shape_table


def clean_table() -> pd.DataFrame:
    """Audit s15 B4's table.csv: 12 features, 8 informative, 4 balanced classes."""
    x, y = make_classification(n_samples=1500, n_features=12, n_informative=8, n_classes=4,
                               n_clusters_per_class=1, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(12)])
    frame["label"] = y
    return frame


def test_a_small_train_lr_does_not_fail_the_checks_of_clean_data(tmp_path):
    """train.lr = 1e-4 (a common AdamW lr) made the 300-step overfit test miss and the
    check stage stop with inputs_ignored, blaming the data pipeline (audit s15 B4). The
    short trainings run at the checks' own 3e-3 and say so."""
    result = run({"data": {"target": "label"}, "train": {"lr": 1e-4},
                  "run": {"out_dir": str(tmp_path), "threads": 1}}, data=clean_table(),
                 until="check", report=False)
    checks = {f.code: f for f in result.findings if f.stage == "check"}
    assert [f.code for f in checks.values() if f.severity is Severity.ERROR] == []
    assert checks["overfit_batch_ok"] and checks["inputs_used"]
    raised = checks["check_lr_raised"]
    assert raised.evidence == {"check_lr": 3e-3, "train_lr": 1e-4}
    assert "train.lr = 0.0001" in raised.message


def test_the_check_command_runs_its_checks_when_the_config_turns_them_off(tmp_path, capsys):
    """`trainwise check` on a config with run.checks = false skipped every check and said
    "Finished" (audit s15 K22): the command runs what it is named for. It prints the shape
    trace it checked (audit s15 M9), as the rows of model_summary.json."""
    code = main(["check", "wine", "--set", "run.checks=false", "--set",
                 f"run.out_dir=\"{tmp_path}\"", "--set", "run.threads=1", "--no-report"])
    assert code == 0
    (folder,) = list(tmp_path.iterdir())
    codes = {f.code for f in read_findings(folder) if f.stage == "check"}
    assert "skipped" not in codes and {"overfit_batch_ok", "inputs_used"} <= codes
    err = " ".join(capsys.readouterr().err.split())
    summary = json.loads((folder / "model_summary.json").read_text())
    assert f"shape trace on a batch of {summary['batch_size']}: " \
        f"{summary['total_params']:,} parameters" in err
    last = summary["rows"][-1]  # the logits: (batch, 3 classes)
    assert f"{tuple(last['output_shape'])} │ {last['num_params']:,} │" in err
    assert f"{len(summary['rows'])} layers, each in" in err


def test_a_deep_trace_shows_its_first_and_last_layers():
    rows = [{"name": f"l{i}", "type": "Linear", "input_shape": [8, 4], "output_shape": [8, 4],
             "num_params": 20} for i in range(100)]
    table = shape_table({"rows": rows, "total_params": 2000, "trainable_params": 1500,
                         "batch_size": 8}, Path("runs/x/model_summary.json"))
    names = list(table.columns[0].cells)
    assert names == [f"l{i}" for i in range(HEAD_ROWS)] + ["..."] + [
        f"l{i}" for i in range(100 - TAIL_ROWS, 100)]
    assert list(table.columns[1].cells)[HEAD_ROWS] == f"{100 - HEAD_ROWS - TAIL_ROWS} more layers"
    assert table.title == "shape trace on a batch of 8: 2,000 parameters, 1,500 trainable"


def test_a_regression_check_needs_no_num_classes_and_a_classifier_s_says_so():
    """trainwise.check(..., task="regression") raised TypeError for the missing num_classes
    (audit s15 M10); the same call with num_classes=0 is the reference."""
    from trainwise import check

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 4, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0])
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    found = [(f.code, f.severity) for f in check(model, nn.MSELoss(), x, y, task="regression")]
    assert found == [(f.code, f.severity) for f in check(model, nn.MSELoss(), x, y,
                                                         task="regression", num_classes=0)]
    with pytest.raises(TrainwiseError, match="needs num_classes"):
        check(model, nn.CrossEntropyLoss(), x, (y > 0).long(), task="classification")


@pytest.mark.parametrize("kind", ["Series", "ndarray", "list"])
def test_check_refuses_targets_that_are_not_a_tensor_with_the_conversion(kind):
    """A pandas Series of labels failed inside pandas ("'Series' object has no attribute
    'to'", audit s16 N16); targets are refused as inputs x are, naming the call that converts
    them, and the model is not run."""
    from trainwise import check

    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    labels = (x[:, 0] > 0).long().numpy()
    y = {"Series": pd.Series(labels), "ndarray": labels, "list": labels.tolist()}[kind]
    how = "torch.as_tensor(y.to_numpy())" if kind == "Series" else "torch.as_tensor(y)"
    calls = []
    model = nn.Linear(4, 2)
    model.register_forward_hook(lambda *_: calls.append(1))
    with pytest.raises(TrainwiseError, match=rf"targets y are a {kind}, not a tensor.*"
                                             rf"{how.replace('(', '[(]').replace(')', '[)]')}"):
        check(model, nn.CrossEntropyLoss(), x, y, task="classification", num_classes=2)
    assert calls == []
