"""Drift between the split's parts (audit s12 K2): feature KS, text levels (Cramér's V, levels
training never saw) and the label, flagged only when large and significant."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from trainwise.data.drift import Column, drift_findings, table_columns


def _codes(findings) -> list[str]:
    return [f.code for f in findings]


def trending_frame(n: int = 2000) -> pd.DataFrame:
    """The auditor's drift.csv: x_trend moves ~3 SD over the table, level 'd' appears in the
    last 15% of rows only, class 1's share drifts 0.2 -> 0.8."""
    rng = np.random.default_rng(0)
    t = np.arange(n) / n
    cat = rng.choice(["a", "b", "c"], n)
    cat[int(0.85 * n):] = rng.choice(["a", "d"], n - int(0.85 * n))
    return pd.DataFrame({
        "date": pd.date_range("2022-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "x_trend": rng.normal(0, 1, n) + 4 * t, "x_noise": rng.normal(0, 1, n), "cat": cat,
        "target": (rng.random(n) < 0.2 + 0.6 * t).astype(int)})


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    table = pd.crosstab(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b])
    return float(np.sqrt(chi2_contingency(table, correction=False)[0] / table.values.sum()))


def test_a_time_split_of_trending_data_names_each_shift_with_the_reference_numbers(tmp_path):
    """Old code: no finding at all (only the inferred time key's warning)."""
    import trainwise

    frame = trending_frame()
    result = trainwise.run({"data": {"target": "target"},
                            "run": {"out_dir": str(tmp_path), "threads": 1}},
                           data=frame, until="split", report=False)
    [drift] = [f for f in result.findings if f.code == "drift"]
    saved = np.load(result.path / "split.npz")
    train, test = frame.iloc[saved["train"]], frame.iloc[saved["test"]]
    shifts = {(s["column"], s["part"], s["test"]): s for s in drift.evidence["shifts"]}
    ks = ks_2samp(train.x_trend, test.x_trend).statistic  # 0.62 in the audit
    assert shifts["x_trend", "test", "KS"]["statistic"] == pytest.approx(ks, abs=1e-4)
    assert shifts["cat", "test", "Cramér's V"]["statistic"] == pytest.approx(
        _cramers_v(train.cat.to_numpy(), test.cat.to_numpy()), abs=1e-4)  # 0.60
    new = int((test.cat == "d").sum())  # 142 of 400 in the audit; 0 in training
    assert (train.cat == "d").sum() == 0 and f"in {new} of {len(test)} test rows" in shifts[
        "cat", "test", "new levels"]["detail"]
    # the label by its class shares (audit s13 F7), the class furthest apart as a ratio
    share_train, share_test = train.target.mean(), test.target.mean()
    ratio = max((1 - share_train) / (1 - share_test), share_test / share_train)
    assert shifts["the label", "test", "class share"]["statistic"] == pytest.approx(
        ratio, abs=1e-3)
    assert ("the label", "test", "Cramér's V") not in shifts  # one line for one cause
    assert ("x_noise", "test", "KS") not in shifts  # drawn alike everywhere
    assert "by time" in drift.fix and drift.severity == "warning"


def _three_parts(y: np.ndarray, strategy: str, task: str, seed: int) -> dict[str, np.ndarray]:
    """The split stage's cuts: test 0.2, then val 0.1 of the rest."""
    from trainwise.data.split import split_indices, split_test

    common = dict(seed=seed, strategy=strategy, task=task, groups=None, times=None)
    test = split_test(y, test_fraction=0.2, gap="", **common)
    val = split_indices(y[test.train], val_fraction=0.1, **common)
    return {"train": test.train[val.train], "val": test.train[val.val], "test": test.val}


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "diabetes", "digits"])
def test_random_and_stratified_splits_of_real_tables_raise_no_drift(name):
    """The false-alarm rate: 0 of 180 splits over 20 seeds, digits included (10 here, for
    time); at the uncorrected p < 0.01 wine's seed 9 fired (KS 0.38 on 36 test rows)."""
    from sklearn import datasets

    bundle = getattr(datasets, f"load_{name}")()
    x, y = bundle.data.astype(np.float32), bundle.target
    task = "regression" if name == "diabetes" else "classification"
    names = [] if task == "regression" else [str(c) for c in bundle.target_names]
    columns = table_columns([f"f{j}" for j in range(x.shape[1])], [])
    for strategy in ["random"] + ["stratified"] * (task == "classification"):
        for seed in range(10):  # seed 9 of wine fired at p < 0.01
            parts = _three_parts(y, strategy, task, seed)
            assert _codes(drift_findings({p: x[r] for p, r in parts.items()},
                                         {p: y[r] for p, r in parts.items()}, columns, task,
                                         names, strategy)) == ["no_drift"], (name, strategy, seed)


def test_random_splits_with_a_one_percent_class_raise_no_drift():
    """Review s13 VD13: the class-share rule (a class 2x as common, >= 5 rows expected) is
    the one a rare class strains: 50 rows of a 1% class leave 10 expected in test (4 in val,
    under 5: untested), where chance moves the share most. 0 of 50 splits fired; 10 here
    (0.2 s)."""
    rng = np.random.default_rng(1)
    columns = table_columns(["f0", "f1"], [])
    for seed in range(10):
        y = (rng.random(5000) < 0.01).astype(int)
        x = rng.normal(size=(5000, 2)).astype(np.float32)
        parts = _three_parts(y, "random", "classification", seed)
        assert _codes(drift_findings({p: x[r] for p, r in parts.items()},
                                     {p: y[r] for p, r in parts.items()}, columns,
                                     "classification", ["common", "rare"], "random")
                      ) == ["no_drift"], seed


def test_a_large_shift_on_a_few_rows_is_noise_not_drift():
    """A 1 SD shift: KS 0.67 on 5 validation rows is large, but p = 0.01 is far from
    significant (0.001 for the one test made); on 200 rows KS 0.39 has p ~ 1e-23."""
    rng = np.random.default_rng(1)
    train = rng.normal(0, 1, (1000, 1))
    y = {"train": np.zeros(1000, int)}
    for n, fires in ((5, False), (200, True)):
        shifted = rng.normal(1.0, 1, (n, 1))
        found = drift_findings({"train": train, "val": shifted}, {**y, "val": np.zeros(n, int)},
                               [Column("z", (0,))], "classification", ["only"], "random")
        assert _codes(found) == (["drift"] if fires else ["no_drift"]), n


def test_one_hot_features_group_back_into_their_text_column_by_the_longest_name():
    columns = [{"column": "cat", "treatment": "one-hot: 2 levels"},
               {"column": "cat_x", "treatment": "one-hot: 2 levels"},
               {"column": "cat_n", "treatment": "kept as a number"}]
    found = table_columns(["cat_n", "cat_a", "cat_b", "cat_x_u", "cat_x_v"], columns)
    assert found == [Column("cat_n", (0,)), Column("cat", (1, 2), ("a", "b")),
                     Column("cat_x", (3, 4), ("u", "v"))]


def test_big_parts_are_compared_on_a_seeded_sample_and_the_message_says_so(monkeypatch):
    from trainwise.data import drift
    from trainwise.data.task import TaskData

    monkeypatch.setattr(drift, "MAX_ROWS", 300)  # stands for 20,000
    x = np.r_[np.zeros(1000), np.ones(500)].astype(np.float32)[:, None]  # test rows all 1
    data = TaskData("t", "table", "regression", x, np.arange(1500.0), feature_names=["z"])
    parts = {"train": np.arange(1000), "val": np.arange(0), "test": np.arange(1000, 1500)}
    [found] = drift.split_drift(data, parts, "time", seed=3)
    assert "train 300, test 300 rows (a seeded sample of 300 rows per larger part)" in (
        found.message)
    assert [(s["column"], s["statistic"]) for s in found.evidence["shifts"]] == [
        ("z", 1.0), ("the label", 1.0)]  # every test value above every training one


def test_a_common_class_that_ends_in_time_is_label_drift_not_a_shortage_of_rows(tmp_path):
    """Audit s12 K3 (datecol.csv): the label is 1 after the midpoint date; class '0' (half the
    rows) has none in val/test. Old code: 'Collect more rows of these classes'."""
    import trainwise

    rng = np.random.default_rng(0)
    when = pd.date_range("2023-01-01", periods=1000, freq="h")[rng.permutation(1000)]
    frame = pd.DataFrame({"event_date": when.strftime("%Y-%m-%d %H:%M"),
                          "x1": rng.normal(0, 1, 1000),
                          "target": (when > when.sort_values()[499]).astype(int)})
    result = trainwise.run({"data": {"target": "target"},
                            "run": {"out_dir": str(tmp_path), "threads": 1}},
                           data=frame, until="split", report=False)
    [missing] = [f for f in result.findings if f.code == "classes_missing_from_split"]
    last = when[frame.target.to_numpy() == 0].max()  # 2023-01-21 19:00
    assert missing.evidence["label_over_time"] == {
        "0": f"its last row is at {last}, before validation starts"}
    assert "'0' is not short of rows: the label changes with time" in missing.message
    assert "Collect more rows" not in missing.fix and "split.time_column=none" in missing.fix
    # review s12 VD4: only the label moves, so the label drift is said once, with one fix
    # (old code: also a drift warning whose fix spoke of inputs that differ)
    assert [f.code for f in result.findings if f.code in ("drift", "classes_missing_from_split")
            ] == ["classes_missing_from_split"]


def test_a_rare_class_missing_from_a_time_split_keeps_the_collect_more_rows_advice():
    """3 rows of 1000 put 0.6 expected rows in a 200-row test part: missing it is chance."""
    from trainwise.data.label_over_time import label_over_time
    from trainwise.data.part_findings import missing_classes

    y = np.zeros(1000, int)
    y[[10, 500, 700]] = 1  # rare, all before the test rows
    y[800:] = np.where(np.arange(200) % 2, 0, 2)  # class 2 starts with the test part
    parts = {"train": np.arange(700), "val": np.arange(700, 800), "test": np.arange(800, 1000)}
    spans = label_over_time(y, np.arange(1000.0), parts, ["a", "rare", "late"])
    assert spans == {"late": "its first row is at 800, after training ends"}
    counts = {p: np.bincount(y[r], minlength=3).tolist() for p, r in parts.items()}
    [found] = missing_classes(counts, ["a", "rare", "late"], "time", spans)
    assert "'rare' (3 rows) has none in test;" in found.message  # no time story for it
    assert "'late' is not short of rows" in found.message
    assert found.fix.endswith("Then rerun the split stage.") and "For the other classes: " \
        "collect more rows" in found.fix


def _label_only_parts(n: int = 600) -> tuple[dict, dict]:
    """x alike in every part; class 1 is 20% of train, 80% of validation."""
    rng = np.random.default_rng(4)
    x = {"train": rng.normal(0, 1, (n, 2)), "val": rng.normal(0, 1, (n, 2))}
    y = {"train": (rng.random(n) < 0.2).astype(int), "val": (rng.random(n) < 0.8).astype(int)}
    return x, y


def test_a_time_split_where_only_the_label_moves_gets_label_advice_not_input_advice():
    """Review s12 VD4: old code told a label-only drift that 'inputs differ' and to find
    features that do not trend."""
    x, y = _label_only_parts()
    columns = [Column("x0", (0,)), Column("x1", (1,))]
    [found] = drift_findings(x, y, columns, "classification", ["a", "b"], "time")
    assert [s["column"] for s in found.evidence["shifts"]] == ["the label"]
    assert "inputs" not in found.fix and "features that do not trend" not in found.fix
    assert "split.time_column=none" in found.fix and found.fix.endswith(
        "Then rerun the split stage.")
    # classes_missing_from_split told the label already: nothing left to say here
    [clean] = drift_findings(x, y, columns, "classification", ["a", "b"], "time",
                             label_told=True)
    assert clean.code == "no_drift" and "the label" not in clean.message
    assert clean.evidence["label_tested"] is False


def test_a_rare_class_whose_rate_rises_fivefold_in_time_is_label_drift():
    """Audit s13 F7: failures 1.2% of train, 5.7% of validation (sensors.csv): Cramér's V
    0.11 stayed under 0.2, so nothing was said."""
    rng = np.random.default_rng(6)
    sizes, rates = {"train": 4400, "val": 490, "test": 1210}, {"train": 0.012, "val": 0.057,
                                                              "test": 0.041}
    y = {p: (rng.random(n) < rates[p]).astype(int) for p, n in sizes.items()}
    x = {p: rng.normal(0, 1, (n, 1)) for p, n in sizes.items()}
    v = _cramers_v(y["train"], y["val"])
    assert v < 0.2  # the old gate could not fire
    [found] = drift_findings(x, y, [Column("x0", (0,))], "classification", ["ok", "failure"],
                             "time")
    shifts = {s["part"]: s for s in found.evidence["shifts"] if s["column"] == "the label"}
    for part in ("val", "test"):  # the shares by hand
        ratio = y[part].mean() / y["train"].mean()
        assert shifts[part]["test"] == "class share"
        assert shifts[part]["statistic"] == pytest.approx(ratio, abs=1e-3)
        assert f"{y[part].mean():.2%} of" in shifts[part]["detail"]
        # the 2x2 chi-square (failure vs rest, train vs part), Bonferroni over the 2 classes
        table = np.array([np.bincount(y["train"]), np.bincount(y[part])])
        p_value = chi2_contingency(table, correction=False)[1]
        assert shifts[part]["p_value"] == pytest.approx(min(1.0, 2 * p_value), rel=1e-2)
    assert f"'failure' {y['train'].mean():.2%} of train" in found.message
    assert "rate changes with time" in found.fix


def _stores(days_later: int = 0, days: int = 150) -> pd.DataFrame:
    """Six stores over the same `days` days (store S5 from `days_later` days on); S5 sells
    ~20 more."""
    rng = np.random.default_rng(7)
    return pd.concat([pd.DataFrame({
        "store": f"S{k}", "date": pd.date_range("2022-01-01", periods=days).shift(
            days_later * (k == 5), freq="D").strftime("%Y-%m-%d"),
        "promo": rng.integers(0, 2, days),
        "sales": rng.normal(100 + 20 * (k == 5), 5, days)}) for k in range(6)],
        ignore_index=True)


def test_group_time_advice_names_the_groups_when_held_out_groups_span_training_s_period():
    """Audit s13 F8: one held-out store over the same days as training was told 'a later
    period ... drop the oldest rows ... split at random'."""
    from trainwise.data.drift import split_drift
    from trainwise.data.periods import GROUPED_KFOLD_FIX, groups_share_period, held_out_pairs
    from trainwise.data.tables import table_data

    frame = _stores()
    store = frame["store"].to_numpy()
    parts = {"train": np.flatnonzero(store != "S5"), "val": np.flatnonzero(store == "S5"),
             "test": None}
    data = table_data(frame, "sales", task="regression", group_column="store",
                      time_column="date")
    pairs = held_out_pairs(parts["train"], parts["val"])
    assert groups_share_period(data.times, pairs)  # the split stage's verdict
    [found] = split_drift(data, parts, "group_time", same_period=True)
    assert "held-out groups differ" in found.fix and "later period" not in found.fix
    assert "drop the oldest rows" not in found.fix and GROUPED_KFOLD_FIX in found.fix
    assert found.evidence["same_period"] is True
    # S5 held out over days after training's: the later-period advice stays
    later = table_data(_stores(days_later=200), "sales", task="regression",
                       group_column="store", time_column="date")
    assert not groups_share_period(later.times, pairs)
    [found] = split_drift(later, parts, "group_time", same_period=False)
    assert found.evidence["same_period"] is False and "later period" in found.fix


def test_the_random_split_fix_states_the_rule_s_significance_level():
    """Review s12 VD7: the text said p < 0.01; the rule is ALPHA = 0.001."""
    from trainwise.data.drift import ALPHA

    x, y = _label_only_parts()
    [found] = drift_findings(x, y, [Column("x0", (0,))], "classification", ["a", "b"],
                             "random")
    assert ALPHA == 0.001 and "(p < 0.001 after a correction" in found.fix


def test_a_wide_table_keeps_its_text_columns_and_says_which_numbers_were_left_out():
    """Review s12 VD8: 250 numbers came before the text column, and [:200] dropped it; its
    new level (30% of validation rows, never in training) went unsaid."""
    rng = np.random.default_rng(5)
    n, width = 400, 250
    names = [f"n{j}" for j in range(width)] + ["cat_a", "cat_b", "cat_new"]
    columns = table_columns(names, [{"column": "cat", "treatment": "one-hot: 3 levels"}])
    level = {"train": rng.integers(0, 2, n), "val": np.where(rng.random(n) < 0.3, 2,
                                                             rng.integers(0, 2, n))}
    x = {p: np.c_[rng.normal(0, 1, (n, width)), np.eye(3)[level[p]]] for p in level}
    y = {p: np.zeros(n, int) for p in level}
    [found] = drift_findings(x, y, columns, "classification", ["only"], "random")
    assert {s["column"] for s in found.evidence["shifts"]} == {"cat"}
    assert found.evidence["num_columns_left_out"] == 51
    assert found.evidence["columns_left_out"] == [f"n{j}" for j in range(199, 219)]
    assert "Only 200 of 251 columns were tested" in found.message
    assert "51 numeric columns from 'n199' on were not" in found.message


def test_a_vector_wider_than_the_column_cap_is_not_tested_pixel_by_pixel():
    """Review s12 VD8: a 784-wide vector had its first 200 columns (the image border) tested;
    it is skipped, as MAX_COLUMNS's comment argues. Old code: a warning about x0."""
    from trainwise.data import drift
    from trainwise.data.task import TaskData

    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (1000, 784)).astype(np.float32)
    x[800:, 0] += 3  # the test rows' first pixel moves
    data = TaskData("v", "vector", "classification", x, np.zeros(1000, int), class_names=["a"])
    parts = {"train": np.arange(700), "val": np.arange(700, 800), "test": np.arange(800, 1000)}
    [skipped] = drift.split_drift(data, parts, "time")
    assert skipped.code == "drift_not_tested" and "784 features per row" in skipped.message
    narrow = TaskData("v", "vector", "classification", x[:, :50], np.zeros(1000, int),
                      class_names=["a"])  # under the cap: still tested
    [found] = drift.split_drift(narrow, parts, "time")
    assert found.evidence["shifts"][0]["column"] == "x0"


def _label_over_time_by_hand(y, times, parts, class_names):
    """The old per-class loop (K x N work), as the reference."""
    from trainwise.data.label_over_time import MIN_EXPECTED, _when

    rows = {p: np.asarray(r) for p, r in parts.items() if r is not None and len(r)}
    total = sum(len(r) for r in rows.values())
    spans = {}
    for k, name in enumerate(class_names):
        of_class = {p: r[y[r] == k] for p, r in rows.items()}
        count = sum(len(r) for r in of_class.values())
        lacking = [p for p, r in rows.items()
                   if not len(of_class[p]) and count * len(r) / total >= MIN_EXPECTED]
        if lacking:
            when = times[np.concatenate(list(of_class.values()))]
            spans[str(name)] = _when(when, {p: times[rows[p]] for p in lacking}, times)
    return spans


def test_label_over_time_from_the_stage_s_counts_matches_the_per_class_loop():
    """Review s12 VD11: the stage's per-part counts are passed in, and only classes some part
    lacks are gathered (1M rows x 1000 classes: 3.1 s before, for an empty result)."""
    from trainwise.data.label_over_time import label_over_time

    rng = np.random.default_rng(7)
    for case in range(5):
        n, k = 3000, 12
        y = rng.integers(0, k, n)
        y[2000:] = np.where(y[2000:] < 3 + case, k - 1, y[2000:])  # classes end with time
        y[:1500] = np.where(y[:1500] == k - 2, 0, y[:1500])  # one starts late
        times = np.sort(rng.random(n))
        parts = {"train": np.arange(2000), "val": np.arange(2000, 2400),
                 "test": np.arange(2400, n) if case % 2 else None}
        names = [f"c{j}" for j in range(k)]
        counts = {p: np.bincount(y[r], minlength=k).tolist() for p, r in parts.items()
                  if r is not None}
        expected = _label_over_time_by_hand(y, times, parts, names)
        assert len(expected) >= 3
        assert label_over_time(y, times, parts, names, counts) == expected
        assert label_over_time(y, times, parts, names) == expected


def test_a_clean_split_says_how_many_tests_found_nothing_and_the_largest():
    """Audit s16 D4: nothing told "no drift" from "not tested". Two numbers over train/val/
    test (2 x 2 KS) and a two-class label (2 Cramér's V, 2 class shares): 8 tests; the
    largest KS recomputed with scipy."""
    rng = np.random.default_rng(3)
    sizes = {"train": 600, "val": 200, "test": 200}
    x = {p: rng.normal(0, 1, (n, 2)) for p, n in sizes.items()}
    y = {p: rng.integers(0, 2, n) for p, n in sizes.items()}
    columns = [Column("a", (0,)), Column("b", (1,))]
    [found] = drift_findings(x, y, columns, "classification", ["n", "y"], "random")
    assert found.code == "no_drift" and found.severity.value == "info"
    assert found.evidence["num_tests"] == 8
    by_hand = max((ks_2samp(x["train"][:, j], x[p][:, j]).statistic, j, p)
                  for j in (0, 1) for p in ("val", "test"))
    largest = found.evidence["largest"]
    assert largest["statistic"] == pytest.approx(by_hand[0], abs=1e-4)
    assert (largest["column"], largest["part"]) == ("ab"[by_hand[1]], by_hand[2])
    assert "8 tests (2 numeric columns by KS, the label)" in found.message
    assert f"KS {by_hand[0]:.2f}" in found.message


def test_images_are_said_to_be_untested_not_passed_over_in_silence():
    from trainwise.data import drift
    from trainwise.data.task import TaskData

    x = np.zeros((40, 1, 4, 4), np.float32)
    data = TaskData("i", "image", "classification", x, np.arange(40) % 2, class_names=["a", "b"])
    parts = {"train": np.arange(30), "val": np.arange(30, 40), "test": None}
    [found] = drift.split_drift(data, parts, "random")
    assert found.code == "drift_not_tested" and "images (pixels)" in found.message
