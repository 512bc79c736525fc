"""The default train.batch_size cut to fit a small table; a batch the user set is kept."""

from __future__ import annotations

import json

import tomllib

from trainwise.config import Config, batch_size_set, from_dict, to_toml
from trainwise.config_resolution import resolve_config
from trainwise.tune.batch_size import fixed_batch_findings
from trainwise.tune.default_batch import fitted_batch_finding, fitted_default_batch


def test_the_default_is_cut_to_the_largest_power_of_two_with_ten_steps():
    default = from_dict({}).train
    assert fitted_default_batch(default, 350) == 32  # 3 steps at 128; 11 at 32, 6 at 64
    assert fixed_batch_findings(128, 350)[0].code == "batch_size_few_steps"  # what it avoids
    assert fixed_batch_findings(32, 350) == []
    assert fitted_default_batch(default, 1000) == 64  # 8 steps at 128, 16 at 64
    assert fitted_default_batch(default, 128) == 32  # wine: 1 step at 128, 4 at 32; never below
    assert fitted_default_batch(default, 1294) is None  # digits: 11 steps at 128 already
    # fewer rows than the default: cut below 32 to a power of two that still fills a batch,
    # since the range test drops a short last batch (audit s11 M11: 128 on 32 rows stopped)
    assert fitted_default_batch(default, 32) == 32
    assert fitted_default_batch(default, 29) == 16
    assert fitted_default_batch(default, 12) == 8


def test_the_few_steps_warning_suggests_the_batch_the_default_is_cut_to():
    """Review s10 RT5: batch 128 set on 300 rows was told 'Set train.batch_size = 16', the
    size the cut refuses to go below (MIN_FITTED_BATCH); one rule (fitted_batch) gives both."""
    [few] = fixed_batch_findings(128, 300)
    assert few.evidence["suggested"] == fitted_default_batch(from_dict({}).train, 300) == 32
    assert "train.batch_size = 32" in few.fix
    assert fixed_batch_findings(32, 40) == []  # 2 steps, but the size trainwise would pick


def test_a_batch_the_user_set_is_never_cut():
    assert fitted_default_batch(from_dict({"train": {"batch_size": 128}}).train, 350) is None
    assert fitted_default_batch(from_dict({}, ["train.batch_size=128"]).train, 350) is None
    config = Config()
    config.train.batch_size = 128  # set in Python: also the user's
    assert fitted_default_batch(resolve_config(config).train, 350) is None


def test_one_rule_says_whether_the_batch_was_set():
    """Review s10 RT9: to_toml, resolution and the cut each tested model_fields_set."""
    assert not batch_size_set(from_dict({}).train)
    assert not batch_size_set(from_dict({"train": {"lr": 0.01}}).train)
    assert batch_size_set(from_dict({"train": {"batch_size": 128}}).train)
    assert batch_size_set(from_dict({}, ["train.batch_size=64"]).train)
    config = Config()
    config.train.batch_size = 128
    assert batch_size_set(config.train)


def test_an_unset_batch_stays_unset_through_resolution_and_config_toml():
    resolved = resolve_config(resolve_config({"data": {"source": "wine"}}))
    assert fitted_default_batch(resolved.train, 350) == 32
    text = to_toml(resolved)
    assert "\n# batch_size = 128\n" in text  # a rerun of config.toml cuts it the same way
    assert fitted_default_batch(from_dict(tomllib.loads(text)).train, 350) == 32
    kept = to_toml(from_dict({"train": {"batch_size": 128}}))
    assert "\nbatch_size = 128\n" in kept


def test_the_finding_says_what_was_chosen_and_why():
    finding = fitted_batch_finding(128, 32, 350)
    assert finding.message.startswith("Batch 32, not the default 128: 350 training rows give "
                                      "3 step(s) an epoch at 128, 11 at 32")
    assert finding.evidence["batch_size"] == 32 and finding.severity.value == "info"


def test_the_finding_says_the_batch_was_cut_under_a_learning_rate_the_user_set():
    """Review s10 RT12: train.lr given, batch left at its default: the lr is used at 32."""
    assert "train.lr" not in fitted_batch_finding(128, 32, 350).message
    finding = fitted_batch_finding(128, 32, 350, lr=0.01)
    assert ("Your train.lr = 0.01 is used at this batch, 4x smaller than the default it may "
            "have been chosen for: set train.batch_size = 128 to keep that batch, or train.lr "
            '= "auto" to measure the lr at 32.') in finding.message
    assert finding.evidence["user_lr"] == 0.01


def test_the_report_says_the_default_batch_was_cut_not_that_the_config_chose_it(tmp_path):
    """Review s10 RT6: a fitted batch read '32, from the config' though the config said 128."""
    from trainwise.reporting import build_report

    (tmp_path / "meta.json").write_text(json.dumps(
        {"name": "t", "verdict": "ok", "data": {"task": "classification"}}))
    (tmp_path / "tune.json").write_text(json.dumps(
        {"candidates": [], "chosen_lr": 0.01, "widened": False, "source": "config",
         "batch_size": {"mode": "fitted", "chosen": 32, "default": 128}}))
    html = build_report(tmp_path).read_text()
    assert ("<strong>32</strong>: <code>train.batch_size</code> was not set, and its default "
            "128 was cut to leave more steps an epoch on this table") in html
    assert "from the config" not in html


def test_a_45_row_table_runs_on_the_defaults(tmp_path):
    """Audit s11 M11: 45 rows (32 for training) stopped at the tune stage with 'batch_size 128
    gives no batch from 32 rows with drop_last', blaming a batch size the user never set."""
    import numpy as np

    import trainwise
    from trainwise.rundir import read_findings

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 15)
    x = (rng.normal(size=(45, 4)) + y[:, None]).astype(np.float32)
    result = trainwise.run(data=(x, y), report=False, overrides=[
        f"run.out_dir=\"{tmp_path}\"", "run.threads=1", "train.max_epochs=2",
        "tune.num_steps=30", "tune.num_seeds=1", "tune.short_runs=false"])
    assert result.ok, result.verdict
    [fitted] = [f for f in read_findings(result.path) if f.code == "batch_size_fitted"]
    # 45 rows -> 32 for training (test 0.2, validation 0.1): one full batch of 32
    assert fitted.evidence["batch_size"] == 32
    assert "128 is more than the 32 training rows" in fitted.message
