"""What fit, find_lr, Monitor.evaluate and shape_trace read from a batch, and the errors of a
first step that check names (audit s11: D1, D5, D6, D7, D8, D12)."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.findings import TrainwiseError
from trainwise.train.batch_checks import SampleIndexed
from trainwise.train.evaluate import inputs_and_targets, predict
from trainwise.train.loop import fit


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _fit(model, train, val=None, **kw):
    kw = {"optimizer": torch.optim.AdamW(model.parameters(), lr=1e-2),
          "loss_fn": nn.CrossEntropyLoss(), "max_epochs": 1, **kw}
    return fit(model, train, val if val is not None else train, **kw)


def _padded_lengths_labels(blobs):
    """(padded, lengths, labels): the pack_padded_sequence collate pattern, 0/1 labels."""
    x, y = blobs
    lengths = torch.randint(1, 9, (len(x),), generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, lengths, (y > 0).long()), batch_size=32)


def test_a_batch_of_three_items_is_refused_with_the_fix(blobs):
    # the old reading trained on the lengths as class labels without a word
    loader = _padded_lengths_labels(blobs)
    with pytest.raises(TrainwiseError, match=r"batch of 3 items.*\(\(padded, lengths\), y\)"):
        _fit(_model(), loader, task="classification")
    with pytest.raises(TrainwiseError, match="batch of 3 items"):
        trainwise.find_lr(_model(), nn.CrossEntropyLoss(), loader,
                          lambda m: torch.optim.AdamW(m.parameters(), 1e-3), num_steps=10,
                          seeds=(0,))


class _Indexed(torch.utils.data.Dataset):
    """A Dataset that declares its 3rd item sample indices (the opt-in)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return SampleIndexed(self.x[i], self.y[i], i)


def test_sample_indices_declared_by_the_dataset_are_taken(blobs):
    x, y = blobs
    plain = DataLoader(TensorDataset(x, y), batch_size=32)
    indexed = DataLoader(_Indexed(x, y), batch_size=32)
    assert isinstance(next(iter(indexed)), SampleIndexed)  # default_collate keeps the type
    losses = [[row["loss"] for row in _fit(_model(), loader, task="classification").history
               if row["kind"] == "step"] for loader in (plain, indexed)]
    assert losses[0] == losses[1]
    item_x, item_y = inputs_and_targets(indexed.dataset[5])  # one item: an int index
    assert torch.equal(item_x, x[5]) and torch.equal(item_y, y[5])
    repeated = SampleIndexed(x[:4], y[:4], torch.tensor([7, 7, 1, 2]))  # with replacement
    assert inputs_and_targets(repeated)[1] is repeated.targets


def test_lengths_that_look_like_indices_are_refused(blobs):
    """review s11 VT11: distinct labels made (padded, lengths, labels) pass as (x, y, indices)
    and the lengths were trained on as targets; a last batch of one row always passed."""
    padded = torch.zeros(8, 20)
    lengths = torch.tensor([20, 17, 15, 12, 9, 8, 5, 3])
    labels = torch.tensor([41, 7, 93, 12, 60, 2, 77, 30])  # 100 classes, all distinct
    for batch in ((padded, lengths, labels), (padded[:1], lengths[:1], labels[:1]),
                  [padded, labels, torch.arange(8)]):  # a plain tuple or list: no declaration
        with pytest.raises(TrainwiseError, match=r"batch of 3 items.*SampleIndexed"):
            inputs_and_targets(batch)


def test_nested_inputs_train_as_one_argument(blobs):
    x, y = blobs

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, inputs):
            first, second = inputs
            return self.a(first) + self.b(second)

    class Nested(torch.utils.data.Dataset):
        def __len__(self):
            return 240

        def __getitem__(self, i):
            return (x[i, :4], x[i, 4:]), y[i]

    nested = DataLoader(Nested(), batch_size=32)
    state = _fit(TwoInputs(), nested, task="classification")
    assert state.step == len(nested)
    trace = trainwise.shape_trace(TwoInputs(), (x[:2, :4], x[:2, 4:]))  # as fit reads it
    assert trace["total_params"] == 2 * (4 * 3 + 3)


def test_shape_trace_says_how_a_tuple_input_is_read(blobs):
    x, _ = blobs

    class Unpacked(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)

        def forward(self, first, second):
            return self.a(first) + self.a(second)

    with pytest.raises(TrainwiseError, match=r"as one argument.*forward\(self, inputs\)"):
        trainwise.shape_trace(Unpacked(), (x[:2, :4], x[:2, 4:]))


def test_a_dict_batch_is_told_the_collate_and_the_monitor_path():
    batch = {"input_ids": torch.zeros(2, 5), "attention_mask": torch.ones(2, 5),
             "labels": torch.zeros(2)}
    with pytest.raises(TrainwiseError) as raised:
        inputs_and_targets(batch)
    said = str(raised.value)
    assert "b['labels']" in said and "['input_ids', 'attention_mask']" in said
    assert "monitor.end_epoch(outputs=" in said


def test_fit_says_a_per_sample_loss_must_be_one_number(blobs):
    # the old step died in autograd: "grad can be implicitly created only for scalar outputs"
    train = DataLoader(TensorDataset(*blobs), batch_size=32)
    for accumulate in (1, 2):
        with pytest.raises(TrainwiseError, match=r"shape \(\d+,\) at step 1; .*reduction='mean'"):
            _fit(_model(), train, loss_fn=nn.CrossEntropyLoss(reduction="none"),
                 task="classification", accumulate_grad_batches=accumulate)


@pytest.mark.parametrize("task", ["classification", None])  # None: fit_task's forward first
def test_fit_and_find_lr_name_a_model_in_another_dtype(blobs, task):
    train = DataLoader(TensorDataset(*blobs), batch_size=32)
    model = _model().double()
    with pytest.raises(TrainwiseError, match="inputs are torch.float32 but the model's weights "
                                             "are torch.float64.*model.float"):
        _fit(model, train, task=task)
    result = trainwise.find_lr(model, nn.CrossEntropyLoss(), train,
                               lambda m: torch.optim.AdamW(m.parameters(), 1e-3), num_steps=10,
                               seeds=(0,))
    assert [f.code for f in result.findings] == ["inputs_wrong_dtype"]
    with pytest.raises(TrainwiseError, match="inputs are torch.float32"):
        trainwise.shape_trace(model, blobs[0][:2])


def test_fit_steps_an_epoch_scheduler_per_epoch(blobs):
    train = DataLoader(TensorDataset(*blobs), batch_size=32)  # 10 batches an epoch
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    state = _fit(model, train, optimizer=optimizer, max_epochs=3, task="classification",
                 scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5),
                 scheduler_interval="epoch")
    lrs = [row["lr"] for row in state.history if row["kind"] == "epoch"]
    assert lrs == pytest.approx([1e-2, 5e-3, 2.5e-3])  # per batch: 1e-2 * 0.5**10 after one


def test_fit_refuses_a_metric_driven_scheduler_and_an_unknown_interval(blobs):
    train = DataLoader(TensorDataset(*blobs), batch_size=32)
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(TrainwiseError, match=r"ReduceLROnPlateau.*on_epoch_end.*val_loss"):
        _fit(model, train, optimizer=optimizer, scheduler=plateau)
    with pytest.raises(TrainwiseError, match="scheduler_interval='batch'"):
        _fit(model, train, optimizer=optimizer, scheduler_interval="batch")


def test_a_dict_output_is_told_the_wrapper_that_picks_the_logits(blobs):
    class HFStyle(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return {"logits": self.head(x), "aux": x.pow(2).mean()}

    val = DataLoader(TensorDataset(*blobs), batch_size=64)
    with pytest.raises(TrainwiseError, match=r"return self\.model\(x\)\['logits'\]"):
        predict(HFStyle(), val)


def test_find_batch_size_names_a_model_in_another_dtype():
    """Audit s11 D6's last verb: find_batch_size gave torch's raw 'mat1 and mat2 must have
    the same dtype'; now check's inputs_wrong_dtype, as an error finding like find_lr's."""
    x, y = torch.randn(256, 8), torch.randint(0, 3, (256,))
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    result = trainwise.find_batch_size(model, nn.CrossEntropyLoss(), x, y,
                                       lambda m: torch.optim.AdamW(m.parameters(), 1e-3), 256)
    assert result.batch_size == 0
    assert [f.code for f in result.findings] == ["inputs_wrong_dtype"]
