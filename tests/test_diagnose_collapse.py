"""A classifier that leaves classes out (audit s9 I2, I7): collapse to the majority class and
classes never found, from the per-class counts each epoch row now keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise
from trainwise.train.class_counts import class_counts, class_counts_of
from trainwise.train.diagnose import diagnose
from trainwise.train.diagnose_collapse import (
    MIN_CLASS_ROWS,
    confirming_collapse,
    rule_collapse,
    rule_missed_classes,
)
from trainwise.train.diagnose_common import PLAN_KEY, WEIGH_CLASSES, TrainingPlan
from trainwise.train.loop import fit
from trainwise.train.prior_loss import prior_loss
from trainwise.train.ranking import MIN_SIGNAL_AUC, chance_auc_high, ranks_above_chance


def _counts(rows, right, predicted) -> dict:
    return {"rows": rows, "right": right, "predicted": predicted}


def _history(balanced: float, accuracy: float, counts: dict | None = None,
             val_loss: float = 0.06, plan: TrainingPlan | None = None) -> list[dict]:
    """Three epochs with the same validation scores, the last the best by 0.001 a step (a
    flattened curve: a 10% fall in the last of 3 epochs is still_improving, audit s15 M4)."""
    rows: list[dict] = []
    for epoch in range(3):
        row = {"kind": "epoch", "epoch": epoch, "step": 10 * (epoch + 1), "train_loss": 0.1,
               "val_loss": val_loss + 0.001 * (2 - epoch), "val_accuracy": accuracy,
               "val_balanced_accuracy": balanced}
        if counts is not None:
            row["val_class_counts"] = counts
        rows.append(row)
    return rows + ([] if plan is None else [{"kind": "meta", PLAN_KEY: plan}])


FRAUD_COLLAPSED = _counts([392, 8], [392, 0], [400, 0])  # audit s9: every row answered '0'


def test_the_counts_are_the_confusion_matrix_margins():
    matrix = [[5, 1, 0], [2, 3, 0], [0, 4, 0]]
    counts = class_counts(torch.tensor(matrix))
    assert counts == class_counts(matrix) == {"rows": [6, 5, 4], "right": [5, 3, 0],
                                              "predicted": [7, 8, 0]}
    assert class_counts_of({"val_class_counts": counts}) == ([6, 5, 4], [5, 3, 0], [7, 8, 0])
    assert class_counts_of({"val_class_counts": {"rows": [1, 2], "right": ["x"]}}) is None


def test_the_loop_records_the_counts_in_every_epoch_row(blobs):
    x, y = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 3))
    state = fit(model, DataLoader(TensorDataset(x[:240], y[:240]), batch_size=60),
                DataLoader(TensorDataset(x[240:], y[240:]), batch_size=60),
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                loss_fn=nn.CrossEntropyLoss(), max_epochs=1)
    (epoch,) = [r for r in state.history if r["kind"] == "epoch"]
    rows, right, predicted = class_counts_of(epoch)
    assert rows == torch.bincount(y[240:], minlength=3).tolist()
    assert sum(predicted) == 60 and sum(right) / 60 == epoch["val_accuracy"]


def test_a_monitor_run_that_answers_the_majority_everywhere_is_warned():
    """The own-loop reproducer's case: 2% positives, every validation row answered '0'."""
    targets = torch.tensor([1] * 20 + [0] * 980)
    outputs = torch.tensor([[2.0, -2.0]]).repeat(1000, 1)  # class 0 for every row
    monitor = trainwise.Monitor(None, console=False)
    for epoch in range(3):
        for step in range(5):
            monitor.step(torch.tensor(0.2 - 0.01 * step - 0.02 * epoch), lr=1e-3)
        monitor.end_epoch(outputs=outputs, targets=targets, loss_fn=nn.CrossEntropyLoss())
    found = {f.code: f for f in monitor.close()}
    assert "collapse" in found and "healthy" not in found
    assert "class '0' for 1000 of 1000" in found["collapse"].message
    assert "recall 0 on class '1' (20 rows)" in found["collapse"].message
    assert "train.class_weights" not in found["collapse"].fix  # said in loop terms


def test_collapse_names_the_classes_and_the_fix_follows_the_loss():
    plan = TrainingPlan(class_names=("legit", "fraud"), val_rows=400)
    (signal,) = rule_collapse(_history(0.5, 0.98, FRAUD_COLLAPSED, val_loss=0.06, plan=plan))
    assert "answers class 'legit' for 400 of 400" in signal.message
    assert "recall 0 on class 'fraud' (8 rows)" in signal.message
    assert f"{prior_loss([392, 8]):.3g}" == "0.098" and "below 90% of 0.098" in signal.message
    assert signal.fix.startswith("Choose a decision threshold")  # as argmax_misses_classes
    assert WEIGH_CLASSES in signal.fix and signal.step == 30
    # the loss at the prior's entropy: the model learned the class shares only
    (nothing,) = rule_collapse(_history(0.5, 0.98, FRAUD_COLLAPSED, val_loss=0.097, plan=plan))
    assert "learned the class shares and nothing more" in nothing.message
    assert nothing.fix.startswith("Raise the learning rate") and WEIGH_CLASSES in nothing.fix
    weighted = TrainingPlan(class_weighted=True)
    (already,) = rule_collapse(_history(0.5, 0.98, FRAUD_COLLAPSED, plan=weighted))
    assert 'already "balanced"' in already.fix


def _with_auc(history: list[dict], auc: float) -> list[dict]:
    return [{**row, "val_roc_auc": auc} if row.get("kind") == "epoch" else row
            for row in history]


def test_the_validation_auc_judges_the_signal_as_the_evaluate_stage_does():
    """Review s9 T1: a weak but real ranker (ROC-AUC 0.7) has a loss near the prior's entropy
    (0.95 x 0.098): the loss alone said "learned nothing, raise the learning rate" while the
    evaluate stage said "learned to tell the classes apart". The AUC now decides both."""
    plan = TrainingPlan(class_names=("legit", "fraud"), val_rows=4000)
    counts = _counts([3920, 80], [3920, 0], [4000, 0])
    loss = 0.95 * prior_loss([3920, 80])
    (weak,) = rule_collapse(_with_auc(_history(0.5, 0.98, counts, val_loss=loss, plan=plan), 0.7))
    assert weak.evidence["scores_carry_signal"] is True
    assert "ROC-AUC 0.700 is at least the 0.6" in weak.message
    assert "learning rate" not in weak.fix and "threshold" in weak.fix
    # on 8 positives 0.7 is within luck (bound 0.70+): no signal, whatever the loss says
    (lucky,) = rule_collapse(_with_auc(_history(0.5, 0.98, FRAUD_COLLAPSED, val_loss=0.03,
                                                plan=plan), 0.7))
    assert lucky.evidence["scores_carry_signal"] is False
    assert "learned the class shares and nothing more" in lucky.message


def test_the_auc_bound_grows_on_few_rows_and_never_falls_under_the_floor():
    """Review s9 T3: with 5 positives random scores reach AUC 0.6 in 23% of draws."""
    assert chance_auc_high([200, 5]) == pytest.approx(0.5 + 2 * (206 / (12 * 1000)) ** 0.5)
    assert chance_auc_high([200, 5]) > 0.76
    assert chance_auc_high([980, 20]) == pytest.approx(0.631, abs=1e-3)
    assert chance_auc_high([50_000, 50_000]) == MIN_SIGNAL_AUC
    assert chance_auc_high(None) == MIN_SIGNAL_AUC and not ranks_above_chance(0.59, None)


def test_a_lucky_row_is_chance_but_a_real_share_of_the_rare_class_is_not():
    """At chance: balanced accuracy whose interval (from the rare class's rows) reaches 1/k,
    or within one point of it (intervals.at_chance)."""
    one_in_eight = _counts([392, 8], [392, 1], [399, 1])  # balanced accuracy 0.5625
    assert rule_collapse(_history(0.5625, 0.9825, one_in_eight)) == []
    assert rule_missed_classes(_history(0.5625, 0.9825, one_in_eight)) == []
    nearly = _counts([3920, 80], [3919, 1], [3998, 2])  # 1 of 80 found on 4000 rows
    (finding,) = rule_collapse(_history(0.506, 0.98, nearly))
    assert "answers class '0' for 3998 of 4000 validation rows: 1 of 80 rows found of class " \
        "'1'" in finding.message


def test_without_counts_only_the_margin_judges_and_no_class_is_named():
    """No per-class counts (a history from before they were kept): balanced accuracy within
    one point of 1/k is chance; its noise cannot be told without the rare class's rows."""
    plan = TrainingPlan(val_rows=400)
    (finding,) = diagnose(_history(0.505, 0.98, plan=plan), num_classes=2)
    assert finding.code == "collapse" and "the most frequent class" in finding.message
    assert "If the loss barely moved" in finding.fix
    assert rule_collapse(_history(0.52, 0.98) + [{"num_classes": 2}]) == []  # 1/2 + 0.01


def test_validation_and_test_call_the_same_model_at_chance():
    """Review s9 T5: 400 rows, 8 of them the rare class, 1 found with 18 false alarms
    (balanced accuracy 0.54): the train stage called it collapsed by a Wilson band on all 400
    rows, the evaluate stage only "may ignore the rarer classes" by a one-point margin. Both
    now read intervals.at_chance, whose noise is the rare class's 8 rows."""
    import numpy as np

    from trainwise.train.class_metrics import class_results

    counts = _counts([392, 8], [374, 1], [381, 19])  # balanced (374/392 + 1/8) / 2 = 0.54
    (collapse,) = rule_collapse(_history(0.54, 0.9375, counts))
    assert collapse.code == "collapse"
    matrix = [[374, 18], [7, 1]]
    _, [verdict] = class_results(matrix, np.array([0] * 98 + [1] * 2), ["0", "1"])
    assert verdict.code == "below_majority_baseline" and "learned nothing" in verdict.message


def test_a_collapse_on_balanced_classes_is_left_to_the_confusion_rule():
    balanced = _counts([100, 100, 100, 100], [100, 0, 0, 0], [400, 0, 0, 0])
    assert rule_collapse(_history(0.25, 0.25, balanced)) == []
    history = _history(0.25, 0.25, balanced)
    for row in history:  # an answer-one-class model near chance confidence: 1/4 + a little
        row["val_mean_confidence"] = 0.27
    found = [f.code for f in diagnose(history, num_classes=4)]
    assert "confusion" in found and "collapse" not in found


def test_classes_never_found_are_named_once_they_have_enough_rows():
    plan = TrainingPlan(class_names=tuple("abcdef"), weight_decay=0.01)  # trainwise run's
    counts = _counts([200, 100, 50, 37, MIN_CLASS_ROWS, MIN_CLASS_ROWS - 1],
                     [195, 95, 45, 30, 0, 0], [205, 100, 50, 44, 0, 1])
    (finding,) = rule_missed_classes(_history(0.6, 0.94, counts, plan=plan))
    assert "no validation row of class 'e' (5 rows): recall 0, never predicted" in finding.message
    assert "'f'" not in finding.message  # 4 rows: too few to call
    assert finding.evidence["missed_classes"] == [4] and "class_weights" in finding.fix
    weighted = TrainingPlan(class_names=tuple("abcdef"), class_weighted=True,
                            weight_decay=0.01)
    (finding,) = rule_missed_classes(_history(0.6, 0.94, counts, plan=weighted))
    assert finding.fix.startswith('train.class_weights is already "balanced"')
    both = _counts([200, 100, 50, 37, 7, 6], [195, 95, 45, 30, 0, 0], [205, 100, 50, 42, 0, 3])
    (finding,) = diagnose(_history(0.6, 0.94, both, plan=plan), num_classes=6)
    assert finding.code == "missed_classes" and "1 of them never predicted" in finding.message
    # the collapsed model is said once, as a collapse
    assert [f.code for f in diagnose(_history(0.5, 0.98, FRAUD_COLLAPSED), num_classes=2)] == [
        "collapse"]


def test_the_evaluate_verdict_on_a_collapsed_run_confirms_the_collapse_in_the_same_words():
    """Review s9 T8: a collapsed run got collapse (weights, then threshold) and then
    argmax_misses_classes (threshold, then weights) as two unrelated findings, with the
    class-weights advice written differently in each and "(train stage)", the key the Monitor
    rewrites, in only some. The test verdict now says it confirms the collapse, and every
    copy of the advice is the one phrase."""
    import numpy as np

    from trainwise.train.class_metrics import class_results

    history = _history(0.5, 0.98, FRAUD_COLLAPSED)
    matrix = [[392, 0], [8, 0]]
    targets = np.array([0] * 98 + [1] * 2)
    verdicts = [class_results(matrix, targets, ["0", "1"], scores={"test_roc_auc": auc})[1][0]
                for auc in (0.95, 0.5)] + class_results(matrix, targets, ["0", "1"], True)[1]
    assert [v.code for v in verdicts] == ["argmax_misses_classes", "below_majority_baseline",
                                          "balanced_accuracy_at_chance"]
    for verdict in verdicts:
        confirmed = confirming_collapse(verdict, history)
        assert confirmed.message.startswith("The test split confirms the train stage's "
                                            "collapse warning")
        assert confirmed.evidence["confirms"] == "collapse"
        # review s14 VT10: the train stage's reported codes, read once, decide alike
        assert confirming_collapse(verdict, history, {"trained", "collapse"}) == confirmed
        assert confirming_collapse(verdict, history, {"trained"}) is verdict
        healthy = _counts([392, 8], [390, 6], [392, 8])  # balanced 0.87
        assert confirming_collapse(verdict, _history(0.87, 0.99, healthy)) is verdict
    assert WEIGH_CLASSES in verdicts[0].fix and WEIGH_CLASSES in verdicts[1].fix
    assert verdicts[0].fix.startswith("Pick a decision threshold")


def test_the_collapse_fallback_quotes_the_training_shares_the_loss_figure_draws():
    """Review s9 T7: the finding quoted the validation shares' entropy, the figure's 'prior
    only' line the training shares': two levels for one idea. Both now read prior_loss of the
    training counts (the validation counts only when a Monitor run has none)."""
    from trainwise.checks.initial import check_loss_at_init
    from trainwise.reporting.curves import _mark_chance

    train = (3800, 200)  # 5% positives in training, 2% in validation
    plan = TrainingPlan(val_rows=400, train_class_counts=train)
    (finding,) = rule_collapse(_history(0.5, 0.98, FRAUD_COLLAPSED, val_loss=0.3, plan=plan))
    level = prior_loss(train)
    assert f"not below 90% of {level:.3g}, what answering the training split's" in \
        finding.message
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots()
    assert _mark_chance(ax, 2, train)[1] == pytest.approx(level)
    plt.close(figure)
    (init,) = check_loss_at_init(0.7, torch.tensor([0] * 3800 + [1] * 200), "classification", 2)
    assert init.evidence["label_entropy"] == pytest.approx(level)


def test_a_model_whose_loss_never_left_chance_is_sent_to_the_lr_first():
    """Audit s13 P1: wine at peak lr 0.572, best validation loss 3.88 against ln 3 = 1.10;
    missed_classes opened with class weights. A loss not below ln C: the lr and batch first."""
    counts = _counts([20, 20, 20], [20, 0, 0], [60, 0, 0])
    run = TrainingPlan(weight_decay=0.01)  # trainwise run: its keys are named
    history = _history(0.33, 0.33, counts, val_loss=3.88, plan=run)
    history.append({"kind": "step", "step": 3, "loss": 4.0, "lr": 0.572})
    (finding,) = rule_missed_classes(history)
    assert finding.fix.startswith("The model did not learn: its best validation loss 3.88 "
                                  "never came below chance (ln 3 = 1.10")
    assert "the steps' lr up to 0.572" in finding.fix and "train.batch_size" in finding.fix
    # balanced classes (audit s15 B10): the model's size follows, not class weights
    assert finding.fix.index("train.lr") < finding.fix.index("Grow the model")
    # a loss below ln 3 = 1.0986: the fix is as before
    (learned,) = rule_missed_classes(_history(0.33, 0.33, counts, val_loss=1.05, plan=run))
    assert not learned.fix.startswith("The model did not learn")
    # review s13 VT8: 1.090 is within 1% of ln 3, "not learned" in the tune stage too
    (at_chance,) = rule_missed_classes(_history(0.33, 0.33, counts, val_loss=1.090, plan=run))
    assert at_chance.fix.startswith("The model did not learn")


def test_missed_classes_counts_the_classes_too_small_to_name():
    """Audit s14 C15: 2 classes named at recall 0 while 22 more with < MIN_CLASS_ROWS
    validation rows were at recall 0 too, unsaid."""
    plan = TrainingPlan(class_names=tuple("abcdefgh"))
    rows = [200, 100, 50, 37, MIN_CLASS_ROWS, 4, 3, 2]
    right = [195, 95, 45, 30, 0, 0, 0, 1]  # 'f' and 'g' missed under 5 rows, 'h' 1 of 2 found
    counts = _counts(rows, right, [205, 100, 50, 44, 0, 0, 0, 1])
    (finding,) = rule_missed_classes(_history(0.6, 0.94, counts, plan=plan))
    assert ("2 more classes with fewer than 5 validation rows each (too few to name) also had "
            "recall 0.") in finding.message
    assert finding.evidence["few_row_classes_missed"] == 2


def test_the_evaluate_stage_confirms_what_findings_json_says_the_train_stage_reported(
        tmp_path) -> None:
    """review s14 VT10: the codes come from the run's findings.json (the train stage's), not
    from a diagnosis run again per verdict."""
    from types import SimpleNamespace

    from trainwise.findings import info, warning
    from trainwise.rundir import RunDir
    from trainwise.stages_evaluate import _train_codes

    run = RunDir(tmp_path)
    ctx = SimpleNamespace(run=run)
    assert _train_codes(ctx) == set()  # no findings.json: nothing reported
    run.write_findings([info("data", "loaded", "Loaded."),
                        warning("train", "collapse", "Collapsed.", "Weigh the classes."),
                        warning("tune", "lr_range_no_descent", "Flat.", "Check.")])
    assert _train_codes(ctx) == {"collapse"}


def _scipy_auc_sd(n1: int, n2: int) -> float:
    """The SD of the AUC (U / (n1 n2)) under no signal, read back from scipy's Mann-Whitney
    test: its asymptotic two-sided p (no ties, no continuity correction) is that of
    z = (U - n1 n2 / 2) / SD(U)."""
    from scipy.stats import mannwhitneyu, norm
    x, y = np.arange(n1) * 2.0 + 0.5, np.arange(n2) * 1.0  # distinct values: no ties
    result = mannwhitneyu(x, y, method="asymptotic", use_continuity=False)
    z = norm.isf(result.pvalue / 2)
    return abs(result.statistic - n1 * n2 / 2) / z / (n1 * n2)


@pytest.mark.parametrize("n1, n2", [(5, 200), (20, 980), (3, 40), (2, 7)])
def test_the_auc_bound_is_scipys_mann_whitney_null_sd(n1, n2):
    """Audit s16 S8: the bound is 0.5 + 2 SD of the null AUC, SD(U) = sqrt(n1 n2 (n1 + n2 +
    1) / 12) as scipy's mannwhitneyu uses it."""
    expected = max(MIN_SIGNAL_AUC, 0.5 + 2 * _scipy_auc_sd(n1, n2))
    assert chance_auc_high([n2, n1]) == pytest.approx(expected, rel=1e-6)


def test_one_row_of_a_class_leaves_the_ranking_unjudged_not_an_auc_over_1():
    """Audit s16 S8: with 1 row of the rarest class the bound was 1.078 (2 SD of the null AUC
    is over 0.5 whatever the other rows), so even an AUC of 1.0 was "no signal"."""
    assert 0.5 + 2 * _scipy_auc_sd(1, 799) > 1 and 0.5 + 2 * _scipy_auc_sd(2, 6) >= 1
    for rows in ([799, 1], [1] * 728, [2, 2, 2, 1, 1], [6, 2]):
        assert chance_auc_high(rows) is None and not ranks_above_chance(1.0, rows)
    assert chance_auc_high([7, 2]) == pytest.approx(0.98795, abs=1e-4)
    plan = TrainingPlan(class_names=("legit", "fraud"), val_rows=400)
    counts = _counts([399, 1], [399, 0], [400, 0])
    history = _with_auc(_history(0.5, 0.9975, counts, val_loss=0.01, plan=plan), 0.99)
    (found,) = rule_collapse(history)
    assert "1.078" not in found.message
    assert ("Its validation ROC-AUC 0.990 is not judged: with 1 validation row of class "
            "'fraud' (of 400 rows), random scores can reach a ROC-AUC near 1: too few rows "
            "of class 'fraud' to judge the ranking.") in found.message
    assert "The validation loss" in found.message  # judged by the loss instead
