"""End-to-end: the recipe and the CLI on small data, including runs that must stop."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import trainwise
from trainwise.checks.zoo_data import tokens
from trainwise.cli import main
from trainwise.config import load_config
from trainwise.rundir import read_findings, read_history
from trainwise.train.intervals import accuracy_interval, percent

QUICK = ["train.max_epochs=2", "tune.num_steps=30", "tune.num_seeds=1", "tune.short_runs=false",
         "run.threads=1"]


def _quick(tmp_path, *extra):
    return [*QUICK, f"run.out_dir=\"{tmp_path}\"", *extra]


@pytest.fixture
def churn_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour,
                          "label": np.where(x1 + (colour == "red") > 0.3, "yes", "no"),
                          "price": 3 * x1 - x2 + rng.normal(0, 0.1, size=n)})
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_default_run_on_mnist1d_subset_writes_the_whole_run_folder(tmp_path):
    result = trainwise.run(overrides=_quick(tmp_path, "data.max_samples=1200", "train.max_epochs=5",
                                            "train.batch_size=64", "tune.num_steps=60"))
    assert result.ok, result.verdict
    for name in ("config.toml", "meta.json", "history.jsonl", "findings.json", "split.npz",
                 "lr_range.json", "model_summary.json", "report.html",
                 "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (result.path / name).exists(), name
    assert list((result.path / "tensorboard").iterdir())
    meta = json.loads((result.path / "meta.json").read_text())
    assert meta["data"]["fingerprint"] and meta["split"]["fingerprint"]
    assert meta["split"]["sizes"]["test"] == 1000  # MNIST-1D's own test part, untouched
    assert meta["versions"]["torch"] == torch.__version__.split("+")[0] or meta["versions"]
    kinds = {row["kind"] for row in read_history(result.path)}
    assert kinds == {"step", "epoch", "test"}
    assert result.test["test_accuracy"] > 0.5  # 5 epochs on 960 samples; chance is 10%
    best = torch.load(result.path / "checkpoints/best.pt", weights_only=True)
    assert "model" in best


def test_split_never_shares_rows_between_parts(tmp_path):
    result = trainwise.run({"data": {"source": "digits"}}, overrides=_quick(tmp_path),
                           until="split", report=False)
    split = np.load(result.path / "split.npz")
    assert not set(split["train"]) & set(split["val"])
    meta = json.loads((result.path / "meta.json").read_text())
    sizes = meta["split"]["sizes"]
    assert sum(sizes.values()) == 1797  # digits: nothing dropped, nothing duplicated


def test_table_classification_and_regression(tmp_path, churn_csv):
    source = f"data.source=\"{churn_csv}\""
    result = trainwise.run(overrides=_quick(tmp_path, source, "data.target=\"label\""))
    assert result.ok, result.verdict
    assert result.test["test_accuracy"] > 0.7
    _check_class_results(result)
    result = trainwise.run(overrides=_quick(tmp_path, source, "data.target=\"price\"",
                                            "train.max_epochs=15"))
    assert result.ok, result.verdict
    price = pd.read_csv(churn_csv)["price"]
    assert result.test["test_rmse"] < price.std()  # better than predicting the mean
    assert not {"test_balanced_accuracy", "test_confusion", "test_baseline_accuracy"} \
        & set(result.test)  # regression keeps its two errors


def _check_class_results(result):
    """The test row's class metrics agree with scikit-learn on the same predictions, and the
    baseline is the training split's majority (as counted by the split stage)."""
    from sklearn import metrics

    test, meta = result.test, json.loads((result.path / "meta.json").read_text())
    matrix = np.array(test["test_confusion"])
    assert matrix.sum() == meta["split"]["sizes"]["test"]
    y_true = np.repeat(np.arange(2), matrix.sum(axis=1))
    y_pred = np.concatenate([np.repeat(np.arange(2), row) for row in matrix])
    assert test["test_accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert test["test_balanced_accuracy"] == pytest.approx(
        metrics.balanced_accuracy_score(y_true, y_pred))
    assert test["test_per_class"]["recall"] == pytest.approx(
        metrics.recall_score(y_true, y_pred, average=None).tolist())
    majority = int(np.argmax(meta["data"]["class_counts"]["train"]))
    assert test["test_baseline_class"] == meta["data"]["class_names"][majority]
    assert test["test_baseline_accuracy"] == pytest.approx(np.mean(y_true == majority))
    assert f"; always '{test['test_baseline_class']}': " in result.verdict
    # the verdict's 95% interval is that of these very predictions (tests/test_intervals.py
    # checks the numbers)
    interval = accuracy_interval(int(np.trace(matrix)), int(matrix.sum()))
    assert f"Test accuracy {test['test_accuracy']:.1%} ({interval.text()}; always" \
        in result.verdict
    assert f"{matrix.sum()} rows" in interval.text()
    (result_finding,) = [f for f in read_findings(result.path) if f.code == "test_result"]
    assert (f"held-out samples, 95% interval {percent(interval.low)}-{percent(interval.high)}% "
            "(always answering") in result_finding.message
    # the threshold-free view beside the argmax's (audit s9 I3)
    assert f"ROC-AUC {test['test_roc_auc']:.3f}, average precision" in result_finding.message
    assert f"ROC-AUC {test['test_roc_auc']:.3f}, average precision" in result.verdict
    assert [r for r in read_history(result.path) if r["kind"] == "test"][0] == {
        "kind": "test", **test}


def test_regression_targets_too_large_for_float32_statistics(tmp_path, churn_csv):
    """Targets ~1e20: their float32 square overflows, so the standardisation's spread is taken
    in float64 (it was inf, which set every target to 0 and still "trained")."""
    frame = pd.read_csv(churn_csv)
    frame["price"] = frame["price"] * 1e20
    path = tmp_path / "huge.csv"
    frame.to_csv(path, index=False)
    result = trainwise.run(overrides=_quick(tmp_path, f"data.source=\"{path}\"",
                                            "data.target=\"price\"", "train.max_epochs=15"))
    assert result.ok, result.verdict
    assert result.test["test_rmse"] < 0.5 * frame["price"].std()  # learnt, not the mean


def test_missing_target_column_stops_at_the_data_stage_with_a_fix(tmp_path, churn_csv):
    result = trainwise.run(overrides=_quick(tmp_path, f"data.source=\"{churn_csv}\"",
                                            "data.target=\"churn\""))
    assert result.stopped_at == "data"
    [problem] = [f for f in result.findings if f.severity.value == "error"]
    assert "'churn'" in problem.message and "data.target" in problem.message
    # the default target column 'label' is in the file: named, to paste (audit s13 P2: the
    # last column had been offered, a leak in the audit's file)
    assert "--set data.target='\"label\"'" in problem.message
    assert (result.path / "report.html").exists()  # a failed run still explains itself
    assert "churn" in (result.path / "report.html").read_text()
    assert read_findings(result.path)[-1].code == problem.code


def test_users_own_module_is_trained(tmp_path):
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(),
                                      nn.Linear(32, 10))

        def forward(self, x):
            return self.body(x)

    # run() leaves the caller's random state as it found it (review s9 P6), so the weights
    # drawn here depend on the tests before this one unless seeded (seeds 0-5: 83-96%)
    torch.manual_seed(0)
    model = Tiny()
    result = trainwise.run({"data": {"source": "digits"}}, model=model,
                           overrides=_quick(tmp_path, "train.max_epochs=5"))
    assert result.ok, result.verdict
    assert any(f.code == "user_model" for f in result.findings)
    assert result.test["test_accuracy"] > 0.8


def test_broken_user_model_is_a_finding_not_a_traceback(tmp_path):
    class WrongWidth(nn.Module):  # logits for 3 classes on a 10-class problem
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(64, 3)

        def forward(self, x):
            return self.linear(x.flatten(1))

    result = trainwise.run({"data": {"source": "digits"}}, model=WrongWidth(),
                           overrides=_quick(tmp_path))
    assert result.stopped_at in ("model", "check")
    assert any(f.severity.value == "error" for f in result.findings)


def test_cli_exit_codes(tmp_path, churn_csv, capsys):
    assert main(["config", "--set", "train.max_epochs=3"]) == 0
    assert "max_epochs = 3" in capsys.readouterr().out
    assert main(["run", "--set", "train.max_epoch=3"]) == 2  # misspelt key
    code = main(["audit", "--set", f"data.source=\"{churn_csv}\"", "--set",
                 "data.target=\"nope\"", "--set", f"run.out_dir=\"{tmp_path}\""])
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())  # unwrapped
    # a stopped run prints its error's fix once, then points at it (not a second copy)
    assert err.count("Fix the input as the message says") == 1
    assert "Stopped at the data stage: the error above says what to fix." in err
    code = main(["check", "--set", "data.source=\"wine\"", "--set", f"run.out_dir=\"{tmp_path}\"",
                 "--set", "run.threads=1", "--no-report"])
    assert code == 0
    err = capsys.readouterr().err  # piped (as here): a line per stage, since spinners are mute
    done = [line.split(" stage done")[0] for line in err.splitlines() if " stage done in " in line]
    assert done == ["data", "split", "model", "check"]


def test_find_lr_saves_the_users_config_not_its_own_switch(tmp_path):
    """find-lr turns the short runs off for itself; config.toml, which `trainwise run` reruns,
    keeps the user's settings (it saved short_runs = false, so the rerun skipped them)."""
    code = main(["find-lr", "--set", "data.source=\"wine\"", "--set", f"run.out_dir=\"{tmp_path}\"",
                 "--set", "run.threads=1", "--set", "tune.num_steps=30", "--set",
                 "tune.num_seeds=1", "--no-report"])
    assert code == 0
    (folder,) = list(tmp_path.iterdir())
    saved = load_config(folder / "config.toml")
    assert saved.tune.short_runs is True and saved.tune.num_steps == 30
    (chosen,) = [f for f in read_findings(folder) if f.code == "lr_chosen"]
    assert "find-lr` stops there" in chosen.message
    verdict = json.loads((folder / "meta.json").read_text())["verdict"]
    # find-lr trained nothing to reproduce: its range and spread lead and the point has 3
    # digits (audit s13 T1); the tuned path keeps every digit (test_recipe_verdict, s11 R5)
    assert verdict.startswith(f"Learning rate {chosen.evidence['lr']:.3g} from the range test "
                              f"(range {chosen.evidence['lr_low']:.3g}-")
    assert "spread unknown (1 seed; tune.num_seeds >= 3 measures it)" in verdict
    tuned = json.loads((folder / "tune.json").read_text())["chosen_lr"]
    assert verdict.split("train.lr=")[1].split()[0] == f"{float(f'{tuned:.3g}')!r}"


def test_the_stage_table_is_titled_by_how_far_the_run_went():
    from trainwise.console import stage_table

    def rows(*names):
        return [{"name": n, "seconds": 0.1, "findings": []} for n in names]

    assert stage_table(rows("setup", "data", "split", "check", "tune"), "tune").title == \
        "trainwise, up to the tune stage"
    assert stage_table(rows("data", "train", "evaluate", "report")).title == "trainwise run"
    assert stage_table(rows("data", "split", "check", "report"), "evaluate", "check").title \
        == "trainwise run: stopped at the check stage"  # not "up to the check stage"
    assert stage_table(rows("data"), "tune", "data").title == \
        "trainwise, up to the tune stage: stopped at the data stage"


def test_a_given_lr_is_not_announced_as_chosen(tmp_path):
    result = trainwise.run({"data": {"source": "wine"}}, until="tune", report=False,
                           overrides=_quick(tmp_path, "train.lr=0.01"))
    assert result.ok and result.verdict.startswith("Finished the requested stages")


def test_data_in_memory_runs_and_its_config_reruns_it(tmp_path, churn_csv):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(120, 5)), dtype=torch.float32)
    y = (x[:, 0] > 0).long()
    first = trainwise.run(data=(x, y), overrides=_quick(tmp_path), until="split", report=False)
    assert first.ok, first.verdict
    saved = load_config(first.path / "config.toml")
    assert saved.data.source.endswith("arrays.npz") and first.path.name.endswith("-arrays")
    with np.load(saved.data.source) as archive:  # the very rows, as numpy
        np.testing.assert_array_equal(archive["X"], x.numpy())
        np.testing.assert_array_equal(archive["y"], y.numpy())
    again = trainwise.run(first.path / "config.toml", overrides=[f"run.out_dir=\"{tmp_path}\""],
                          until="split", report=False)
    meta = [json.loads((run.path / "meta.json").read_text()) for run in (first, again)]
    assert meta[0]["data"]["fingerprint"] == meta[1]["data"]["fingerprint"]
    assert meta[0]["split"]["fingerprint"] == meta[1]["split"]["fingerprint"]
    third = trainwise.run(data=(x.numpy(), y.numpy()), overrides=_quick(tmp_path),
                          until="data", report=False)  # the same rows: the same file
    assert load_config(third.path / "config.toml").data.source == saved.data.source

    frame = pd.read_csv(churn_csv)
    table = trainwise.run({"data": {"target": "price"}}, data=frame, until="data",
                          overrides=_quick(tmp_path), report=False)
    assert table.ok and json.loads((table.path / "meta.json").read_text())["data"]["task"] \
        == "regression"
    with pytest.raises(trainwise.TrainwiseError, match="Pass a pandas DataFrame"):
        trainwise.run(data=x, overrides=_quick(tmp_path))


def test_token_ids_in_a_npz_train_embedding_pool_from_the_cli(tmp_path, capsys):
    """Audit s9 X1/X2: int64 ids were z-scored floats fed to an MLP, at the majority score."""
    x, y = tokens(n=300, length=16, vocab=100)  # class-indicative key token, 0-padded
    np.savez(tmp_path / "tokens.npz", X=x.numpy(), y=y.numpy())
    code = main(["run", str(tmp_path / "tokens.npz"), "--no-report", "--set",
                 "train.max_epochs=3", "--set", "train.batch_size=16",
                 *(f"--set={o}" for o in _quick(tmp_path)[1:])])
    assert code == 0
    [run] = [p for p in tmp_path.iterdir() if p.name.endswith("-tokens")]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["data"]["kind"] == "tokens"
    found = {f["code"]: f for f in json.loads((run / "findings.json").read_text())}
    assert "embedding_pool baseline" in found["built"]["message"]
    assert "no normalisation: token ids" in found["augment"]["message"]
    assert meta["test"]["test_accuracy"] >= meta["test"]["test_baseline_accuracy"] + 0.25


def test_users_embedding_model_receives_int64_ids(tmp_path):
    class EmbeddingGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(100, 16, padding_idx=0)
            self.gru, self.head = nn.GRU(16, 16, batch_first=True), nn.Linear(16, 2)
            self.seen: set[torch.dtype] = set()

        def forward(self, ids):
            self.seen.add(ids.dtype)
            out, _ = self.gru(self.emb(ids))
            return self.head(out.max(1).values)

    x, y = tokens(n=300, length=16, vocab=100)
    model = EmbeddingGRU()
    result = trainwise.run(data=(x, y), model=model, report=False, overrides=_quick(tmp_path))
    assert result.ok, result.verdict
    assert model.seen == {torch.int64}
