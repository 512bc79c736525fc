"""`trainwise run --resume`: a run killed with SIGKILL (mid-epoch, mid-save, or whenever) and
resumed ends with the same weights and history as an uninterrupted run, bitwise on the CPU."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import trainwise
from faults import die_at_save
from trainwise.cli import main
from trainwise.rundir import read_findings, read_history

# digits: 432 training rows, batch 32 -> 14 steps per epoch; checkpoints every 5 steps, so
# most land mid-epoch. Dropout and one-cycle warmup make the RNG and scheduler state matter.
SETTINGS = ["data.source=\"digits\"", "data.max_samples=600", "train.lr=0.003",
            "run.checks=false", "train.max_epochs=6", "train.batch_size=32", "run.threads=1",
            "run.checkpoint_every_steps=5", "model.dropout=0.2", "train.patience=3"]
KILL_AT_SAVE = 6  # saves at steps 0, 5, 10, 14 (epoch end), 15, 20: dies writing step 20
_VARYING = ("seconds", "seconds_per_step", "samples_per_second")  # wall-clock timings


def _settings(out_dir):
    return [*SETTINGS, f"run.out_dir=\"{out_dir}\""]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    result = trainwise.run(overrides=_settings(out), report=False)
    assert result.ok, result.verdict
    return result


def _die_mid_save(out_dir, kill_at=KILL_AT_SAVE):
    """Runs in a forked process: SIGKILL itself halfway through writing checkpoint `kill_at`."""
    die_at_save(kill_at)
    trainwise.run(overrides=_settings(out_dir), report=False)


def _run_to_completion(out_dir):
    trainwise.run(overrides=_settings(out_dir), report=False)


def _fork(target, *args):
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    return process


def _the_run(out_dir):
    [path] = list(out_dir.iterdir())
    return path


def _checkpoint_step(path):
    return torch.load(path / "checkpoints/last.pt", weights_only=True)["train_state"]["step"]


def _unwrapped(text):
    return "".join(text.split())  # the console wraps lines, even inside words


def _assert_same_run(resumed, reference):
    for name in ("last.pt", "best.pt"):
        ours = torch.load(resumed / "checkpoints" / name, weights_only=True)["model"]
        theirs = torch.load(reference / "checkpoints" / name, weights_only=True)["model"]
        for key, value in theirs.items():
            assert torch.equal(ours[key], value), (name, key)
    strip = [{k: v for k, v in row.items() if k not in _VARYING} for row in read_history(reference)]
    assert [{k: v for k, v in row.items() if k not in _VARYING}
            for row in read_history(resumed)] == strip


@pytest.mark.forks
def test_sigkill_mid_epoch_and_mid_save_then_resume_is_bitwise_equal(tmp_path, uninterrupted):
    process = _fork(_die_mid_save, tmp_path)
    process.join(timeout=300)
    assert process.exitcode == -signal.SIGKILL
    path = _the_run(tmp_path)
    assert (path / "checkpoints/last.pt.tmp").exists()  # the torn save
    checkpoint = torch.load(path / "checkpoints/last.pt", weights_only=True)
    assert checkpoint["train_state"]["step"] == 15  # the last complete one, mid-epoch 2
    assert 0 < checkpoint["progress"]["batches_done"] < 14

    started = time.perf_counter()
    assert main(["run", "--resume", str(path), "--no-report"]) == 0
    print(f"resume took {time.perf_counter() - started:.1f} s")
    assert not (path / "checkpoints/last.pt.tmp").exists()
    _assert_same_run(path, uninterrupted.path)
    codes = [f.code for f in read_findings(path)]
    assert "resumed" in codes and codes.count("loaded") == 1  # the audit is not rerun
    assert read_history(path)[-1]["kind"] == "test"


@pytest.mark.forks
def test_resume_from_an_epoch_end_checkpoint_is_equal_in_every_history_key(tmp_path,
                                                                           uninterrupted):
    """Audit s11 R1: Ctrl-C without run.checkpoint_every_steps resumes from the end of an
    epoch; the next epoch's train_loss then carried the finished epoch's loss sum."""
    process = _fork(_die_mid_save, tmp_path, 5)  # dies writing step 15: last.pt is step 14
    process.join(timeout=300)
    assert process.exitcode == -signal.SIGKILL
    path = _the_run(tmp_path)
    checkpoint = torch.load(path / "checkpoints/last.pt", weights_only=True)
    assert checkpoint["train_state"]["step"] == 14  # the end of epoch 1
    assert checkpoint["progress"]["batches_done"] == 0
    assert main(["run", "--resume", str(path), "--no-report"]) == 0
    _assert_same_run(path, uninterrupted.path)  # every history key but the timings
    meta = json.loads((path / "meta.json").read_text())
    reference = json.loads((uninterrupted.path / "meta.json").read_text())
    assert meta["batch_size"] == reference["batch_size"] == 32


@pytest.mark.forks
def test_sigkill_before_the_first_checkpoint_reruns_the_run_in_its_folder(tmp_path,
                                                                         uninterrupted):
    process = _fork(_die_mid_save, tmp_path, 1)  # dies writing the step-0 checkpoint
    process.join(timeout=300)
    assert process.exitcode == -signal.SIGKILL
    path = _the_run(tmp_path)
    assert not (path / "checkpoints/last.pt").exists()
    assert main(["run", "--resume", str(path), "--no-report"]) == 0
    _assert_same_run(path, uninterrupted.path)
    assert "restarted" in [f.code for f in read_findings(path)]


@pytest.mark.forks
def test_sigkill_at_an_arbitrary_moment_then_resume_is_bitwise_equal(tmp_path, uninterrupted):
    process = _fork(_run_to_completion, tmp_path)
    deadline, seen = time.monotonic() + 300, set()
    while len(seen) < 3 and time.monotonic() < deadline:  # three checkpoint versions exist
        last = [p / "checkpoints/last.pt" for p in tmp_path.iterdir()]
        if last and last[0].exists():
            seen.add(last[0].stat().st_mtime_ns)
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    path = _the_run(tmp_path)
    final_step = read_history(uninterrupted.path)[-2]["step"]  # the last epoch row's step
    assert _checkpoint_step(path) < final_step  # killed before the end, or the test says nothing
    assert main(["run", "--resume", str(path), "--no-report"]) == 0
    _assert_same_run(path, uninterrupted.path)


# Python ignores SIGINT in a child started from a shell's background job: restore Ctrl-C
_CLI = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from trainwise.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.forks
def test_ctrl_c_mid_training_says_how_to_resume_and_resuming_is_bitwise_equal(tmp_path,
                                                                               uninterrupted,
                                                                               capsys):
    args = [arg for setting in _settings(tmp_path) for arg in ("--set", setting)]
    env = {**os.environ, "PYTHONPATH": str(Path(trainwise.__file__).parents[1])}
    process = subprocess.Popen([sys.executable, "-c", _CLI, "run", *args, "--no-report"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        last = list(tmp_path.glob("*/checkpoints/last.pt"))
        try:
            if last and _checkpoint_step(last[0].parents[1]) >= 15:  # mid-epoch 2
                break
        except (RuntimeError, EOFError, OSError):  # read while being replaced: try again
            pass
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err  # 128 + SIGINT: ended by the interrupt, mid-run
    path = _the_run(tmp_path)
    said = _unwrapped(err)
    assert "Traceback" not in err and _unwrapped(
        f"Interrupted during the train stage of run folder {path};") in said
    assert _unwrapped(f"is at step {_checkpoint_step(path)}, ") in said  # "5 batches into epoch 3"
    assert said.endswith(_unwrapped(f"Continue with: trainwise run --resume {path} --no-report"))
    step = _checkpoint_step(path)
    capsys.readouterr()
    assert main(["run", "--resume", str(path), "--no-report"]) == 0
    assert _unwrapped(f"Resuming {path} from step {step}, ") in \
        _unwrapped(capsys.readouterr().err)
    _assert_same_run(path, uninterrupted.path)


def test_resume_refuses_unusable_checkpoints_with_a_fix(tmp_path, uninterrupted, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.toml", "meta.json", "findings.json", "split.npz"):
        (run / name).write_bytes((uninterrupted.path / name).read_bytes())
    (run / "checkpoints").mkdir()
    whole = (uninterrupted.path / "checkpoints/last.pt").read_bytes()
    (run / "checkpoints/last.pt").write_bytes(whole[: len(whole) // 3])
    assert main(["run", "--resume", str(run), "--no-report"]) == 1  # 2 is for a bad config
    assert "truncated" in _unwrapped(capsys.readouterr().err)
    (run / "checkpoints/last.pt").write_bytes(whole)
    assert main(["run", "--resume", str(run), "--set", "train.lr=0.01", "--no-report"]) == 1
    assert "train.lr:0.003then,0.01now" in _unwrapped(capsys.readouterr().err)
    assert main(["run", "--resume", str(tmp_path), "--no-report"]) == 1
    assert "notatrainwiserunfolder" in _unwrapped(capsys.readouterr().err)
