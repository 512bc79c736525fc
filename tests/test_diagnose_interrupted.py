"""Review s16 VX3: after Ctrl-C in fit, diagnose(state.history) (what fit's note advises)
withholds the rules that judge where training ended, as the Monitor does (audit s16 N12);
the Monitor also withholds missed_classes' "The model did not learn" from one epoch."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from faults import CtrlC
from trainwise.findings import Severity, info, warning
from trainwise.train.diagnose import withheld_at_interrupt


def _falling_slowly() -> list[dict]:
    """25 steps at lr 1e-4, the loss falling 0.03 a step to the end: lr_too_low's shape."""
    rows: list[dict] = []
    for step in range(1, 26):
        rows.append({"kind": "step", "step": step, "epoch": 1 + step // 10,
                     "loss": 2.0 - 0.03 * step, "lr": 1e-4})
        if step % 10 == 0:
            rows.append({"kind": "epoch", "step": step, "epoch": step // 10,
                         "val_loss": 2.0 - 0.03 * step})
    return rows


def test_a_stop_row_withholds_the_end_rules_and_says_the_interrupt():
    rows = _falling_slowly()
    assert "lr_too_low" in {f.code for f in trainwise.diagnose(rows)}  # the reference
    stop = {"kind": "stop", "reason": "interrupted", "step": 25, "epoch": 3}
    found = trainwise.diagnose([*rows, stop])
    assert [f.code for f in found] == ["loop_interrupted"]
    assert found[0].severity is Severity.INFO
    assert found[0].evidence["withheld"] == ["lr_too_low"]
    assert "trainwise.fit again" in found[0].fix and "Monitor" not in found[0].fix
    # a resumed fit's rows come after the stop row: then the run is judged as it ended
    assert "lr_too_low" in {f.code for f in trainwise.diagnose([stop, *rows])}


def test_missed_classes_and_a_not_learned_overconfidence_are_withheld():
    found = [warning("train", "missed_classes", "class 2 missed", "The model did not learn"),
             warning("train", "overconfidence", "gap", "The best validation loss ...",
                     not_learned=True),
             warning("train", "overfitting", "rose", "stop early"),
             info("train", "healthy", "fine")]
    kept, withheld = withheld_at_interrupt(found)
    assert [f.code for f in kept] == ["overfitting"]
    assert withheld == ["missed_classes", "overconfidence"]




def test_diagnose_after_an_interrupted_fit_judges_the_steps_run():
    """The reviewer's kb.py: Ctrl-C at step 12 of 40 gave 'plateau ... raise the lr'."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=gen)
    y = x[:, :3].argmax(1)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(KeyboardInterrupt) as caught:
        trainwise.fit(net, DataLoader(TensorDataset(x, y), batch_size=32),
                      DataLoader(TensorDataset(x[:64], y[:64]), batch_size=64),
                      optimizer=torch.optim.AdamW(net.parameters()),
                      loss_fn=nn.CrossEntropyLoss(), max_epochs=5, callbacks=[CtrlC(11)])
    state = caught.value.state
    assert state.history[-1] == {"kind": "stop", "reason": "interrupted", "step": 11,
                                 "epoch": 2}
    ended = {f.code for f in trainwise.diagnose(state.history[:-1])}  # the old reading
    assert ended & {"plateau", "lr_too_low"}, ended
    found = trainwise.diagnose(state.history)
    codes = [f.code for f in found]
    assert codes.count("loop_interrupted") == 1 and codes[-1] == "loop_interrupted"
    assert not {"plateau", "lr_too_low", "still_improving", "healthy"} & set(codes), codes
    assert "judges the steps run" in caught.value.__notes__[0]
