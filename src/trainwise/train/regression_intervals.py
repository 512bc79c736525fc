"""95% bootstrap intervals for a regression's test scores (RMSE, MAE, R^2) and for the
network's RMSE minus the linear reference's, over the test rows (audit s12 S11).

An RMSE of 3181 on 200 test rows carries a sampling error of several percent: set beside
ridge's 2013 without an interval, a reader cannot tell a real gap from the draw of the test
rows. Classification gets Wilson intervals (intervals.py); an RMSE has no closed form that
holds for skewed errors, so the percentile bootstrap (Efron): resample the test rows with
replacement 1,000 times and take the 2.5th and 97.5th percentiles. The linear difference is
paired: both models are scored on the same resampled rows, so the rows' shared difficulty
cancels and the interval is much narrower than the two intervals side by side. A
class-weighted classifier's balanced accuracy against the line's is compared the same way
(balanced_accuracy_difference): McNemar's test counts right answers, not balanced accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

NUM_RESAMPLES = 1000  # percentiles at 2.5/97.5 move by ~1% of the width between seeds
LEVEL = 0.95
MIN_ROWS = 5  # below it a resample is often one repeated row: R^2 undefined, no interval
_CELLS = 4_000_000  # resamples x rows held at once: 32 MB of float64 whatever the test size
INTERVAL_KEYS = {"test_rmse": "test_rmse_interval", "test_mae": "test_mae_interval",
                 "test_r2": "test_r2_interval"}
LINEAR_DIFFERENCE = "test_rmse_minus_linear"
LINEAR_DIFFERENCE_INTERVAL = "test_rmse_minus_linear_interval"


def resamples(num_rows: int, seed: int,
              num_resamples: int = NUM_RESAMPLES) -> Iterator[np.ndarray]:
    """`num_resamples` index sets of num_rows rows drawn with replacement, in chunks of
    (resamples, num_rows); one generator, so the chunking does not change the draws."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CELLS // num_rows)
    for start in range(0, num_resamples, per_chunk):
        yield rng.integers(0, num_rows, (min(per_chunk, num_resamples - start), num_rows))


def percentile_bounds(values: np.ndarray) -> list[float]:
    tail = 100 * (1 - LEVEL) / 2
    return [float(v) for v in np.nanpercentile(values, [tail, 100 - tail])]


def regression_intervals(actual: np.ndarray, predicted: np.ndarray,
                         seed: int = 0) -> dict[str, list[float]]:
    """{"test_rmse_interval": [low, high], ... MAE, R^2}: percentile bootstrap over the rows;
    {} for fewer than MIN_ROWS rows."""
    actual = np.asarray(actual, np.float64).reshape(-1)
    error = np.asarray(predicted, np.float64).reshape(-1) - actual
    if len(actual) < MIN_ROWS:
        return {}
    rmse, mae, r2 = [], [], []
    for rows in resamples(len(actual), seed):
        squared = (error[rows] ** 2).mean(axis=1)  # (resamples,)
        rmse.append(np.sqrt(squared))
        mae.append(np.abs(error[rows]).mean(axis=1))
        spread = actual[rows].var(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):  # one repeated row: NaN, skipped
            r2.append(np.where(spread > 0, 1 - squared / spread, np.nan))
    return {INTERVAL_KEYS["test_rmse"]: percentile_bounds(np.concatenate(rmse)),
            INTERVAL_KEYS["test_mae"]: percentile_bounds(np.concatenate(mae)),
            INTERVAL_KEYS["test_r2"]: percentile_bounds(np.concatenate(r2))}


def linear_difference(actual: np.ndarray, predicted: np.ndarray, linear: np.ndarray,
                      seed: int = 0) -> dict[str, float | list[float]]:
    """The network's test RMSE minus the linear reference's (< 0: the network is better) and
    its paired bootstrap 95% interval: an interval holding 0 means the test rows cannot tell
    the two apart. {} for fewer than MIN_ROWS rows."""
    actual = np.asarray(actual, np.float64).reshape(-1)
    if len(actual) < MIN_ROWS:
        return {}
    net = (np.asarray(predicted, np.float64).reshape(-1) - actual) ** 2
    line = (np.asarray(linear, np.float64).reshape(-1) - actual) ** 2
    differences = [np.sqrt(net[rows].mean(axis=1)) - np.sqrt(line[rows].mean(axis=1))
                   for rows in resamples(len(actual), seed)]
    return {LINEAR_DIFFERENCE: float(np.sqrt(net.mean()) - np.sqrt(line.mean())),
            LINEAR_DIFFERENCE_INTERVAL: percentile_bounds(np.concatenate(differences))}


def balanced_accuracy_difference(targets: np.ndarray, network: np.ndarray, linear: np.ndarray,
                                 seed: int = 0) -> list[float] | None:
    """The paired bootstrap 95% interval of the network's balanced accuracy minus the
    line's over the test rows (`network`, `linear`: each row's predicted class); None for
    fewer than MIN_ROWS rows. Review s14 VE12: under class weights the line's balanced-
    accuracy lead was cited with McNemar's p, which the network's 44 to 5 right answers made."""
    y = np.asarray(targets, np.int64).reshape(-1)
    keep = y >= 0  # an ignore_index (-100) is left out, as by the loss
    y = y[keep]
    if len(y) < MIN_ROWS:
        return None
    net = np.asarray(network).reshape(-1)[keep] == y
    line = np.asarray(linear).reshape(-1)[keep] == y
    num_classes = int(y.max()) + 1
    gaps = [_balanced(y[rows], net[rows], num_classes) - _balanced(y[rows], line[rows],
                                                                    num_classes)
            for rows in resamples(len(y), seed)]
    return percentile_bounds(np.concatenate(gaps))


def _balanced(y: np.ndarray, right: np.ndarray, num_classes: int) -> np.ndarray:
    """(resamples,) balanced accuracy of (resamples, rows) labels and right answers: the mean
    recall over the classes present in each resample (as class_metrics.balanced_accuracy)."""
    cells = (np.arange(len(y))[:, None] * num_classes + y).reshape(-1)  # (resample, class)
    size = len(y) * num_classes
    support = np.bincount(cells, minlength=size).reshape(len(y), num_classes)
    hits = np.bincount(cells, weights=right.reshape(-1), minlength=size).reshape(support.shape)
    with np.errstate(divide="ignore", invalid="ignore"):  # a class absent from a resample
        return np.nanmean(np.where(support > 0, hits / support, np.nan), axis=1)


def interval_text(bounds: list[float] | None, fmt: Callable[[float], str]) -> str:
    """"95% interval 2,900 to 3,450" for a message, or "" without bounds. "to", not a hyphen:
    "-377.8--377" or "-377.8-377" misreads as a range to -377 (audit s14 R9)."""
    return f"95% interval {fmt(bounds[0])} to {fmt(bounds[1])}" if bounds else ""
