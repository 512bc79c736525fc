"""loss_exploding against the noise of small batches (user audit s11 M8): iris with 16-row
batches, a noisy but flat band of batch losses (epoch means 0.1-0.4 throughout, test 93%),
was told "The loss exploded ... 10.8x": a single batch's 1.363 against the running minimum
of a 9-step median. The step losses below are that run's."""

from __future__ import annotations

import numpy as np

from trainwise.findings import Severity
from trainwise.train.diagnose import RULES
from trainwise.train.diagnose_common import rolling_median, smoothing_window
from trainwise.train.diagnose_loss import EXPLODE_FACTOR, noise_swing

IRIS_BATCH_16 = np.array(
    [1.124, 1.094, 1.043, 1.081, 1.001, 0.965, 0.969, 0.901, 0.879, 0.862, 0.806, 0.804, 0.745,
    0.758, 0.642, 0.546, 0.544, 0.507, 0.454, 0.512, 0.463, 0.295, 0.29, 0.307, 0.387, 0.187, 0.384,
    0.111, 0.209, 0.227, 0.082, 0.343, 0.212, 0.05, 0.332, 0.636, 0.218, 0.159, 0.126, 0.119, 0.111,
    0.094, 0.326, 0.169, 0.213, 0.193, 0.158, 0.123, 0.301, 0.548, 0.334, 0.088, 0.147, 0.136,
    0.238, 0.276, 0.619, 0.234, 0.209, 0.257, 0.101, 0.142, 0.425, 0.414, 0.078, 0.233, 1.363,
    0.434, 0.526, 1.278, 0.521, 0.275, 0.139, 0.114, 0.056, 0.158, 0.06, 0.379, 0.293, 0.035, 0.214,
    0.439, 0.146, 0.22, 0.083, 0.077, 0.253, 0.241, 0.123, 1.28, 0.175, 0.059, 0.674, 0.699, 0.951,
    0.034, 0.047, 0.062, 0.122, 0.374, 0.449, 1.097, 0.109, 0.139, 0.937, 0.313, 0.313, 0.063,
    0.149, 0.091, 0.223, 0.222, 0.307, 0.075, 0.38, 0.174, 0.097, 0.133, 0.243, 0.466, 0.039, 0.123,
    0.073, 0.03, 0.164, 0.167, 0.025, 0.134, 0.079, 0.056, 0.326, 0.016, 0.132, 0.1, 0.252, 0.046,
    0.073, 0.411, 0.132, 0.429, 0.062, 1.213, 0.088, 0.036, 0.043, 0.08, 0.158, 0.099, 0.334, 0.091,
    0.089, 0.192, 0.025, 0.049, 0.286, 0.229, 0.441, 0.122, 0.108, 0.042, 1.094, 0.082, 0.22, 0.055,
    0.039, 0.255, 0.058, 0.122, 0.202, 0.102, 0.103, 0.074, 0.105, 0.519, 0.071, 0.411, 0.072,
    0.137, 0.06, 0.045, 0.182, 0.074, 0.019, 0.101, 0.214, 0.122, 0.078, 0.027, 0.998, 0.337, 0.231,
    0.12, 0.16, 0.09, 0.023, 0.165, 0.113, 0.122]
)


def steps(loss: np.ndarray) -> list[dict]:
    return [{"kind": "step", "step": i + 1, "loss": float(v)} for i, v in enumerate(loss)]


def test_a_flat_band_of_small_batch_losses_is_not_an_explosion():
    assert RULES["loss_exploding"](steps(IRIS_BATCH_16)) == []


def test_the_noise_swing_is_measured_in_log_space_on_the_second_half():
    # by hand: sigma of the log-loss from consecutive differences of the last 99 steps, the
    # running minimum the lowest of 198 / 9 = 22 medians of 9: sqrt(2 ln 22) = 2.49 standard
    # errors of 1.25 sigma / 3 below the level
    tail = np.log(IRIS_BATCH_16[99:])
    diffs = np.diff(tail)
    sigma = 1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2)
    expected = np.exp(np.sqrt(2 * np.log(198 / 9)) * 1.25 * sigma / 3)
    assert smoothing_window(198) == 9
    assert noise_swing(IRIS_BATCH_16, 9) == np.float64(expected)
    # the 3x rule alone read the band's swing, 3.43x its running minimum of medians, as a rise
    smooth = rolling_median(IRIS_BATCH_16, 9)
    swing = float((smooth / np.minimum.accumulate(smooth)).max())
    assert EXPLODE_FACTOR < swing < EXPLODE_FACTOR * expected


def test_the_same_band_lifted_tenfold_for_its_last_third_is_caught_smoothed_vs_smoothed():
    loss = IRIS_BATCH_16.copy()
    loss[132:] *= 10  # an lr too high from step 133 on: the whole band moves up and stays
    (finding,) = RULES["loss_exploding"](steps(loss))
    # the band at 10x its 0.13 sits above the 1.1 training started from: nothing is left
    assert finding.severity is Severity.ERROR and "no lower than where it started" in \
        finding.message
    smooth = rolling_median(loss, 9)
    assert finding.evidence["peak_loss"] == float(f"{smooth[132:].max():.4g}")
    assert finding.evidence["factor_threshold"] > EXPLODE_FACTOR
    assert "smoothed over 9 steps" in finding.message
