"""Audit s13 F4, F12: what each cross-validation fold is judged against (majority share,
naive baselines, time span) and the wording that follows from the numbers."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from trainwise.train.crossval_verdict import crossval_finding
from trainwise.train.crossval_windows import fold_facts, learning_rho, random_ap

# audit s13 F4: sensors.csv, 5 time windows, positives per window 4, 10, 14, 11, 38; every
# window's accuracy equals its majority share (the model never answered a failure)
RARE = [(807, 4, 816), (804, 10, 1627), (801, 14, 2441), (803, 11, 3256), (778, 38, 4070)]


def _rare_rows():
    return [{"fold": j, "val_rows": a + b, "train_rows": n, "val_accuracy": a / (a + b),
             "val_balanced_accuracy": 0.5, "class_counts": [a, b],
             "majority_share": a / (a + b)} for j, (a, b, n) in enumerate(RARE)]


def test_a_rare_label_backtest_at_its_majority_share_is_a_warning_in_balanced_accuracy():
    finding, meta = crossval_finding(_rare_rows(), "classification", True, 4, "x")
    assert finding.code == "crossval_at_majority" and finding.severity.value == "warning"
    assert meta["metric"] == "val_balanced_accuracy" and meta["mean"] == 0.5  # not 98.1%
    assert "majority share 95.3%, class counts 778/38" in finding.message
    assert "from 99.5% to 95.3%" in finding.message  # the label's rate, not a learning curve
    assert "learning curve" not in finding.message


def test_random_folds_at_their_majority_share_are_warned_about_too():
    rows = [{**row, "train_rows": 3000} for row in _rare_rows()]
    finding, _ = crossval_finding(rows, "classification", False, 0, "x")
    assert finding.code == "crossval_at_majority" and "No fold beats" in finding.message


def test_balanced_folds_at_chance_are_told_the_model_learned_nothing_not_class_weights():
    """Review s13 VD5 (/tmp/review_data/cv_demo.py): 50/50 folds at 47-50% were told the model
    learned the class shares and to set class weights; balanced classes have no shares to learn
    and class weights change nothing on them."""
    rows = [{"fold": j, "train_rows": 400, "val_rows": 100, "val_accuracy": a,
             "val_balanced_accuracy": a, "class_counts": [50, 50], "majority_share": 0.5}
            for j, a in enumerate([0.49, 0.50, 0.47, 0.50, 0.48])]
    finding, meta = crossval_finding(rows, "classification", False, 0, "x")
    assert meta["metric"] == "val_accuracy"  # 50/50: not imbalanced (IMBALANCE_RATIO 0.2)
    assert finding.code == "crossval_at_chance" and finding.severity.value == "warning"
    assert "class_weights" not in finding.fix and "class shares" not in finding.message
    assert "learned nothing" in finding.message and "learning rate" in finding.fix
    assert "(tune stage)" in finding.fix


def test_a_backtest_is_called_a_learning_curve_only_when_scores_improve_with_rows():
    # audit s13 F12's RMSEs: no trend (rho of rows vs -RMSE is 0.3 by hand: rank differences
    # 0, -3, 1, 0, 2, so 1 - 6 * 14 / (5 * 24) = 0.3)
    rmse, rows_ = [12.22, 11.58, 12.13, 11.82, 12.06], [1165, 2329, 3493, 4658, 5822]
    flat = [{"fold": j, "val_rows": 1165, "train_rows": n, "val_rmse": r}
            for j, (r, n) in enumerate(zip(rmse, rows_, strict=True))]
    assert np.isclose(learning_rho(flat, "val_rmse"), 0.3)
    assert np.isclose(learning_rho(flat, "val_rmse"), spearmanr(rows_, -np.array(rmse))[0])
    finding, _ = crossval_finding(flat, "regression", True, 4, "x")
    assert "learning curve" not in finding.message and "do not improve" in finding.message
    falling = [{**row, "val_rmse": r} for row, r in zip(flat, [14.0, 13.1, 12.5, 12.2, 12.0],
                                                        strict=True)]
    finding, _ = crossval_finding(falling, "regression", True, 4, "x")
    assert "mostly the learning curve" in finding.message and finding.code == "backtest"


def test_time_windows_that_differ_beyond_row_noise_without_a_trend_are_a_warning():
    # balanced classes; 300-row windows at 90%, 70%, 92%, 68%: chi-square p < 1e-10, rho 0
    accuracy = [0.9, 0.7, 0.92, 0.68]
    rows = [{"fold": j, "val_rows": 300, "train_rows": 300 * (j + 1), "val_accuracy": a,
             "class_counts": [150, 150], "majority_share": 0.5}
            for j, a in enumerate(accuracy)]
    finding, _ = crossval_finding(rows, "classification", True, 3, "x")
    assert finding.code == "backtest_spread" and finding.evidence["p_folds_agree"] < 1e-6


def test_fold_facts_give_the_previous_value_and_training_mean_rmse_and_the_span():
    # two series of 6 days; each validates on its last two days
    times = np.tile(np.arange("2024-01-01", "2024-01-07", dtype="datetime64[D]"), 2)
    series = np.repeat(["A", "B"], 6)
    y = np.array([1, 2, 4, 7, 11, 16, 10, 10, 10, 10, 10, 10], dtype=float)
    train, val = np.array([0, 1, 2, 3, 6, 7, 8, 9]), np.array([4, 5, 10, 11])
    facts = fold_facts(y, train, val, "regression", times, series, per_series=True)
    # previous values 7, 11, 10, 10 against 11, 16, 10, 10: errors 4, 5, 0, 0
    assert np.isclose(facts["previous_rmse"], np.sqrt(41 / 4))
    # training mean (14 + 40) / 8 = 6.75: errors 4.25, 9.25, 3.25, 3.25
    assert np.isclose(facts["mean_rmse"], np.sqrt(124.75 / 4))
    assert (facts["val_first"], facts["val_last"]) == ("2024-01-05", "2024-01-06")
    finding, _ = crossval_finding(
        [{"fold": 0, "val_rows": 4, "train_rows": 8, "val_rmse": 3.0, **facts},
         {"fold": 1, "val_rows": 4, "train_rows": 12, "val_rmse": 2.0, **facts}],
        "regression", True, 1, "x")
    assert "2024-01-05 to 2024-01-06: 3 (previous value 3.202; training mean 5.585" \
        in finding.message


def test_the_folds_note_ends_every_crossval_message():
    """Final read s13: group_time folds over one period lost their "no backtest" note on the
    at-chance, at-majority and unscored paths; only the plain message kept it."""
    rows = [{"fold": j, "train_rows": 400, "val_rows": 100, "val_accuracy": a,
             "val_balanced_accuracy": a, "class_counts": [50, 50], "majority_share": 0.5}
            for j, a in enumerate([0.49, 0.50, 0.47, 0.50, 0.48])]
    note = " These folds score unseen groups, not later times (no backtest)."
    finding, _ = crossval_finding(rows, "classification", False, 0, "x", note=note)
    assert finding.code == "crossval_at_chance" and finding.message.endswith(note)
    plain, _ = crossval_finding(rows, "classification", False, 0, "x")
    assert not plain.message.endswith(note)


def test_imbalanced_folds_at_their_majority_say_whether_the_ranking_has_signal():
    """Audit s14 C10: folds at 0.500 balanced accuracy were told to "judge by average
    precision", which no fold recorded; each fold now keeps its AP and chance, and the finding
    says whether the model ranks the rare class above chance."""
    signal = [{**row, "val_average_precision": ap, "val_ap_chance": b / (a + b)}
              for row, ap, (a, b, _) in zip(_rare_rows(), [0.30, 0.41, 0.35, 0.28, 0.52],
                                            RARE, strict=True)]
    finding, _ = crossval_finding(signal, "classification", False, 0, "x")
    # 4 of 811: chance 0.0049, not "0.00" (review s15 VE8)
    assert "Average precision per fold: 0.3 (chance 0.0049), 0.41 (chance 0.012), 0.35 " \
           "(chance 0.017), 0.28 (chance 0.014), 0.52 (chance 0.047)" in finding.message
    assert "well above what a random ranking scores" in finding.message
    none = [{**row, "val_average_precision": row["val_ap_chance"]} for row in signal]
    finding, _ = crossval_finding(none, "classification", False, 0, "x")
    assert "about what a random ranking scores" in finding.message
    finding, _ = crossval_finding(_rare_rows(), "classification", False, 0, "x")
    assert "Average precision" not in finding.message  # folds from before it was kept


def test_random_ap_is_the_mean_over_every_ranking():
    """The exact expectation against scikit-learn's AP averaged over all C(N, P) placements
    of the positives (ties-free scores: rank order is the ranking)."""
    from itertools import combinations

    from sklearn.metrics import average_precision_score

    for positives, rows in [(1, 7), (2, 7), (3, 8), (8, 8)]:
        scores = np.arange(rows, 0, -1.0)
        aps = []
        for chosen in combinations(range(rows), positives):
            truth = np.zeros(rows)
            truth[list(chosen)] = 1
            aps.append(average_precision_score(truth, scores))
        assert random_ap(positives, rows) == pytest.approx(np.mean(aps))


def test_one_positive_folds_at_3x_their_share_are_not_called_signal():
    """Review s15 VE7: with 1 positive in 800 rows a random ranking's AP averages 0.0091,
    7x the share 0.00125: three folds at 3x the share (0.0037) were "well above chance"."""
    rows = [{"fold": j, "val_rows": 801, "train_rows": 801 * (j + 2), "val_accuracy": 800 / 801,
             "val_balanced_accuracy": 0.5, "class_counts": [800, 1], "majority_share": 800 / 801,
             "val_average_precision": 3 / 801, "val_ap_chance": 1 / 801} for j in range(3)]
    finding, _ = crossval_finding(rows, "classification", False, 0, "x")
    assert "well above" not in finding.message
    assert "about what a random ranking scores (a random ranking of these rows scores " \
           "0.0091, 0.0091, 0.0091 on average)" in finding.message


def test_a_cross_validated_two_class_run_keeps_each_folds_average_precision(tmp_path):
    import json

    import trainwise

    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 0] + rng.normal(0, 0.5, 400) > 1.2).astype(np.int64)  # about 10% positives
    result = trainwise.run(data=(x, y), report=False, overrides=[
        f"run.out_dir=\"{tmp_path}\"", "run.threads=1", "run.checks=false", "train.lr=0.01",
        "train.max_epochs=2", "split.num_folds=3"])
    folds = json.loads((result.path / "meta.json").read_text())["cross_validation"]["folds"]
    assert len(folds) == 3
    for fold in folds:
        positives = fold["class_counts"][1] if fold["class_counts"][1] <= \
            fold["class_counts"][0] else fold["class_counts"][0]
        assert fold["val_ap_chance"] == positives / fold["val_rows"]
        assert 0 < fold["val_average_precision"] <= 1 and 0 <= fold["val_roc_auc"] <= 1
