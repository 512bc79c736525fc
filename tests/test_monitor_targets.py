"""trainwise.Monitor on targets that are not one class index or one value per row: multi-label
multi-hot targets and soft labels are scored as classification (oracle: scikit-learn's
metrics), and loss/target pairs that torch accepts but that train on the wrong thing (-1/+1
under BCEWithLogitsLoss, (B, 1) outputs against (B,) targets) are said once, with the fix."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import accuracy_score, hamming_loss, roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.findings import Severity
from trainwise.train.monitor_findings import one_line_verdict


def _loader(x: torch.Tensor, y: torch.Tensor) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=64)


def _codes(monitor: trainwise.Monitor) -> list[str]:
    return [f.code for f in monitor.findings()]


def test_multi_label_is_scored_per_label_not_as_regression_on_logits():
    torch.manual_seed(0)
    x = torch.randn(300, 6)
    targets = (x[:, :4] + 0.5 * torch.randn(300, 4) > 0.3).float()  # multi-hot (N, 4)
    model = nn.Linear(6, 4)
    monitor = trainwise.Monitor(None, console=False)
    row = monitor.evaluate(model, _loader(x, targets), nn.BCEWithLogitsLoss())
    monitor.evaluate(model, _loader(x, targets), nn.BCEWithLogitsLoss())
    with torch.no_grad():
        logits = model(x)
    assert not any(key.endswith(("_r2", "_rmse", "_mae")) for key in row)
    predicted = (logits > 0).int().numpy()
    assert row["val_accuracy"] == pytest.approx(1 - hamming_loss(targets.numpy(), predicted))
    assert row["val_roc_auc"] == pytest.approx(
        roc_auc_score(targets.numpy().ravel(), logits.numpy().ravel()), abs=1e-6)
    assert row["val_loss"] == pytest.approx(float(nn.BCEWithLogitsLoss()(logits, targets)),
                                            rel=1e-5)
    assert _codes(monitor).count("multi_label_metrics") == 1  # said once, not per epoch


def test_soft_labels_are_scored_against_their_argmax():
    torch.manual_seed(0)
    x = torch.randn(300, 6)
    soft = torch.softmax(2 * x[:, :3], dim=1)  # (N, 3) class probabilities, as mixup gives
    model = nn.Linear(6, 3)
    monitor = trainwise.Monitor(None, console=False)
    row = monitor.evaluate(model, _loader(x, soft), nn.CrossEntropyLoss())
    with torch.no_grad():
        logits = model(x)
    assert "val_r2" not in row
    assert row["val_accuracy"] == pytest.approx(
        accuracy_score(soft.argmax(1).numpy(), logits.argmax(1).numpy()))
    assert row["val_loss"] == pytest.approx(float(nn.CrossEntropyLoss()(logits, soft)),
                                            rel=1e-5)
    assert monitor.task == "classification" and monitor.num_classes == 3
    ended = trainwise.Monitor(None, console=False).end_epoch(
        outputs=logits, targets=soft, loss_fn=nn.CrossEntropyLoss())
    assert ended["val_accuracy"] == pytest.approx(row["val_accuracy"])


def test_soft_labels_skip_calibration_and_a_note_leaves_the_healthy_verdict():
    """A model that learnt soft targets exactly is less confident than its argmax accuracy:
    that is no under-confidence, and a note on how targets are scored is no problem."""
    torch.manual_seed(0)
    x = torch.randn(300, 3)
    soft = torch.softmax(x + 0.5 * torch.randn(300, 3), dim=1)  # its argmax: right 80-90%
    learnt = nn.Linear(3, 3)
    with torch.no_grad():
        learnt.weight.copy_(torch.eye(3))
        learnt.bias.zero_()
    monitor = trainwise.Monitor(None, console=False)
    row = monitor.evaluate(learnt, _loader(x, soft), nn.CrossEntropyLoss())
    assert 0.7 < row["val_accuracy"] < 0.95  # not "too good" to be true
    assert not {"val_mean_confidence", "val_ece", "val_confidence_hist"} & set(row)
    found = monitor.findings()
    assert [f.code for f in found] == ["soft_label_metrics", "healthy"]
    assert one_line_verdict(found).startswith("No training problem found")


def test_bce_with_minus_one_plus_one_targets_is_an_error_not_overconfidence():
    torch.manual_seed(0)
    x = torch.randn(200, 5)
    signs = torch.where(x[:, :1] > 0, 1.0, -1.0)  # (N, 1) in {-1, +1}
    model = nn.Linear(5, 1)
    with torch.no_grad():  # a confident model: the loss on -1 targets is below 0
        model.weight.copy_(torch.tensor([[8.0, 0, 0, 0, 0]]))
    monitor = trainwise.Monitor(None, console=False)
    row = monitor.evaluate(model, _loader(x, signs), nn.BCEWithLogitsLoss())
    assert row["val_loss"] < 0  # impossible with targets in [0, 1]
    assert "val_accuracy" not in row and "val_mean_confidence" not in row
    assert monitor.should_stop
    found = {f.code: f for f in monitor.findings()}
    assert "overconfidence" not in found and "healthy" not in found
    range_error = found["binary_target_range"]
    assert range_error.severity is Severity.ERROR
    assert "map -1/+1 to 0/1" in range_error.fix and "[0, 1]" in range_error.fix
    with torch.no_grad():
        logits = model(x)
    by_hand = trainwise.Monitor(None, console=False)
    ended = by_hand.end_epoch(outputs=logits, targets=signs,
                              loss_fn=nn.functional.binary_cross_entropy_with_logits)
    assert "val_accuracy" not in ended and by_hand.should_stop

    zero_one = trainwise.Monitor(None, console=False)
    zero_one.evaluate(model, _loader(x, (signs + 1) / 2), nn.BCEWithLogitsLoss())
    assert not zero_one.should_stop and "binary_target_range" not in _codes(zero_one)


def test_a_column_output_against_flat_targets_under_mse_is_said_once_with_the_fix():
    torch.manual_seed(0)
    x = torch.randn(200, 5)
    y = x[:, 0] * 2.0  # (N,)
    model = nn.Linear(5, 1)  # (N, 1): MSELoss broadcasts to (N, N)
    monitor = trainwise.Monitor(None, console=False)
    with pytest.warns(UserWarning, match="broadcasting"):  # torch's own warning, no more
        monitor.evaluate(model, _loader(x, y), nn.MSELoss())
        monitor.evaluate(model, _loader(x, y), nn.MSELoss())
    found = [f for f in monitor.findings() if f.code == "loss_broadcasts"]
    assert len(found) == 1 and found[0].severity is Severity.WARNING
    assert "(64, 64)" in found[0].message  # the first batch: 64 outputs x 64 targets
    assert "squeeze" in found[0].fix and "unsqueeze" in found[0].fix

    for targets, loss_fn in ((y[:, None], nn.MSELoss()), (y[:, None], nn.L1Loss()),
                             ((y > 0).long(), nn.CrossEntropyLoss())):
        head = nn.Linear(5, 2) if loss_fn.__class__ is nn.CrossEntropyLoss else model
        paired = trainwise.Monitor(None, console=False)
        paired.evaluate(head, _loader(x, targets), loss_fn)
        assert "loss_broadcasts" not in _codes(paired)
