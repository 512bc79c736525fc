"""Checkpoints: atomic writes, clear errors, and fit resumed from any checkpoint = uninterrupted."""

import collections
import math
import shutil

import pytest
import torch
from lightning_fabric import Fabric
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise.train.checkpoint as checkpoint_module
import trainwise.train.resume as resume_module
from trainwise.data.tensors import to_loader
from trainwise.findings import TrainwiseError
from trainwise.rundir import remove_partials
from trainwise.train.callbacks import BestWeights
from trainwise.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from trainwise.train.loop import fit

MAX_EPOCHS = 10


def _model(width=16):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Dropout(0.3), nn.Linear(width, 3))


def _loader(blobs, kind):
    x, y = blobs
    if kind == "trainwise":  # index-batch sampler with its own generator (data/tensors.py)
        return to_loader(x[:250], y[:250], 64, shuffle=True, seed=1)
    return DataLoader(TensorDataset(x[:250], y[:250]), batch_size=64, shuffle=True,
                      generator=torch.Generator().manual_seed(1))


def _train(blobs, kind, path, resume=None):
    """AdamW + one-cycle warmup + dropout + early stopping: every kind of state a resume needs."""
    x, y = blobs
    model, train = _model(), _loader(blobs, kind)
    if resume is not None:  # a resumed run must not depend on the weights or RNG it starts with
        torch.manual_seed(999)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1,
                                                    total_steps=MAX_EPOCHS * len(train))
    best = BestWeights(patience=2)
    # on the CPU wherever it runs: on a GPU (fit's default there) the validation loss fell
    # to ~0 and kept creeping lower, so early stopping, part of the state resumed, never fired
    state = fit(model, train, to_loader(x[250:], y[250:], 64, shuffle=False, seed=0),
                fabric=Fabric(accelerator="cpu", devices=1),
                optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(), max_epochs=MAX_EPOCHS,
                scheduler=scheduler, callbacks=[best], checkpoint_path=path, checkpoint_every=3,
                resume_state=resume, log_every=4)
    return model, state


def _train_keeping_every_checkpoint(blobs, kind, tmp_path, monkeypatch):
    """A seeded run that copies every checkpoint it writes: (model, state, the copies)."""
    copies = []

    def keep_every_version(payload, path):
        save_checkpoint(payload, path)
        copies.append(shutil.copy(path, tmp_path / f"copy{len(copies)}.pt"))

    monkeypatch.setattr(resume_module, "save_checkpoint", keep_every_version)
    torch.manual_seed(123)
    model, state = _train(blobs, kind, tmp_path / "last.pt")
    monkeypatch.undo()
    return model, state, copies


@pytest.mark.parametrize("kind", ["trainwise", "torch"])
def test_resume_from_every_checkpoint_ends_bitwise_equal(blobs, tmp_path, kind, monkeypatch):
    reference, state, copies = _train_keeping_every_checkpoint(blobs, kind, tmp_path,
                                                               monkeypatch)
    steps_per_epoch = math.ceil(250 / 64)
    assert state.should_stop and state.epoch < MAX_EPOCHS  # early stopping fired, was restored
    positions = [load_checkpoint(c)["progress"]["batches_done"] for c in copies]
    assert any(0 < p < steps_per_epoch for p in positions)  # some are mid-epoch
    for copy in copies:
        model, resumed = _train(blobs, kind, tmp_path / "resumed.pt", load_checkpoint(copy))
        for key, value in reference.state_dict().items():
            assert torch.equal(value, model.state_dict()[key]), (copy.name, key)
        assert resumed.step == state.step and resumed.epoch == state.epoch


def test_a_kill_mid_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(3)}}, path)

    def torn_save(payload, handle):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # stands in for the kill between two writes

    monkeypatch.setattr(checkpoint_module.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"model": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3))
    assert not list(tmp_path.rglob("*.tmp"))  # the interrupted writer removed its own
    (tmp_path / "checkpoints" / "last.pt.tmp").write_bytes(b"PK")  # as a SIGKILL leaves it
    (tmp_path / "meta.json.tmp").write_text("{")  # the run folder's root, as a kill leaves it
    # one cleanup for the root and checkpoints/ (review VO8: written three times before)
    assert remove_partials(tmp_path) == [tmp_path / "checkpoints" / "last.pt.tmp",
                                         tmp_path / "meta.json.tmp"]
    assert not list(tmp_path.rglob("*.tmp"))


class NotAllowed:  # torch.load(weights_only=True) refuses to build arbitrary classes
    pass


def _write_bad_files(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "extra": {"tag": "a",
                                                              "config": {"train.lr": 0.1}}}, good)
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("model = 'not a checkpoint'\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"weight": torch.ones(2)}, tmp_path / "plain.pt")  # a torch file, not ours
    torch.save({"format": "trainwise-checkpoint", "obj": NotAllowed()}, tmp_path / "code.pt")
    torch.save(collections.Counter(a=1), tmp_path / "counter.pt")
    return good


@pytest.mark.parametrize("name, expected", [
    ("truncated.pt", "truncated"), ("text.pt", "not a readable checkpoint"),
    ("empty.pt", "not a readable checkpoint"), ("plain.pt", "not a trainwise checkpoint"),
    ("code.pt", "more than tensors and plain values"),
    ("counter.pt", "not a trainwise checkpoint"),
    ("missing.pt", "no checkpoint at"),
])
def test_unusable_files_are_clear_errors(tmp_path, name, expected):
    _write_bad_files(tmp_path)
    with pytest.raises(CheckpointError, match=expected) as caught:
        load_checkpoint(tmp_path / name)
    assert isinstance(caught.value, TrainwiseError)
    assert any(word in str(caught.value) for word in ("Delete", "Resume", "Pass", "start", "Start"))


@pytest.mark.parametrize("name, cause", [
    ("truncated.pt", "failed finding central directory"), ("empty.pt", "empty or cut short"),
    ("code.pt", "NotAllowed"), ("text.pt", "Unsupported operand"),
])
def test_unreadable_file_error_is_whole_sentences_without_torchs_unsafe_advice(tmp_path, name,
                                                                              cause):
    """torch's text was cut mid-sentence ("... your checkpoint file is)") and relayed its
    advice to load with weights_only=False, which would run a tampered file's code."""
    _write_bad_files(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path / name)
    message = str(caught.value)
    assert cause in message and "damaged or not a trainwise checkpoint" in message
    assert "False" not in message and "weights_only" not in message
    assert "high likelihood" not in message  # torch's second sentence, once cut at 200 chars
    assert message.endswith(f"delete it and `trainwise run --resume {tmp_path.parent}` reruns "
                            "the run from the data stage (every stage is seeded).")


def test_checkpoint_of_another_config_names_the_keys(tmp_path):
    good = _write_bad_files(tmp_path)
    assert load_checkpoint(good, tag="a")["model"]["w"].sum() == 2
    with pytest.raises(CheckpointError, match=r"train\.lr: 0\.1 then, 0\.5 now"):
        load_checkpoint(good, tag="b", config={"train.lr": 0.5})


def test_a_checkpoint_from_before_a_key_was_added_resumes_at_its_default(tmp_path):
    """An older trainwise wrote no train.class_weights: a run whose new key sits at its
    default is the same training (another fingerprint, same config); any other value is not."""
    good = _write_bad_files(tmp_path)  # its config: {"train.lr": 0.1}
    defaults = {"train.lr": 1e-3, "train.class_weights": "none"}
    now = {"train.lr": 0.1, "train.class_weights": "none"}
    assert load_checkpoint(good, tag="b", config=now, defaults=defaults)["model"]["w"].sum() == 2
    with pytest.raises(CheckpointError, match="class_weights: None then, 'balanced' now"):
        load_checkpoint(good, tag="b", config={**now, "train.class_weights": "balanced"},
                        defaults=defaults)
    with pytest.raises(CheckpointError, match=r"train\.lr: 0\.1 then, 0\.5 now"):
        load_checkpoint(good, tag="b", config={**now, "train.lr": 0.5}, defaults=defaults)


def test_a_changed_model_is_a_clear_error(blobs, tmp_path):
    _train(blobs, "trainwise", tmp_path / "last.pt")
    x, y = blobs
    wider = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    with pytest.raises(CheckpointError, match="model changed"):
        fit(wider, _loader(blobs, "trainwise"), to_loader(x, y, 64, shuffle=False, seed=0),
            optimizer=torch.optim.AdamW(wider.parameters()), loss_fn=nn.CrossEntropyLoss(),
            max_epochs=2, resume_state=load_checkpoint(tmp_path / "last.pt"))


def test_non_finite_loss_stops_keeps_the_last_good_checkpoint_and_the_samples(blobs, tmp_path):
    x, y = blobs
    x = x.clone()
    poisoned = 77
    x[poisoned] = float("nan")
    loader = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(3))
    # DataLoader draws its worker seed from the generator first, then the sampler its order
    generator = torch.Generator().manual_seed(3)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(240, generator=generator)
    batch_index = int((order == poisoned).nonzero()) // 16
    model = _model()
    state = fit(model, loader, loader, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=3, log_every=5,
                checkpoint_path=tmp_path / "last.pt", checkpoint_every=2)
    assert state.should_stop and state.nonfinite["step"] == batch_index + 1
    assert state.nonfinite["sample_indices"] == order[batch_index * 16:(batch_index + 1) * 16] \
        .tolist()
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["train_state"]["step"] == state.checkpoint_step < batch_index + 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_another_steps_per_epoch_on_resume_is_a_clear_error():
    saved = {"steps_per_epoch": 14, "world_size": 1}
    resume_module.check_steps_per_epoch(saved, 14, 2)  # same epoch length: carries over
    resume_module.check_steps_per_epoch({}, 13, 2)  # a checkpoint from before the field
    with pytest.raises(CheckpointError, match=r"had 14 optimizer steps .* has 13 over 2 .*"
                                              r"--devices 1"):
        resume_module.check_steps_per_epoch(saved, 13, 2)


def test_ctrl_c_during_a_save_stops_after_the_new_checkpoint_is_complete(tmp_path, monkeypatch):
    """A KeyboardInterrupt raised inside torch's C++ writer came out as a RuntimeError ('unexpected
    pos ...'), a stage failure; now SIGINT waits for the save, then stops the run as usual."""
    import os
    import signal

    real_save = checkpoint_module.torch.save

    def save_hit_by_ctrl_c(obj, handle):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives mid-write
        for _ in range(1000):  # Python runs a pending signal's handler between bytecodes
            pass
        real_save(obj, handle)

    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.zeros(3)}}, path)
    monkeypatch.setattr(checkpoint_module.torch, "save", save_hit_by_ctrl_c)
    # Python's own Ctrl-C handler, as in a terminal: a pytest started in the background
    # (`cmd &`, nohup, CI) inherits SIGINT ignored, and an ignored Ctrl-C rightly raises nothing
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint({"model": {"w": torch.ones(3)}}, path)
    finally:
        signal.signal(signal.SIGINT, outer)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3))  # the new one, whole
    assert not list(tmp_path.glob("*.tmp"))


def _epoch_rows(history):
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in history if row.get("kind") == "epoch"]


def test_resume_from_an_epoch_end_checkpoint_logs_the_same_epoch_rows(blobs, tmp_path,
                                                                       monkeypatch):
    """Audit s11 R1: resuming from an end-of-epoch checkpoint carried the finished epoch's
    summed loss into the next epoch's train_loss (3.7x the real value in the audit)."""
    _, state, copies = _train_keeping_every_checkpoint(blobs, "trainwise", tmp_path,
                                                       monkeypatch)
    reference = {row["epoch"]: row for row in _epoch_rows(state.history)}
    boundaries = [c for c in copies if load_checkpoint(c)["progress"]["batches_done"] == 0
                  and load_checkpoint(c)["train_state"]["step"] > 0]
    assert boundaries  # the epoch-end checkpoints, the default when Ctrl-C stops a run
    compared = 0
    for copy in boundaries:  # the last one holds the finished run: nothing left to log
        _, resumed = _train(blobs, "trainwise", tmp_path / "resumed.pt", load_checkpoint(copy))
        for row in _epoch_rows(resumed.history):
            assert row == reference[row["epoch"]], (copy.name, row["epoch"])
            compared += 1
    assert compared >= len(boundaries) - 1
