"""Nothing writes through a symlink out of a run folder (audit s16 S3): a received folder
whose report.html, test_predictions.csv, split.npz or run.lock links to a file of the user's
leaves that file as it was; a figures/ linking out is refused before anything is written."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import torch  # noqa: E402

from trainwise.preprocessing import Preprocessing  # noqa: E402
from trainwise.reporting import build_report  # noqa: E402
from trainwise.run_lock import hold_lock, release_lock  # noqa: E402
from trainwise.rundir import RunDir  # noqa: E402
from trainwise.safe_write import (  # noqa: E402
    UnsafeFolderError,
    inside,
    replacing,
    write_replacing,
)  # noqa: E402
from trainwise.train.callbacks import TensorBoardLogger, save_atomically  # noqa: E402
from trainwise.train.checkpoint import save_checkpoint  # noqa: E402
from trainwise.train.regression_predictions import write_predictions  # noqa: E402

SECRET = "the user's own file\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim_bashrc"
    victim.write_text(SECRET)
    return victim


def _received(finished_run, tmp_path: Path) -> Path:
    folder = tmp_path / "received"
    shutil.copytree(finished_run[0], folder, symlinks=True)
    return folder


def test_report_html_linking_out_is_replaced_not_written_through(finished_run,
                                                                 tmp_path) -> None:
    folder, victim = _received(finished_run, tmp_path), _victim(tmp_path)
    (folder / "report.html").unlink(missing_ok=True)
    (folder / "report.html").symlink_to(victim)
    target = build_report(folder)
    assert victim.read_text() == SECRET
    assert not target.is_symlink() and target.read_text().startswith("<!doctype html>")


def test_figures_linking_out_is_refused_and_nothing_lands_there(finished_run,
                                                                tmp_path) -> None:
    folder = _received(finished_run, tmp_path)
    elsewhere = tmp_path / "victim_dir"
    elsewhere.mkdir()
    shutil.rmtree(folder / "figures")
    (folder / "figures").symlink_to(elsewhere)
    with pytest.raises(UnsafeFolderError, match=r"rm .*figures"):
        build_report(folder)
    assert list(elsewhere.iterdir()) == []


def test_predictions_and_npz_writers_replace_a_link(tmp_path) -> None:
    victim = _victim(tmp_path)
    csv_path, npz_path = tmp_path / "test_predictions.csv", tmp_path / "split.npz"
    csv_path.symlink_to(victim)
    npz_path.symlink_to(victim)
    write_predictions(csv_path, None, np.array([1.0]), np.array([1.5]))
    with replacing(npz_path, "wb") as handle:
        np.savez(handle, train=np.arange(3))
    assert victim.read_text() == SECRET
    assert csv_path.read_text().splitlines() == ["row,actual,predicted,error", ",1.0,1.5,0.5"]
    assert np.load(npz_path)["train"].tolist() == [0, 1, 2]


def test_resume_writers_replace_a_link_of_their_name(tmp_path) -> None:
    """preprocess.npz (written by every split stage, --resume included) and the checkpoints
    were written through a link of their name (review VS1, VS9)."""
    victim = _victim(tmp_path)
    run = RunDir(tmp_path / "run")
    (run.path / "preprocess.npz").symlink_to(victim)
    Preprocessing(kind="vector", task="regression", input_shape=(3,),
                  input_dtype="float32").save(run.path)
    for name in ("last.pt.tmp", "last.pt", "best.pt"):  # the old fixed temporary name too
        (run.checkpoint_path(name.removesuffix(".pt"))
         .with_name(name)).symlink_to(victim)
    save_checkpoint({"model": {}}, run.checkpoint_path("last"))
    save_atomically({"model": {}}, run.checkpoint_path("best"))
    assert victim.read_text() == SECRET
    assert Preprocessing.load(run.path).input_shape == (3,)
    assert torch.load(run.checkpoint_path("best"), weights_only=True) == {"model": {}}
    assert not (run.checkpoints_dir / "last.pt").is_symlink()


def test_tensorboard_linking_out_is_refused(tmp_path) -> None:
    elsewhere = tmp_path / "victim_dir"
    elsewhere.mkdir()
    run = RunDir(tmp_path / "run")
    (run.path / "tensorboard").symlink_to(elsewhere)
    with pytest.raises(UnsafeFolderError, match="rm .*tensorboard"):
        TensorBoardLogger(run.tensorboard_dir)
    assert list(elsewhere.iterdir()) == []


def test_a_planted_temporary_name_is_not_followed(tmp_path) -> None:
    victim = _victim(tmp_path)
    (tmp_path / "findings.json.tmp").symlink_to(victim)  # the old fixed temporary name
    write_replacing(tmp_path / "findings.json", "[]")
    assert victim.read_text() == SECRET and (tmp_path / "findings.json").read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "findings.json", "findings.json.tmp", "victim_bashrc"]  # no temporary left behind


def test_run_lock_linking_out_is_not_truncated(tmp_path) -> None:
    victim = _victim(tmp_path)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.lock").symlink_to(victim)
    handle = hold_lock(folder)
    try:
        assert victim.read_text() == SECRET
        assert (folder / "run.lock").read_text().startswith("pid ")
    finally:
        release_lock(handle)


def test_history_and_checkpoints_linking_out_are_refused(tmp_path) -> None:
    victim, elsewhere = _victim(tmp_path), tmp_path / "victim_dir"
    elsewhere.mkdir()
    run = RunDir(tmp_path / "run")
    run.history_path.symlink_to(victim)
    with pytest.raises(UnsafeFolderError, match="rm .*history.jsonl"):
        run.append_history([{"step": 1, "loss": 0.5}])
    (run.path / "checkpoints").symlink_to(elsewhere)
    with pytest.raises(UnsafeFolderError, match="outside the run folder"):
        run.checkpoint_path("last")
    assert victim.read_text() == SECRET and list(elsewhere.iterdir()) == []


def test_a_stage_figure_linking_out_is_unlinked_before_saving(tmp_path) -> None:
    victim = _victim(tmp_path)
    run = RunDir(tmp_path / "run")
    (run.path / "figures" / "samples.png").symlink_to(victim)
    path = run.figure_path("samples.png")
    assert not path.exists() and victim.read_text() == SECRET


def test_a_link_inside_the_run_folder_is_used_and_the_rm_hint_is_one_shell_word(
        tmp_path) -> None:
    """Review s16 VS11: figures -> ./figs was refused as 'outside the run folder'; VS8: a
    folder named o'brien broke the hand-quoted rm '...' line."""
    run = RunDir(tmp_path / "o'brien")
    shutil.rmtree(run.path / "figures")
    (run.path / "figs").mkdir()
    (run.path / "figures").symlink_to("figs")
    assert inside(run.path / "figures", run.path) == run.path / "figures"
    run.history_path.symlink_to(_victim(tmp_path))
    with pytest.raises(UnsafeFolderError) as refused:
        run.append_history([{"step": 1}])
    command = str(refused.value).split("(rm ", 1)[1].split(") and run", 1)[0]
    assert shlex.split(command) == [str(run.history_path)]
