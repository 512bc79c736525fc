"""A run of your own module (trainwise.run(model=net)) records the module's class, and its
config.toml is not rerun without it as if it named the baseline (user audit s12 S3: the rerun
trained a 1,731-parameter mlp where the run had trained a 547-parameter Net, and exited 0)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tomllib
import torch
from torch import nn

import trainwise
from trainwise.cli import main
from trainwise.config import Config, ConfigError
from trainwise.config_files import _user_model_note
from trainwise.resume import config_tag
from trainwise.user_model_record import class_path, refuse_lost_user_model


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x):
        return self.body(x)


class NeedsSize(nn.Module):
    def __init__(self, in_features):
        super().__init__()
        self.body = nn.Linear(in_features, 2)


def test_the_class_path_says_whether_model_name_rebuilds_this_class():
    assert class_path(Net()) == (f"{Net.__module__}:Net", True)
    # review s12 VA3: each imports, yet model.name (Class() with no arguments) cannot build it
    assert class_path(nn.Linear(2, 2)) == ("torch.nn.modules.linear:Linear", False)
    assert class_path(nn.Sequential(nn.Linear(2, 2))) == (
        "torch.nn.modules.container:Sequential", False)
    assert class_path(NeedsSize(3)) == (f"{Net.__module__}:NeedsSize", False)

    class Local(nn.Module):
        pass

    path, importable = class_path(Local())
    assert path.endswith("Local") and "<locals>" in path and not importable


def test_a_class_model_name_cannot_build_is_refused_with_pass_model_only():
    for named in ("torch.nn.modules.container:Sequential", f"{Net.__module__}:NeedsSize"):
        config = Config()
        config = config.model_copy(update={"model": config.model.model_copy(
            update={"user_class": named})})
        with pytest.raises(ConfigError) as refused:
            refuse_lost_user_model(config, None)
        said = str(refused.value)
        assert "model=net" in said and "not rebuildable by model.name" in said
        assert "set model.name" not in said
    config = config.model_copy(update={"model": config.model.model_copy(
        update={"user_class": f"{Net.__module__}:Net"})})
    with pytest.raises(ConfigError, match="set model.name"):
        refuse_lost_user_model(config, None)


def test_the_run_folder_hint_reads_meta_json_and_the_same_rule(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"user_model": {
        "class": "torch.nn.modules.container:Sequential", "importable": True}}))
    note = _user_model_note(tmp_path)
    assert "trained your own Sequential" in note and "not rebuildable by model.name" in note
    (tmp_path / "meta.json").write_text(json.dumps({"user_model": {
        "class": f"{Net.__module__}:Net", "importable": True}}))
    assert f'model.name = "{Net.__module__}:Net"' in _user_model_note(tmp_path)
    (tmp_path / "meta.json").write_text("[1, 2]")  # not an object: no note, no crash
    assert _user_model_note(tmp_path) == ""


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (120, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    out = tmp_path_factory.mktemp("own")
    torch.manual_seed(0)
    result = trainwise.run(model=Net(), data=(x, y), until="model", report=False,
                           overrides=["run.threads=1", f"run.out_dir=\"{out}\""])
    return result.path


def test_config_toml_and_meta_json_name_the_module_the_run_trained(own_run):
    expected = f"{Net.__module__}:Net"
    saved = tomllib.loads((own_run / "config.toml").read_text())
    assert saved["model"]["user_class"] == expected
    assert saved["model"]["name"] == "auto"
    meta = json.loads((own_run / "meta.json").read_text())
    assert meta["user_model"]["class"] == expected
    assert meta["config"]["model"]["user_class"] == expected


def test_rerunning_its_config_without_the_module_is_refused(own_run):
    with pytest.raises(ConfigError, match="your Net .*model=net"):
        trainwise.run(own_run / "config.toml", until="model", report=False)


def test_the_command_line_refuses_it_and_the_run_folder_hint_says_why(own_run, capsys):
    assert main(["run", str(own_run / "config.toml"), "--no-report"]) == 2
    assert "trained your Net" in " ".join(capsys.readouterr().err.split())
    assert main(["run", str(own_run), "--no-report"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "trained your own Net (" in said


def test_passing_the_module_again_reruns_the_config(own_run):
    result = trainwise.run(own_run / "config.toml", model=Net(), until="model", report=False,
                           overrides=["run.name=again"])
    assert result.ok, result.verdict


def test_the_marker_leaves_the_checkpoint_fingerprint_as_before(own_run):
    config = trainwise.load_config(own_run / "config.toml")
    plain = config.model_copy(update={"model": config.model.model_copy(
        update={"user_class": ""})})
    assert config_tag(config) == config_tag(plain)
