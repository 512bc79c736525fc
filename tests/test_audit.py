"""Audit: each planted data problem is found, with counts that match a pandas reference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trainwise.config import valid_keys
from trainwise.data.audit import audit
from trainwise.data.task import TaskData
from trainwise.findings import Severity, TrainwiseError


def table(x: np.ndarray, y: np.ndarray, task: str = "classification") -> TaskData:
    classes = [f"c{i}" for i in range(int(y.max()) + 1)] if task == "classification" else []
    return TaskData(name="t", kind="table", task=task, x=x.astype(np.float32), y=y,  # type: ignore[arg-type]
                    class_names=classes, feature_names=[f"f{i}" for i in range(x.shape[1])])


def clean(num_rows: int = 300, seed: int = 0) -> TaskData:
    rng = np.random.default_rng(seed)
    return table(rng.normal(size=(num_rows, 5)), np.arange(num_rows) % 3)


def by_code(findings) -> dict:
    return {f.code: f for f in findings}


def test_clean_data_flags_nothing_and_summary_is_json():
    findings, summary = audit(clean())
    assert {f.severity for f in findings} == {Severity.INFO}
    assert set(by_code(findings)) == {"class_balance", "data_audit"}
    assert summary["class_counts"] == [100, 100, 100]
    assert summary["duplicates"]["count"] == 0 and summary["conflicts"]["count"] == 0
    json.dumps(summary)
    json.dumps([f.to_dict() for f in findings])


def test_class_imbalance_warns_with_counts():
    data = clean()
    data.y = np.array([0] * 250 + [1] * 40 + [2] * 10)
    finding = by_code(audit(data)[0])["class_imbalance"]
    assert finding.severity is Severity.WARNING and finding.fix
    assert finding.evidence["class_counts"] == {"c0": 250, "c1": 40, "c2": 10}
    assert finding.evidence["ratio"] == pytest.approx(10 / 250)
    # the fix names a setting that exists, and the metrics the report now shows
    assert 'train.class_weights = "balanced"' in finding.fix
    assert "train.class_weights" in valid_keys() and "balanced accuracy" in finding.fix
    assert "class 'c2' has 10 rows, 25x fewer than the 250 of class 'c0'" in finding.message


def test_class_imbalance_wording_holds_on_one_row_and_knows_the_weights_are_set():
    # it read "class 'single' has 1 rows, 0.00 x the 899" and advised class_weights =
    # "balanced" to a run that had it set (audit s9 I11)
    data = clean(1300)
    data.y = np.array([0] * 899 + [1] * 400 + [2] * 1)
    data.class_names = ["0", "1", "single"]
    finding = by_code(audit(data)[0])["class_imbalance"]
    assert "class 'single' has 1 row, 899x fewer than the 899 of class '0'" in finding.message
    assert "'single' has a single row: it can be trained on or scored, never both" \
        in finding.message
    assert 'consider train.class_weights = "balanced"' in finding.fix
    weighted = by_code(audit(data, class_weights="balanced")[0])["class_imbalance"]
    assert 'consider train.class_weights' not in weighted.fix
    assert 'train.class_weights = "balanced" is already set' in weighted.fix
    assert "collect more rare-class rows" in weighted.fix


def test_a_class_of_fewer_than_five_rows_is_warned_about_whatever_the_ratio():
    """Audit s11 M13: a 2-row class beside 8-row ones read 'balanced enough' (ratio 0.25) and
    ended in train only, never validated or tested."""
    data = clean(90)
    data.y = np.repeat(np.arange(12), [2] + [8] * 11)  # tiny12
    data.class_names = [f"c{i}" for i in range(12)]
    found = by_code(audit(data, min_class_rows=5)[0])  # a 5-row threshold: c0 alone
    assert found["class_balance"].severity is Severity.INFO  # the ratio alone: 0.25
    few = found["few_rows_in_class"]
    assert few.severity is Severity.WARNING and few.evidence["classes"] == {"c0": 2}
    assert "'c0' (2 rows)" in few.message and "trained on but hardly" in few.message
    assert "few_rows_in_class" not in by_code(audit(clean())[0])  # 100 a class
    data.y = np.array([0] * 80 + [1] * 9 + [2])  # a 1-row class: class_imbalance names it
    assert "few_rows_in_class" not in by_code(audit(data, min_class_rows=5)[0])  # 9 rows: >= 5


def test_the_rare_class_threshold_is_one_expected_row_in_the_smallest_scored_part():
    """Review s11 VD12: 12 classes of 7 rows got no few_rows_in_class warning ('below 5 a class
    gets < 1 validation row'), then half of them had no validation row. At val 0.1 of the 0.8
    the test leaves, validation takes 0.08 of the rows: 1 / 0.08 = 12.5, so 13 rows."""
    from trainwise.data.audit import MIN_CLASS_ROWS, class_rows_needed

    assert MIN_CLASS_ROWS == class_rows_needed(0.1, 0.2) == 13
    assert class_rows_needed(0.2, 0.2) == 7  # 0.2 * 0.8 = 0.16: 6.25 -> 7
    assert class_rows_needed(0.1, 0.2, num_folds=5) == 7  # a fold: 0.2 of 0.8
    assert class_rows_needed(0.3, 0.1) == 10  # test 0.1 is the smaller part (val 0.27)
    assert class_rows_needed(0.1, 0.2, own_test=True) == 10  # validation alone: 1 / 0.1
    data = clean(84)
    data.y = np.repeat(np.arange(12), 7)  # the reviewer's cls12.csv
    data.class_names = [str(i) for i in range(12)]
    few = by_code(audit(data)[0])["few_rows_in_class"]
    assert few.evidence["classes"] == {str(i): 7 for i in range(12)}
    assert few.evidence["min_rows"] == 13 and "fewer than 13 rows" in few.message
    assert "few_rows_in_class" not in by_code(audit(data, min_class_rows=7)[0])


def test_a_target_with_about_as_many_classes_as_rows_stops_the_data_stage():
    """Audit s16 S9: 15,000 classes of 2 rows (an id-like column named as the target) got the
    few_rows_in_class warning only, trained, then ran out of memory in evaluate. Under 3 rows
    a class on average (under 2 training rows at the default split) is an error; 7 rows a
    class (the reviewer's cls12.csv above) and a 5-row few-shot set keep the warning."""
    data = clean(200)
    data.y = np.repeat(np.arange(100), 2)
    data.class_names = [f"c{i}" for i in range(100)]
    found = by_code(audit(data, target="label")[0])
    stop = found["classes_like_rows"]
    assert stop.severity is Severity.ERROR and "few_rows_in_class" not in found
    assert stop.message.startswith("The target column 'label' has 100 classes among 200 rows "
                                   "(2 rows per class on average): ")
    assert "Is 'label' an identifier (a row id, a name, a code) or a number to regress?" \
        in stop.message
    for key in ("--set data.target=COLUMN", "data.drop_columns", "--set data.task=regression"):
        assert key in stop.fix
    data.y = np.repeat(np.arange(80), [1] * 40 + [4] * 40)  # 200 rows, mean 2.5, 40 singles
    stop = by_code(audit(data)[0])["classes_like_rows"]
    assert "(2.5 rows per class on average, 40 with a single row)" in stop.message
    assert "Is it an identifier" in stop.message and stop.evidence["num_classes"] == 80
    data.y = np.repeat(np.arange(40), 5)  # a few-shot set: 5 a class, warned, not stopped
    found = by_code(audit(data)[0])
    assert "classes_like_rows" not in found and "few_rows_in_class" in found


def test_more_features_than_rows_is_noted_for_tables_only():
    """Audit s11 M2: a 100 x 500 table said 'nothing flagged' and then memorised."""
    rng = np.random.default_rng(0)
    wide = table(rng.normal(size=(100, 500)), np.arange(100) % 2)
    note = by_code(audit(wide)[0])["more_features_than_rows"]
    assert note.severity is Severity.INFO and note.evidence == {"num_rows": 100,
                                                                "num_features": 500}
    assert "train.weight_decay" in note.fix
    assert "more_features_than_rows" not in by_code(audit(clean())[0])  # 300 x 5
    wide.kind = "sequence"
    assert "more_features_than_rows" not in by_code(audit(wide)[0])


def test_single_class_is_an_error():
    data = clean()
    data.y = np.zeros(300, dtype=np.int64)
    finding = by_code(audit(data)[0])["single_class"]
    assert finding.severity is Severity.ERROR and finding.fix


def test_missing_values_counted_per_feature():
    data = clean()
    data.x[[1, 4, 9], 2] = np.nan
    data.x[7, 4] = np.inf
    findings, summary = audit(data)
    finding = by_code(findings)["missing_values"]
    assert finding.severity is Severity.WARNING
    assert summary["missing"] == {"f2": 3, "f4": 1}
    assert finding.evidence["num_values"] == 4


def test_a_fully_missing_feature_is_an_error():
    data = clean()
    data.x[:, 1] = np.nan
    finding = by_code(audit(data)[0])["missing_values"]
    assert finding.severity is Severity.ERROR and finding.evidence["empty_features"] == ["f1"]
    assert "constant_features" not in by_code(audit(data)[0])


def test_constant_and_near_constant_features_named():
    data = clean()
    data.x[:, 0] = 7.0
    data.x[:, 3] = 1000.0 + np.float32(1e-4) * (np.arange(300) % 2)  # round-off level only
    finding = by_code(audit(data)[0])["constant_features"]
    assert finding.evidence["features"] == ["f0", "f3"]


def test_duplicates_and_conflicts_match_pandas():
    data = clean()
    data.x[[20, 21, 22]] = data.x[10]  # 3 copies of row 10, labels 2, 0, 1 vs 1: a conflict
    data.x[50] = data.x[53]  # 50 and 53 have labels 2 and 2: a plain copy
    data.x[60] = data.x[61]
    data.y[61] = data.y[60]
    findings, summary = audit(data)
    frame = pd.DataFrame(data.x)
    # an exact copy repeats the inputs AND the label: rows 22, 53 and 61, not 20 and 21
    assert summary["duplicates"]["count"] == frame.assign(y=data.y).duplicated().sum() == 3
    assert frame.duplicated().sum() == 5  # inputs alone repeat in 5 rows
    dup = by_code(findings)["duplicate_samples"]
    assert "inputs and target" in dup.message
    for first, later in dup.evidence["examples"]:
        assert first < later and np.array_equal(data.x[first], data.x[later])
        assert data.y[first] == data.y[later]
    labels_per_input = frame.assign(y=data.y).groupby(list(range(5)))["y"].nunique()
    assert summary["conflicts"]["count"] == (labels_per_input > 1).sum() == 1
    conflict = by_code(findings)["conflicting_labels"]
    assert conflict.severity is Severity.WARNING
    assert sorted(conflict.evidence["examples"]) == [10, 20, 21, 22]


def test_duplicate_fix_names_contents_the_split_cannot_keep_together():
    """The fix promised that the split keeps every content's copies in one part; contents
    held by more than tie_limit rows are split as rows, and the split stopped on them."""
    from trainwise.data.copies import find_copies

    data = clean()
    data.x[100:120], data.y[100:120] = data.x[0], data.y[0]  # 21 rows: more than max(5, 1%)
    data.x[[200, 201]], data.y[[200, 201]] = data.x[1], data.y[1]  # a plain copy: kept together
    dup = by_code(audit(data)[0])["duplicate_samples"]
    assert find_copies(data.row_hashes()).num_left == dup.evidence["num_too_common"] == 1
    assert "except the one input held by more than 5 rows (21 rows)" in dup.fix
    assert "split.group_column" in dup.fix
    data.x[[200, 201]] = np.random.default_rng(2).normal(size=(2, 5))  # the common one only
    dup = by_code(audit(data)[0])["duplicate_samples"]
    assert "cannot keep these rows in one part: the one input" in dup.fix
    data.x[[200, 201]] = data.x[1]
    data.x[103:120] = np.random.default_rng(1).normal(size=(17, 5))  # 4 rows left: kept
    dup = by_code(audit(data)[0])["duplicate_samples"]
    assert dup.evidence["num_too_common"] == 0 and "except the" not in dup.fix


def test_coarse_regression_inputs_with_own_targets_are_no_copies():
    """Bedrooms and a garage flag repeat in most rows while every sale has its own price:
    the audit called them exact copies and its fix said to delete them."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.integers(1, 6, 400), rng.integers(0, 2, 400)])  # 10 inputs
    y = 50.0 * x[:, 0] + rng.normal(0, 20, 400)
    y[7] = y[3] = 123.0
    x[7] = x[3]  # inputs and target equal: the one exact copy
    findings, summary = audit(table(x, y, task="regression"))
    frame = pd.DataFrame(x)
    assert summary["duplicates"]["count"] == frame.assign(y=y).duplicated().sum() == 1
    shared = by_code(findings)["shared_inputs"]
    assert shared.evidence["count"] == frame.duplicated().sum() - 1 == 389
    assert "their targets differ: expected for coarse features" in shared.message
    assert "Deduplicate" not in shared.fix and "split stage stops" in shared.fix
    assert shared.severity is Severity.WARNING  # 40 rows per input: the split stops on them
    assert "conflicting_labels" not in by_code(findings)
    for first, later in shared.evidence["examples"]:
        assert first < later and np.array_equal(x[first], x[later]) and y[first] != y[later]
    small = table(rng.normal(size=(300, 2)), rng.normal(size=300), task="regression")
    small.x[[5, 9]] = small.x[1]  # 3 rows of one input: the split keeps them together
    shared = by_code(audit(small)[0])["shared_inputs"]
    assert shared.severity is Severity.INFO and shared.evidence["count"] == 2
    assert "keeps rows with the same inputs in one part" in shared.message
    assert "duplicate_samples" not in by_code(audit(small)[0])


def test_regression_target_stats_and_bad_targets():
    rng = np.random.default_rng(0)
    data = table(rng.normal(size=(200, 3)), rng.normal(5.0, 2.0, 200), task="regression")
    findings, summary = audit(data)
    stats = by_code(findings)["target_stats"].evidence
    assert stats["mean"] == pytest.approx(data.y.mean()) and stats["std"] == pytest.approx(
        data.y.std())
    assert summary["target"]["q50"] == pytest.approx(np.median(data.y))
    assert "conflicting_labels" not in by_code(findings)
    data.y[3] = np.nan
    assert by_code(audit(data)[0])["target_not_finite"].severity is Severity.ERROR


def test_an_infinite_target_is_named_by_its_row_in_the_source():
    """Audit s14 Z9: "1 targets are NaN or infinite" named no row; rows are the file's."""
    rng = np.random.default_rng(0)
    data = table(rng.normal(size=(50, 3)), rng.normal(size=50), task="regression")
    data.y[[4, 9]] = [np.inf, -np.inf]
    data.source_rows = np.arange(50) + 2  # two rows above were dropped when it was read
    found = by_code(audit(data)[0])["target_not_finite"]
    assert found.evidence["rows"] == [6, 11] and found.evidence["num_rows"] == 2
    assert "row 6: inf, row 11: -inf" in found.message


def test_a_constant_regression_target_is_a_data_error_naming_target_and_task():
    """Audit s14 Z18: 3.0 in every row trained on nothing, then crashed in evaluate."""
    data = table(np.random.default_rng(0).normal(size=(200, 3)), np.full(200, 3.0),
                 task="regression")
    found = by_code(audit(data)[0])["target_constant"]
    assert found.severity is Severity.ERROR and found.evidence["value"] == 3.0
    assert "data.target" in found.fix and "data.task" in found.fix
    data.y[7] = 4.5  # one other value: a (poor) target, not refused here
    assert "target_constant" not in by_code(audit(data)[0])


def test_extreme_regression_targets_are_named_and_a_normal_target_is_left_alone():
    rng = np.random.default_rng(0)
    y = rng.normal(50.0, 10.0, 1000)
    assert "target_outliers" not in by_code(audit(table(rng.normal(size=(1000, 3)), y,
                                                       task="regression"))[0])
    y[[7, 300, 301]] *= 1000  # a price typed in the wrong unit
    found = by_code(audit(table(rng.normal(size=(1000, 3)), y, task="regression"))[0])
    outliers = found["target_outliers"]
    q25, q50, q75 = np.percentile(y, [25, 50, 75])
    far = np.flatnonzero(np.abs(y - q50) > 10 * (q75 - q25))  # by hand: the three rows
    assert far.tolist() == [7, 300, 301] and outliers.evidence["num_rows"] == 3
    assert sorted(outliers.evidence["rows"]) == [7, 300, 301]
    assert outliers.evidence["values"][0] == pytest.approx(np.abs(y).max())
    assert outliers.severity is Severity.WARNING
    assert "--set data.target_transform='\"log\"'" in outliers.fix  # the option, to paste


def test_sequences_and_purity():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2, 10)).astype(np.float32)  # (N, C, T)
    x[5] = x[6]
    data = TaskData(name="s", kind="sequence", task="classification", x=x,
                    y=np.arange(60) % 2, class_names=["a", "b"])
    copy = x.copy()
    state = np.random.get_state()[1].copy()
    findings, summary = audit(data)
    assert summary["num_features"] == 20 and summary["conflicts"]["count"] == 1
    assert "conflicting_labels" in by_code(findings)  # rows 5 and 6 have labels 1 and 0
    assert summary["duplicates"]["count"] == 0  # so neither is a copy of the other
    assert np.array_equal(data.x, copy) and np.array_equal(np.random.get_state()[1], state)


def test_sample_figures_are_written(tmp_path):
    from trainwise.data.figures import plot_samples

    rng = np.random.default_rng(0)
    paths = []
    for kind, shape in (("sequence", (40, 2, 16)), ("table", (40, 3))):
        data = TaskData(name="f", kind=kind, task="classification",  # type: ignore[arg-type]
                        x=rng.normal(size=shape).astype(np.float32), y=np.arange(40) % 3,
                        class_names=["a", "b", "c"])
        data.x[0, 0] = np.nan  # figures must not choke on missing values
        paths.append(plot_samples(data, tmp_path / f"{kind}.png"))
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_exploding_loss_on_extreme_targets_points_back_to_them_first():
    from trainwise.findings import error, info
    from trainwise.stages_training import _blame_extreme_targets

    rng = np.random.default_rng(0)
    targets = rng.normal(0.0, 1.0, 500)
    exploded = error("train", "loss_exploding", "The loss exploded.", "Lower the lr.")
    trained = info("train", "trained", "Trained 3 epochs.")
    assert _blame_extreme_targets([trained, exploded], targets) == [trained, exploded]
    targets[[3, 40]] = 1000.0  # two prices in the wrong unit
    blamed = _blame_extreme_targets([trained, exploded], targets)
    assert blamed[0] is trained
    assert blamed[1].fix.startswith("First look at the 2 extreme target values")
    assert blamed[1].fix.endswith("Lower the lr.") and blamed[1].evidence["extreme_targets"] == 2
    # audit s14 R9: the data stage counted 3 over every row, the training split holds 2
    every = np.r_[targets, 1000.0]
    (_, split) = _blame_extreme_targets([trained, exploded], targets, every)
    assert split.fix.startswith("First look at the 2 of the 3 extreme target values the data "
                                "stage named (target_outliers) that are in the training split")
    (_, logged) = _blame_extreme_targets([trained, exploded], targets, every, "log")
    assert "is already in force" in logged.fix and "or train on their log" not in logged.fix


def pictures(num: int = 60, seed: int = 0) -> TaskData:
    """(num, 1, 6, 6) random uint8 images of 2 classes, loaded from /data/pets/<class>/k.png."""
    rng = np.random.default_rng(seed)
    y = np.arange(num) % 2
    names = ["cat", "dog"]
    return TaskData(name="pets", kind="image", task="classification",
                    x=rng.integers(0, 256, (num, 1, 6, 6), dtype=np.uint8), y=y,
                    class_names=names, files=[f"/data/pets/{names[c]}/{k}.png"
                                              for k, c in enumerate(y)])


def test_image_duplicates_and_conflicts_name_files_relative_to_the_folder():
    data = pictures()
    data.x[10] = data.x[4]  # two cats: a plain copy
    data.x[7] = data.x[2]  # a dog equal to a cat: a conflict
    found = by_code(audit(data)[0])
    dup = found["duplicate_samples"]
    assert dup.evidence["example_files"] == [["cat/4.png", "cat/10.png"]]  # the dog: no copy
    assert "e.g. cat/4.png = cat/10.png)" in dup.message
    assert "delete the copied files" in dup.fix
    conflict = found["conflicting_labels"]
    assert conflict.evidence["example_files"] == [["cat/2.png", "dog/7.png"]]
    assert "cat/2.png = dog/7.png" in conflict.message and "folder of its class" in conflict.fix
    data.files = []  # a table or array: rows as before
    dup = by_code(audit(data)[0])["duplicate_samples"]
    assert "example_files" not in dup.evidence and "e.g." not in dup.message


def test_cross_split_copies_name_both_files():
    from trainwise.data.leakage import check_duplicates, row_hashes

    data = pictures()
    data.x[50] = data.x[3]
    hashes = row_hashes(data.x)
    a, b = np.arange(0, 40), np.arange(40, 60)
    [dup] = check_duplicates(hashes[a], hashes[b], ("train", "test"), rows=(a, b),
                             files=data.files)
    assert dup.evidence["example_files"] == [["dog/3.png", "cat/50.png"]]
    assert "matched pairs; e.g. dog/3.png = cat/50.png)" in dup.message


def test_a_constant_image_border_is_an_info_named_by_channel_row_and_column():
    """The audit's digits: '99 features are constant ... Drop them' warned on every image set,
    though black borders are normal and a CNN cannot drop pixels."""
    data = pictures()
    data.x[:, :, 0, :] = 0  # a black top row in every image
    found = by_code(audit(data)[0])
    border = found["constant_features"]
    assert border.severity is Severity.INFO and border.evidence["num_positions"] == 6
    assert border.evidence["positions"][:2] == ["(0, 0, 0)", "(0, 0, 1)"]
    assert "6 of 36 pixel positions (c, h, w)" in border.message
    assert "constant_channels" not in found
    assert found["data_audit"].evidence["flagged"] == []


def test_a_whole_constant_channel_is_a_warning():
    data = pictures()
    data.x = np.concatenate([data.x, data.x, np.full_like(data.x, 7)], axis=1)  # blue: 7
    warn = by_code(audit(data)[0])["constant_channels"]
    assert warn.severity is Severity.WARNING and warn.evidence["constant_channels"] == [2]
    assert "channel 2 of 3 has one value" in warn.message and "(e.g. 7)" in warn.message
    data.x[:] = 0
    assert "every pixel has one value" in by_code(audit(data)[0])["constant_channels"].message


def _frame_with_constant(num_rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(num_rows, 3))
    frame = pd.DataFrame(x, columns=["age", "income", "height"]).assign(flat=1.0)
    return frame.assign(label=(x[:, 0] > 0).astype(int))


def test_audit_takes_what_run_takes_as_its_loaders_read_it():
    # audit(df) and audit((x, y)) used to fail with AttributeError: no attribute 'x'
    from trainwise.data.arrays import array_data
    from trainwise.data.tables import table_data

    frame = _frame_with_constant()
    assert audit(frame, target="label") == audit(table_data(frame, "label"))
    x, y = frame.drop(columns="label").to_numpy(), frame["label"].to_numpy()
    found, summary = audit((x, y))
    assert (found, summary) == audit(array_data(x, y))
    assert "constant_features" in by_code(found) and summary["num_samples"] == 120
    assert audit({"X": x, "y": y})[1] == summary


def test_audit_says_how_to_call_it():
    frame = _frame_with_constant()
    with pytest.raises(TrainwiseError, match=r'audit\(df\) needs the name of the target column: '
                       r'trainwise.audit\(df, target="label"\)'):
        audit(frame)
    with pytest.raises(TrainwiseError, match="audit.. got a str. Pass what trainwise.load_data"):
        audit("table.csv")


def test_class_size_warnings_wait_while_the_task_is_doubted():
    """A count (claims 0..11, falling off: 200, 100, 50, ..., 1 row) is inferred as 12
    classes with a task_inferred doubt; its tail was then warned about as rare classes to
    weight or collect (audit s14 R12). While the doubt stands they are notes naming it; with
    data.task = "classification" declared the doubt is gone and they are warnings again."""
    from trainwise.data.tables import table_data

    counts = [200, 150, 100, 60, 40, 25, 15, 10, 6, 4, 1, 2]  # rows of claims = 0 .. 11
    claims = np.repeat(np.arange(12), counts)
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=len(claims)),
                          "claims": claims})
    by_code = {f.code: f for f in audit(table_data(frame, "claims"))[0]}
    assert by_code["task_inferred"].severity is Severity.WARNING
    for code in ("class_imbalance", "few_rows_in_class"):
        assert by_code[code].severity is Severity.INFO
        assert "task_inferred says these whole numbers may be counts" in by_code[code].message
        assert by_code[code].fix.startswith("Settle the task first")
    assert by_code["few_rows_in_class"].evidence["classes"] == {  # < 13 rows; "10" (1 row) named
        "7": 10, "8": 6, "9": 4, "11": 2}  # by class_imbalance
    declared = {f.code: f for f in audit(table_data(frame, "claims", task="classification"))[0]}
    assert "task_inferred" not in declared
    assert {declared[c].severity for c in ("class_imbalance", "few_rows_in_class")} == {
        Severity.WARNING}
