"""Shape trace rows and counts; output-shape checks on deliberately mis-shaped models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwise.findings import Severity
from trainwise.model.baselines import cnn1d
from trainwise.model.summary import check_output_shape, shape_trace


def _rows(trace: dict) -> dict[str, dict]:
    return {r["name"]: r for r in trace["rows"]}


@pytest.fixture(params=["torchinfo", "hooks"])
def trace_of(request, monkeypatch):
    """shape_trace through torchinfo, and through the hook fallback (torchinfo made to fail)."""
    if request.param == "hooks":
        import torchinfo

        def broken(*args, **kwargs):
            raise RuntimeError("torchinfo cannot trace this")

        monkeypatch.setattr(torchinfo, "summary", broken)
    return shape_trace


def test_cnn1d_rows_shapes_and_counts(trace_of) -> None:
    model = cnn1d(1, 10)
    trace = trace_of(model, torch.zeros(128, 1, 40))
    total = sum(p.numel() for p in model.parameters())
    assert trace["total_params"] == trace["trainable_params"] == total == 22634
    assert sum(r["num_params"] for r in trace["rows"]) == total
    rows = _rows(trace)
    assert rows["0"] == {"name": "0", "type": "Conv1d", "input_shape": [128, 1, 40],
                         "output_shape": [128, 32, 40], "num_params": 96, "trainable": True}
    assert rows["6"]["output_shape"] == [128, 64, 20]  # stride 2 halves T
    assert rows["12"]["output_shape"] == [128, 64, 1]
    assert rows["13"]["output_shape"] == [128, 64]
    assert rows["15"]["output_shape"] == [128, 10]
    assert [r["name"] for r in trace["rows"]] == [str(i) for i in range(16)]


class Odd(nn.Module):
    """A raw parameter on the root, a tied head, a frozen layer and a layer never called."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 6))
        self.emb = nn.Embedding(20, 6)
        self.frozen = nn.Linear(6, 6).requires_grad_(False)
        self.head = nn.Linear(6, 20, bias=False)
        self.head.weight = self.emb.weight
        self.unused = nn.Linear(3, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.frozen(self.emb(tokens).mean(1) + self.cls_token))


def test_counts_tied_once_and_include_uncalled_layers(trace_of) -> None:
    model = Odd()
    trace = trace_of(model, torch.zeros(2, 5, dtype=torch.long))
    unique = {id(p): p for p in model.parameters()}.values()
    assert trace["total_params"] == sum(p.numel() for p in unique) == 6 + 120 + 42 + 12
    assert trace["trainable_params"] == 6 + 120 + 12
    assert sum(r["num_params"] for r in trace["rows"]) == trace["total_params"]
    rows = _rows(trace)
    assert rows["frozen"]["trainable"] is False
    assert rows["unused"]["output_shape"] is None and rows["unused"]["num_params"] == 12
    assert rows["emb"]["output_shape"] == [2, 5, 6]


def test_trace_leaves_modes_and_rng_alone() -> None:
    model = cnn1d(1, 3).train()
    model[1].eval()  # a BatchNorm frozen by the user
    x = torch.randn(4, 1, 40)
    state = torch.get_rng_state()
    shape_trace(model, x)
    assert model.training and not model[1].training and model[4].training
    assert torch.equal(torch.get_rng_state(), state)


def _codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_healthy_outputs_pass() -> None:
    x, y = torch.randn(16, 1, 40), torch.randint(0, 10, (16,))
    assert check_output_shape(cnn1d(1, 10), x, y, "classification", 10) == []


def test_logits_width_mismatch() -> None:
    x, y = torch.randn(16, 1, 40), torch.randint(0, 10, (16,))
    findings = check_output_shape(cnn1d(1, 9), x, y, "classification", 10)
    assert _codes(findings) == ["logits_width_mismatch"]
    assert findings[0].severity is Severity.ERROR
    assert findings[0].evidence == {"output_shape": [8, 9], "num_classes": 10}


class MixesBatch(nn.Module):
    """view(-1, 20) on (B, 1, 40) inputs: two rows per sample, batch size silently doubled."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(20, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(-1, 20))


def test_flatten_mixing_batch_detected() -> None:
    x, y = torch.randn(16, 1, 40), torch.randint(0, 3, (16,))
    findings = check_output_shape(MixesBatch(), x, y, "classification", 3)
    assert _codes(findings) == ["batch_dim_changed"]
    assert findings[0].evidence["output_shape"] == [16, 3]


def test_forward_failure_names_the_layer() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(40, 8), nn.ReLU(), nn.Linear(9, 3))
    findings = check_output_shape(model, torch.randn(4, 40), torch.zeros(4, dtype=torch.long),
                                  "classification", 3)
    assert _codes(findings) == ["forward_failed"]
    assert findings[0].evidence["layer"] == "3"
    assert "mat1 and mat2" in findings[0].message


def test_regression_shapes() -> None:
    x, y = torch.randn(8, 5), torch.randn(8)
    column = check_output_shape(nn.Linear(5, 1), x, y, "regression", 0)
    assert _codes(column) == ["regression_output_squeezed"]
    assert column[0].severity is Severity.INFO
    wide = check_output_shape(nn.Linear(5, 3), x, y, "regression", 0)
    assert _codes(wide) == ["regression_output_width"]
    assert check_output_shape(nn.Sequential(nn.Linear(5, 1), nn.Flatten(0)), x, y,
                              "regression", 0) == []


def test_a_one_logit_binary_model_is_told_why_and_what_to_do() -> None:
    """The refusal said '1 values' and not why BCE on one logit is no option (audit s10 G11)."""
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    [finding] = check_output_shape(nn.Linear(4, 1), x, y, "classification", 2)
    assert finding.code == "logits_width_mismatch"
    assert "outputs 1 value per sample" in finding.message
    assert "cross-entropy over one logit per class" in finding.message
    assert "nn.BCEWithLogitsLoss" in finding.message
    assert "nn.Linear(d, 2)" in finding.fix and "trainwise.Monitor" in finding.fix
    assert "revisit the model stage" in finding.fix
    [three] = check_output_shape(nn.Linear(4, 3), x, y, "classification", 2)
    assert "3 values per sample" in three.message and "BCE" not in three.message


class _SliceBug(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 32), nn.ReLU())
        self.head = nn.Linear(32, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.head(self.body(x)[:, :16])


def test_a_failing_forward_is_one_error_with_the_layers_that_ran() -> None:
    """The forward ran twice (torchinfo, then hooks) and raised three chained tracebacks with
    no shapes (audit s14 G16): now once, from the user's RuntimeError, with the trace."""
    from trainwise.findings import TrainwiseError

    model = _SliceBug()
    with pytest.raises(TrainwiseError) as raised:
        shape_trace(model, torch.randn(4, 10))
    said = str(raised.value)
    assert model.calls == 1
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert "mat1 and mat2" in str(raised.value.__cause__)  # the user's own exception
    assert "body.0 (4, 10) -> (4, 32); body.1 (4, 32) -> (4, 32); then 'head' got (4, 16)" \
        in said
    assert "test_summary.py:" in said and "self.head(self.body(x)[:, :16])" in said
