"""Overfitting read off the generalisation gap, on the epoch curves of a user audit's runs.

The run made to overfit (`trainwise run --set model.dropout=0.0 --set train.max_epochs=60
--set train.patience=100 --set data.max_samples=300`: 270 training rows of MNIST-1D) ended
with a training loss 9x below the validation loss, which had risen from 0.068 to 0.19 and
been pulled back to 0.09 by one-cycle's annealing: under the 25% rise the trend rule needs,
so it got no overfitting finding. The default run and a digits run are the healthy controls.
"""

from __future__ import annotations

from trainwise.findings import Severity
from trainwise.train.diagnose import RULES

OVERFIT_TRAIN = [
    2.321, 2.243, 2.068, 1.97, 1.753, 1.504, 1.377, 1.166, 0.958, 0.6432, 0.4945, 0.3229,
    0.2548, 0.218, 0.2986, 0.6081, 0.3118, 0.2803, 0.2201, 0.2732, 0.1062, 0.09817, 0.09504,
    0.07323, 0.05676, 0.2757, 0.3746, 0.4513, 0.1006, 0.1414, 0.06266, 0.04612, 0.03985,
    0.01774, 0.04355, 0.03863, 0.0129, 0.02711, 0.04492, 0.01278, 0.0392, 0.03866, 0.01162,
    0.0131, 0.02195, 0.05801, 0.05897, 0.007716, 0.0163, 0.008814, 0.07901, 0.02695, 0.02504,
    0.01343, 0.01067, 0.006743, 0.006804, 0.01436, 0.01057, 0.009151]
OVERFIT_VAL = [
    2.268, 2.205, 2.104, 1.952, 1.81, 1.701, 1.299, 1.012, 0.7909, 0.6854, 0.5857, 0.4425,
    0.5641, 0.4615, 1.409, 1.06, 3.689, 1.421, 1.338, 0.4129, 0.4115, 0.3364, 0.2224, 0.226,
    0.2402, 0.1615, 0.1968, 0.6703, 0.6904, 0.213, 0.1328, 0.1778, 0.1279, 0.1024, 0.1049,
    0.1227, 0.1445, 0.1027, 0.06841, 0.07438, 0.1026, 0.09904, 0.1519, 0.1828, 0.1935, 0.1787,
    0.1671, 0.1707, 0.1678, 0.1495, 0.1366, 0.1101, 0.1037, 0.09737, 0.09821, 0.09002,
    0.08921, 0.09376, 0.08803, 0.09065]
# the default `trainwise run` (MNIST-1D, 3600 rows, stopped early at epoch 23)
DEFAULT_TRAIN = [
    1.677, 0.6491, 0.2171, 0.1457, 0.1579, 0.1596, 0.1579, 0.1623, 0.2517, 0.1657, 0.1343,
    0.06998, 0.07139, 0.06628, 0.06394, 0.03589, 0.05988, 0.1036, 0.1044, 0.1086, 0.0822,
    0.03774, 0.02604]
DEFAULT_VAL = [
    1.104, 0.3419, 0.1572, 0.4534, 0.2219, 0.1745, 0.546, 0.3486, 0.2188, 0.1572, 0.2124,
    0.07331, 0.1717, 0.1866, 0.03564, 0.1027, 0.1176, 0.6952, 0.09372, 0.1749, 0.1089,
    0.08437, 0.0477]
# `trainwise run --set data.source='"digits"' --set train.max_epochs=15`
DIGITS_TRAIN = [2.152, 1.377, 0.3624, 0.101, 0.1111, 0.1355, 0.0653, 0.05322, 0.03496,
                0.01923, 0.01153, 0.01597, 0.01367, 0.01144, 0.01731]
DIGITS_VAL = [1.879, 0.5694, 0.1356, 0.1383, 0.1746, 0.09196, 0.0437, 0.08474, 0.04425,
              0.01992, 0.02467, 0.02383, 0.02558, 0.02377, 0.02842]


def epochs(train: list[float], val: list[float], steps_per_epoch: int = 3) -> list[dict]:
    return [{"kind": "epoch", "epoch": i + 1, "step": (i + 1) * steps_per_epoch,
             "train_loss": t, "val_loss": v}
            for i, (t, v) in enumerate(zip(train, val, strict=True))]


def test_the_run_made_to_overfit_is_found_by_its_generalisation_gap():
    (finding,) = RULES["overfitting"](epochs(OVERFIT_TRAIN, OVERFIT_VAL))
    assert finding.severity is Severity.WARNING
    assert finding.evidence["best_epoch"] == 39 and finding.step == 39 * 3
    assert finding.evidence["gap"] >= 5
    assert "training loss (0.0106) is 9x below the validation loss (0.0906)" in finding.message
    assert "memorises" in finding.message and "dropout" in finding.fix


def test_a_gap_needs_the_validation_loss_above_its_best():
    """The same 9x gap with the validation loss ending within 5% of its best (epoch 39): a
    model that fits its training rows closely, not one getting worse."""
    val = OVERFIT_VAL[:-3] + [0.0705, 0.071, 0.0702]
    assert RULES["overfitting"](epochs(OVERFIT_TRAIN, val)) == []


def test_a_gap_under_five_times_is_no_finding():
    train = [max(t, v / 4) for t, v in zip(OVERFIT_TRAIN, OVERFIT_VAL, strict=True)]
    assert RULES["overfitting"](epochs(train, OVERFIT_VAL)) == []


def test_healthy_audit_runs_get_no_overfitting():
    for train, val in ((DEFAULT_TRAIN, DEFAULT_VAL), (DIGITS_TRAIN, DIGITS_VAL)):
        assert RULES["overfitting"](epochs(train, val, steps_per_epoch=29)) == []
