"""fit on the slips a notebook makes (audit s16 N1, N5, N6, N14, N18, N19): each is refused
before the first step with check()'s cause and fix, or handled, never a raw torch error."""

from __future__ import annotations

import copy

import pytest
import torch
from lightning_fabric import Fabric
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from faults import CtrlC
from trainwise.findings import TrainwiseError
from trainwise.train.loop import fit


def _loaders(x, y, batch_size=32):
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))  # the blobs
    x, y = x[order], y[order]  # come sorted by class: every class on both sides
    return (DataLoader(TensorDataset(x[:240], y[:240]), batch_size=batch_size),
            DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64))


def _mlp(width=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, width))


def _fit(model, train, val, loss_fn=None, **kwargs):
    kwargs.setdefault("optimizer", torch.optim.SGD(model.parameters(), lr=0.1))
    kwargs.setdefault("max_epochs", 1)
    return fit(model, train, val, loss_fn=loss_fn or nn.CrossEntropyLoss(),
               fabric=Fabric(accelerator="cpu", devices=1), **kwargs)


def test_a_checkpoint_path_in_a_missing_folder_is_created(blobs, tmp_path):
    """N18: a notebook's checkpoint_path="ck/last.pt" raised a bare FileNotFoundError."""
    model = _mlp()
    path = tmp_path / "ck" / "deeper" / "last.pt"
    state = _fit(model, *_loaders(*blobs), checkpoint_path=path)
    assert path.is_file() and state.checkpoint_step == state.step == 8


def _weights(model):
    return copy.deepcopy(model.state_dict())


def _unchanged(model, before):
    return all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_broadcasting_regression_loss_is_refused_before_the_first_step():
    """N1: MSELoss on (B, 1) outputs and (B,) targets averages a (B, B) grid; fit trained it
    to predict the mean and the diagnosis called it healthy."""
    torch.manual_seed(0)
    x = torch.randn(300, 8)
    y = 2 * x[:, 0] + x[:, 1]  # (N,)
    model = _mlp(width=1)  # outputs (B, 1)
    before = _weights(model)
    with pytest.raises(TrainwiseError, match=r"loss_broadcast.*\(60, 1\) against targets "
                       r"\(60,\).*squeeze\(-1\)"):
        _fit(model, *_loaders(x, y), loss_fn=nn.MSELoss())
    assert _unchanged(model, before)
    # the same data with matching shapes trains, with or without task=
    for task in (None, "regression"):
        state = _fit(_mlp(width=1), *_loaders(x, y.view(-1, 1)), loss_fn=nn.MSELoss(),
                     task=task)
        assert state.step == 8


@pytest.mark.parametrize("case, said", [
    ("loss class", r"loss_fn=CrossEntropyLoss\) was given the class.*nn\.CrossEntropyLoss\(\)"),
    ("optimizer class", r"optimizer=AdamW\) was given the class.*AdamW\(model\.parameters"),
    ("generator", r"train_loader=\.\.\.\) was given a generator.*DataLoader\(TensorDataset"),
    ("list", r"train_loader=\.\.\.\) was given a list.*DataLoader\(TensorDataset"),
    ("tensors", r"train_loader=\.\.\.\) was given a tuple \(x, y\).*DataLoader\(TensorDataset"),
    ("dataset", r"val_loader=\.\.\.\) was given a TensorDataset, a Dataset, not a DataLoader: "
                r"iterating a Dataset yields one sample at a time.*"
                r"val_loader=DataLoader\(dataset, batch_size=64\).*batch_size=None"),
    ("zero epochs", r"max_epochs=0\): expected an integer >= 1"),
])
def test_arguments_of_the_wrong_kind_are_named_with_the_fix(blobs, case, said):
    """N5, N6: raw torch / Fabric errors ("Boolean value of Tensor ... ambiguous", "Only
    PyTorch DataLoader are currently supported") or a regression's advice before."""
    x, y = blobs
    model = _mlp()
    train, val = _loaders(x, y)
    kwargs = {
        "loss class": {"loss_fn": nn.CrossEntropyLoss},
        "optimizer class": {"optimizer": torch.optim.AdamW},
        "generator": {"train": (batch for batch in train)},
        "list": {"train": list(train)},
        "tensors": {"train": (x[:240], y[:240])},
        "dataset": {"val": TensorDataset(x[240:], y[240:])},
        "zero epochs": {"max_epochs": 0},
    }[case]
    train, val = kwargs.pop("train", train), kwargs.pop("val", val)
    before = _weights(model)
    with pytest.raises(TrainwiseError, match=said):
        _fit(model, train, val, **kwargs)
    assert _unchanged(model, before)


def _class_case(case, x, y):
    """(model, targets, loss_fn) of one classification slip on the blobs (3 classes)."""
    return {
        "one logit": (_mlp(width=1), y.clamp(max=1), nn.CrossEntropyLoss()),
        "labels beyond the width": (_mlp(width=2), y * 5, nn.CrossEntropyLoss()),
        "float labels": (_mlp(), y.float(), nn.CrossEntropyLoss()),
        "mse on class indices": (_mlp(), y, nn.MSELoss()),
    }[case]


@pytest.mark.parametrize("case, said", [
    ("one logit", r"logits_width_mismatch.*1 value per sample, but there are 2 classes.*"
                  r"nn\.Linear\(d, 2\)"),
    ("labels beyond the width", r"labels_out_of_range.*labels span 0\.\.10.*class indices 0\.\.1.*"
                                r"nn\.Linear\(d, 11\)"),
    ("float labels", r"labels_wrong_dtype.*torch\.float32; cross-entropy needs int64.*"
                     r"y\.long\(\)\.$"),  # no data stage to revisit in fit (VX4)
    ("mse on class indices", r"loss_task_mismatch.*MSELoss is a regression loss"),
])
@pytest.mark.parametrize("task", [None, "classification"])
def test_check_rules_on_the_first_batch_refuse_classification_slips(blobs, case, said, task):
    """N5, N6: check() names these; fit ended in "Target 1 is out of bounds" or told a
    cross-entropy user with float labels to change the (right) final layer."""
    x, y = blobs
    model, targets, loss_fn = _class_case(case, x, y)
    before = _weights(model)
    with pytest.raises(TrainwiseError, match=said):
        _fit(model, *_loaders(x, targets), loss_fn=loss_fn, task=task)
    assert _unchanged(model, before)


def test_integer_inputs_get_checks_dtype_error(blobs):
    """N5: int64 features ended in torch's "mat1 and mat2 must have the same dtype"."""
    x, y = blobs
    with pytest.raises(TrainwiseError, match=r"inputs are torch\.int64 but the model's weights "
                       r"are torch\.float32.*x\.to\(torch\.float32\)"):
        _fit(_mlp(), *_loaders((x * 10).long(), y))


def test_a_used_up_scheduler_is_refused_before_the_model_changes(blobs):
    """N14: a notebook cell re-running fit with last run's OneCycleLR raised torch's "Tried
    to step 9 times" after one optimizer step had changed the model."""
    model = _mlp()
    train, val = _loaders(*blobs)  # 8 steps an epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=8)
    _fit(model, train, val, optimizer=optimizer, scheduler=scheduler)  # uses all 8 steps
    before = _weights(model)
    with pytest.raises(TrainwiseError, match=r"has 0 of its 8 steps left.*steps it 8 times "
                       r"\(max_epochs=1 x 8 steps an epoch\).*new optimizer and scheduler"):
        _fit(model, train, val, optimizer=optimizer, scheduler=scheduler)
    assert _unchanged(model, before)
    fresh = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=16)
    assert _fit(model, train, val, optimizer=optimizer, scheduler=fresh, max_epochs=2).step == 16




def test_an_interrupted_fit_keeps_what_it_measured_on_the_exception(blobs, tmp_path):
    """N19: Ctrl-C at step 11 (of 8 an epoch) lost the finished epoch and the steps."""
    from trainwise.train.checkpoint import load_checkpoint

    model = _mlp()
    train, val = _loaders(*blobs)
    with pytest.raises(KeyboardInterrupt) as caught:
        _fit(model, train, val, max_epochs=3, callbacks=[CtrlC(11)], log_every=4,
             checkpoint_path=tmp_path / "last.pt")
    state = caught.value.state
    assert state.step == 11 and state.stop_reason == "interrupted (KeyboardInterrupt) at step 11"
    assert [row["epoch"] for row in state.history if row["kind"] == "epoch"] == [1]
    # every step row, the 3 after the last logged one (step 8) included
    assert [row["step"] for row in state.history if row["kind"] == "step"] == list(range(1, 12))
    assert "sys.last_value.state" in caught.value.__notes__[0]
    assert load_checkpoint(tmp_path / "last.pt")["train_state"]["step"] == 8


def test_a_label_beyond_the_width_in_training_only_is_named(blobs):
    """N5: a label the validation batch lacks ended in torch's "Target 5 is out of bounds"."""
    x, y = blobs
    train, val = _loaders(x, y)
    bad = y.clone()
    bad[:240] = torch.where(bad[:240] == 2, 5, bad[:240])  # class 2 -> 5 in training rows:
    # the blobs come sorted by class (2 from row 200), so step 7 (rows 192-223) meets a 5 first
    train = DataLoader(TensorDataset(x[:240], bad[:240]), batch_size=32)
    with pytest.raises(TrainwiseError, match=r"labels_out_of_range\] training step 7 failed "
                       r"\(IndexError: Target 5 is out of bounds.*span 1\.\.5.*"
                       r"nn\.Linear\(d, 6\)"):
        _fit(_mlp(), train, val)


@pytest.mark.parametrize("where", ["validation", "training"])
def test_a_negative_label_is_named_as_one_not_a_narrow_layer(blobs, where):
    """VX4 (review s16 final): a -1 label (an "unlabelled" mark) got "make the final layer
    nn.Linear(d, 3)" for a model that has it, and check's "fix num_classes; revisit the data
    stage", neither of which fit has."""
    x, y = blobs
    train, val = _loaders(x, y)
    marked = y.clone()
    marked[::50] = -1
    if where == "validation":
        val = DataLoader(TensorDataset(x[240:], marked[240:]), batch_size=64)
    else:
        train = DataLoader(TensorDataset(x[:240], marked[:240]), batch_size=32)
    with pytest.raises(TrainwiseError, match=r"labels_out_of_range.*labels span -1\.\.") as err:
        _fit(_mlp(), train, val)
    said = str(err.value)
    assert "nn.CrossEntropyLoss(ignore_index=-1)" in said and "re-encode the labels as 0..2" in said
    for wrong in ("nn.Linear(d, 3)", "num_classes", "data stage"):
        assert wrong not in said, wrong
    # the advice works: with ignore_index=-1 the same data trains
    assert _fit(_mlp(), train, val, loss_fn=nn.CrossEntropyLoss(ignore_index=-1)).step > 0


class _OwnIndexBug(nn.Module):
    """A 3-class model with an indexing bug of its own, in training mode only."""

    def __init__(self):
        super().__init__()
        self.net, self.table = _mlp(), torch.zeros(4)

    def forward(self, x):
        if self.training:
            _ = self.table[torch.tensor(4)]  # index 4 of a size-4 table
        return self.net(x)


def _narrow_loss(outputs, targets):  # a loss on 2 of the 3 logits: the user's own slip
    return nn.functional.cross_entropy(outputs[:, :2], targets)


@pytest.mark.parametrize("case", ["own index bug", "loss on a narrower slice"])
def test_an_index_error_that_the_labels_do_not_explain_is_torchs_own(blobs, case):
    """VF1 (review s16): any "out of bounds" IndexError was said as labels_out_of_range with
    the fix "make the final layer nn.Linear(d, 3)", which the model already has; labels 0..2
    fit its 3 logits, so torch's error comes back as it is."""
    x, y = blobs
    model, loss_fn = (_OwnIndexBug(), None) if case == "own index bug" else (_mlp(), _narrow_loss)
    said = r"index 4 is out of bounds" if loss_fn is None else r"Target 2 is out of bounds"
    with pytest.raises(IndexError, match=said) as caught:
        _fit(model, *_loaders(x, y), loss_fn=loss_fn)
    assert type(caught.value) is IndexError


class _TokenModel(nn.Module):
    """Token ids into an nn.Embedding (right), or float features into nn.Linear (right),
    then a float64 layer of the user's own: torch's "got Float and Double"."""

    def __init__(self, tokens):
        super().__init__()
        torch.manual_seed(0)
        self.tokens = tokens
        self.first = nn.Embedding(50, 8) if tokens else nn.Linear(8, 8)
        self.extra, self.head = nn.Linear(8, 8).double(), nn.Linear(8, 3)

    def forward(self, x):
        h = self.first(x).mean(1) if self.tokens else self.first(x.float())
        if self.training:
            h = h + 0 * self.extra(h).float()  # float32 into the float64 layer
        return self.head(h)


@pytest.mark.parametrize("tokens", [True, False])
def test_integer_inputs_are_not_blamed_for_the_models_own_dtype_clash(blobs, tokens):
    """VF2 (review s16): token ids into an nn.Embedding, or int64 features the model casts
    itself, were told "give float inputs: x.to(torch.float32)" for a Float/Double clash
    deeper in; torch's error comes back as it is."""
    x, y = blobs
    inputs = torch.randint(0, 50, (len(y), 10)) if tokens else (x * 10).long()
    with pytest.raises(RuntimeError, match="got Float and Double") as caught:
        _fit(_TokenModel(tokens), *_loaders(inputs, y))
    assert not isinstance(caught.value, TrainwiseError)


class _EvalCount(nn.Module):
    """Counts its eval-mode forwards (evaluation and fit's first-batch read)."""

    def __init__(self):
        super().__init__()
        self.net, self.evals = _mlp(), 0

    def forward(self, x):
        self.evals += not self.training
        return self.net(x)


@pytest.mark.parametrize("checked, task, evals", [
    (False, "classification", 2), (True, "classification", 1), (True, None, 2)])
def test_trainwise_own_runs_skip_the_first_batch_read(blobs, checked, task, evals):
    """VF4 (review s16): a fit given its task inside loss_rules_checked() (the train stage
    after the check stage, tune's short runs after the first) read the first validation batch
    again: 2 eval forwards where the epoch's evaluation of a 1-batch val loader makes 1."""
    from trainwise.train.fit_task import loss_rules_checked

    x, y = blobs
    train, _ = _loaders(x, y)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=len(y))  # one batch
    model = _EvalCount()
    with loss_rules_checked(checked):
        _fit(model, train, val, task=task)
    assert model.evals == evals
