"""Threshold-free metrics (ROC-AUC, average precision) checked against scikit-learn, and the
evaluate verdict they settle: a model that ranks a 2% class well but never predicts it at the
argmax has not "learned nothing" (audit s9 I1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import metrics
from torch import nn

from trainwise.config import Config
from trainwise.train.class_metrics import class_results, confusion_matrix
from trainwise.train.evaluate import evaluate
from trainwise.train.ranking import (
    EPOCH_RANKED_CELLS,
    MAX_RANKED_CLASSES,
    best_f1_threshold,
    ranking_metrics,
    ranking_text,
)
from trainwise.train.ranking_verdict import validation_threshold


def _fraud_like(seed: int, n: int = 1000, positives: int = 20, signal: float = 3.0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, 2) of a model that ranks the positives well (`signal` apart) yet keeps
    P(positive) below 0.5 on every row: the argmax always says class 0."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.int64)
    y[rng.choice(n, positives, replace=False)] = 1
    margin = -6.0 + signal * y + rng.normal(0, 1, n)  # logit(P(1)) ~ -6 or -3: never > 0
    logits = np.stack([np.zeros(n), np.minimum(margin, -0.1)], axis=1)
    return torch.tensor(logits, dtype=torch.float32), torch.tensor(y)


def test_binary_metrics_match_sklearn_for_the_rarer_class() -> None:
    logits, y = _fraud_like(0)
    p = logits.softmax(dim=1)[:, 1].numpy()
    row = ranking_metrics(logits.softmax(dim=1), y, "test")
    assert row["test_positive_class"] == 1
    assert row["test_roc_auc"] == pytest.approx(metrics.roc_auc_score(y.numpy(), p))
    assert row["test_average_precision"] == pytest.approx(
        metrics.average_precision_score(y.numpy(), p))
    assert row["test_ap_chance"] == pytest.approx(0.02)
    # the rare class coded 0: its AP, not the majority's (which sits near 0.98 regardless)
    flipped = ranking_metrics(logits.softmax(dim=1).flip(1), 1 - y, "test")
    assert flipped["test_positive_class"] == 0
    assert flipped["test_average_precision"] == pytest.approx(row["test_average_precision"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_from_the_shared_curve_is_sklearns_with_tied_scores(seed) -> None:
    # the AP is summed over the precision-recall curve the F1 threshold also reads (one sort
    # per epoch, not two); coarse scores make many ties
    rng = np.random.default_rng(seed)
    y = (rng.random(500) < 0.1).astype(np.int64)
    p1 = np.round(np.clip(rng.random(500) * 0.6 + 0.3 * y, 0, 1), 1)
    probs = torch.tensor(np.stack([1 - p1, p1], axis=1))
    row = ranking_metrics(probs, torch.tensor(y), "val", pick_threshold=True)
    assert row["val_average_precision"] == metrics.average_precision_score(y, p1)
    assert row["val_roc_auc"] == metrics.roc_auc_score(y, p1)


def test_multiclass_macro_one_vs_rest_auc_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    probs = torch.tensor(rng.random((300, 4)) + np.eye(4)[y]).softmax(dim=1)
    row = ranking_metrics(probs, torch.tensor(y), "val")
    assert row["val_roc_auc"] == pytest.approx(metrics.roc_auc_score(
        y, probs.numpy(), multi_class="ovr", average="macro"))
    assert "val_average_precision" not in row
    tied = probs.clone()
    tied[:40] = tied[0]  # 40 rows with one score: ties count half, as sklearn's trapezoid
    assert ranking_metrics(tied, torch.tensor(y), "val")["val_roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y, tied.numpy(), multi_class="ovr", average="macro"))
    from trainwise.reporting.scores import score_table

    test = ranking_metrics(probs, torch.tensor(y), "test")
    assert dict(score_table(test))["test ROC-AUC (the macro one-vs-rest mean over the "
                                   "classes)"] == f"{test['test_roc_auc']:.4g}"
    # every class has test rows: no "classes left out ... 0" row (review s14 VE4)
    assert "test_auc_classes_left_out" not in test


def test_auc_is_undefined_when_a_class_has_no_row_or_there_are_too_many() -> None:
    probs = torch.full((5, 3), 1 / 3)
    # per epoch a class without rows leaves it undefined; the test row (scored once) averages
    # over the classes it holds and counts the one left out (audit s14 C8)
    assert ranking_metrics(probs, torch.tensor([0, 0, 1, 1, 0]), "val",
                           every_epoch=True)["val_roc_auc"] is None
    test = ranking_metrics(probs, torch.tensor([0, 0, 1, 1, 0]), "test")
    assert test["test_roc_auc"] == 0.5 and test["test_auc_classes_left_out"] == 1
    binary = ranking_metrics(torch.full((4, 2), 0.5), torch.tensor([0, 0, 0, 0]), "test")
    assert binary["test_roc_auc"] is None and binary["test_average_precision"] is None
    many = MAX_RANKED_CLASSES + 1
    y = torch.arange(many).repeat(2)
    assert ranking_metrics(torch.full((2 * many, many), 1 / many), y, "v",
                           every_epoch=True)["v_roc_auc"] is None


def test_a_large_multiclass_auc_waits_for_the_test_split_but_two_classes_do_not() -> None:
    # per epoch (validation) the OvR AUC of rows x classes > EPOCH_RANKED_CELLS is not
    # computed (0.7 s an epoch at 100k x 20, read by nothing); the test split keeps it
    classes = 10
    rows = EPOCH_RANKED_CELLS // classes + 1
    logits = torch.randn(rows, classes, generator=torch.Generator().manual_seed(0))
    y = torch.arange(rows) % classes
    loss = nn.CrossEntropyLoss()
    val = evaluate(nn.Identity(), [(logits, y)], loss, "classification", prefix="val")
    test = evaluate(nn.Identity(), [(logits, y)], loss, "classification", prefix="test")
    assert "val_roc_auc" not in val and test["test_roc_auc"] is not None
    assert ranking_text(val, prefix="val") == ""  # not "n/a": it was not computed
    small = evaluate(nn.Identity(), [(logits[:1000], y[:1000])], loss, "classification")
    assert small["val_roc_auc"] is not None
    binary = torch.randn(rows * classes // 2 + 1, 2), torch.arange(rows * classes // 2 + 1) % 2
    row = evaluate(nn.Identity(), [binary], loss, "classification")
    assert row["val_roc_auc"] is not None and "threshold" in row["val_f1_threshold"]


def test_validation_picks_the_f1_best_threshold_and_test_does_not() -> None:
    logits, y = _fraud_like(2)
    val = evaluate(nn.Identity(), [(logits, y)], nn.CrossEntropyLoss(), "classification")
    picked = val["val_f1_threshold"]
    predicted = logits.softmax(dim=1)[:, 1].numpy() >= picked["threshold"]
    assert picked["f1"] == pytest.approx(metrics.f1_score(y.numpy(), predicted))
    assert picked["recall"] == pytest.approx(metrics.recall_score(y.numpy(), predicted))
    score, truth = logits.softmax(dim=1)[:, 1].numpy(), y.numpy() == 1
    cuts = score[None, :] >= np.unique(score)[:, None]  # (cuts, N): no other cut does better
    hits = (cuts & truth).sum(axis=1)
    assert picked["f1"] == pytest.approx(np.max(2 * hits / (cuts.sum(axis=1) + truth.sum())))
    test = evaluate(nn.Identity(), [(logits, y)], nn.CrossEntropyLoss(), "classification",
                    prefix="test", confusion=True)
    assert "test_f1_threshold" not in test and test["test_roc_auc"] == val["val_roc_auc"]


def test_the_threshold_sits_in_the_middle_of_the_f1_plateau_not_on_one_rows_score() -> None:
    """Audit s13 P8: every threshold in (0.0014, 0.9905] gave validation F1 1; 0.9905, the
    lowest positive's own probability, was kept and missed 6 of 42 test positives."""
    y = np.array([1] * 40 + [0] * 60)
    score = np.concatenate([np.linspace(0.9905, 0.9999, 40), np.linspace(1e-4, 0.0014, 60)])
    picked = best_f1_threshold(*metrics.precision_recall_curve(y, score), scores=score)
    assert picked["threshold"] == pytest.approx((0.0014 + 0.9905) / 2)  # by hand
    assert (picked["f1"], picked["precision"], picked["recall"]) == (1.0, 1.0, 1.0)
    # a curve that starts at the lowest positive (older scikit-learn cuts it at full
    # recall): the scores give the floor; without them, 0
    precision, recall, cuts = metrics.precision_recall_curve(y, score)
    cut = cuts >= 0.9905
    truncated = (np.append(precision[:-1][cut], 1.0), np.append(recall[:-1][cut], 0.0),
                 cuts[cut])
    assert best_f1_threshold(*truncated, scores=score)["threshold"] == pytest.approx(0.49595)
    assert best_f1_threshold(*truncated)["threshold"] == pytest.approx(0.9905 / 2)


def test_the_plateau_below_an_inner_curve_point_runs_down_to_the_next_score() -> None:
    # positives at 0.9 and 0.8, negatives at 0.7 and 0.2, a positive at 0.1: F1 by cut
    # 0.9: 1/2, 0.8: 4/5, 0.7: 2/3, 0.2: 4/7, 0.1: 3/4; 0.8 wins, and every cut in (0.7, 0.8]
    # predicts the same rows: the middle, 0.75
    y = np.array([1, 1, 0, 0, 1])
    score = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    picked = best_f1_threshold(*metrics.precision_recall_curve(y, score), scores=score)
    assert picked["threshold"] == pytest.approx(0.75)
    predicted = score >= picked["threshold"]
    assert picked["f1"] == pytest.approx(metrics.f1_score(y, predicted))
    assert picked["recall"] == pytest.approx(metrics.recall_score(y, predicted))


def _verdict(signal: float) -> tuple[dict, list]:
    logits, y = _fraud_like(3, signal=signal)
    history = [{"kind": "epoch", "epoch": 1, **evaluate(
        nn.Identity(), [_fraud_like(4, signal=signal)], nn.CrossEntropyLoss(),
        "classification")}]
    test = evaluate(nn.Identity(), [(logits, y)], nn.CrossEntropyLoss(), "classification",
                    prefix="test", confusion=True)
    assert confusion_matrix(logits.argmax(dim=1), y, 2)[:, 1].sum() == 0  # never says "1"
    y_train = np.array([0] * 980 + [1] * 20)
    return test, class_results(test["test_confusion"], y_train, ["0", "1"], scores=test,
                               val_threshold=validation_threshold(history))[1]


def test_a_good_ranker_that_never_predicts_the_rare_class_did_not_learn_nothing() -> None:
    test, [finding] = _verdict(signal=4.0)
    assert test["test_roc_auc"] > 0.9
    assert finding.code == "argmax_misses_classes"
    assert "learned nothing (" not in finding.message
    assert "never predicts class '1' at the argmax" in finding.message
    assert f"ROC-AUC {test['test_roc_auc']:.3f}" in finding.message
    assert "0.020 by chance" in finding.message
    assert "validation" in finding.fix and "P('1') >=" in finding.fix
    assert "learning rate" not in finding.fix
    # review s12 VA7: the run keeps that threshold; the fix says how to ship it
    assert "the run kept" in finding.fix and "--threshold best" in finding.fix
    assert 'threshold="best"' in finding.fix
    # audit s13 F11: the 20 positive validation rows it rests on, and, under 30, a caution
    assert " of 20 rows;" in finding.fix and "rests on 20 validation rows" in finding.fix
    assert "split.val_fraction" in finding.fix


def test_a_poor_ranker_still_learned_nothing() -> None:
    test, [finding] = _verdict(signal=0.0)
    assert test["test_roc_auc"] < 0.6
    assert finding.code == "below_majority_baseline"
    assert "learned nothing" in finding.message and "rank no better" in finding.message
    assert finding.evidence["test_roc_auc"] == pytest.approx(test["test_roc_auc"])


def test_the_test_result_line_and_report_table_show_the_ranking(tmp_path) -> None:
    """audit s9 I3: the CLI line and the report's test table carry ROC-AUC and AP beside the
    argmax metrics, and 'n/a' where they are undefined."""
    from trainwise.recipe_verdict import _beside_accuracy
    from trainwise.reporting.scores import score_table

    auc_label = "test ROC-AUC"  # two classes: the positive class's, no mean (review s9 A13)

    logits, y = _fraud_like(5)
    test = {"test_accuracy": 0.98, "test_baseline_accuracy": 0.98, "test_baseline_class": "0",
            "test_balanced_accuracy": 0.5, **ranking_metrics(logits.softmax(dim=1), y, "test")}
    expected = (f"ROC-AUC {test['test_roc_auc']:.3f}, average precision "
                f"{test['test_average_precision']:.3f} vs 0.020 by chance")
    assert _beside_accuracy(test).endswith(f"balanced accuracy 50.0%, {expected}")
    table = dict(score_table(test))
    assert [k for k, _ in score_table(test)][3:6] == [  # right under balanced accuracy
        "test_balanced_accuracy", auc_label, "test average precision (PR-AUC)"]
    assert table[auc_label] == f"{test['test_roc_auc']:.4g}"
    test["test_roc_auc"] = test["test_average_precision"] = None
    assert dict(score_table(test))[auc_label] == "n/a"
    assert "ROC-AUC n/a (a class has no row in this split" in _beside_accuracy(test)
    test["test_per_class"] = {"support": [30, 0, 5]}  # the reason, with the class, if known
    assert "ROC-AUC n/a (class 1 has no row in this split" in _beside_accuracy(test)
    assert "class 'b' has no row" in ranking_text(test, ["a", "b", "c"])
    # the CLI's closing line names it too, as the evaluate finding does (reverify s9 N1)
    assert "ROC-AUC n/a (class 'b' has no row" in _beside_accuracy(test, ["a", "b", "c"])


def test_a_class_weighted_good_ranker_is_not_sent_back_to_the_weights() -> None:
    """The class-weighted verdict (balanced accuracy at chance) is judged the same way; its
    fix does not suggest the weights it already uses."""
    logits, y = _fraud_like(6, signal=4.0)
    test = evaluate(nn.Identity(), [(logits, y)], nn.CrossEntropyLoss(), "classification",
                    prefix="test", confusion=True)
    _, [finding] = class_results(test["test_confusion"], np.array([0] * 98 + [1] * 2),
                                 ["0", "1"], class_weighted=True, scores=test)
    assert finding.code == "argmax_misses_classes"
    assert "already" in finding.fix and "P('1')" not in finding.fix  # no threshold recorded


def test_an_auc_within_luck_on_few_positives_still_learned_nothing() -> None:
    """Review s9 T3: on 5 positives among 200 rows random scores pass AUC 0.6 in 23% of
    draws; the verdict uses the bound for these rows (0.76), not a fixed 0.6."""
    logits, y = _fraud_like(7, n=205, positives=5, signal=0.0)
    test = evaluate(nn.Identity(), [(logits, y)], nn.CrossEntropyLoss(), "classification",
                    prefix="test", confusion=True)
    test["test_roc_auc"] = 0.7  # what luck gives 1 run in 10 here
    _, [finding] = class_results(test["test_confusion"], np.array([0] * 98 + [1] * 2),
                                 ["0", "1"], scores=test)
    assert finding.code == "below_majority_baseline" and "rank no better" in finding.message
    assert finding.evidence["chance_auc_high"] > 0.76


def test_a_multiclass_good_ranker_gets_no_binary_threshold_advice() -> None:
    """A decision threshold is one cut on one class's probability: over three classes the
    fix names the class weights instead."""
    matrix = [[90, 0, 0], [10, 0, 0], [10, 0, 0]]  # the argmax always says class 0
    scores = {"test_roc_auc": 0.9}
    _, [finding] = class_results(matrix, np.array([0] * 90 + [1] * 10 + [2] * 10),
                                 ["a", "b", "c"], scores=scores)
    assert finding.code == "argmax_misses_classes"
    assert "better than chance" in finding.message and "ranks the test rows well" not in \
        finding.message
    assert "threshold" not in finding.fix and 'class_weights = "balanced"' in finding.fix


def test_the_na_clause_names_a_few_missing_classes_and_counts_the_rest() -> None:
    """442 one-row classes made a 7,926-character headline naming every one (audit s10 G10)."""
    names = [f"{v:.6f}" for v in np.linspace(25, 346, 442)]
    test = {"test_roc_auc": None, "test_per_class": {"support": [1] * 10 + [0] * 432}}
    text = ranking_text(test, names)
    assert f"'{names[10]}'" in text and f"'{names[14]}'" in text and names[15] not in text
    assert "and 427 more have no row" in text and len(text) < 300


def test_balanced_classes_are_not_told_to_weigh_the_classes() -> None:
    """The audit's 5-epoch run (s11 M12): three balanced classes (class_ratio 1.0), the argmax
    always class '1', the scores ranking well; it was told to set class_weights, which would
    all be 1.0. The fix points at training instead."""
    matrix = [[0, 12, 0], [0, 12, 0], [0, 12, 0]]
    _, [finding] = class_results(matrix, np.repeat(np.arange(3), 28), ["0", "1", "2"],
                                 scores={"test_roc_auc": 0.9})
    assert finding.code == "argmax_misses_classes" and finding.evidence["class_ratio"] == 1.0
    assert "class_weights" not in finding.fix and "train.max_epochs" in finding.fix
    assert "balanced in training (smallest/largest 1.00)" in finding.fix
    # review s12 VT9: when train.max_minutes ended training, more epochs change nothing
    _, [clocked] = class_results(matrix, np.repeat(np.arange(3), 28), ["0", "1", "2"],
                                 scores={"test_roc_auc": 0.9}, time_budget_minutes=2.5)
    assert "Raise train.max_minutes (now 2.5; the time budget ended training, not " \
        "train.max_epochs) or check the learning rate" in clocked.fix
    assert "briefly. Raise train.max_epochs or check the learning rate" in finding.fix
    # audit s13 P1: the still_improving finding is cited only where the train stage gave it
    assert "still_improving" not in finding.fix
    _, [still] = class_results(matrix, np.repeat(np.arange(3), 28), ["0", "1", "2"],
                               scores={"test_roc_auc": 0.9}, still_improving=True)
    assert "still_improving warning says the validation loss was still falling: raise " \
        "train.max_epochs" in still.fix
    # binary, balanced: the threshold advice stays, the weights clause goes
    _, [binary] = class_results([[50, 0], [50, 0]], np.repeat(np.arange(2), 40), ["0", "1"],
                                scores={"test_roc_auc": 0.9})
    assert binary.code == "argmax_misses_classes" and "threshold" in binary.fix
    assert "class_weights" not in binary.fix


def test_a_one_to_four_split_is_not_called_balanced_and_names_its_weights() -> None:
    """The churn run (user audit s12 S7, 20% 'yes'): "balanced (smallest/largest 0.25), so
    class weights would change nothing", where "balanced" weights are n / (2 n_c): 100 / (2 x
    80) = 0.625 and 100 / (2 x 20) = 2.5, a 4x pull toward the rare class."""
    _, [binary] = class_results([[80, 0], [20, 0]], np.repeat([0, 1], [80, 20]), ["no", "yes"],
                                scores={"test_roc_auc": 0.9})
    assert binary.code == "argmax_misses_classes" and binary.evidence["class_ratio"] == 0.25
    assert "change nothing" not in binary.fix and "classes are balanced" not in binary.fix
    assert "mildly imbalanced in training (1:4," in binary.fix
    assert "most frequent class 0.625 and the rarer 2.5" in binary.fix
    # three classes 20 / 50 / 80: the rarest weighs 80 / 20 = 4x the most frequent
    _, [three] = class_results([[0, 20, 0], [0, 50, 0], [0, 80, 0]],
                               np.repeat(np.arange(3), [20, 50, 80]), ["a", "b", "c"],
                               scores={"test_roc_auc": 0.9})
    assert three.code == "argmax_misses_classes" and "rarest class 4x" in three.fix


def test_a_threshold_on_too_few_or_failing_validation_positives_is_not_advised_first() -> None:
    """Audit s14 C6: a threshold picked on ONE validation positive was advised first ("Use the
    decision threshold the run kept") after its test recall was 0; and kept for predict."""
    from types import SimpleNamespace

    from trainwise.stages_evaluate import _at_threshold, advised_threshold
    from trainwise.train.decision_threshold import run_threshold

    test, _ = _verdict(signal=4.0)
    y_train = np.array([0] * 980 + [1] * 20)
    picked = {"threshold": 0.29, "f1": 1.0, "precision": 1.0, "recall": 1.0, "positives": 1,
              "class": 1}
    for row, why in [(test, "rests on 1 validation row"),
                     ({**test, "test_threshold_balanced_accuracy": 0.5,
                       "test_balanced_accuracy": 0.5, "test_threshold_recall": 0.0},
                      "did no better than the argmax"),
                     # review s14 VE2: 3 points, under threshold_recommended's 5
                     ({**test, "test_threshold_balanced_accuracy": 0.53,
                       "test_balanced_accuracy": 0.5, "test_threshold_recall": 0.2},
                      "added under 5% of balanced accuracy to the argmax's (balanced accuracy "
                      "53.0% against 50.0%")]:
        advised = advised_threshold({**picked, "positives": 1 if "rests" in why else 40}, row)
        [finding] = class_results(test["test_confusion"], y_train, ["0", "1"], scores=test,
                                  val_threshold=advised)[1]
        assert finding.fix.startswith("Do not rely on a decision threshold yet"), finding.fix
        assert why in finding.fix and "split.num_folds" in finding.fix
        assert "Use the decision threshold" not in finding.fix and "--threshold best" not in \
            finding.fix
    # a threshold whose test scores beat the argmax is advised as before
    good = {**test, "test_threshold_balanced_accuracy": 0.8, "test_balanced_accuracy": 0.5,
            "test_threshold_recall": 0.6}
    assert advised_threshold({**picked, "positives": 40}, good) == {**picked, "positives": 40}
    # under 5 positives the run keeps no threshold, and says why in meta.json
    ctx = SimpleNamespace(data=SimpleNamespace(class_names=["0", "1"]), meta={})
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    assert _at_threshold(ctx, picked, logits, torch.tensor([0, 1])) == {}
    kept = ctx.meta["decision_threshold"]
    assert kept["threshold"] is None and "1 validation row of class '1', under 5" in \
        kept["not_kept"]
    assert run_threshold(Path("."), ["0", "1"], ctx.meta) is None  # predict "best": none
    assert "test_threshold_recall" in _at_threshold(ctx, {**picked, "positives": 5}, logits,
                                                    torch.tensor([0, 1]))
    # review s14 VE9: a test part of one class gets no threshold scores (recall 0 of the
    # class it lacks read as "balanced accuracy 50.0% at the decision threshold")
    one_class = _at_threshold(ctx, {**picked, "positives": 5}, logits, torch.tensor([0, 0]))
    assert one_class == {} and ctx.meta["decision_threshold"]["threshold"] == 0.29
    assert _at_threshold(ctx, {**picked, "positives": 5}, logits, torch.tensor([0, -100])) == {}


def test_the_test_row_ranks_any_number_of_classes_over_those_present() -> None:
    """Audit s14 C8: above 20 classes (and with any class absent from test) the test row had
    no ROC-AUC at all. 25 classes, class 24 without test rows: the macro mean of sklearn's
    per-class one-vs-rest AUCs over the 24 present; the per-epoch cap stays."""
    rng = np.random.default_rng(0)
    y = np.arange(480) % 24
    logits = torch.as_tensor(rng.normal(0, 1, (480, 25)))
    logits[torch.arange(480), torch.as_tensor(y)] += 1.0
    probs = logits.softmax(dim=1)
    row = ranking_metrics(probs, torch.as_tensor(y), "test")
    expected = np.mean([metrics.roc_auc_score(y == c, probs[:, c].numpy()) for c in range(24)])
    assert row["test_roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert row["test_auc_classes_left_out"] == 1
    assert ranking_text(row).endswith("(one-vs-rest over the classes with test rows; 1 class "
                                      "without test rows left out)")
    names = [f"c{k}" for k in range(25)]  # review s14 VE11: how many were averaged over
    assert "one-vs-rest over the 24 classes with test rows; 1 class" in ranking_text(row, names)
    assert ranking_metrics(probs, torch.as_tensor(y), "val", every_epoch=True)["val_roc_auc"] \
        is None


def test_macro_f1_is_sklearns_with_zero_division_nan() -> None:
    from trainwise.train.class_metrics import macro_f1, per_class

    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])  # class 3: neither present nor predicted
    pred = np.array([0, 1, 0, 1, 0, 0, 0, 0])  # class 2 never predicted: F1 0
    matrix = confusion_matrix(torch.as_tensor(pred), torch.as_tensor(y), 4)
    reference = metrics.f1_score(y, pred, labels=range(4), average="macro",
                                 zero_division=np.nan)
    assert macro_f1(per_class(matrix)) == pytest.approx(reference)


def test_threshold_rows_name_the_class_the_threshold_is_on() -> None:
    """Audit s14 C12: the rows read 'P(positive class)' under 'positive class (index) 1', while
    the threshold was on class 'no' (index 0)."""
    from trainwise.reporting.scores import score_table

    test = {"test_accuracy": 0.9, "test_positive_class": 1, "test_threshold": 0.4523,
            "test_threshold_precision": 0.9364, "test_threshold_recall": 0.8833}
    record = {"positive_class": "no", "positive_index": 0, "threshold": 0.4523}
    labels = [label for label, _ in score_table(test, threshold=record)]
    assert "test recall of 'no' at P('no') >= 0.452" in labels
    assert "decision threshold on P('no'), picked on validation (F1-best; predict " \
        "--threshold best applies it)" in labels


def test_one_present_classes_auc_for_the_test_row_and_the_label_check() -> None:
    """review s14 VE6: ranking and label_issues each sliced the present columns and remapped
    the labels; one helper now, checked against sklearn."""
    from sklearn.preprocessing import label_binarize

    from trainwise.train.ranking import present_classes_auc

    rng = np.random.default_rng(3)
    probs = torch.as_tensor(rng.normal(0, 1, (300, 4))).softmax(dim=1).numpy()
    y = rng.choice([0, 2, 3], 300)  # class 1 has no row
    auc, left_out = present_classes_auc(probs, y, 4)
    present = [0, 2, 3]
    expected = metrics.roc_auc_score(label_binarize(y, classes=present), probs[:, present],
                                     average="macro")
    assert auc == pytest.approx(expected, abs=1e-12) and left_out == 1
    binary = probs[:, :2] / probs[:, :2].sum(axis=1, keepdims=True)
    labels = rng.integers(0, 2, 300)
    auc, left_out = present_classes_auc(binary, labels, 2)  # the rarer class's AUC, as before
    assert auc == pytest.approx(metrics.roc_auc_score(labels, binary[:, 1]), abs=1e-9)
    assert left_out == 0
    assert present_classes_auc(binary, np.zeros(300, np.int64), 2) == (None, 1)


def test_one_test_row_of_a_class_leaves_the_verdict_unjudged_by_the_ranking() -> None:
    """Audit s16 S8: "under the 1.078 that random scores rarely reach": with 1 test row of
    the rarest class no AUC could pass the bound, so a perfect ranking was "no better"."""
    matrix = [[60, 0, 0], [30, 0, 0], [1, 0, 0]]  # the argmax always says class 'a'
    _, [finding] = class_results(matrix, np.repeat(np.arange(3), [60, 30, 10]),
                                 ["a", "b", "c"], scores={"test_roc_auc": 1.0})
    assert finding.code != "argmax_misses_classes" and "rank no better" not in finding.message
    assert finding.evidence["chance_auc_high"] is None
    assert ("the scores' ranking is not judged (ROC-AUC 1.000: with 1 test row of class 'c' "
            "(of 91 rows), random scores can reach a ROC-AUC near 1: too few rows of class "
            "'c' to judge the ranking).") in finding.message
    assert finding.fix.endswith("To judge the ranking, give the test split at least 3 rows "
                                "of every class: raise split.test_fraction (when the data "
                                "has no test part of its own), or collect more rows of the "
                                "rare classes (data stage).")
    key = finding.fix.split("raise ")[1].split()[0]
    section, name = key.split(".")  # the key the fix names is one the config has
    assert name in type(getattr(Config(), section)).model_fields
