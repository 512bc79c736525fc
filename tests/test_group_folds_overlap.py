"""Audit s13 F5: whole-group time folds over groups that span the same period (12 stores, all
from one day) are no backtest; the advice names split.time_column = "none" for a grouped
k-fold, the folds' warnings are one, and the crossval stage does not call them time windows."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from trainwise import stages_crossval, stages_split
from trainwise.data.periods import GROUPED_KFOLD_FIX, SAME_PERIOD_WHY
from trainwise.data.plan import SplitSettings, plan_split
from trainwise.data.tables import table_data
from trainwise.data.task import TaskData


def panel(num_groups: int = 12, days: int = 40, same_period: bool = True) -> pd.DataFrame:
    """Stores x days; every store over the same days, or each store after the previous one."""
    store = np.repeat(np.arange(num_groups), days)
    day = np.tile(np.arange(days), num_groups) + (0 if same_period else store * days)
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "store": [f"S{s:02d}" for s in store],
        "date": (np.datetime64("2024-01-01") + day.astype("timedelta64[D]")).astype(str),
        "promo": rng.integers(0, 2, len(store)), "sales": rng.normal(100, 10, len(store))})


def test_one_or_two_group_parts_over_one_period_are_told_to_drop_the_time_column():
    found = plan_split(table_data(panel(), "sales", group_column="store",
                                  time_column="date"), SplitSettings()).findings
    [few] = [f for f in found if f.code == "few_groups_in_part"]
    assert GROUPED_KFOLD_FIX in few.fix and SAME_PERIOD_WHY in few.fix
    later = plan_split(table_data(panel(same_period=False), "sales", group_column="store",
                                  time_column="date"), SplitSettings()).findings
    [few] = [f for f in later if f.code == "few_groups_in_part"]  # a real forecast: keep time
    assert "time_column" not in few.fix and "split.num_folds = 5 (grouped k-fold" in few.fix


def validated_groups(time_column: str) -> tuple[list, np.ndarray]:
    data = table_data(panel(), "sales", group_column="store", time_column=time_column)
    result = plan_split(data, SplitSettings(num_folds=5))
    groups = np.asarray(data.groups)[result.pool]
    return [g for fold in result.folds for g in np.unique(groups[fold.val])], np.unique(groups)


def test_the_advice_works_each_group_is_validated_once_without_the_time_column():
    validated, pool = validated_groups("none")
    assert sorted(validated) == sorted(pool)  # each pool group exactly once
    validated, pool = validated_groups("date")  # with it, the first-starting never validate
    assert len(validated) < len(pool)


def test_the_folds_group_start_warnings_are_one_with_a_fix_that_gives_grouped_k_fold():
    result = plan_split(table_data(panel(), "sales", group_column="store", time_column="date"),
                        SplitSettings(num_folds=5))
    starts = [f for f in result.findings if f.code == "group_start_order"
              and f.severity.value == "warning" and not f.message.startswith("test")]
    assert len(starts) == 1  # was one per fold: 5 near-identical warnings
    assert starts[0].message.startswith("5 folds validate on the groups that start last")
    assert GROUPED_KFOLD_FIX in starts[0].fix and SAME_PERIOD_WHY in starts[0].message
    assert set(starts[0].evidence["num_rows_after"]) == {f"fold {j}" for j in range(5)}


def test_crossval_does_not_call_overlapping_group_folds_a_backtest():
    times = np.tile(np.arange(10), 4)  # 4 groups over the same 10 days
    folds = [(np.arange(0, 10), np.arange(10, 20)), (np.arange(0, 20), np.arange(20, 30))]
    ctx = SimpleNamespace(data=SimpleNamespace(times=times),
                          meta={"split": {"strategy": "group_time"}}, folds=folds)
    assert "no backtest" in stages_crossval._groups_share_period(ctx)
    note = stages_crossval._groups_share_period(ctx)  # review s13 VD10: one fix, one why
    assert GROUPED_KFOLD_FIX in note and SAME_PERIOD_WHY in note
    later = SimpleNamespace(data=SimpleNamespace(times=np.arange(40)), meta=ctx.meta,
                            folds=folds)  # each group after the previous: a real backtest
    assert stages_crossval._groups_share_period(later) == ""


def cohorts() -> TaskData:
    """10 cohorts, each starting 30 days after the previous and lasting 45 days (review s13
    VD4, /tmp/review_data/overlap_demo.py): a real forecast of later cohorts."""
    rng = np.random.default_rng(0)
    cohort = np.repeat(np.arange(10), 45)
    day = 30 * cohort + np.tile(np.arange(45), 10)
    return TaskData(name="cohorts", kind="table", task="regression",
                    x=rng.normal(size=(450, 3)).astype(np.float32), y=rng.normal(size=450),
                    groups=cohort.astype(str),
                    times=np.datetime64("2024-01-01", "ns") + day.astype("timedelta64[D]"))


def test_cohorts_that_overlap_by_four_percent_are_no_shared_period():
    """Review s13 VD4: one training row after validation began was enough for few_groups_in_part
    to say the groups span the same period, while group_start_order (14 of 315 training rows
    after validation begins, 4%) said info. One rule now: more than half."""
    result = plan_split(cohorts(), SplitSettings(strategy="group_time", seed=0))
    [start] = [f for f in result.findings if f.code == "group_start_order"
               and not f.message.startswith("No test")]
    assert start.severity.value == "info" and start.evidence["num_rows_after"] == 14
    assert len(result.train) == 315  # 14 / 315 = 4%: far from half
    [few] = [f for f in result.findings if f.code == "few_groups_in_part"]
    assert "time_column" not in few.fix and SAME_PERIOD_WHY not in few.fix
    assert not stages_split._same_period(SimpleNamespace(folds=result.fold_rows()), result)


def test_the_split_stage_records_the_panel_verdict_that_crossval_reads():
    data = table_data(panel(), "sales", group_column="store", time_column="date")
    result = plan_split(data, SplitSettings(num_folds=5))
    assert stages_split._same_period(SimpleNamespace(folds=result.fold_rows()), result)
    times = np.tile(np.arange(10), 4)  # overlapping times, but the recorded verdict says no
    ctx = SimpleNamespace(data=SimpleNamespace(times=times), folds=[(np.arange(10),
                                                                     np.arange(10, 20))],
                          meta={"split": {"strategy": "group_time", "same_period": False}})
    assert stages_crossval._groups_share_period(ctx) == ""
    ctx.meta["split"]["same_period"] = True
    assert "no backtest" in stages_crossval._groups_share_period(ctx)


def test_fold_warnings_merge_by_code_and_part_whatever_their_wording():
    """Review s13 VD9: the folds' warnings were found by a regex on their message, so rewording
    check_group_starts would have brought back k warnings; the part is now in the evidence."""
    from trainwise.data.fold_starts import merge_fold_starts
    from trainwise.findings import info, warning

    said = [warning("split", "group_start_order", f"Reworded {j}.", "fix", part=f"val{j}",
                    num_rows_after=10 * j) for j in range(3)]
    test = warning("split", "group_start_order", "Reworded test.", "fix", part="test",
                   num_rows_after=7)
    other = info("split", "split_parts", "What went where.")
    merged = merge_fold_starts([other, *said, test])
    assert [f.code for f in merged] == ["split_parts", "group_start_order", "group_start_order"]
    assert merged[1].evidence["num_rows_after"] == {"fold 0": 0, "fold 1": 10, "fold 2": 20}
    assert merged[2] is test  # the test part's proof stays its own
    single = [warning("split", "group_start_order", "One split.", "fix", part="val")]
    assert merge_fold_starts(single) == single
    found = plan_split(table_data(panel(), "sales", group_column="store", time_column="date"),
                       SplitSettings(num_folds=5)).findings
    assert "test" in {f.evidence.get("part") for f in found if f.code == "group_start_order"}
