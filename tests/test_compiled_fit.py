"""fit on a model torch.compile'd before lightning_fabric was imported (audit s14 G4): Fabric
then has no record of the compile arguments and refused with "import lightning before
torch.compile"; fit sets up the module inside and trains through the user's compilation."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainwise.train.checkpoint import load_checkpoint
from trainwise.train.loop import fit


def _fit(model, blobs, **kwargs):
    x, y = blobs
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=32)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=64)
    return fit(model, train, val, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
               loss_fn=nn.CrossEntropyLoss(), max_epochs=2, task="classification", **kwargs)


def test_fit_trains_a_model_compiled_before_lightning_was_imported(blobs, tmp_path):
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    reference = copy.deepcopy(plain)
    runs = []  # calls of the compiled graph: the user's compilation is what trains

    def counting(graph, example_inputs):
        def run(*args):
            runs.append(1)
            return graph.forward(*args)
        return run

    compiled = torch.compile(plain, backend=counting)
    # the tests import lightning_fabric first, whose patch records the arguments; without it
    # (`import trainwise; torch.compile(...)`) the record is missing, as here
    del compiled._compile_kwargs
    state = _fit(compiled, blobs, checkpoint_path=tmp_path / "last.pt")
    _fit(reference, blobs)
    assert state.step == 16 and len(runs) >= 16  # 8 steps an epoch, each through the graph
    for ours, theirs in zip(plain.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)  # the same training as the uncompiled model
    saved = load_checkpoint(tmp_path / "last.pt")
    assert set(saved["model"]) == set(reference.state_dict())  # no `_orig_mod.` prefix
