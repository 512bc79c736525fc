"""The split stage end to end: inferred keys warn and are honoured, declared keys refuse row
splits, the test part is carved first, and every pair of parts is proved leak-free."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.augment import augment_findings, augment_plan, random_flip
from trainwise.data.errors import DataError
from trainwise.data.folds import kfold_indices
from trainwise.data.part_findings import missing_classes
from trainwise.data.plan import SplitSettings, folds_note, key_findings, plan_split
from trainwise.data.tables import table_data
from trainwise.data.task import TaskData


def visits(n_patients: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 12, n_patients)
    patient = np.repeat(np.arange(n_patients), sizes)
    day = np.concatenate([np.sort(rng.choice(300, s, replace=False)) for s in sizes])
    return pd.DataFrame({
        "patient_id": patient,
        "visit": (np.datetime64("2024-01-01") + day.astype("timedelta64[D]")).astype(str),
        "dose": rng.normal(size=len(patient)),
        "label": rng.integers(0, 2, len(patient))})


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_inferred_group_is_honoured_with_a_warning_naming_the_setting():
    data = table_data(visits().drop(columns="visit"), "label")
    [warn] = key_findings(data)
    assert warn.code == "inferred_group_key" and "patient_id" in warn.message
    assert "not used as a feature" in warn.message and "patient_id" not in data.feature_names
    assert "--set split.group_column=patient_id" in warn.fix
    assert "--set split.group_column=none` and it stays a feature" in warn.fix
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2))
    assert result.strategy == "stratified_group"
    for a, b in ((result.train, result.val), (np.r_[result.train, result.val], result.test)):
        assert not set(data.groups[a]) & set(data.groups[b])
    assert codes(result.findings) == ["split_parts", "no_leakage", "no_leakage"]
    assert all(f.evidence["groups_checked"] for f in result.findings[1:])


def test_row_strategy_ignores_an_inferred_key_with_a_warning_but_a_declared_one_is_an_error():
    frame = visits().drop(columns="visit")
    inferred = table_data(frame, "label")
    [warn] = key_findings(inferred, "stratified")
    assert warn.code == "ignored_group_key" and "--set split.group_column=patient_id" in warn.fix
    assert "not used as a feature" in warn.message and "group_column=none" in warn.fix
    result = plan_split(inferred, SplitSettings(strategy="stratified"))
    assert result.strategy == "stratified"
    declared = table_data(frame, "label", group_column="patient_id")
    with pytest.raises(DataError, match="ignores the declared group column"):
        plan_split(declared, SplitSettings(strategy="random"))


@pytest.mark.parametrize("declared", [False, True])
def test_group_and_time_keys_keep_groups_whole_with_later_starts_held_out(declared):
    # the audit's case: a declared subject column next to a date column must not become a
    # per-series time split, where each subject's later rows land in val and test
    data = table_data(visits(), "label", group_column="patient_id" if declared else "")
    warnings = {f.code: f.message for f in key_findings(data)}
    assert "keep groups whole" in warnings["inferred_time_key"]
    if not declared:
        assert "keep each of its values on one side" in warnings["inferred_group_key"]
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2, gap="2D"))
    assert result.strategy == "group_time"
    first = pd.Series(data.times).groupby(data.groups).transform("min").to_numpy()
    seen = np.r_[result.train, result.val]
    for a, b in ((result.train, result.val), (seen, result.test)):
        assert not set(data.groups[a]) & set(data.groups[b])
        assert first[b].min() - first[a].max() > pd.Timedelta("2D")
    proofs = [f for f in result.findings if f.code == "no_leakage"]
    assert len(proofs) == 2 and all(f.evidence["groups_checked"] for f in proofs)
    assert codes(result.findings).count("group_start_order") == 2
    counted = len(result.train) + len(result.val) + len(result.test) + result.num_dropped
    assert counted == len(data.y)  # every row in a part or counted as dropped


def test_strategy_time_splits_each_series_and_says_the_series_straddle():
    data = table_data(visits(), "label")
    warnings = {f.code: f.message for f in key_findings(data, "time")}
    assert "straddle" in warnings["inferred_group_key"]
    assert "within each group" in warnings["inferred_time_key"]
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2, gap="2D",
                                            strategy="time"))
    assert result.strategy == "time"
    orders = [f.message for f in result.findings if f.code == "time_order"]
    assert len(orders) == 2 and all("series that have rows in both" in m for m in orders)
    assert "time_overlap" not in codes(result.findings)
    frame = pd.DataFrame({"s": data.groups, "t": data.times})
    last_train = frame.iloc[result.train].groupby("s")["t"].max()
    first_test = frame.iloc[result.test].groupby("s")["t"].min()
    both = last_train.index.intersection(first_test.index)
    assert (first_test[both] - last_train[both] > pd.Timedelta("2D")).all()
    seen = len(result.train) + len(result.val) + len(result.test) + result.num_dropped
    assert seen == len(data.y)  # every row in a part or counted as dropped
    straddle = [f for f in result.findings if f.code == "series_straddle"]
    shared = set(data.groups[result.train]) & set(data.groups[result.val])
    assert straddle[0].evidence["num_shared_groups"] == len(shared) > 0
    assert "group_time" in straddle[0].message


def test_planted_copies_across_parts_are_errors_and_folds_are_each_proved():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    x[200:210] = x[0]  # 11 copies of one row
    data = TaskData(name="t", kind="vector", task="classification", x=x,
                    y=np.arange(300) % 3, class_names=["a", "b", "c"])
    result = plan_split(data, SplitSettings(num_folds=4, test_fraction=0.2))
    pool = np.setdiff1d(np.arange(300), result.test)  # folds index the pool left after test
    assert len(result.folds) == 4 and np.array_equal(result.train, pool[result.folds[0].train])
    assert codes(result.findings).count("cross_split_duplicates") >= 1
    names = {tuple(k for k in f.evidence if k.startswith("num_rows_")) for f in result.findings}
    assert ("num_rows_train0", "num_rows_val0") in names and \
        ("num_rows_train3", "num_rows_val3") in names
    for j, fold in enumerate(result.folds):  # examples name data rows of the fold's parts
        for f in result.findings:
            for a, b in f.evidence.get(f"examples_train{j}_val{j}", []):
                assert a in pool[fold.train] and b in pool[fold.val]
                assert np.array_equal(x[a], x[b])


def test_recipe_saves_test_and_folds(tmp_path):
    import trainwise

    path = tmp_path / "visits.csv"
    visits().drop(columns="visit").to_csv(path, index=False)
    result = trainwise.run({"data": {"source": str(path)},
                            "run": {"out_dir": str(tmp_path), "threads": 1},
                            "split": {"num_folds": 3}}, until="split", report=False)
    saved = np.load(result.path / "split.npz")
    assert {"train", "val", "test", "fold0_train", "fold2_val"} <= set(saved.files)
    groups = pd.read_csv(path)["patient_id"].to_numpy()
    assert not set(groups[saved["test"]]) & set(groups[np.r_[saved["train"], saved["val"]]])
    assert "inferred_group_key" in codes(result.findings)


def test_classes_missing_from_a_part_are_named_with_a_fix():
    counts = {"train": [50, 30, 2, 0], "val": [6, 4, 0, 0], "test": [12, 8, 0, 1]}
    [warn] = missing_classes(counts, ["a", "b", "axolotl", "rare"])
    assert warn.severity == "warning" and warn.code == "classes_missing_from_split"
    assert warn.evidence["classes"] == {"axolotl": ["val", "test"], "rare": ["train", "val"]}
    assert "'axolotl' (2 rows) has none in val, test" in warn.message
    assert "merge" in warn.fix and "Collect more rows" in warn.fix
    assert missing_classes({"train": [5, 5, 0], "val": [1, 1, 0]}, ["a", "b", "empty"]) == []


def test_a_class_kept_in_train_by_the_stratified_split_is_named_with_the_reason():
    counts = {"train": [50, 30, 1], "val": [6, 4, 0], "test": [12, 8, 0]}
    [warn] = missing_classes(counts, ["a", "b", "single"], "stratified")
    assert "'single' (1 row) has none in val, test" in warn.message
    assert "kept 'single' in train on purpose" in warn.message
    assert warn.evidence["kept_in_train"] == ["single"]
    [plain] = missing_classes(counts, ["a", "b", "single"], "random")  # luck, not a choice
    assert "on purpose" not in plain.message and plain.evidence["kept_in_train"] == []


def test_split_stage_warns_when_a_rare_class_misses_val_and_test(tmp_path):
    import trainwise

    rng = np.random.default_rng(0)
    label = np.r_[np.repeat(["cat", "dog"], 150), ["axolotl"] * 2]  # the audit's multi.csv
    path = tmp_path / "rare.csv"
    pd.DataFrame({"a": rng.normal(size=302), "label": label}).to_csv(path, index=False)
    result = trainwise.run({"data": {"source": str(path)},
                            "run": {"out_dir": str(tmp_path), "threads": 1}},
                           until="split", report=False)
    [warn] = [f for f in result.findings if f.code == "classes_missing_from_split"]
    saved = np.load(result.path / "split.npz")
    rare = np.flatnonzero(label == "axolotl")
    missing = [part for part in ("val", "test") if not np.isin(rare, saved[part]).any()]
    assert missing and warn.evidence["classes"] == {"axolotl": missing}


def image_data(name: str = "pets") -> TaskData:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    return TaskData(name=name, kind="image", task="classification", x=x, y=np.array([0, 1]),
                    class_names=["a", "b"])


def test_augment_presets():
    assert augment_plan(image_data())[0].flip  # natural images: flip + normalise
    plan, [warn] = augment_plan(image_data("digits"), "flip")
    assert not plan.flip and warn.code == "flip_refused" and "orientation" in warn.message
    vector = TaskData(name="wine", kind="vector", task="classification", x=np.zeros((2, 3)),
                      y=np.array([0, 1]))
    assert codes(augment_findings(vector, "flip")) == ["flip_not_applicable", "augment"]
    assert not augment_plan(image_data(), "none")[0].flip
    tokens = TaskData(name="reviews", kind="tokens", task="classification",
                      x=np.zeros((2, 5), dtype=np.int64), y=np.array([0, 1]))
    [text] = augment_findings(tokens)  # METHOD.md §1's caution for text (audit s8 R10)
    assert not text.evidence["flip"] and "back-translation" in text.message
    [auto] = augment_findings(image_data("digits"))  # audit s8 R10: say why nothing flips
    assert not auto.evidence["flip"] and "no flips: handwritten digits carry orientation" in (
        auto.message)


def test_random_flip_uses_its_generator_only():
    import torch

    batch = torch.arange(4 * 1 * 2 * 3, dtype=torch.float32).reshape(4, 1, 2, 3)
    state = torch.get_rng_state()
    first = random_flip(batch, torch.Generator().manual_seed(0))
    again = random_flip(batch, torch.Generator().manual_seed(0))
    assert torch.equal(first, again) and torch.equal(state, torch.get_rng_state())
    for row, out in zip(batch, first, strict=True):
        assert torch.equal(out, row) or torch.equal(out, row.flip(-1))


def test_loader_applies_augment_from_its_own_seed():
    import torch

    from trainwise.data.tensors import to_loader

    x, y = torch.arange(64 * 6, dtype=torch.float32).reshape(64, 1, 2, 3), torch.arange(64)
    state = torch.get_rng_state()
    first = [b for b, _ in to_loader(x, y, 16, shuffle=False, seed=3, augment=random_flip)]
    again = [b for b, _ in to_loader(x, y, 16, shuffle=False, seed=3, augment=random_flip)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    flipped = torch.cat(first)
    mirrored = [torch.equal(out, row.flip(-1)) for out, row in zip(flipped, x, strict=True)]
    assert 16 < sum(mirrored) < 48 and torch.equal(state, torch.get_rng_state())
    plain = torch.cat([b for b, _ in to_loader(x, y, 16, shuffle=False, seed=3)])
    assert torch.equal(plain, x)


def test_val_or_test_parts_too_small_to_score_are_named_with_their_interval():
    from trainwise.data.part_findings import small_parts

    assert small_parts({"train": 10, "val": 30, "test": 400}) == []
    [warn] = small_parts({"train": 120, "val": 14, "test": 36})  # the wine data's parts
    assert warn.code == "small_scored_parts" and warn.evidence == {"num_val": 14}
    assert "one row = 7 points" in warn.message  # 100 / 14
    assert "+-26 points" in warn.message  # 1.96 * 0.5 / sqrt(14) = 0.262
    assert "split.val_fraction" in warn.fix


def test_an_inferred_keys_flag_pastes_into_a_shell_and_parses(tmp_path):
    """'Customer Name' unquoted split into two shell words ('config file Name does not
    exist'); the flag in the fix is quoted and reads back as the column."""
    import shlex

    from trainwise.config import from_dict

    rng = np.random.default_rng(0)
    names = rng.choice([f"c{k:03d}" for k in range(60)], 600)
    frame = pd.DataFrame({"Customer Name": names, "x": rng.normal(size=600),
                          "label": rng.integers(0, 2, 600)})
    data = table_data(frame, "label")
    (warn,) = [f for f in key_findings(data) if f.code == "inferred_group_key"]
    flag = warn.fix[warn.fix.index("--set"):].split("`")[0]
    words = shlex.split(flag)
    assert words[0] == "--set" and len(words) == 2
    assert from_dict({}, [words[1]]).split.group_column == "Customer Name"


def test_copy_examples_name_data_rows_not_positions_inside_the_parts():
    """The audit's messy folder: cross_split_duplicates said [45, 0] (a position inside
    train+val) where near_duplicate_images said [62, 0] (the data row) for the same pair."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    x_test = rng.normal(size=(50, 5)).astype(np.float32)
    x_test[[7, 30]] = x[[123, 250]]  # a shipped test part holding two pool rows
    data = TaskData(name="t", kind="vector", task="classification", x=x, y=np.arange(300) % 3,
                    x_test=x_test, y_test=np.arange(50) % 3, class_names=["a", "b", "c"])
    result = plan_split(data, SplitSettings(val_fraction=0.2))
    [dup] = [f for f in result.findings if f.code == "cross_split_duplicates"]
    assert dup.evidence["examples_train+val_test"] == [[123, 7], [250, 30]]


def test_time_folds_train_on_the_last_and_largest_window(tmp_path):
    # expanding windows: fold 0 trains on the earliest block alone, so training on it would
    # leave most of the pool unused; the recipe takes the last fold and says so
    import trainwise

    data = table_data(visits(), "label")
    result = plan_split(data, SplitSettings(num_folds=3))
    assert result.strategy == "group_time" and result.trained_fold == 2
    pool = np.setdiff1d(np.arange(len(data.y)), result.test)
    last = result.folds[-1]
    assert np.array_equal(result.train, pool[last.train])
    assert np.array_equal(result.val, pool[last.val])
    sizes = [len(f.train) for f in result.folds]
    assert sizes == sorted(sizes) and len(result.train) == max(sizes)
    assert len(result.train) + len(result.val) == len(pool)  # no gap: every pool row used
    path = tmp_path / "visits.csv"
    visits().to_csv(path, index=False)
    run = trainwise.run({"data": {"source": str(path)}, "split": {"num_folds": 3},
                         "run": {"out_dir": str(tmp_path), "threads": 1}},
                        until="split", report=False)
    saved = np.load(run.path / "split.npz")
    pool = np.setdiff1d(np.arange(len(visits())), saved["test"])  # folds index this pool
    assert np.array_equal(saved["train"], pool[saved["fold2_train"]])
    [headline] = [f.message for f in run.findings if f.code == "split"]
    assert "the run trains on fold 2, the last" in headline


def test_row_folds_still_train_on_fold_0():
    data = table_data(visits().drop(columns="visit"), "label")
    result = plan_split(data, SplitSettings(num_folds=3))
    assert result.strategy == "stratified_group" and result.trained_fold == 0
    assert "the run trains and is tested on fold 0" in folds_note(result)


def test_small_regression_parts_are_worded_for_rmse_not_accuracy():
    from scipy.stats import chi2

    from trainwise.data.part_findings import small_parts

    [warn] = small_parts({"train": 200, "val": 23, "test": 58}, "regression")  # macro.csv's
    assert "accuracy" not in warn.message and "points" not in warn.message
    # reference: n * MSE / sigma^2 ~ chi2(n), so RMSE / sigma spans sqrt(chi2 quantiles / n)
    low, high = np.sqrt(chi2.ppf([0.025, 0.975], 23) / 23)
    assert "uncertain by about +-29%" in warn.message and round((high - low) / 2, 2) == 0.29


def test_key_findings_name_the_gap_only_when_set_and_npz_arrays_as_arrays():
    from trainwise.data.arrays import array_data

    data = table_data(visits(), "label")
    plain = {f.code: f.message for f in key_findings(data)}["inferred_time_key"]
    assert "gap" not in plain and plain.endswith("start later in validation.")
    gapped = {f.code: f.message for f in key_findings(data, "auto", "7D")}["inferred_time_key"]
    assert "validation, 7D apart (split.gap)." in gapped
    rng = np.random.default_rng(0)
    arrays = array_data(rng.normal(size=(20, 3)), np.arange(20) % 2, groups=np.arange(20) // 4,
                        times=np.arange(20.0))
    messages = sorted(f.message for f in key_findings(arrays))
    assert messages == ["group key: the `groups` array (declared).",
                        "time key: the `times` array (declared)."]


def test_folds_made_uneven_by_one_big_group_are_a_warning():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"patient_id": np.r_[np.zeros(250, int), np.repeat(np.arange(1, 11),
                                                                             5)],
                          "dose": rng.normal(size=300), "label": np.arange(300) % 2})
    data = table_data(frame, "label", group_column="patient_id")
    result = plan_split(data, SplitSettings(num_folds=5, test_fraction=0.1))
    [warn] = [f for f in result.findings if f.code == "uneven_folds"]
    sizes = [len(f.val) for f in result.folds]
    assert warn.evidence["val_sizes"] == sizes and max(sizes) == 250
    assert "group '0' holds 250 of" in warn.message
    even = plan_split(table_data(visits().drop(columns="visit"), "label"),
                      SplitSettings(num_folds=5))
    assert "uneven_folds" not in codes(even.findings)


def patients(sizes: list[int]) -> pd.DataFrame:
    """Patients with the given numbers of visits, each starting after the previous one."""
    patient = np.repeat(np.arange(len(sizes)), sizes)
    day = np.arange(len(patient))
    return pd.DataFrame({
        "patient_id": patient,
        "visit": (np.datetime64("2024-01-01") + day.astype("timedelta64[D]")).astype(str),
        "dose": np.linspace(0, 1, len(patient)), "label": np.arange(len(patient)) % 2})


def test_too_few_groups_are_counted_against_the_parts_they_must_fill():
    # the audit's two_groups.csv: the test part took one of 2 groups, and the old error said
    # "only 1 group in the group column"
    data = table_data(patients([10, 11]), "label")
    with pytest.raises(DataError, match="2 groups \\(column 'patient_id'\\) cannot fill train, "
                                        "validation and test: .* at least 3 groups") as caught:
        plan_split(data, SplitSettings())
    assert "only 1 group" not in str(caught.value)
    assert 'split.group_column = "none"' in str(caught.value)
    with pytest.raises(DataError, match="cannot fill 3 time folds and a test part: .* at least "
                                        "5 groups"):
        plan_split(table_data(patients([9, 9, 10]), "label"), SplitSettings(num_folds=3))


def test_a_test_cut_that_leaves_too_few_groups_suggests_folds_that_fit_the_rest():
    # 10 groups, the test part takes 4 and leaves 6: the old advice counted the 10 ("lower
    # split.num_folds to 9 or fewer", above the 8 set) and said to ship a test part
    data = table_data(patients([10] * 10), "label")
    for strategy, most in (("group", 6), ("group_time", 5)):  # time folds: k + 1 blocks
        with pytest.raises(DataError, match=f"left 6 for 8 .*folds, .* Lower "
                                            f"split.test_fraction, or add groups, lower "
                                            f"split.num_folds to {most} or fewer") as caught:
            plan_split(data, SplitSettings(test_fraction=0.4, num_folds=8, strategy=strategy))
        assert "ship a test part" not in str(caught.value)
        fits = plan_split(data, SplitSettings(test_fraction=0.4, num_folds=most,
                                              strategy=strategy))
        assert len(fits.folds) == most  # the advice works


def test_the_plan_and_kfold_indices_count_groups_in_the_same_words():
    # one counter for both paths: the same sentence, each with its own numbers (the plan
    # also carves a test part, so it needs one group more and may suggest shipping one)
    data = table_data(patients([10, 10, 10]), "label")
    with pytest.raises(DataError) as planned:
        plan_split(data, SplitSettings(num_folds=5, strategy="group"))
    with pytest.raises(DataError) as direct:
        kfold_indices(data.y, num_folds=5, groups=data.groups, strategy="group")
    assert str(planned.value).startswith("3 groups (column 'patient_id') cannot fill 5 folds "
                                         "and a test part: each group stays whole in one part, "
                                         "so this needs at least 6 groups")
    assert "lower split.num_folds to 2 or fewer, ship a test part" in str(planned.value)
    assert str(direct.value).startswith("3 groups cannot fill 5 folds: each group stays whole "
                                        "in one part, so this needs at least 5 groups")
    assert "lower split.num_folds to 3 or fewer, or, if the rows" in str(direct.value)


def test_empty_val_after_a_test_cut_names_the_pool_and_no_unset_setting():
    # the audit's three_groups.csv: 3 patients, dated; neither split.cut nor split.gap set
    data = table_data(patients([7, 13, 8]), "label")
    with pytest.raises(DataError) as caught:
        plan_split(data, SplitSettings())
    message = str(caught.value)
    assert "validation part empty" in message and "split.val_fraction to at least" in message
    assert "split.cut" not in message and "split.gap" not in message
    assert "drawn from the 20 rows (2 groups) left after the 8-row test part" in message


def test_an_empty_test_part_is_called_the_test_part():
    data = table_data(patients([10, 10, 60]), "label")  # the last patient: 75% of the rows
    with pytest.raises(DataError, match="leaves the test part empty: .* Raise "
                                        "split.test_fraction to at least 0.38"):
        plan_split(data, SplitSettings())


def test_a_test_part_that_takes_all_but_one_group_is_named():
    frame = patients([1, 1, 20]).drop(columns="visit")  # 20% of 22 rows: the two small groups
    with pytest.raises(DataError, match=r"the test part \(split.test_fraction = 0.2\) took 2 of "
                                        r"the 3 groups .* left 1 for train and validation"):
        plan_split(table_data(frame, "label"), SplitSettings())


def test_the_split_says_which_groups_and_periods_went_to_each_part():
    data = table_data(visits(), "label")
    result = plan_split(data, SplitSettings(val_fraction=0.2, test_fraction=0.2))
    [parts] = [f for f in result.findings if f.code == "split_parts"]
    frame = pd.DataFrame({"g": data.groups, "t": data.times})
    for name, rows in (("train", result.train), ("val", result.val), ("test", result.test)):
        part = frame.iloc[rows]  # the reference: pandas on the same rows
        assert parts.evidence["parts"][name] == {
            "rows": len(rows), "groups": part["g"].nunique(),
            "first": part["t"].min().strftime("%Y-%m-%d"),
            "last": part["t"].max().strftime("%Y-%m-%d")}
        assert result.num_groups[name] == part["g"].nunique()  # the count stage_split reuses
    first = parts.evidence["parts"]["test"]["first"]
    assert f"test {len(result.test)} rows, " in parts.message and first in parts.message
    plain = plan_split(table_data(visits().drop(columns=["visit", "patient_id"]), "label"),
                       SplitSettings())
    assert "split_parts" not in codes(plain.findings)  # no groups, no times: sizes say it all


def test_a_plain_time_split_names_where_train_ends_and_val_starts():
    frame = visits().drop(columns="patient_id")
    data = table_data(frame, "label")
    result = plan_split(data, SplitSettings())
    [order, _] = [f for f in result.findings if f.code == "time_order"]
    end, start = data.times[result.train].max(), data.times[result.val].min()
    # daily visits: dates alone, as split_parts writes them (one formatter), no ' 00:00:00'
    day = "%Y-%m-%d"
    assert (f"train ends {pd.Timestamp(end).strftime(day)}, val starts "
            f"{pd.Timestamp(start).strftime(day)}") in order.message
    [parts] = [f for f in result.findings if f.code == "split_parts"]
    assert f"to {pd.Timestamp(end).strftime(day)}" in parts.message
    assert "00:00:00" not in order.message + parts.message


def test_the_split_timeline_is_drawn_when_there_are_keys(tmp_path):
    import matplotlib.image

    from trainwise.data.split_figure import _lines, plot_split_timeline

    data = table_data(visits(), "label")
    result = plan_split(data, SplitSettings())
    parts = {"train": result.train, "val": result.val, "test": result.test}
    path = plot_split_timeline(parts, result.groups, result.times, tmp_path / "t.png")
    assert path is not None and matplotlib.image.imread(path).shape[0] > 100
    # lines rank groups by first time: the group that starts first is line 0
    first = pd.Series(data.times).groupby(data.groups).min()
    line = _lines(data.groups, data.times, np.arange(len(data.y)))
    assert set(data.groups[line == 0]) == {first.idxmin()}
    assert plot_split_timeline(parts, None, None, tmp_path / "none.png") is None


def test_small_parts_advise_from_the_fractions_in_use_and_name_cross_validation():
    """Audit s11 M9: at val_fraction 0.2 the fix said 'raise split.val_fraction (e.g. 0.2)'."""
    from trainwise.data.part_findings import small_parts

    # iris: 150 rows, test 0.2 = 30, validation 0.2 of the other 120 = 24
    [warn] = small_parts({"train": 96, "val": 24, "test": 30}, "classification", None,
                         {"val": 0.2, "test": 0.2})
    assert "e.g. 0.2" not in warn.fix
    assert "split.val_fraction is 0.2 (24 rows); 0.3 gives ~36 rows (+-16 points)" in warn.fix
    assert "split.num_folds = 5" in warn.fix
    [at_most] = small_parts({"train": 84, "val": 26, "test": 30}, "classification", None,
                            {"val": 0.3})
    assert "split.val_fraction is 0.3 already" in at_most.fix


def test_small_parts_under_folds_advise_fewer_folds_not_val_fraction():
    """Review s11 VD4: with split.num_folds = 5 validation is one fold, yet the fix advised
    raising split.val_fraction (unused then) and 'cross-validate (split.num_folds = 5'."""
    from trainwise.data.part_findings import small_parts

    # exp_split5: 84 rows, test 17, a pool of 67 in 5 folds of ~13; 3 folds: 67 / 3 = 22 rows,
    # +-98 / sqrt(22) = +-21 points
    [warn] = small_parts({"train": 54, "val": 13, "test": 17}, "classification", None,
                         {"test": 0.2}, num_folds=5)
    assert "val_fraction" not in warn.fix and "split.num_folds = 5" not in warn.fix
    assert ("split.num_folds is 5 (13 rows per fold); 3 gives ~22 validation rows per fold "
            "(+-21 points)") in warn.fix
    assert "split.test_fraction is 0.2 (17 rows); 0.3 gives ~25 rows" in warn.fix  # 0.3 * 84
    # expanding time folds: 4 folds cut 100 rows in 5 blocks of 20; 2 folds: 100 / 3 = 33
    [timed] = small_parts({"train": 80, "val": 20}, "classification", None, {}, num_folds=4)
    assert "split.num_folds is 4 (20 rows per fold); 2 gives ~33 validation rows" in timed.fix
    [two] = small_parts({"train": 20, "val": 20}, "classification", None, {}, num_folds=2)
    assert "split.num_folds is 2 (20 rows per fold) already" in two.fix


def test_grouped_parts_are_counted_in_groups_and_one_group_parts_are_warned_about():
    """Audit s11 M10: 3 validation subjects were reported as '12 rows', and a test part of one
    subject was only an info line."""
    from trainwise.data.part_findings import part_extents, part_groups, small_parts

    groups = np.repeat(np.arange(30), 4)  # 30 subjects x 4 rows
    parts = {"train": np.arange(84), "val": np.arange(84, 96), "test": np.arange(96, 120)}
    counts = part_groups(parts, groups)
    assert counts == {"train": 21, "val": 3, "test": 6}
    [warn] = small_parts({"train": 84, "val": 12, "test": 24}, "classification", counts,
                         {"val": 0.1, "test": 0.2})
    assert "val 12 rows from 3 groups" in warn.message
    assert warn.evidence["num_val_groups"] == 3
    assert "split.val_fraction is 0.1 (3 groups); 0.2 gives ~5 groups" in warn.fix  # 0.2 * 24
    six = np.repeat(np.arange(6), 20)  # one subject in validation, one in test
    six_parts = {"train": np.arange(80), "val": np.arange(80, 100), "test": np.arange(100, 120)}
    found = part_extents(six_parts, part_groups(six_parts, six), None)
    [few] = [f for f in found if f.code == "few_groups_in_part"]
    assert few.severity.value == "warning" and few.evidence["groups"] == {"val": 1, "test": 1}
    assert "split.num_folds" in few.fix
    assert [f.code for f in part_extents(parts, counts, None)] == ["split_parts"]  # 3 and 6


def test_a_random_fallback_says_why_and_the_val_fraction_that_stratifies(tmp_path):
    """Audit s11 M7: 7 validation rows for 12 classes fell back to random without a word."""
    import trainwise

    y = np.repeat(np.arange(12), [2] + [8] * 11)  # tiny12: 90 rows, one class of 2
    x = np.random.default_rng(0).normal(size=(90, 4)).astype(np.float32)
    common = [f"run.out_dir=\"{tmp_path}\"", "run.threads=1"]
    result = trainwise.run(data=(x, y), until="split", report=False, overrides=common)
    [why] = [f for f in result.findings if f.code == "stratify_not_possible"]
    least = why.evidence["min_val_fraction"]
    assert "7 validation rows for 12 classes" in why.message and f"{least:g}" in why.fix
    again = trainwise.run(data=(x, y), until="split", report=False,
                          overrides=[*common, f"split.val_fraction={least}"])
    assert again.verdict and not [f for f in again.findings if f.code == "stratify_not_possible"]
    assert [f for f in again.findings if f.code == "split"][0].message.startswith(
        "Split by 'stratified'")
    lower = trainwise.run(data=(x, y), until="split", report=False,
                          overrides=[*common, f"split.val_fraction={least - 0.01:.2f}"])
    assert [f for f in lower.findings if f.code == "stratify_not_possible"]  # the least one
