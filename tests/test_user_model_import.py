"""model.name = 'module:Class' finds a module in the working folder or beside the config, as
`python script.py` would, though the `trainwise` console script leaves them off sys.path."""

import sys

import pytest

import trainwise.recipe as recipe
from trainwise.cli import main
from trainwise.config import ConfigError, from_dict, to_toml
from trainwise.config_resolution import resolve_config, with_model_folder
from trainwise.findings import info
from trainwise.model.baselines import ModelError, import_model
from trainwise.resume import config_tag, resumed_config

MODULE = "import torch\n\n\nclass Net(torch.nn.Module):\n    pass\n"


@pytest.fixture
def clean_path(monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # each test imports afresh


def _module(folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(MODULE)
    return f"{name}:Net"


def test_a_model_module_in_the_working_folder_is_found(tmp_path, monkeypatch, clean_path):
    spec = _module(tmp_path, "cwd_models")
    monkeypatch.chdir(tmp_path)
    assert import_model(spec).__name__ == "Net"


def test_missing_model_module_error_lists_where_it_looked(tmp_path, monkeypatch, clean_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as caught:
        import_model("nowhere_models:Net", tmp_path / "configs")
    message = str(caught.value)
    assert f"or in these folders: {tmp_path / 'configs'}, {tmp_path}." in message
    assert "PYTHONPATH" in message


def test_the_command_line_also_looks_beside_its_config(tmp_path, monkeypatch, clean_path):
    spec = _module(tmp_path / "project", "beside_config_models")
    config = tmp_path / "project" / "run.toml"
    config.write_text(f'[data]\nsource = "wine"\n[model]\nname = "{spec}"\n'
                      f'[run]\nout_dir = "{tmp_path / "runs"}"\n')
    monkeypatch.chdir(tmp_path)  # not the config's folder
    imported = []

    def import_the_model(ctx):  # the model stage's import, without loading data first
        imported.append(import_model(ctx.config.model.name, ctx.config.model.folder))
        return [info("data", "imported", "imported the model")]

    monkeypatch.setattr(recipe, "STAGES", [("data", import_the_model)])
    assert main(["audit", str(config), "--no-report"]) == 0
    assert imported[0].__name__ == "Net"


@pytest.mark.parametrize("name", [":Net", ".x:Net", "mynet:", "my net:Net", "a..b:Net"])
def test_a_malformed_module_colon_class_is_a_config_error(tmp_path, name):
    config = tmp_path / "run.toml"
    config.write_text(f'[model]\nname = "{name}"\n')
    assert main(["config", str(config)]) == 2  # a config error, not 'report a trainwise bug'
    with pytest.raises(ConfigError, match=r"'package\.module:Class'"):
        from_dict({"model": {"name": name}})


def test_a_well_formed_module_colon_class_passes_the_config(tmp_path):
    assert from_dict({"model": {"name": "pkg.mod_2:Net"}}).model.name == "pkg.mod_2:Net"


def test_a_folder_named_like_the_module_does_not_hide_the_module_beside_the_config(
        tmp_path, monkeypatch, clean_path):
    spec = _module(tmp_path / "project", "shadowed_models")
    (tmp_path / "shadowed_models").mkdir()  # e.g. a data folder: a namespace package to Python
    monkeypatch.chdir(tmp_path)
    config = resolve_config({"model": {"name": spec}})
    assert config.model.folder == ""  # the working folder holds no shadowed_models.py
    config = with_model_folder(config, tmp_path / "project")
    assert config.model.folder == str(tmp_path / "project")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])  # even with it on sys.path
    assert import_model(spec, config.model.folder).__name__ == "Net"


def test_the_run_folder_records_where_the_model_was_found_for_resume(
        tmp_path, monkeypatch, clean_path):
    spec = _module(tmp_path / "project", "recorded_models")
    config_file = tmp_path / "project" / "run.toml"
    config_file.write_text(f'[model]\nname = "{spec}"\n')
    monkeypatch.chdir(tmp_path)  # not the config's folder: the API looks beside it too
    saved = resolve_config(str(config_file))
    assert saved.model.folder == str(tmp_path / "project")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text(to_toml(saved))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # --resume from another folder reads config.toml alone
    resumed = resumed_config(tmp_path / "run", [])
    assert import_model(resumed.model.name, resumed.model.folder).__name__ == "Net"
    assert config_tag(resumed) == config_tag(saved.model_copy(update={
        "model": saved.model.model_copy(update={"folder": ""})}))  # a moved project resumes


def test_resolving_twice_adds_the_folder_to_sys_path_once(tmp_path, monkeypatch, clean_path):
    spec = _module(tmp_path, "once_models")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        import_model(spec, resolve_config({"model": {"name": spec}}).model.folder)
    assert sys.path.count(str(tmp_path)) == 1
