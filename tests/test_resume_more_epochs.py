"""A resume asked for more epochs is refused (the schedule is built for max_epochs) with the
route that does it: a new run from load_model's weights (audit s12 L12)."""

from __future__ import annotations

import pytest
import torch

from trainwise.config import Config
from trainwise.resume import config_tag, find_checkpoint, training_config
from trainwise.train.checkpoint import CheckpointError, save_checkpoint


def _run_dir(tmp_path, config: Config):
    (tmp_path / "checkpoints").mkdir()
    save_checkpoint({"model": {"w": torch.ones(2)},
                     "extra": {"tag": config_tag(config), "config": training_config(config)}},
                    tmp_path / "checkpoints" / "last.pt")
    return tmp_path


def test_more_epochs_names_the_fine_tune_route(tmp_path):
    then = Config.model_validate({"train": {"max_epochs": 8}})
    run_dir = _run_dir(tmp_path, then)
    assert find_checkpoint(run_dir, then)["model"]["w"].sum() == 2
    now = Config.model_validate({"train": {"max_epochs": 12}})
    with pytest.raises(CheckpointError) as refused:
        find_checkpoint(run_dir, now)
    message = str(refused.value)
    assert "train.max_epochs: 8 then, 12 now" in message
    assert f'net = trainwise.load_model("{run_dir}")' in message
    assert f'trainwise.run("{run_dir / "config.toml"}", model=net' in message
    assert 'model.init="keep"' in message


def test_another_change_gets_no_fine_tune_route(tmp_path):
    run_dir = _run_dir(tmp_path, Config.model_validate({"train": {"max_epochs": 8}}))
    now = Config.model_validate({"train": {"max_epochs": 8, "weight_decay": 0.1}})
    with pytest.raises(CheckpointError) as refused:
        find_checkpoint(run_dir, now)
    assert "weight_decay" in str(refused.value) and "load_model" not in str(refused.value)
