"""model.name = 'module:Class' finds a module in the working folder or beside the config, as
`python script.py` would, though the `trainwise` console script leaves them off sys.path."""

import sys

import pytest

import trainwise.model.baselines as baselines
import trainwise.recipe as recipe
from trainwise.cli import main
from trainwise.config import ConfigError, from_dict
from trainwise.findings import info
from trainwise.model.baselines import ModelError, import_model

MODULE = "import torch\n\n\nclass Net(torch.nn.Module):\n    pass\n"


@pytest.fixture
def clean_path(monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    monkeypatch.setattr(baselines, "MODEL_FOLDERS", [], raising=False)


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
    monkeypatch.setattr(baselines, "MODEL_FOLDERS", [tmp_path / "configs"])
    with pytest.raises(ModelError) as caught:
        import_model("nowhere_models:Net")
    message = str(caught.value)
    assert f"or in these folders: {tmp_path}, {tmp_path / 'configs'}." in message
    assert "PYTHONPATH" in message


def test_the_command_line_also_looks_beside_its_config(tmp_path, monkeypatch, clean_path):
    spec = _module(tmp_path / "project", "beside_config_models")
    config = tmp_path / "project" / "run.toml"
    config.write_text(f'[data]\nsource = "wine"\n[model]\nname = "{spec}"\n'
                      f'[run]\nout_dir = "{tmp_path / "runs"}"\n')
    monkeypatch.chdir(tmp_path)  # not the config's folder
    imported = []

    def import_the_model(ctx):  # the model stage's import, without loading data first
        imported.append(import_model(ctx.config.model.name))
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
