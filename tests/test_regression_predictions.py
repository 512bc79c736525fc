"""The error per quarter of the test targets and the predicted-vs-actual figure (audit s10
A18)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from trainwise.reporting.predictions import predicted_vs_actual_figure  # noqa: E402
from trainwise.train.regression_predictions import (  # noqa: E402
    SUM_RATIO,
    SUM_RATIO_INTERVAL,
    TargetUnits,
    apply_log,
    error_by_quarter,
    in_target_units,
    log_function,
    median_caveat,
    read_predictions,
    write_predictions,
)


def test_error_by_quarter_against_a_hand_computed_split():
    actual = np.arange(1.0, 9.0)  # quarters: {1,2} {3,4} {5,6} {7,8}
    predicted = actual + np.array([2, 2, 0, 1, -1, 1, -3, -1.0])
    quarters = error_by_quarter(actual, predicted)
    assert [(q["low"], q["high"], q["rows"]) for q in quarters] == [
        (1, 2, 2), (3, 4, 2), (5, 6, 2), (7, 8, 2)]
    assert [q["mae"] for q in quarters] == pytest.approx([2, 0.5, 1, 2])
    assert [q["rmse"] for q in quarters] == pytest.approx([2, np.sqrt(0.5), 1, np.sqrt(5)])
    assert [q["mean_error"] for q in quarters] == pytest.approx([2, 0.5, 0, -2])


def test_error_by_quarter_matches_pandas_on_random_rows():
    rng = np.random.default_rng(0)
    actual = rng.lognormal(12, 1.2, size=301)
    predicted = actual * rng.lognormal(0, 0.3, size=301)
    frame = pd.DataFrame({"part": pd.qcut(actual, 4, labels=False),
                          "abs": np.abs(predicted - actual)})
    quarters = error_by_quarter(actual, predicted)
    assert [q["mae"] for q in quarters] == pytest.approx(frame.groupby("part")["abs"].mean())
    assert [q["rows"] for q in quarters] == frame.groupby("part").size().tolist()


def test_ties_give_fewer_parts_and_too_few_rows_none():
    assert len(error_by_quarter(np.array([1.0] * 6 + [2.0] * 2), np.zeros(8))) == 2
    assert error_by_quarter(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == []


def test_predictions_round_trip_in_the_targets_units(tmp_path):
    actual = in_target_units(np.array([[-1.0], [0.0], [2.0]]), TargetUnits(100.0, 10.0))
    assert actual.tolist() == [90.0, 100.0, 120.0]
    write_predictions(tmp_path / "p.csv", np.array([4, 7, 9]), actual, actual + 0.5)
    back = read_predictions(tmp_path / "p.csv")
    assert back is not None and back[0].tolist() == actual.tolist()
    assert back[1].tolist() == (actual + 0.5).tolist()
    assert read_predictions(tmp_path / "missing.csv") is None


@pytest.mark.parametrize("actual,xscale", [
    (np.geomspace(8.5e3, 1.1e7, 50), "log"),  # prices over three decades
    (np.linspace(100.0, 300.0, 50), "linear"),
    (np.linspace(-1.0, 1.0, 50), "linear"),  # not positive: no log
])
def test_the_figure_goes_log_for_a_positive_target_spanning_decades(actual, xscale):
    predicted = actual.copy()
    predicted[0] = -5.0  # a prediction below 0 must still be drawn
    ax = predicted_vs_actual_figure(actual, predicted).axes[0]
    assert ax.get_xscale() == xscale
    assert ax.get_yscale() == ("symlog" if xscale == "log" else "linear")
    (diagonal,) = [line for line in ax.lines if line.get_label().startswith("perfect")]
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata())  # y = x
    (dots,) = ax.collections
    assert len(dots.get_offsets()) == 50


def test_log_target_units_undo_log1p_then_the_standardisation():
    """data.target_transform = "log": the model learns (log1p(y) - mean) / std; TargetUnits
    gives y back, on arrays and tensors alike."""
    y = np.array([0.0, 8545.0, 1.1e7])
    logged = np.log1p(y)
    mean, std = logged.mean(), logged.std()
    units = TargetUnits(mean, std, log=True)
    assert units((logged - mean) / std) == pytest.approx(y, rel=1e-9)
    assert units(torch.tensor((logged - mean) / std)).numpy() == pytest.approx(y, rel=1e-9)


def test_the_natural_log_is_undone_with_exp_and_older_true_means_log1p():
    """Audit s14 R3: a target above 0 trains on its natural log (exp undoes it); log1p only
    when a target is 0; True (a caller before the choice) stays log1p."""
    y = np.array([0.002, 0.0031, 0.04])
    mean, std = np.log(y).mean(), np.log(y).std()
    assert TargetUnits(mean, std, log="log")((np.log(y) - mean) / std) == pytest.approx(
        y, rel=1e-12)
    assert TargetUnits(log=True).log == "log1p" and TargetUnits(log=False).log == ""
    assert log_function(y) == "log" and log_function(y, np.array([0.0])) == "log1p"
    assert log_function(y, None) == "log"  # no test part of its own


def test_the_log_makes_a_standardised_target_free_of_its_unit():
    """The same target in kWh and in MWh x 1e-3 (median 0.003): the network must see the same
    values. log1p(0.003) ~ 0.003 kept the skew, and R^2 fell from 0.89 to 0.01 (R3)."""
    y = np.random.default_rng(0).lognormal(8.0, 1.5, size=200)
    standardised = []
    for target in (y, y * np.exp(-14)):
        logged = apply_log(target, log_function(target))
        standardised.append((logged - logged.mean()) / logged.std())
    assert standardised[0] == pytest.approx(standardised[1], abs=1e-9)


@pytest.mark.parametrize("num_rows,batch_size,world_size", [(10, 4, 2), (11, 4, 3), (7, 8, 2),
                                                            (5, 2, 4)])
def test_rows_gathered_from_every_process_are_put_back_in_order(num_rows, batch_size,
                                                                world_size):
    """Under DDP each process predicts its slice of every test batch and gather_rows stacks
    them rank by rank; test_predictions.csv needs them in row order. The order is checked
    against the very sampler that slices the batches."""
    from torch.utils.data import BatchSampler, SequentialSampler

    from trainwise.train.sharding import ShardedBatchSampler, loader_order

    base = BatchSampler(SequentialSampler(range(num_rows)), batch_size, drop_last=False)
    gathered = np.concatenate([
        np.concatenate([np.asarray(piece) for piece in ShardedBatchSampler(
            base, rank, world_size, num_rows, drop_uneven=False, as_list=True)] or [[]])
        for rank in range(world_size)]).astype(np.int64)
    order = loader_order(num_rows, batch_size, world_size)
    assert order.tolist() == gathered.tolist()
    assert gathered[order.argsort()].tolist() == list(range(num_rows))


def test_test_predictions_carry_the_series_and_time_of_each_row(tmp_path):
    """Audit s13 F14: a forecaster could not see the error per store or over the test window
    without joining `row` back to the file; the key columns are written beside it."""
    import trainwise

    rng = np.random.default_rng(0)
    days = pd.date_range("2023-01-01", periods=60)
    frame = pd.DataFrame([{"store": f"S{s}", "date": d.strftime("%Y-%m-%d"), "promo": promo,
                           "sales": float(20 + 3 * s + 8 * promo + rng.normal())}
                          for s in range(4) for d in days
                          for promo in [int(rng.integers(0, 2))]])
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    result = trainwise.run(overrides=[
        f'data.source="{path}"', 'data.target="sales"', 'split.group_column="store"',
        'split.strategy="time"', "train.max_epochs=1", "train.lr=0.01", "run.threads=1",
        f'run.out_dir="{tmp_path}"'])
    assert result.ok, result.verdict
    written = pd.read_csv(result.path / "test_predictions.csv")
    assert list(written.columns) == ["row", "store", "date", "actual", "predicted", "error"]
    source = frame.iloc[written["row"]]  # rows of the data as loaded: the file's, none dropped
    assert list(written["store"]) == list(source["store"])
    assert list(written["date"]) == list(source["date"])
    np.testing.assert_allclose(written["actual"], source["sales"], rtol=1e-5)


def test_key_cells_are_written_as_a_join_on_the_file_needs(tmp_path):
    """Review s13 final F5: an integer day index is held as a float ('1.0' joins no '1')."""
    path = tmp_path / "p.csv"
    write_predictions(path, np.array([0, 1]), np.array([1.0, 2.0]), np.array([1.5, 2.5]),
                      {"day": np.array([1.0, 20240101.0]), "store": np.array(["S1", "S2"]),
                       "date": np.array(["2024-03-01T09:00", "2024-03-02"], "datetime64[m]")})
    written = pd.read_csv(path, dtype=str)
    assert list(written["day"]) == ["1", "20240101"]
    assert list(written["store"]) == ["S1", "S2"]
    assert list(written["date"]) == ["2024-03-01T09:00", "2024-03-02"]  # a day as a day


def test_a_log_targets_predictions_say_their_sum_is_low_and_how_to_correct_it():
    """Audit s14 R4: exp of the mean log is the median; on a right-skewed target the summed
    predictions fall short of the actual total (0.941 on the audit's test rows)."""
    actual = np.array([1.0, 2.0, 4.0, 8.0, 100.0, 3.0])
    predicted = np.array([1.2, 1.8, 3.5, 7.0, 40.0, 3.0])  # the large one pulled to the median
    keys, found = median_caveat(actual, predicted, "log", seed=0)
    assert keys[SUM_RATIO] == pytest.approx(56.5 / 118.0)  # by hand: the sums
    low, high = keys[SUM_RATIO_INTERVAL]
    assert low <= keys[SUM_RATIO] <= high
    assert found.code == "log_predicts_median" and "52.1% low" in found.message
    assert "validation rows" in found.fix and 'data.target_transform = "none"' in found.fix
    uniform = median_caveat(actual, 0.8 * actual, "log1p")[1]  # every resample: 0.8
    assert uniform.severity.value == "warning" and "0.800 of the actual total" in uniform.message
    assert median_caveat(actual, predicted, "")[1] is None  # no log: the keys only
    assert median_caveat(actual - 5, predicted, "log") == ({}, None)  # a signed target


def test_one_rule_for_the_log_a_run_trained_on():
    # VD9: predict (Preprocessing.target_function) and the report (context) each coded "no
    # saved log means log1p"; both now read trained_log
    from trainwise.preprocessing import trained_log

    assert trained_log("log", "log", False) == "log"
    assert trained_log("", "log", False) == "log1p"  # a folder from before the choice
    assert trained_log("", "none", False) == "" and trained_log("", "log", True) == ""
