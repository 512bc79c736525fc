"""Several processes (DDP on the CPU, gloo) give the results of one process with the same
global batch: weights, reduced monitoring rows, gradients under accumulation, warmup."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch
from lightning_fabric import Fabric
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

import trainwise
from multiprocess_data import three_gaussians
from trainwise.data.tensors import to_loader
from trainwise.rundir import read_history
from trainwise.train.loop import fit

EPOCHS, BATCH = 3, 32  # 256 training rows: 8 steps per epoch, 16 rows per process per step


_data = three_gaussians


class RecordingSGD(torch.optim.SGD):
    """Keeps every gradient it steps with, and the learning rate of that step."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr, momentum=0.9)
        self.grads, self.lrs = [], []

    def step(self, closure=None):
        self.grads.append(np.concatenate([p.grad.flatten().numpy() for group in
                                          self.param_groups for p in group["params"]]))
        self.lrs.append(self.param_groups[0]["lr"])
        return super().step(closure)


class CountAllReduces:
    """A callback that counts DDP's gradient all-reduces (one per bucket when it syncs)."""

    def __init__(self):
        self.calls = 0

    def on_fit_start(self, model):
        def hook(state, bucket):
            self.calls += 1
            return allreduce_hook(state, bucket)

        if hasattr(model._forward_module, "register_comm_hook"):
            model._forward_module.register_comm_hook(None, hook)


def _train(fabric, accumulate=1):
    x, y = _data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    optimizer = RecordingSGD(model.parameters(), lr=0.05)
    train = to_loader(x[:256], y[:256], BATCH, shuffle=True, seed=1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05,
                                                    total_steps=EPOCHS * len(train))
    counter = CountAllReduces()
    state = fit(model, train, to_loader(x[256:], y[256:], 50, shuffle=False, seed=0),
                optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(), max_epochs=EPOCHS,
                scheduler=scheduler, fabric=fabric, callbacks=[counter], log_every=1,
                accumulate_grad_batches=accumulate)
    return {"weights": [v.numpy().copy() for v in model.state_dict().values()],
            "history": state.history, "grads": optimizer.grads, "lrs": optimizer.lrs,
            "all_reduces": counter.calls, "rank": fabric.global_rank}


def _on_two_processes(fabric, out):
    """Runs in each of 2 forked processes; process 0 saves the results to `out` (a return
    value beyond 64 KiB would block in the pipe back to the parent)."""
    runs = {k: _train(fabric, accumulate=k) for k in (1, 2)}
    every_rank = fabric.all_gather(torch.tensor(runs[1]["history"][-1]["val_loss"])).tolist()
    if fabric.global_rank == 0:
        torch.save({"runs": runs, "every_rank": every_rank}, out)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "results.pt"
    Fabric(accelerator="cpu", devices=2, strategy="ddp_fork").launch(_on_two_processes, out)
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def one_process():
    return {k: _train(Fabric(accelerator="cpu", devices=1), accumulate=k) for k in (1, 4)}


def _rows(history, kind):
    return [row for row in history if row["kind"] == kind]


@pytest.mark.forks
def test_two_processes_match_one_with_the_same_global_batch(two_processes, one_process):
    single, ddp = one_process[1], two_processes["runs"][1]
    for ours, theirs in zip(ddp["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    # the monitoring rows are reduced over both processes, not rank 0's half batch
    for ours, theirs in zip(_rows(ddp["history"], "step"), _rows(single["history"], "step"),
                            strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
        assert ours["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=1e-5)
    ours, theirs = _rows(ddp["history"], "epoch")[-1], _rows(single["history"], "epoch")[-1]
    assert ours["val_confidence_hist"] == theirs["val_confidence_hist"]  # all 64 samples
    assert sum(ours["val_confidence_hist"]) == 64
    for key in ("train_loss", "val_loss", "val_accuracy", "val_ece"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), key
    assert len(set(two_processes["every_rank"])) == 1  # both processes saw the same numbers


@pytest.mark.forks
def test_gradients_and_warmup_do_not_depend_on_devices_or_accumulation(two_processes,
                                                                       one_process):
    reference = one_process[1]
    runs = {"1 process, 4 micro-batches": one_process[4],
            "2 processes": two_processes["runs"][1],
            "2 processes, 2 micro-batches": two_processes["runs"][2]}
    for name, run in runs.items():
        assert len(run["grads"]) == EPOCHS * 8, name  # 8 optimizer steps per epoch, always
        assert run["lrs"] == pytest.approx(reference["lrs"], rel=1e-12), name  # same warmup
        for step, (ours, theirs) in enumerate(zip(run["grads"], reference["grads"], strict=True)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6,
                                       err_msg=f"{name}, step {step}")
    # no_backward_sync: gradients are all-reduced once per optimizer step, not per micro-batch
    assert two_processes["runs"][2]["all_reduces"] == two_processes["runs"][1]["all_reduces"]
    assert two_processes["runs"][1]["all_reduces"] >= EPOCHS * 8


class Tiny(nn.Module):  # no dropout or batch norm: both depend on each process's slice
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)


@pytest.mark.forks
def test_recipe_on_two_processes_writes_one_run_folder_like_one_process(tmp_path,
                                                                         monkeypatch):
    settings = ["data.source=\"digits\"", "data.max_samples=400", "train.lr=0.003",
                "run.checks=false", "train.max_epochs=2", "train.batch_size=32",
                "run.threads=1", "run.checkpoint_every_steps=4"]
    scratch = tmp_path / "tmp"  # this test's own temporary folder (the forked process inherits
    scratch.mkdir()  # it): another trainwise run on the machine leaves its folders elsewhere
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    torch.manual_seed(0)
    two = trainwise.run(model=Tiny(), report=False, overrides=[
        *settings, f"run.out_dir=\"{tmp_path / 'two'}\"", "run.devices=2",
        "run.strategy=\"ddp_fork\""])
    torch.manual_seed(0)
    one = trainwise.run(model=Tiny(), report=False,
                        overrides=[*settings, f"run.out_dir=\"{tmp_path / 'one'}\""])
    assert two.ok and one.ok, (two.verdict, one.verdict)
    assert [p.name for p in (tmp_path / "two").iterdir()] == [two.path.name]
    assert not [n for n in os.listdir(scratch) if n.startswith("trainwise-rank")]  # the other
    # process's scratch folder is gone
    steps = [row["step"] for row in read_history(two.path) if row["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1))  # each step written once, by rank 0
    assert len(list((two.path / "tensorboard").iterdir())) == 1
    assert json.loads((two.path / "meta.json").read_text())["num_processes"] == 2
    ours = torch.load(two.path / "checkpoints/last.pt", weights_only=True)
    theirs = torch.load(one.path / "checkpoints/last.pt", weights_only=True)
    assert ours["world_size"] == 2 and len(ours["rng"]) == 2
    for key, value in theirs["model"].items():
        torch.testing.assert_close(ours["model"][key], value, rtol=1e-4, atol=1e-5)
    assert two.test["test_accuracy"] == pytest.approx(one.test["test_accuracy"])


@pytest.mark.skipif(not os.environ.get("TRAINWISE_SLOW_TESTS"),
                    reason="two fresh interpreters (~40 s on 2 busy cores): TRAINWISE_SLOW_TESTS=1")
def test_cli_devices_2_relaunches_the_command(tmp_path):
    """`trainwise run --devices 2`: Fabric re-runs the command as rank 1 (popen launcher)."""
    command = [sys.executable, "-m", "trainwise.cli", "run", "--devices", "2", "--no-report",
               "--set", "data.source=\"digits\"", "--set", "data.max_samples=400",
               "--set", "train.lr=0.003", "--set", "run.checks=false",
               "--set", "train.max_epochs=2", "--set", f"run.out_dir=\"{tmp_path}\""]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = list(tmp_path.iterdir())
    assert json.loads((run / "meta.json").read_text())["num_processes"] == 2
    assert (run / "checkpoints/last.pt").exists()


def _keep_checkpoint(number, copy_to):
    """Patches the checkpoint writer (forked processes inherit it) to copy save `number`."""
    import trainwise.train.resume as resume_module

    original, calls = resume_module.save_checkpoint, []

    def save_and_copy(payload, path):
        original(payload, path)
        calls.append(path)
        if len(calls) == number:
            shutil.copy(path, copy_to)

    resume_module.save_checkpoint = save_and_copy
    return lambda: setattr(resume_module, "save_checkpoint", original)


def _killed_copy(run, checkpoint, folder):
    """The run folder as a kill at `checkpoint` would have left it (history is truncated
    to the checkpoint's rows by the resume)."""
    killed = folder / run.name
    shutil.copytree(run, killed)
    shutil.copy(checkpoint, killed / "checkpoints/last.pt")
    return killed


@pytest.mark.forks
def test_resume_with_another_process_count_continues_the_same_run(tmp_path):
    """Killed at 2 processes and resumed with 1, or the other way round: the data position,
    schedule and global batch are global, so the weights end as in an uninterrupted run."""
    settings = ["data.source=\"digits\"", "data.max_samples=400", "train.lr=0.003",
                "run.checks=false", "train.max_epochs=2", "train.batch_size=32",
                "run.threads=1", "run.checkpoint_every_steps=4"]
    two_procs = ["run.devices=2", "run.strategy=\"ddp_fork\""]
    one_proc = ["run.devices=1", "run.strategy=\"auto\""]
    runs = {}
    for name, procs in (("two", two_procs), ("one", one_proc)):
        restore = _keep_checkpoint(3, tmp_path / f"{name}_mid.pt")  # step 8, mid-epoch 1
        try:
            torch.manual_seed(0)
            runs[name] = trainwise.run(model=Tiny(), report=False, overrides=[
                *settings, *procs, f"run.out_dir=\"{tmp_path / name}\""])
        finally:
            restore()
        assert runs[name].ok, runs[name].verdict
    mid = torch.load(tmp_path / "two_mid.pt", weights_only=True)
    assert mid["world_size"] == 2 and mid["progress"]["batches_done"] > 0
    final = torch.load(runs["one"].path / "checkpoints/last.pt", weights_only=True)["model"]
    for name, procs, other in (("two", one_proc, 1), ("one", two_procs, 2)):
        killed = _killed_copy(runs[name].path, tmp_path / f"{name}_mid.pt", tmp_path / "killed")
        torch.manual_seed(0)
        resumed = trainwise.run(model=Tiny(), report=False, resume=killed, overrides=procs)
        assert resumed.ok, resumed.verdict
        [note] = [f for f in resumed.findings if f.code == "resumed"]
        assert note.evidence["world_size"] == other and "not bitwise" in note.message
        ours = torch.load(killed / "checkpoints/last.pt", weights_only=True)["model"]
        for key, value in final.items():
            torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5, msg=name)
        steps = [row["step"] for row in read_history(killed) if row["kind"] == "step"]
        assert steps == list(range(1, len(steps) + 1))
        shutil.rmtree(killed)


@pytest.mark.forks
def test_two_processes_keep_the_test_predictions_in_row_order(tmp_path):
    """Each process predicts its slice of every test batch; test_predictions.csv still pairs
    each row with its own prediction, as on one process (audit s10 A18)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1300, 3))  # 585 test rows: two test batches (512 a batch)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                          "y": 1000 * (x @ np.array([2.0, -1.0, 0.5]) + 10)})
    frame.to_csv(tmp_path / "reg.csv", index=False)
    settings = [f"data.source=\"{tmp_path / 'reg.csv'}\"", "data.target=\"y\"",
                "split.test_fraction=0.45", "train.lr=0.01", "run.checks=false",
                "train.max_epochs=4", "train.batch_size=32", "run.threads=1"]
    torch.manual_seed(0)
    two = trainwise.run(report=False, overrides=[
        *settings, f"run.out_dir=\"{tmp_path / 'two'}\"", "run.devices=2",
        "run.strategy=\"ddp_fork\""])
    torch.manual_seed(0)
    one = trainwise.run(report=False, overrides=[*settings,
                                                 f"run.out_dir=\"{tmp_path / 'one'}\""])
    assert two.ok and one.ok, (two.verdict, one.verdict)
    ours = pd.read_csv(two.path / "test_predictions.csv")
    theirs = pd.read_csv(one.path / "test_predictions.csv")
    assert ours["row"].tolist() == theirs["row"].tolist()
    assert ours["actual"].tolist() == pytest.approx(frame["y"].to_numpy()[ours["row"]])
    # the two runs' weights differ a little (float sums in another order); rows paired with
    # another row's prediction would not agree this closely (the model has learned: R^2 > 0.8)
    assert two.test["test_r2"] > 0.8
    assert np.corrcoef(ours["predicted"], theirs["predicted"])[0, 1] > 0.99
