"""What fit and the Monitor check once about the objects handed to them (train/entry_checks.py):
an optimizer on another model's parameters (audit s15 B6), Adam's coupled L2 (M1), a loss
summed over the batch (B14). Oracles: the parameter names the model itself lists, and the
optimizer's own param_groups."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.findings import Severity, TrainwiseError
from trainwise.train.loop import fit


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _loaders(blobs, batch_size: int = 32):
    x, y = blobs
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=batch_size)
    return train, DataLoader(TensorDataset(x[240:], y[240:]), batch_size=60)


def _own_loop(model, optimizer, blobs, loss_fn=None, epochs: int = 3) -> trainwise.Monitor:
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    train, val = _loaders(blobs)
    monitor = trainwise.Monitor(None, console=False, tensorboard=False, report=False)
    for _ in range(epochs):
        for x, y in train:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            monitor.step(loss, model, optimizer)
            optimizer.step()
        monitor.evaluate(model, val, loss_fn)
    return monitor


def test_fit_refuses_an_optimizer_built_on_another_model(blobs):
    model, other = _model(0), _model(1)
    train, val = _loaders(blobs)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainwiseError) as raised:
        fit(model, train, val, optimizer=torch.optim.AdamW(other.parameters(), lr=1e-2),
            loss_fn=nn.CrossEntropyLoss(), max_epochs=1)
    text = str(raised.value)
    assert "none of the model's 4 trainable parameters" in text
    assert all(name in text for name, _ in model.named_parameters())
    assert "trainwise.param_groups(model" in text
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fit_warns_of_parameters_the_optimizer_misses(blobs):
    model = _model()
    train, val = _loaders(blobs)
    optimizer = torch.optim.AdamW(model[0].parameters(), lr=1e-2)  # the head left out
    with pytest.warns(UserWarning, match=r"optimizer_misses_parameters.*holds 2 of the "
                      r"model's 4 .* 2\.weight, 2\.bias"):
        fit(model, train, val, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(), max_epochs=1)


def test_fit_is_silent_for_frozen_parameters_left_out(blobs):
    model = _model()
    model[0].requires_grad_(False)  # frozen on purpose: not the optimizer's to hold
    train, val = _loaders(blobs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(model, train, val, optimizer=torch.optim.AdamW(model[2].parameters(), lr=1e-2),
            loss_fn=nn.CrossEntropyLoss(), max_epochs=1)


def test_monitor_stops_on_an_optimizer_of_another_model_and_explains_the_rest(blobs):
    model, other = _model(0), _model(1)
    monitor = _own_loop(model, trainwise.make_adamw(other, lr=3e-3, weight_decay=0.01), blobs)
    found = monitor.close()
    wiring = [f for f in found if f.code == "optimizer_not_on_model"]
    assert len(wiring) == 1 and wiring[0].severity is Severity.ERROR
    assert monitor.should_stop
    assert wiring[0].evidence["params"] == [name for name, _ in model.named_parameters()]
    # what follows from weights that never changed (no learning) is not advised on its own
    others = [f for f in found if f.code != "optimizer_not_on_model"]
    assert all(f.severity is Severity.INFO for f in others)


def test_adam_with_weight_decay_is_told_to_use_adamw(blobs):
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2)
    found = {f.code: f for f in _own_loop(model, optimizer, blobs, epochs=1).findings()}
    assert found["adam_not_adamw"].severity is Severity.WARNING
    assert "torch.optim.AdamW(" in found["adam_not_adamw"].fix
    assert "The optimizer (Adam) applies" in found["decay_on_norms"].message  # what it is
    decay_fix = found["decay_on_norms"].fix
    assert "torch.optim.AdamW(" in decay_fix and "torch.optim.Adam(" not in decay_fix


def test_adam_following_the_old_fix_is_still_told(blobs):
    """The fix decay_on_norms used to give (Adam over param_groups) passed silently (M1)."""
    model = _model()
    optimizer = torch.optim.Adam(trainwise.param_groups(model, 0.01), lr=1e-2)
    codes = [f.code for f in _own_loop(model, optimizer, blobs, epochs=1).findings()]
    assert "adam_not_adamw" in codes and "decay_on_norms" not in codes


@pytest.mark.parametrize("make", [
    lambda m: torch.optim.AdamW(trainwise.param_groups(m, 0.01), lr=1e-2),
    lambda m: torch.optim.Adam(m.parameters(), lr=1e-2),  # no decay: nothing coupled
    lambda m: torch.optim.SGD(trainwise.param_groups(m, 0.01), lr=1e-2),
])
def test_no_adam_warning_without_coupled_decay(blobs, make):
    model = _model()
    codes = [f.code for f in _own_loop(model, make(model), blobs, epochs=1).findings()]
    assert "adam_not_adamw" not in codes


def test_fit_warns_of_adam_with_weight_decay(blobs):
    model = _model()
    train, val = _loaders(blobs)
    with pytest.warns(UserWarning, match="adam_not_adamw.*torch.optim.AdamW"):
        fit(model, train, val, loss_fn=nn.CrossEntropyLoss(), max_epochs=1,
            optimizer=torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=0.1))


def test_fit_warns_of_a_summed_loss(blobs):
    model = _model()
    train, val = _loaders(blobs)
    with pytest.warns(UserWarning, match="loss_not_per_row.*reduction='mean'"):
        fit(model, train, val, optimizer=trainwise.make_adamw(model, 1e-2, 0.01),
            loss_fn=nn.CrossEntropyLoss(reduction="sum"), max_epochs=1)


def test_monitor_says_a_summed_loss_once(blobs):
    model = _model()
    monitor = _own_loop(model, trainwise.make_adamw(model, 1e-2, 0.01), blobs,
                        loss_fn=nn.CrossEntropyLoss(reduction="sum"))
    summed = [f for f in monitor.findings() if f.code == "loss_not_per_row"]
    assert len(summed) == 1 and "reduction='mean'" in summed[0].fix


def test_a_mean_loss_draws_no_summed_loss_warning(blobs):
    model = _model()
    monitor = _own_loop(model, trainwise.make_adamw(model, 1e-2, 0.01), blobs)
    assert all(f.code != "loss_not_per_row" for f in monitor.findings())


def _bn_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def test_fit_refuses_batch_norm_with_batches_of_one(blobs):
    """torch's own error was the user's only message (audit s15 B11)."""
    model = _bn_model()
    train, val = _loaders(blobs, batch_size=1)
    with pytest.raises(TrainwiseError, match=r"batch_size=1.*BatchNorm.*n >= 2.*GroupNorm"):
        fit(model, train, val, optimizer=trainwise.make_adamw(model, 1e-2, 0.01),
            loss_fn=nn.CrossEntropyLoss(), max_epochs=1)


def test_fit_counts_micro_batches_for_batch_norm(blobs):
    model = _bn_model()
    train, val = _loaders(blobs, batch_size=4)  # 4 rows in 4 micro-batches: 1 each
    with pytest.raises(TrainwiseError, match=r"cut into 4 pieces.*n >= 8"):
        fit(model, train, val, optimizer=trainwise.make_adamw(model, 1e-2, 0.01),
            loss_fn=nn.CrossEntropyLoss(), max_epochs=1, accumulate_grad_batches=4)


def test_fit_refuses_batch_norm_with_a_last_batch_of_one(blobs):
    """Review s15 VT6: 65 rows at batch_size=64 crashed at the end of epoch 1 with torch's
    bare error; drop_last=True (the fix it names) trains, 1 step per epoch."""
    x, y = blobs
    model, rows = _bn_model(), TensorDataset(x[:65], y[:65])
    _, val = _loaders(blobs)
    with pytest.raises(TrainwiseError, match=r"65 rows at batch_size=64.*last batch holds 1"
                                             r".*drop_last=True"):
        fit(model, DataLoader(rows, batch_size=64, shuffle=True), val,
            optimizer=trainwise.make_adamw(model, 1e-2, 0.01), loss_fn=nn.CrossEntropyLoss(),
            max_epochs=1)
    state = fit(model, DataLoader(rows, batch_size=64, shuffle=True, drop_last=True), val,
                optimizer=trainwise.make_adamw(model, 1e-3, 0.01),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=1)
    assert state.step == 1


def test_fit_trains_batch_norm_frozen_in_eval_at_batch_one(blobs):
    """A BatchNorm the user put in eval mode uses its running statistics: a batch of one is
    fine there, and fit trains in the modes it was given."""
    model = _bn_model()
    model[1].eval()
    train, val = _loaders(blobs, batch_size=1)
    state = fit(model, train, val, optimizer=trainwise.make_adamw(model, 1e-3, 0.01),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=1)
    assert state.step == 240


def test_flat_master_copies_are_not_called_another_model():
    """DeepSpeed ZeRO / FSDP flat parameters / fp32 masters: one 1-D tensor holding the
    model's values trains it though it is none of the model's tensors by identity."""
    from trainwise.train.entry_checks import unheld_parameters

    model = _model()
    flat = nn.Parameter(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert unheld_parameters(model, torch.optim.AdamW([flat], lr=1e-3), "train") is None
    other = _model(1)  # a real other model (matrices) is still caught
    found = unheld_parameters(model, torch.optim.AdamW(other.parameters()), "train")
    assert found is not None and found.code == "optimizer_not_on_model"


def test_monitor_names_parameters_as_the_users_module_does_under_a_wrapper():
    from trainwise.train.entry_checks import monitor_entry_findings

    class Wrapper(nn.Module):  # as DDP: the user's module under .module
        def __init__(self, module):
            super().__init__()
            self.module = module

    model, other = _model(0), _model(1)
    found = monitor_entry_findings(Wrapper(model), torch.optim.AdamW(other.parameters()))
    assert [f.evidence["params"] for f in found] == [["0.weight", "0.bias", "2.weight",
                                                      "2.bias"]]
    assert monitor_entry_findings(Wrapper(model), torch.optim.AdamW(model.parameters())) == []
