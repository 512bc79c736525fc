"""check's forward_failed / loss_failed name the user's own file:line (audit s14 G10): the
exception is turned into a finding, so its traceback is not there to read."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from trainwise.checks import preflight

HERE = "test_user_frame.py"


def _line_of(marker: str) -> int:
    """The line number of the source line ending with `marker`, read from this file."""
    with open(__file__) as source:
        return next(i for i, text in enumerate(source, 1) if text.rstrip().endswith(marker))


class SliceBug(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(8, 32), nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)[:, :16])  # FORWARD BUG


def target_bug(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y[:, None].float())  # LOSS BUG


def test_forward_failure_names_the_users_line(blobs) -> None:
    x, y = blobs
    (found,) = preflight(SliceBug(), nn.CrossEntropyLoss(), x, y, task="classification",
                         num_classes=3)
    line = _line_of("# FORWARD BUG")
    assert found.code == "forward_failed"
    assert f"at {HERE}:{line} `return self.head(self.body(x)[:, :16])" in found.message
    assert found.evidence["file"] == __file__ and found.evidence["line"] == line
    assert found.evidence["layer"] == "head"  # the layer is still named too


def test_loss_failure_names_the_users_line(blobs) -> None:
    x, y = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    (found,) = [f for f in preflight(model, target_bug, x, y, task="classification",
                                     num_classes=3) if f.severity.value == "error"]
    line = _line_of("# LOSS BUG")
    assert found.code == "loss_failed"
    assert f"raised at {HERE}:{line} `return F.cross_entropy(" in found.message
    assert found.evidence["line"] == line


def test_no_user_frame_keeps_the_evidence_keys() -> None:
    from trainwise.model.user_frame import at_user_line

    try:
        torch.zeros(2, 3) @ torch.zeros(2, 3)  # raised inside torch: this file is the user's
    except RuntimeError as exc:
        line, frame = at_user_line(exc)
    assert line.startswith(f" at {HERE}:") and frame["line"] is not None
    assert at_user_line(RuntimeError("no traceback")) == (
        "", {"file": None, "line": None, "source": None})


def mse_through_a_library(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import torchmetrics

    return torchmetrics.functional.mean_squared_error(out, y)  # INTO A LIBRARY


def test_an_installed_librarys_frame_is_not_the_users_line() -> None:
    # review s14 VT7: torchmetrics' own checks.py:39 `raise RuntimeError(` was named
    from trainwise.model.user_frame import at_user_line

    try:
        mse_through_a_library(torch.randn(4, 3), torch.randn(5))
    except RuntimeError as exc:
        line, frame = at_user_line(exc)
    assert frame["file"] == __file__ and frame["line"] == _line_of("# INTO A LIBRARY")
    assert line.startswith(f" at {HERE}:")


def test_user_code_installed_as_a_package_is_still_found(monkeypatch) -> None:
    # every frame outside torch and the stdlib is installed: the innermost of them, as before
    from trainwise.model import user_frame

    monkeypatch.setattr(user_frame, "_INSTALLED", (user_frame._folder(os.path.dirname(
        __file__)),) + user_frame._INSTALLED)
    try:
        torch.zeros(2, 3) @ torch.zeros(2, 3)
    except RuntimeError as exc:
        _, frame = user_frame.at_user_line(exc)
    assert frame["file"] == __file__
