"""find_lr and tune_lr called from Python say their fixes with the call's own levers (the
DataLoader's batch_size, max_epochs=, seeds=(0, 1, 2), TuneConfig(num_steps=...)); the recipe
asks for `trainwise run`'s config keys (fix_terms="config") and keeps them (audit s16 N9:
tune_lr told a notebook to "raise train.max_epochs", find_lr "tune.num_seeds >= 3").
Reference: the same call with fix_terms="config", whose texts must name the config keys."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.findings import TrainwiseError
from trainwise.tune.api_terms import in_api_terms

CONFIG_KEY = re.compile(r"\b(train|tune|split)\.[a-z_]+")  # train.batch_size, tune.num_steps


def _net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


def _adamw(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=lr)


def _loaders() -> tuple[DataLoader, DataLoader]:
    x = torch.randn(400, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] + x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:320], y[:320]), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    return train, DataLoader(TensorDataset(x[320:], y[320:]), batch_size=64)


def _texts(findings) -> dict[str, str]:
    return {f.code: f"{f.message} | {f.fix}" for f in findings}


def _tune(fix_terms: str) -> dict[str, str]:
    train, val = _loaders()  # 10 steps an epoch, 2 epochs: short runs of 10 steps (< 50)
    found = trainwise.tune_lr(_net(), nn.CrossEntropyLoss(), train, val, _adamw,
                              config=trainwise.TuneConfig(num_steps=20, num_seeds=1),
                              max_epochs=2, fix_terms=fix_terms)
    lists = (found.findings, found.range_test.findings, found.short.findings)
    assert all(isinstance(f, trainwise.Findings) for f in lists)  # tables (review s16 VN7)
    return _texts(found.findings)


def test_tune_lr_names_its_own_levers_and_the_recipe_keeps_the_config_keys():
    api, config = _tune("api"), _tune("config")
    assert api.keys() == config.keys()  # the same findings, said two ways
    assert "a smaller train.batch_size or a larger train.max_epochs" in \
        config["short_runs_few_steps"]
    assert "a smaller batch_size in your DataLoader or a larger max_epochs=" in \
        api["short_runs_few_steps"]
    assert "tune.num_seeds >= 3" in config["lr_range"]
    assert "TuneConfig(num_seeds=3) measures it" in api["lr_range"]
    assert not [CONFIG_KEY.search(text).group() for text in api.values()
                if CONFIG_KEY.search(text)]


def test_find_lr_names_seeds_and_num_steps():
    train, _ = _loaders()
    kwargs = dict(num_steps=20, seeds=(0,))
    api = trainwise.find_lr(_net(), nn.CrossEntropyLoss(), train, _adamw, **kwargs)
    config = trainwise.find_lr(_net(), nn.CrossEntropyLoss(), train, _adamw, **kwargs,
                               fix_terms="config")
    assert "spread unknown (1 seed; seeds=(0, 1, 2) measures it)" in api.findings[0].message
    assert "spread unknown (1 seed; tune.num_seeds >= 3 measures it)" in \
        config.findings[0].message
    assert api.lr == config.lr  # words only


def test_the_unstable_range_fix_reads_for_each_call():
    from trainwise.tune.lr_verdict import _spread_warning

    class Verdict:
        spread_decades, suggestions = 0.7, [0.01, 0.05]

    class Curve:
        def __init__(self, seed):
            self.seed = seed

    fix = _spread_warning(Verdict(), [Curve(0), Curve(1)]).fix
    assert "run `trainwise tune` (tune.short_runs = true)" in fix  # the CLI's words
    assert in_api_terms(fix, "find_lr") == (
        "Trust the range, not the point: call trainwise.tune_lr (its short runs are on by "
        "default), whose short runs try 3-5 lrs between lr_low and lr_high; a larger "
        "num_steps= or a larger batch_size in your DataLoader steadies the test.")
    assert "TuneConfig(num_steps=...)" in in_api_terms(fix, "tune_lr")


def test_an_unknown_fix_terms_is_refused():
    train, val = _loaders()
    with pytest.raises(TrainwiseError, match='fix_terms=.cli.: expected "api"'):
        trainwise.tune_lr(_net(), nn.CrossEntropyLoss(), train, val, _adamw, fix_terms="cli")
