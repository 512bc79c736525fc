"""TrainState.plot / reporting.history_figure: a notebook's training curves (audit s16 N10), and
trainwise.report() refusing a TrainState or a Monitor with what it takes instead."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import trainwise
from trainwise.reporting import history_figure
from trainwise.train.loop import TrainState

LOSSES = [2.0, 1.6, 1.3, 1.1, 0.9, 0.8]
GRAD_NORMS = [5.0, 3.0, 2.5, 1.5, 1.2, 0.7]
LRS = [1e-3, 2e-3, 3e-3, 3e-3, 2e-3, 1e-3]


def _history(val: bool = True) -> list[dict]:
    signals = zip(LOSSES, GRAD_NORMS, LRS, strict=True)
    steps = [{"kind": "step", "step": i + 1, "epoch": 1 + i // 3, "loss": loss,
              "grad_norm": g, "lr": lr} for i, (loss, g, lr) in enumerate(signals)]
    epochs = [{"kind": "epoch", "epoch": e, "step": 3 * e, "train_loss": t}
              for e, t in ((1, 1.6333), (2, 0.9333))]
    if val:
        for row, val_loss in zip(epochs, (1.4, 1.2), strict=True):
            row["val_loss"] = val_loss
    return steps[:3] + [epochs[0]] + steps[3:] + [epochs[1]]


def _line(fig: Figure, title_start: str, label: str | None = None) -> tuple[list, list]:
    ax = next(a for a in fig.axes if a.get_title(loc="left").startswith(title_start))
    line = next(ln for ln in ax.get_lines() if label is None or ln.get_label() == label)
    return list(line.get_xdata()), list(line.get_ydata())


def _labels(fig: Figure) -> list[str]:
    return [line.get_label() for ax in fig.axes for line in ax.get_lines()]


def test_state_plot_draws_the_history_numbers_on_its_panels() -> None:
    fig = TrainState(history=_history()).plot()
    assert isinstance(fig, Figure)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "Loss: training vs validation", "Gradient norm (global L2 norm per logged step)",
        "Learning rate per step"]
    assert _line(fig, "Loss", "train loss per step") == ([1, 2, 3, 4, 5, 6], LOSSES)
    # the epoch means sit mid-epoch (steps 1-3: 2.0, 4-6: 5.0); validation at the epoch's end
    assert _line(fig, "Loss", "train loss (epoch mean, mid-epoch)") == ([2.0, 5.0],
                                                                         [1.6333, 0.9333])
    assert _line(fig, "Loss", "validation loss (epoch end)") == ([3, 6], [1.4, 1.2])
    assert _line(fig, "Gradient norm", "grad norm") == ([1, 2, 3, 4, 5, 6], GRAD_NORMS)
    assert fig.axes[1].get_yscale() == "log"
    assert _line(fig, "Learning rate") == ([1, 2, 3, 4, 5, 6], LRS)
    assert TrainState(history=_history()).plot(num_classes=3).axes[0].get_lines()[-1] \
        .get_ydata()[0] == pytest.approx(np.log(3))  # the chance line, ln C


def test_a_history_without_validation_plots_the_training_loss_only() -> None:
    fig = history_figure(_history(val=False))
    assert _line(fig, "Loss", "train loss (epoch mean, mid-epoch)")[1] == [1.6333, 0.9333]
    assert "validation loss (epoch end)" not in _labels(fig)
    assert len(fig.axes) == 3


def test_an_empty_history_says_what_to_run_first() -> None:
    with pytest.raises(trainwise.TrainwiseError, match="at least one step"):
        TrainState().plot()


def test_a_monitor_history_plots_with_its_confidence_panel() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = trainwise.Monitor(None, log_every=1, layer_every=0, console=False)
    for _ in range(4):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        monitor.step(loss, model, optimizer)
        optimizer.step()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    monitor.evaluate(model, loader, nn.CrossEntropyLoss())
    fig = history_figure(monitor.history, num_classes=2)
    steps = [r for r in monitor.history if r["kind"] == "step"]
    assert _line(fig, "Gradient norm", "grad norm")[1] == pytest.approx(
        [r["grad_norm"] for r in steps])
    epoch = next(r for r in monitor.history if r["kind"] == "epoch")
    assert _line(fig, "Loss", "validation loss (epoch end)")[1] == [epoch["val_loss"]]
    assert fig.axes[-1].get_title(loc="left").startswith("Prediction confidence")


def test_report_of_a_train_state_points_at_plot_and_at_a_run_folder() -> None:
    with pytest.raises(trainwise.TrainwiseError) as raised:
        trainwise.report(TrainState(history=_history()))
    message = str(raised.value)
    assert "takes a run folder's path" in message and "type TrainState" in message
    assert "state.plot()" in message and "trainwise.Monitor('runs/x')" in message
    assert "trainwise.run(...) (result.run_dir)" in message  # README's name (review s16 VX10)
    assert "result.path" not in message


def test_report_of_a_monitor_names_its_folder_or_its_history(tmp_path) -> None:
    with pytest.raises(trainwise.TrainwiseError, match=r"history_figure\(monitor.history\)"):
        trainwise.report(trainwise.Monitor(None, console=False))
    folder = tmp_path / "mine"
    monitor = trainwise.Monitor(folder, console=False, tensorboard=False)
    with pytest.raises(trainwise.TrainwiseError, match="trainwise.report") as raised:
        trainwise.report(monitor)
    assert repr(str(folder)) in str(raised.value)
