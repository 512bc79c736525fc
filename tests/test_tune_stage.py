"""The tune stage inside the recipe: tune.json's format, the lr handed to training, batch size."""

from __future__ import annotations

import json

import trainwise

QUICK = ["data.source=\"digits\"", "train.max_epochs=7", "tune.num_steps=30",
         "tune.num_seeds=2", "run.threads=1", "run.checks=false"]


def _tune(tmp_path, *extra: str):
    result = trainwise.run(overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\"", *extra],
                           until="tune", report=False)
    assert result.ok, result.verdict
    return result, json.loads((result.path / "tune.json").read_text())


def test_tune_json_holds_the_candidates_the_choice_and_the_batch_size(tmp_path, capsys):
    result, record = _tune(tmp_path)
    piped = capsys.readouterr().err  # the stage's bar prints nothing here: one line a run does
    assert piped.count("tune: short run ") == len(record["candidates"])
    assert piped.index("tune: short run 1/") < piped.index("tune stage done in")
    assert record["source"] == "short_runs" and record["num_epochs"] == 3  # 15% of 7 is 1
    # epoch, but 1 epoch of 1293 rows is 11 steps of 128: raised to >= 50 steps, <= half of 7
    assert 3 <= len(record["candidates"]) <= 5 + 2
    for candidate in record["candidates"]:
        assert {"lr", "val_loss", "curve", "train_curve", "seconds", "round"} <= set(candidate)
        assert len(candidate["curve"]) == 3
    lrs = [c["lr"] for c in record["candidates"]]
    assert min(lrs) <= record["chosen_lr"] <= max(lrs)
    assert record["range"]["lr_low"] <= record["range"]["lr_high"]
    assert record["batch_size"] == {"mode": "fixed", "chosen": 128}
    codes = [f.code for f in result.findings if f.stage == "tune"]
    assert "lr_range" in codes and "short_runs" in codes
    chosen = next(f for f in result.findings if f.stage == "tune")  # the stage's headline
    assert chosen.code == "lr_chosen" and chosen.evidence["lr"] == record["chosen_lr"]
    assert f"chosen by {len(record['candidates'])} short runs" in chosen.message


def test_auto_batch_size_is_measured_before_the_lr(tmp_path):
    result, record = _tune(tmp_path, "tune.batch_size=\"auto\"", "tune.short_runs=false")
    trials = record["batch_size"]["trials"]
    assert record["batch_size"]["mode"] == "auto" and trials[0]["batch_size"] == 32
    chosen = record["batch_size"]["chosen"]
    assert chosen in (32, 64, 128, 256) and [t["status"] for t in trials].count("chosen") == 1
    config = (result.path / "config.toml").read_text()
    assert "batch_size = 128" in config  # the config as given; the choice is in tune.json
    assert record["source"] == "range_test" and record["candidates"] == []


def test_find_lr_headline_leads_with_the_range_and_one_seed_has_no_spread(tmp_path):
    """Audit s13 T1/T11: the summary table cut the headline before its range and spread, and
    one seed read "0.00 decades apart" (stable); --json's tune entry carries them."""
    result, record = _tune(tmp_path, "tune.short_runs=false", "tune.num_seeds=1")
    chosen = next(f for f in result.findings if f.code == "lr_chosen")
    low, high = record["range"]["lr_low"], record["range"]["lr_high"]
    assert chosen.message.startswith(f"Range {low:.3g}-{high:.3g}, spread unknown (1 seed; ")
    assert record["range"]["spread_decades"] is None and chosen.evidence["lr_low"] == low
    assert chosen.evidence["spread_decades"] is None and chosen.evidence["lr_high"] == high
    assert "spread unknown" in result.verdict and "0.00 decades" not in result.verdict


def test_a_given_lr_skips_the_search_but_still_writes_tune_json(tmp_path):
    result, record = _tune(tmp_path, "train.lr=0.003")
    assert record == {"candidates": [], "chosen_lr": 0.003, "widened": False,
                      "source": "config", "batch_size": {"mode": "fixed", "chosen": 128}}
    assert [f.code for f in result.findings if f.stage == "tune"] == ["lr_given"]


def test_a_batch_above_256_is_trained_by_accumulating_micro_batches(tmp_path, monkeypatch):
    from trainwise.train import loop

    seen = []
    original = loop.micro_batches

    def spy(x, y, accumulate):
        seen.append((len(y), accumulate))
        return original(x, y, accumulate)

    monkeypatch.setattr(loop, "micro_batches", spy)
    result = trainwise.run(overrides=[*QUICK, f"run.out_dir=\"{tmp_path}\"", "train.lr=0.003",
                                      "train.batch_size=512", "train.max_epochs=2"],
                           until="train", report=False)
    assert result.ok, result.verdict
    (finding,) = [f for f in result.findings if f.code == "gradient_accumulation"]
    plan = finding.evidence
    assert (plan["accumulation_steps"], plan["micro_batch_size"]) == (2, 256)
    assert seen and all(accumulate == 2 for _, accumulate in seen)
    assert max(size for size, _ in seen) == 512  # the loop splits each 512 into 2 x 256


def test_the_default_batch_is_cut_to_fit_a_small_table_and_a_set_one_is_kept(tmp_path):
    """wine: 128 training rows were one batch of the default 128, one step an epoch."""
    result, record = _tune(tmp_path, "data.source=\"wine\"", "train.lr=0.01")
    assert record["batch_size"] == {"mode": "fitted", "chosen": 32, "default": 128}
    [fitted] = [f for f in result.findings if f.code == "batch_size_fitted"]
    assert fitted.message.startswith("Batch 32, not the default 128: 128 training rows give 1 ")
    # the lr the user gave goes with the batch they accepted: the cut is said under it (RT12)
    assert "Your train.lr = 0.01 is used at this batch, 4x smaller" in fitted.message
    assert "set train.batch_size = 128 to keep that batch" in fitted.message
    meta = json.loads((result.path / "meta.json").read_text())
    assert meta["batch_size"] == 32 and meta["config"]["train"]["batch_size"] == 128
    assert "batch_size_few_steps" not in [f.code for f in result.findings]
    result, record = _tune(tmp_path, "data.source=\"wine\"", "train.lr=0.01",
                           "train.batch_size=128")
    assert record["batch_size"] == {"mode": "fixed", "chosen": 128}
    assert "batch_size_few_steps" in [f.code for f in result.findings]


def test_the_lr_source_says_kept_when_no_short_run_learned():
    """Audit s13 T6: 'chosen by 5 short runs' after short_runs_no_learning said they chose."""
    from types import SimpleNamespace

    from trainwise.findings import warning
    from trainwise.stages_tune import _lr_source

    said = warning("tune", "short_runs_no_learning", "none learned", "f")
    result = SimpleNamespace(short=SimpleNamespace(candidates=[1, 2, 3, 4, 5], findings=[said],
                                                   kept_range_point="no_learning"),
                             horizon_factor=1.0)
    assert _lr_source(result) == ("the range test's point, kept: none of 5 short runs learned "
                                  "(short_runs_no_learning)")
    result.short.findings, result.short.kept_range_point = [], ""
    assert _lr_source(result) == "chosen by 5 short runs"
    result.short.kept_range_point = "flat_grid"  # a flat grid kept it (review s13 VT1): not scaled
    assert _lr_source(result) == ("the range test's point, kept: the 5 short runs scored "
                                  "alike (short_runs_indistinguishable)")


def test_tuning_that_costs_over_three_trainings_says_so():
    """Audit s13 T8: MNIST-1D at 3 epochs tuned for 6.2 s and trained for 1.7 s (3.6x, over
    issue 6's 3x) with nothing said. Estimated training: the short runs' median seconds per
    step (0.01) x 3 epochs x 20 steps = 0.6 s; tuning 3.0 s is 5x."""
    from types import SimpleNamespace

    from trainwise.config import from_dict
    from trainwise.stages_tune import _cost_finding

    ctx = SimpleNamespace(config=from_dict({"train": {"max_epochs": 3}}))
    candidates = [SimpleNamespace(seconds=s) for s in (0.09, 0.1, 0.5)]
    result = SimpleNamespace(short=SimpleNamespace(candidates=candidates, num_steps=10),
                             seconds={"range_test": 2.5, "short_runs": 0.5})
    (said,) = _cost_finding(ctx, result, steps_per_epoch=20)
    assert said.code == "tune_cost" and said.evidence["ratio"] == 5.0
    assert "about 5.0x the training steps it tunes (~0.6 s for 3 epochs" in said.message
    result.seconds = {"range_test": 1.0, "short_runs": 0.5}  # 2.5x: within the budget
    assert _cost_finding(ctx, result, steps_per_epoch=20) == []


def _skewed_table(outliers: bool):
    """A small regression, cost ~ 100 x lognormal; with `outliers` 3 rows are x60."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = np.exp(0.3 * x[:, 0] + 0.2 * x[:, 1] + 0.1 * rng.normal(size=300)) * 100
    if outliers:
        y[[5, 50, 150]] *= 60
    return pd.DataFrame(x, columns=list("abcd")).assign(cost=y)


def test_find_lr_on_extreme_targets_leads_with_the_data_fix_not_an_lr(tmp_path):
    """Audit s14 R2: 3 targets x60 broke the range test at its start; its closing line read
    "to train with it, add --set train.lr=1.75e-06" and the tune warning blamed the model."""
    common = ['data.target="cost"', "tune.short_runs=false", "run.threads=1",
              "run.checks=false", f"run.out_dir=\"{tmp_path}\""]
    result = trainwise.run(data=_skewed_table(True), overrides=common, until="tune",
                           report=False)
    codes = [f.code for f in result.findings]
    assert "target_outliers" in codes and "lr_range_target_outliers" in codes
    assert result.verdict.startswith("No learning rate to train with yet: the range test broke")
    assert "data.target_transform='\"log\"'" in result.verdict
    assert "--set train.lr" not in result.verdict
    clean = trainwise.run(data=_skewed_table(False), overrides=common, until="tune",
                          report=False)
    assert "lr_range_target_outliers" not in [f.code for f in clean.findings]
    assert "No learning rate to train with yet" not in clean.verdict
