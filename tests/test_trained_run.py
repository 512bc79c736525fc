"""Opening a finished run folder for use (trained_run.py): its config.toml read as an archive
(audit s12 S8) and a mismatching module's error keeping PyTorch's tensor lines (S15)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import trainwise
from trainwise.cli import main
from trainwise.config import ConfigError
from trainwise.findings import TrainwiseError
from trainwise.resume import resumed_config
from trainwise.rundir import RunFolderError
from trainwise.trained_run import run_config


class Net(nn.Module):
    def __init__(self, num_out: int = 3) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, num_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    return (rng.normal(0, 1, (150, 4)) + np.eye(3, 4)[y] * 2).astype(np.float32), y


def _run(tmp_path, **kwargs):
    result = trainwise.run(data=_data(), report=False, **kwargs, overrides=[
        "train.max_epochs=1", "run.threads=1", "run.checks=false", "train.lr=0.01",
        "train.batch_size=32", f"run.out_dir=\"{tmp_path}\""])
    assert result.ok, result.verdict
    return result.path


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("base"))


def _add_unknown_key(folder) -> None:
    text = (folder / "config.toml").read_text(encoding="utf-8")
    (folder / "config.toml").write_text(text.replace("[train]\n", "[train]\nepochs = 3\n", 1),
                                        encoding="utf-8")


def test_an_unknown_key_in_a_finished_runs_config_is_ignored_with_one_warning(
        baseline_run, tmp_path) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(baseline_run, folder)
    _add_unknown_key(folder)
    version = json.loads((folder / "meta.json").read_text())["versions"]["trainwise"]
    with pytest.warns(UserWarning) as caught:
        net = trainwise.load_model(folder)
    assert len(caught) == 1
    said = str(caught[0].message)
    assert str(folder / "config.toml") in said and "train.epochs" in said and version in said
    best = torch.load(folder / "checkpoints/best.pt", weights_only=True,
                      map_location="cpu")["model"]  # saved from a GPU where there is one
    assert all(torch.equal(net.state_dict()[k], v) for k, v in best.items())
    meta = json.loads((folder / "meta.json").read_text())
    meta["versions"]["trainwise"] = "0.0.9"  # the key is another version's (review s16 VX6:
    (folder / "meta.json").write_text(json.dumps(meta))  # this version's own is an edit)
    with pytest.raises(RunFolderError) as strict:
        run_config(folder, strict=True)
    assert str(folder / "config.toml") in str(strict.value)
    assert "pip install trainwise==0.0.9" in str(strict.value)


def test_a_config_this_version_cannot_validate_exits_1_naming_the_file(baseline_run, tmp_path,
                                                                       capsys) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(baseline_run, folder)
    text = (folder / "config.toml").read_text(encoding="utf-8")
    (folder / "config.toml").write_text(text.replace("[train]\n", "[train]\nmax_epochs = "
                                                     "\"many\"\n", 1).replace(
        "\nmax_epochs = 1\n", "\n", 1), encoding="utf-8")
    np.savez(tmp_path / "x.npz", X=_data()[0][:5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["predict", str(folder), str(tmp_path / "x.npz"),
                     "--out", str(tmp_path / "p.csv")])
    assert code == 1  # a run folder that cannot be used, not a bad command line (2)
    assert "config.toml" in capsys.readouterr().err


def test_resume_of_a_folder_with_an_unknown_key_exits_1_naming_file_and_version(
        baseline_run, tmp_path, capsys) -> None:
    """Audit s16 D2: exit 2 with "Did you mean 'train.layer_every'?", naming neither the file
    nor the version that wrote it; the user typed no config."""
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(baseline_run, folder)
    text = (folder / "config.toml").read_text(encoding="utf-8")
    (folder / "config.toml").write_text(text.replace("[train]\n", "[train]\nfancy_new_key = 3\n",
                                                     1), encoding="utf-8")
    meta = json.loads((folder / "meta.json").read_text())
    meta["versions"]["trainwise"] = "0.0.9"  # written by another version
    (folder / "meta.json").write_text(json.dumps(meta))
    assert main(["run", "--resume", str(folder), "--no-report"]) == 1
    said = " ".join(capsys.readouterr().err.split())
    assert str(folder / "config.toml") in said and "trainwise 0.0.9" in said
    assert "pip install trainwise==0.0.9" in said
    assert "train.fancy_new_key" in said and "Did you mean" not in said
    with pytest.raises(ConfigError, match="train.layer_evry"):  # a --set typo stays exit 2
        resumed_config(baseline_run, ["train.layer_evry=5"])


def test_a_key_edited_into_a_folder_this_version_wrote_gets_a_did_you_mean(
        baseline_run, tmp_path, capsys) -> None:
    """Review s16 VX6: `max_epoch` typed into the config.toml of a run this very version wrote
    was blamed on "trainwise 0.1.0" with "pip install trainwise==0.1.0" (the version running),
    and got no did-you-mean though `--set train.max_epoch=3` gets one."""
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(baseline_run, folder)
    text = (folder / "config.toml").read_text(encoding="utf-8")
    (folder / "config.toml").write_text(text.replace("[train]\n", "[train]\nmax_epoch = 3\n",
                                                     1), encoding="utf-8")
    version = json.loads((folder / "meta.json").read_text())["versions"]["trainwise"]
    assert version == trainwise.__version__  # the case: written by the version running
    assert main(["run", "--resume", str(folder), "--no-report"]) == 1
    said = " ".join(capsys.readouterr().err.split())
    assert "pip install" not in said and "written by trainwise" not in said
    assert "train.max_epoch (Did you mean 'train.max_epochs'?)" in said
    assert str(folder / "config.toml") in said and "edited" in said


def test_predict_on_a_folder_this_version_wrote_calls_an_unknown_key_an_edit(
        baseline_run, tmp_path) -> None:
    """The same for predict's warning (it ignores the key): "the run was written by
    trainwise 0.1.0" named the version running as if another had written the folder."""
    import shutil
    import warnings

    from trainwise.trained_run import run_config

    folder = tmp_path / "copy"
    shutil.copytree(baseline_run, folder)
    text = (folder / "config.toml").read_text(encoding="utf-8")
    (folder / "config.toml").write_text(text.replace("[train]\n", "[train]\nmax_epoch = 3\n",
                                                     1), encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_config(folder)
    said = " ".join(str(w.message) for w in caught)
    assert "written by trainwise" not in said and "edited since" in said
    assert "train.max_epoch (Did you mean 'train.max_epochs'?)" in said


def test_resume_reads_the_folders_config_once(baseline_run, monkeypatch) -> None:
    """Review s16 VF9: resumed_config read and validated config.toml strictly, dropped the
    Config, and read it again to apply the overrides."""
    import trainwise.config
    import trainwise.trained_run

    paths = []
    original = trainwise.config.read_config_file

    def counted(path):
        paths.append(path)
        return original(path)

    for module in (trainwise.config, trainwise.trained_run):
        monkeypatch.setattr(module, "read_config_file", counted)
    resumed = resumed_config(baseline_run, ["train.layer_every=7"])
    assert paths == [baseline_run / "config.toml"] and resumed.train.layer_every == 7
    assert resumed_config(baseline_run, []) == run_config(baseline_run, strict=True)


def test_a_mismatching_module_keeps_the_line_naming_the_tensor(tmp_path) -> None:
    folder = _run(tmp_path, model=Net())
    with pytest.raises(TrainwiseError) as caught:
        trainwise.load_model(folder, model=Net(num_out=4))
    assert "size mismatch for layers.2.weight" in str(caught.value)
    with pytest.raises(TrainwiseError, match=r"trainwise\.load_model\(run_dir, model=net\)"):
        trainwise.load_model(folder)


def test_a_run_result_names_its_folder_run_dir_as_json_does(baseline_run) -> None:
    """Audit s16 D3: result.run_dir (the name --json, predict and load_model use) was an
    AttributeError; the folder was only result.path."""
    from trainwise.run_result import RunResult

    result = RunResult(baseline_run, [], "verdict")
    assert result.run_dir == result.path == baseline_run
    assert trainwise.predict(result.run_dir, _data()[0][:3]).shape[0] == 3
