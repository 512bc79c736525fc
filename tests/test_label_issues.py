"""Suspected label errors among the held-out rows: cleanlab's confident learning on the
model's out-of-sample probabilities, mapped back to the rows of the data as loaded."""

import csv
import json

import numpy as np
import pytest
import torch
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores

import trainwise
from trainwise.reporting.html import build_report
from trainwise.train.label_issues import (
    MIN_ROWS_PER_CLASS,
    Suspect,
    check_skipped,
    label_issue_finding,
    probabilities,
    ranked_label_issues,
    suspects,
)


def _planted(num_rows=400, num_classes=4, num_wrong=20, seed=0):
    """Probabilities of a good model (the true class ~0.9) and labels with `num_wrong` moved
    to another class: the rows a label check must find."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, num_classes, num_rows)
    logits = rng.normal(0, 0.5, (num_rows, num_classes))
    logits[np.arange(num_rows), truth] += 3.0
    probs = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    labels = truth.copy()
    wrong = rng.choice(num_rows, num_wrong, replace=False)
    labels[wrong] = (truth[wrong] + rng.integers(1, num_classes, num_wrong)) % num_classes
    return probs, labels, wrong


def test_flags_exactly_what_cleanlab_flags_ranked_by_self_confidence():
    probs, labels, wrong = _planted()
    ranked = ranked_label_issues(probs, labels)
    reference = find_label_issues(labels, probs)  # cleanlab's defaults, a boolean mask
    assert set(ranked) == set(np.flatnonzero(reference))
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    assert np.all(np.diff(quality[ranked]) >= 0)  # most suspect first
    assert set(ranked) <= set(wrong) and len(ranked) >= 15  # 16 of the 20 planted rows


def test_suspects_name_rows_of_the_data_classes_and_the_other_likeliest_class():
    probs = np.array([[0.9, 0.05, 0.05]] * 30 + [[0.05, 0.9, 0.05]] * 30
                     + [[0.05, 0.05, 0.9]] * 30 + [[0.02, 0.08, 0.9]])
    labels = np.array([0] * 30 + [1] * 30 + [2] * 30 + [0])  # the last row: labelled a, is c
    rows = np.arange(1000, 1091)  # positions in the data as loaded
    [found] = suspects(probs, labels, rows, "validation", ["a", "b", "c"],
                       files=[f"img{i}.png" for i in range(1091)])
    assert (found.part, found.row, found.given, found.suggested) == ("validation", 1090, "a", "c")
    assert found.p_given == pytest.approx(0.02) and found.p_suggested == pytest.approx(0.9)
    assert found.file == "img1090.png"


def test_probabilities_are_the_softmax_of_the_logits():
    logits = torch.randn(5, 3)
    np.testing.assert_allclose(probabilities(logits), torch.softmax(logits, 1).numpy(), rtol=1e-6)


def _suspect(p_given, p_suggested):
    return Suspect("test", 1, "a", "b", p_given, p_suggested)


def test_a_warning_only_when_confident_suspects_pass_one_percent_of_the_rows():
    """expected=0.0: a model that makes no confident suspect by chance, so only the share
    rule decides here (the chance rule has its own test below)."""
    confident = [_suspect(0.01, 0.97)] * 3
    assert label_issue_finding(confident, 200, "x.csv", expected=0.0).severity.value == "warning"
    # 3 confident of 400 rows is under 1%: an info that says they may be hard rows
    found = label_issue_finding(confident, 400, "x.csv", expected=0.0)
    assert found.severity.value == "info" and "hard or ambiguous" in found.message
    unsure = [_suspect(0.2, 0.6)] * 10  # many suspects, none confident: model errors
    assert label_issue_finding(unsure, 200, "x.csv", expected=0.0).severity.value == "info"
    clean = label_issue_finding([], 200, "x.csv", expected=0.0)
    assert clean.code == "label_issues" and clean.evidence["num_suspects"] == 0


def test_a_run_lists_the_planted_wrong_labels_of_its_held_out_rows(tmp_path):
    rng = np.random.default_rng(0)
    centres = 6.0 * np.eye(3, 8)  # three classes 8.5 noise widths apart: no row is ambiguous
    truth = np.repeat(np.arange(3), 300)
    x = (centres[truth] + rng.normal(0, 1, (900, 8))).astype(np.float32)
    labels = truth.copy()
    wrong = rng.choice(900, 45, replace=False)  # 5%: ~14 of them land in the held-out rows
    labels[wrong] = (truth[wrong] + 1) % 3
    result = trainwise.run(data=(x, labels), overrides=[
        "train.max_epochs=8", "train.lr=0.01", "train.batch_size=32", "run.threads=1",
        "run.checks=false",
        f"run.out_dir=\"{tmp_path}\""], report=False)
    folder = result.path
    with np.load(folder / "split.npz") as split:
        held_out = set(split["val"].tolist()) | set(split["test"].tolist())
    with open(folder / "label_issues.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    flagged = {int(r["source_row_0based"]) for r in rows}  # arrays: no row dropped
    planted = held_out & set(wrong.tolist())
    assert flagged <= held_out  # training rows are never judged
    assert len(flagged & planted) >= 0.8 * len(planted)
    assert len(flagged & planted) >= 0.8 * len(flagged)
    for r in rows:  # each row's given label is the one in the data; a planted one's
        row = int(r["source_row_0based"])  # suggestion is the class it was moved from
        assert r["given"] == str(labels[row])
        assert r["suggested"] == str(truth[row]) or row not in planted
    [finding] = [f for f in result.findings if f.code == "label_issues"]
    assert finding.severity.value == "warning", finding.evidence
    assert finding.evidence["num_checked"] == len(held_out)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["label_issues"]["rows"][0]["row"] in flagged
    html = build_report(folder).read_text(encoding="utf-8")
    assert "Held-out rows whose label looks wrong" in html
    assert "column <code>source_row_0based</code>" in html  # the CSV's own name (s14 C17)


def test_no_rows_are_listed_for_a_model_near_chance_or_too_few_rows_a_class():
    """Audit s11 M4: a model at 60% on 2 balanced classes (28 held-out rows) had 9 rows listed
    as maybe mislabelled, every one a coin flip; 25 rows of 12 classes listed 3."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 14)
    p_given = rng.uniform(0.40, 0.60, 28)  # coin flips: 16 of 28 right at most
    probs = np.stack([np.where(labels == 0, p_given, 1 - p_given),
                      np.where(labels == 1, p_given, 1 - p_given)], axis=1)
    assert len(ranked_label_issues(probs, labels)) > 0  # what the check listed before
    chance = check_skipped(probs, labels, 2)
    assert chance is not None and chance.code == "label_issues_skipped"
    assert "most frequent class 50.0%" in chance.message and chance.fix
    good, good_labels, _ = _planted()  # 400 rows, 4 classes, ~95% right: judged
    assert check_skipped(good, good_labels, 4) is None
    few = check_skipped(good[:25], good_labels[:25] % 4, 12)  # 2.1 rows a class
    assert few is not None and f"fewer than {MIN_ROWS_PER_CLASS}" in few.message


def test_a_run_near_chance_says_why_it_lists_no_suspects(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = np.arange(200) % 2  # no signal in x: a model can only guess
    result = trainwise.run(data=(x, y), report=False, overrides=[
        "train.max_epochs=3", "train.lr=0.01", "train.batch_size=32", "run.threads=1",
        "run.checks=false", f"run.out_dir=\"{tmp_path}\""])
    codes = [f.code for f in result.findings]
    assert "label_issues_skipped" in codes and "label_issues" not in codes
    assert not (result.path / "label_issues.csv").exists()


def test_expected_confident_suspects_by_hand():
    """Row 1: class 2 gets 0.03 while class 0 gets 0.95: a right label drawn as 2 (chance
    0.03) would be a confident suspect; class 1 (0.02) too. Row 2: nothing reaches 0.9."""
    from trainwise.train.label_issues import expected_confident

    probs = np.array([[0.95, 0.02, 0.03], [0.6, 0.3, 0.1]])
    assert expected_confident(probs) == pytest.approx(0.05)


def test_the_chance_count_must_be_given_not_defaulted_to_zero():
    """Review s13 VA7: a default of 0 turned the chance rule off for any caller that forgot
    it, silently bringing back the rule that called noise 'wrong labels'."""
    with pytest.raises(TypeError, match="expected"):
        label_issue_finding([_suspect(0.01, 0.97)] * 3, 200, "x.csv")  # type: ignore[call-arg]


def test_confident_suspects_within_chance_are_not_called_wrong_labels():
    """Audit s13 P15: a noisy outcome whose every label is right (drawn from a calibrated
    model's own probabilities): 3 confident suspects where chance gives ~0.7 are an info,
    and nothing says the training rows are 'likely wrong too'."""
    confident = [_suspect(0.01, 0.97)] * 3
    found = label_issue_finding(confident, 256, "x.csv", expected=0.74)
    assert found.severity.value == "info" and "likely wrong too" not in found.fix
    assert "would give about 0.7" in found.message
    beyond = label_issue_finding([_suspect(0.01, 0.97)] * 14, 256, "x.csv", expected=0.74)
    assert beyond.severity.value == "warning" and "about 5.2% of them" in beyond.fix


def test_the_mistakes_figure_names_no_file_for_a_row_past_the_files(monkeypatch, tmp_path):
    """Review s13 VA9: the mistakes figure built its Suspects with a second copy of
    suspects()'s lookups, without the guard for a row past `files` (an IndexError)."""
    from types import SimpleNamespace

    from trainwise import stages_labels
    from trainwise.data import suspect_figure
    from trainwise.data.task import TaskData

    data = TaskData("d", "image", "classification", np.zeros((6, 1, 2, 2), np.uint8),
                    np.array([0, 1] * 3), class_names=["a", "b"], files=["a/0.png"])
    drawn: list[Suspect] = []
    monkeypatch.setattr(suspect_figure, "plot_suspects",
                        lambda data, shown, path, title, root: drawn.extend(shown))
    ctx = SimpleNamespace(data=data, fabric=SimpleNamespace(is_global_zero=True), meta={},
                          run=SimpleNamespace(figure_path=lambda name: tmp_path / name),
                          config=SimpleNamespace(data=SimpleNamespace(source=str(tmp_path))))
    probs = np.array([[0.1, 0.9], [0.2, 0.8]])  # both labelled 'a', both predicted 'b'
    stages_labels._add_mistakes(ctx, [("test", np.array([0, 0]), np.array([0, 5]), probs)])
    assert [(s.row, s.file, s.given, s.suggested, s.p_suggested) for s in drawn] == [
        (0, "a/0.png", "a", "b", 0.9), (5, "", "a", "b", 0.8)]
    assert ctx.meta["mistakes"] == {"num_wrong": 2, "num_test": 2}


def test_figure_panels_name_same_named_images_by_their_class_folder(tmp_path):
    """Review s13 VA6: panels named an image by its basename, and class folders reuse names
    (a/img0.png and b/img0.png): the title is the path under the data folder, a long one
    shortened from the left so the file name stays."""
    from trainwise.data.suspect_figure import MAX_PATH, panel_name, suspects_figure
    from trainwise.data.task import TaskData

    deep = tmp_path / "scans" / "2024" / "ward_seven_followup" / "a" / "img0.png"
    files = [str(tmp_path / "a" / "img0.png"), str(tmp_path / "b" / "img0.png"), str(deep)]
    data = TaskData("d", "image", "classification", np.zeros((3, 1, 4, 4), np.uint8),
                    np.array([0, 1, 0]), class_names=["a", "b"], files=files)
    found = [Suspect("validation", row, "a", "b", 0.01, 0.97, files[row]) for row in range(3)]
    figure = suspects_figure(data, found, root=str(tmp_path))
    titles = [ax.get_title().split("\n")[0] for ax in figure.axes if ax.get_title()]
    assert titles[:2] == ["a/img0.png", "b/img0.png"]
    assert len(titles[2]) == MAX_PATH and titles[2].startswith("...")
    assert titles[2].endswith("ward_seven_followup/a/img0.png"[-(MAX_PATH - 3):])
    assert panel_name(Suspect("test", 7, "a", "b", 0.01, 0.97)) == "test 7"  # no file


def _binary(labels, correct):
    """Probabilities 0.8 on the given label where `correct`, else 0.8 on the other class."""
    predicted = np.where(correct, labels, 1 - labels)
    return np.stack([np.where(predicted == 0, 0.8, 0.2), np.where(predicted == 1, 0.8, 0.2)],
                    axis=1)


def test_imbalanced_classes_are_gated_on_balanced_accuracy_not_the_majority_share():
    """Audit s14 C5: at 3% positives a model at balanced accuracy 83% was never checked, as
    its accuracy (87%) could not beat the 97% majority share. Here 25 of 30 positives and
    850 of 970 negatives right: accuracy 87.5% < 97%, balanced accuracy
    (25/30 + 850/970) / 2 = 85.5%, far above 50%."""
    labels = np.repeat([0, 1], [970, 30])
    correct = np.ones(1000, bool)
    correct[850:970] = False
    correct[970:975] = False
    assert check_skipped(_binary(labels, correct), labels, 2) is None
    # the same imbalance at chance: 15 of 30 positives, 485 of 970 negatives
    at_chance = np.arange(1000) % 2 == 0
    skipped = check_skipped(_binary(labels, at_chance), labels, 2)
    assert skipped is not None and "balanced accuracy" in skipped.message
    assert skipped.evidence["score"] == "balanced accuracy"
    assert abs(skipped.evidence["balanced_accuracy"] - 0.5) < 0.01


def _over_confident(num_rows=2000, num_classes=10, flipped=0.0, seed=0):
    """Labels drawn from calibrated probabilities (so every label is right) and a model that
    sharpens them as logits / 0.6 would: over-confident, as a trained network is mildly
    (audit s14 C4); `flipped`: that share of labels then moved to another class."""
    from trainwise.train.label_calibration import scaled

    rng = np.random.default_rng(seed)
    truth = torch.softmax(torch.as_tensor(rng.normal(0, 5.0, (num_rows, num_classes))),
                          dim=1).numpy()
    labels = np.array([rng.choice(num_classes, p=row / row.sum()) for row in truth])
    wrong = rng.choice(num_rows, int(flipped * num_rows), replace=False)
    labels[wrong] = (labels[wrong] + rng.integers(1, num_classes, len(wrong))) % num_classes
    return scaled(truth, 0.6), labels


def _verdict(probs, labels):
    from trainwise.stages_labels import _expected

    parts = [("validation", labels, np.arange(len(labels)), probs)]
    found = suspects(probs, labels, np.arange(len(labels)), "validation",
                     [str(k) for k in range(probs.shape[1])])
    return label_issue_finding(found, len(labels), "x.csv", *_expected(parts))


def test_an_over_confident_model_with_right_labels_is_said_to_be_possibly_over_confident():
    """Audit s14 C4: on label-clean data the chance yardstick from the model's own
    over-confident probabilities was beaten by its own errors (26 confident vs 10.6 expected)
    and the fix said ~1.1% of the training labels were wrong. The yardstick recalibrated by
    the fitted temperature (here the sharpening's 1 / 0.6) explains the count: the warning
    says over-confidence may be all there is and claims no wrong training labels, while 5%
    flipped labels still get the wrong-label warning."""
    clean = _verdict(*_over_confident())
    assert clean.evidence["num_confident"] > 3 * clean.evidence["expected_confident"]
    assert clean.evidence.get("possibly_over_confidence") is True, clean.evidence
    assert "possibly over-confidence" in clean.message
    assert "training rows" not in clean.fix
    assert clean.evidence["temperature"] == pytest.approx(1 / 0.6, rel=0.15)
    noisy = _verdict(*_over_confident(flipped=0.05))
    assert noisy.severity.value == "warning" and "possibly_over_confidence" not in \
        noisy.evidence, noisy.evidence
    assert "training rows were drawn alike" in noisy.fix


def test_expected_confident_with_a_temperature_by_hand():
    """Row [0.95, 0.02, 0.03] at temperature 2: weights sqrt(p) normalised; class 1 and 2 are
    confident suspects (<= 0.05 while 0.95 >= 0.9): expected = (sqrt .02 + sqrt .03) / sum."""
    from trainwise.train.label_issues import expected_confident

    probs = np.array([[0.95, 0.02, 0.03]])
    root = np.sqrt(probs[0])
    assert expected_confident(probs, 2.0) == pytest.approx((root[1] + root[2]) / root.sum())


def test_an_imbalanced_model_that_ranks_well_but_never_answers_the_rare_class_is_checked():
    """Audit s14 C5 (small_fraud: ROC-AUC 0.97, balanced accuracy 50% at the argmax): the
    check reads probabilities, so a model that ranks the rows apart is judged. Here every
    positive gets P 0.3-0.4 and every negative 0.0-0.2: ROC-AUC 1, the argmax never says 1."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [970, 30])
    p1 = np.where(labels == 1, rng.uniform(0.3, 0.4, 1000), rng.uniform(0.0, 0.2, 1000))
    probs = np.stack([1 - p1, p1], axis=1)
    assert (probs.argmax(axis=1) == 0).all()
    assert check_skipped(probs, labels, 2) is None
    # no ranking either: skipped, naming both scores
    flat = np.stack([1 - rng.uniform(0, 0.2, 1000), np.zeros(1000)], axis=1)
    flat[:, 1] = 1 - flat[:, 0]
    skipped = check_skipped(flat, labels, 2)
    assert skipped is not None and "ROC-AUC" in skipped.message


def test_class_weighted_probabilities_are_unweighted_before_the_check():
    """Balanced weights n / (k n_c) over-state a class by its weight; undone, P 0.5 / 0.5 on
    90 / 10 training rows is 0.9 / 0.1 (each class times its count, renormalised)."""
    from types import SimpleNamespace

    from trainwise.stages_labels import _unweighted

    ctx = SimpleNamespace(data=object(), splits={"train": SimpleNamespace(
        y=np.repeat([0, 1], [90, 10]))}, config=SimpleNamespace(
        train=SimpleNamespace(class_weights="balanced")))
    probs = np.array([[0.5, 0.5]], dtype=np.float32)
    np.testing.assert_allclose(_unweighted(ctx, probs), [[0.9, 0.1]], rtol=1e-6)
    ctx.config.train.class_weights = "none"
    assert _unweighted(ctx, probs) is probs


def test_the_recalibration_is_fitted_only_when_its_count_is_read():
    """review s14 VE5: fit_calibration ran on every checked run (23 s at 20,000 rows x 1,000
    classes) though only a count beating the first yardstick reads it; its fit is capped by
    rows x classes too."""
    from trainwise.train.label_calibration import Calibration, fit_rows

    def never() -> tuple:
        raise AssertionError("fitted though not read")

    few = [_suspect(0.01, 0.97)] * 2  # under WARN_MIN confident: the info path
    assert label_issue_finding(few, 400, "x.csv", 0.5, never).severity.value == "info"
    assert label_issue_finding([], 400, "x.csv", 0.5, never).severity.value == "info"
    calls = []

    def fitted() -> tuple:
        calls.append(1)
        return 0.5, Calibration(1.2)

    many = label_issue_finding([_suspect(0.01, 0.97)] * 14, 256, "x.csv", 0.74, fitted)
    assert calls == [1] and many.evidence["temperature"] == 1.2
    assert fit_rows(50_000, 10) == 20_000 and fit_rows(50_000, 1_000) == 2_000
    assert fit_rows(50_000, 100_000) == 1_000 and fit_rows(500, 1_000) == 500


def test_a_ranking_too_few_rows_can_judge_is_not_called_no_ranking():
    """Review s16 VS6: held-out rows [60, 30, 1], the argmax always 'a', a perfect ranking:
    the skip said "nor does it rank them apart (ROC-AUC 1.000)", though one row of 'c' cannot
    tell a perfect ranking from chance (ranking.chance_auc_high is None there)."""
    labels = np.repeat([0, 1, 2], [60, 30, 1])
    probs = np.zeros((91, 3))
    probs[:, 0] = 0.5  # the argmax: 'a' for every row
    probs[np.arange(91), labels] += 0.4  # the own class ranked first within each column
    probs /= probs.sum(axis=1, keepdims=True)
    skipped = check_skipped(probs, labels, 3, ["a", "b", "c"])
    assert skipped is not None and "rank them apart" not in skipped.message
    assert ("its ranking is not judged (ROC-AUC 1.000: with 1 held-out row of class 'c' (of "
            "91 rows)") in skipped.message
    assert "raise split.val_fraction" in skipped.fix
