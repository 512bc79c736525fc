"""A linear reference model for tables and vectors: what a network must beat to earn its place.

METHOD 2 starts from the simplest structure. On a few hundred rows a network often loses to a
line: audit s11 (M16) met sklearn's diabetes (442 rows) where the default MLP scored test RMSE
57.5 (R^2 0.445) and "no warnings", while RidgeCV on the same training rows scored RMSE 50.4
(R^2 0.574). The mean baseline cannot say that: the network beat it (RMSE 77.5) easily.

Fitted with scikit-learn on the training split only (the rows the network trained on, already
normalised by the split), scored on the test rows with the network's own metrics. Images,
sequences and token ids get no reference: a line over pixels or token ids is no fair bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from trainwise.amounts import amount
from trainwise.findings import Finding, explained, warning
from trainwise.safe_write import replacing

# the reference as the test_result line and the report's test table name it (regression:
# regression_metrics.BASELINES["linear"], beside the other regression baselines)
LOGISTIC_REFERENCE = "a linear model (logistic regression on the training split)"
LINEAR_KINDS = ("table", "vector")  # data.kind values a linear model is a fair bar for
# At most this many training rows are fitted (a seeded sample beyond): RidgeCV's
# leave-one-out and lbfgs stay within a few seconds there (digits, 1,437 x 64: 0.3 s), and a
# linear model's scores settle long before 50,000 rows.
MAX_FIT_ROWS = 50_000
MAX_FIT_CELLS = 5_000_000  # ... and rows x features: 784 features fit 6,377 rows
MIN_FIT_ROWS = 1_000  # never cut below this (a 20,000-feature table still gets 1,000 rows)
RIDGE_ALPHAS = np.logspace(-3, 3, 13)  # RidgeCV's efficient leave-one-out picks among them
# Regression: the network must explain this much more of the test targets' variance than the
# line (R^2 points), the same margin as it must beat the training mean by
# (regression_metrics.R2_MARGIN). Classification: one point of accuracy, and at least one more
# right answer, as against the majority class (class_metrics.BASELINE_MARGIN).
R2_MARGIN = 0.05
ACCURACY_MARGIN = 0.01
# A warning needs the line ahead beyond noise: McNemar's exact test on the rows only one of
# the two gets right below this p (breast_cancer, 114 rows, 97.37% each: no warning; a line
# right on 6 rows the network misses, and never the other way, is p = 0.031: a warning)
P_AHEAD = 0.05


@dataclass(frozen=True)
class LinearFit:
    """The linear model's answers on the test rows: class ids, or targets in the units the
    network trained in; `fit_rows` of the `train_rows` training rows were fitted."""

    predictions: np.ndarray
    name: str
    fit_rows: int
    train_rows: int
    # the fitted line on the inputs as given (the scaler folded in): answer = x @ coef.T +
    # intercept; (1, F) and (1,) for ridge, (K or 1, F) logits for logistic regression
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None
    penalty: float = math.nan  # RidgeCV's chosen alpha, or LogisticRegression's C
    classes: np.ndarray | None = None  # the class ids the logits' columns stand for

    def fitted_text(self) -> str:
        """'fitted on the 282 training rows' or 'fitted on 50,000 of the 80,000 ...'."""
        if self.fit_rows < self.train_rows:
            return (f"fitted on a random {self.fit_rows:,} of the {self.train_rows:,} training "
                    "rows, to keep it fast")
        return f"fitted on the {self.train_rows:,} training rows"


def fit_row_count(num_rows: int, num_features: int) -> int:
    """How many training rows to fit: all, up to MAX_FIT_ROWS and MAX_FIT_CELLS."""
    by_cells = max(MIN_FIT_ROWS, MAX_FIT_CELLS // max(num_features, 1))
    return min(num_rows, MAX_FIT_ROWS, by_cells)


def linear_fit(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
               classification: bool, *, seed: int = 0,
               class_weighted: bool = False) -> LinearFit | None:
    """RidgeCV (regression) or LogisticRegression(max_iter=1000) (classification) on the
    standardised training features, predicting the test rows. None where a line cannot be
    fitted: no test rows, non-finite features, or a single class in training."""
    x = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    test = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    y = np.asarray(y_train).reshape(len(y_train), -1)[:, 0]
    if not len(test) or not len(x) or not (np.isfinite(x).all() and np.isfinite(test).all()):
        return None
    if classification and len(np.unique(y)) < 2:
        return None
    keep = fit_row_count(len(x), x.shape[1])
    rows = np.sort(np.random.default_rng(seed).choice(len(x), keep, replace=False)) \
        if keep < len(x) else np.arange(len(x))
    # scaled again: a split's table is standardised, a user's vectors need not be, and
    # the penalty of either model treats every feature alike only on one scale
    model = make_pipeline(StandardScaler(), LogisticRegression(
        max_iter=1000, class_weight="balanced" if class_weighted else None)
        if classification else RidgeCV(alphas=RIDGE_ALPHAS))
    model.fit(x[rows], y[rows] if classification else y[rows].astype(np.float64))
    name = "logistic regression" if classification else "ridge regression"
    return LinearFit(np.asarray(model.predict(test)), name, keep, len(x), *_folded(model))


def _folded(model: Pipeline) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
    """The pipeline's StandardScaler folded into its line: coef / scale on the inputs as
    given, the intercept less coef . mean / scale; so the saved line needs no scaler."""
    scaler, line = model[0], model[-1]
    coef = np.atleast_2d(np.asarray(line.coef_, dtype=np.float64)) / scaler.scale_
    intercept = np.atleast_1d(np.asarray(line.intercept_, dtype=np.float64)) - coef @ scaler.mean_
    penalty = float(getattr(line, "alpha_", getattr(line, "C", math.nan)))
    return coef, intercept, penalty, getattr(line, "classes_", None)


LINEAR_FILE = "linear_reference.npz"


def save_linear(path: Path, fit: LinearFit, feature_names: list[str], task: str,
                target_mean: float = 0.0, target_scale: float = 1.0,
                target_transform: str = "none") -> None:
    """The line the run scored, as plain arrays (np.load(..., allow_pickle=False)), so "keep
    the linear model" can be acted on (audit s12 S13). It reads the inputs as the network does
    (preprocess.npz's normalisation applied); a regression's coef and intercept are in the
    target's units (times target_scale, plus target_mean; then the log undone: exp under
    target_transform "log", expm1 under "log1p", the TargetUnits.log the run trained on;
    files written before both were told apart hold "log" for either, and preprocess.npz's
    target_log says which), a classification's give logits over `classes`."""
    assert fit.coef is not None and fit.intercept is not None
    coef, intercept = fit.coef, fit.intercept
    if task != "classification":
        coef, intercept = coef * target_scale, intercept * target_scale + target_mean
    names = feature_names if len(feature_names) == coef.shape[1] else []
    classes = np.asarray([] if fit.classes is None else fit.classes, dtype=np.int64)
    with replacing(path, "wb") as handle:  # not through a link (audit s16 S3)
        np.savez(handle, task=np.str_(task), model=np.str_(fit.name), coef=coef,
                 intercept=intercept, penalty=np.float64(fit.penalty), classes=classes,
                 feature_names=np.asarray(names, dtype=str),
                 target_transform=np.str_(target_transform),
                 fit_rows=np.int64(fit.fit_rows), train_rows=np.int64(fit.train_rows))


def regression_finding(rmse: float, linear_rmse: float, test_std: float,
                       fit: LinearFit) -> Finding | None:
    """A warning when the network's R^2 is not R2_MARGIN above the line's on the test rows
    (in MSE terms, so that constant test targets, R^2 undefined, are judged too)."""
    variance = test_std ** 2
    if rmse ** 2 < linear_rmse ** 2 - R2_MARGIN * variance:
        return None
    r2, linear_r2 = (_r2(e, variance) for e in (rmse, linear_rmse))
    gap = _behind(linear_rmse - rmse, f"{amount(abs(linear_rmse - rmse))} in RMSE")
    # the line clearly ahead: it explains R2_MARGIN more of the test targets' variance (the
    # verdict's wording and the fix's lead read this one test, review s14 VE10)
    line_ahead = linear_rmse ** 2 < rmse ** 2 - R2_MARGIN * variance
    said = (f"Test RMSE {amount(rmse)}{r2}; a linear model ({fit.name}, {fit.fitted_text()}) "
            f"scores RMSE {amount(linear_rmse)}{linear_r2} on the same test rows: the network "
            f"is {gap}, " + _verdict(rmse, linear_rmse, variance, line_ahead))
    return _unless_ahead(linear_rmse - rmse, warning(
        "evaluate", "below_linear_reference", said, _fix(fit, line_ahead),
        test_rmse=round(rmse, 6),
        linear_rmse=round(linear_rmse, 6), test_std=round(test_std, 6),
        linear_fit_rows=fit.fit_rows))


def class_finding(num_correct: int, linear_correct: int, num_rows: int, fit: LinearFit,
                  discordant: tuple[int, int], balanced: tuple[float, float] | None = None,
                  balanced_interval: list[float] | None = None) -> Finding | None:
    """A warning when the line is ahead of the network on the test rows by more than noise:
    in accuracy, McNemar's exact test on the `discordant` rows (the line's right answers the
    network got wrong, the network's the line got wrong) at P_AHEAD with the line's side the
    larger; trained with class weights, in `balanced` accuracy (the network's and the
    line's), where `balanced_interval` (the paired bootstrap of the network's minus the
    line's) must lie below 0: McNemar's p tests right answers, and the network's 44 to the
    line's 5 gave p = 7.6e-09 beside the line's balanced-accuracy lead (review s14 VE12).
    Otherwise a note when the network is not ACCURACY_MARGIN ahead (nor one more right
    answer), and nothing where it is, or where it is level with a line that leaves no room
    above it."""
    needed = max(1, math.ceil(ACCURACY_MARGIN * num_rows))  # right answers
    p_value = _line_ahead_p(*discordant)  # McNemar's, read without class weights
    if balanced is not None:
        ours, theirs, what = balanced[0], balanced[1], "balanced accuracy"
        clear, room = ours - theirs >= ACCURACY_MARGIN, theirs + ACCURACY_MARGIN <= 1
        ahead = theirs > ours and balanced_interval is not None and balanced_interval[1] < 0
    else:
        ours, theirs, what = num_correct / num_rows, linear_correct / num_rows, "accuracy"
        clear, room = num_correct - linear_correct >= needed, linear_correct + needed <= num_rows
        ahead = discordant[0] > discordant[1] and p_value < P_AHEAD
    # wine: 36 of 36 rows right by both, no room above: nothing. A network behind a perfect
    # line still gets the note (audit s13 P3: 26 of 30 against the line's 30, McNemar p 0.125,
    # said nothing)
    if clear or (not room and ours >= theirs and not ahead):
        return None
    clearly = (f"it must be ahead by {100 * ACCURACY_MARGIN:.0f} point of {what}" if balanced else
               f"it must get at least {needed} more right answer{'s' if needed > 1 else ''}, "
               f"{100 * needed / num_rows:.1f} points")
    said = (f"Test {what} {ours:.2%}; a linear model ({fit.name}, {fit.fitted_text()}) "
            f"scores {theirs:.2%} on the same {num_rows:,} test rows: the network is "
            f"{_behind(ours - theirs, f'{100 * abs(ours - theirs):.1f} points')}, not clearly "
            f"better ({clearly}). Of the rows the two answer differently, {discordant[0]} are "
            f"right by the line alone and {discordant[1]} by the network alone"
            + (_balanced_noise(balanced_interval) if balanced else _mcnemar(p_value)))
    evidence = {"balanced_difference_interval": balanced_interval} if balanced else \
        {"mcnemar_p": round(p_value, 6)}
    found = warning("evaluate", "below_linear_reference", said, _fix(fit, ahead),
                    test_score=round(ours, 6), linear_score=round(theirs, 6), score=what,
                    linear_fit_rows=fit.fit_rows, linear_only=discordant[0],
                    network_only=discordant[1], **evidence)
    return found if ahead else explained(found, "Within the test's noise: a note, not a "
                                         "warning.", "")


def _mcnemar(p_value: float) -> str:
    return (f" (McNemar's exact p = {p_value:.2g}; below {P_AHEAD}, with "
            "the line's side the larger, is beyond noise).")


def _balanced_noise(interval: list[float] | None) -> str:
    """The balanced accuracies' paired bootstrap, the noise test under class weights."""
    if interval is None:
        return "; too few test rows to tell the balanced accuracies apart from noise."
    low, high = (f"{100 * v:+.1f}" for v in interval)
    return (f". The network's balanced accuracy minus the line's, 95% interval {low} to "
            f"{high} points (paired bootstrap over the test rows; below 0 throughout: the line "
            "ahead beyond noise).")


def _line_ahead_p(linear_only: int, network_only: int) -> float:
    """McNemar's exact two-sided p: the rows only one model gets right, split as a fair coin
    would? 6 to 0 gives p = 2 / 2^6 = 0.031, 5 to 0 gives 0.063; 1.0 with none."""
    total = linear_only + network_only
    return float(binomtest(linear_only, total, 0.5).pvalue) if total else 1.0


def _verdict(rmse: float, linear_rmse: float, variance: float, line_ahead: bool) -> str:
    """Three cases (audit s14 R7: a line 0.54 of R^2 ahead was called "not clearly better"
    and "as well as the network"): the line clearly ahead (it explains R2_MARGIN more of the
    test targets' variance), level within that margin, or the network ahead by less."""
    margin = f"{R2_MARGIN:.0%} of the test targets' variance"
    if line_ahead:
        more = f" {(rmse ** 2 - linear_rmse ** 2) / variance:.0%}" if variance > 0 else ""
        return (f"clearly worse: the line explains{more} more of the test targets' variance "
                f"(beyond the {R2_MARGIN:.0%} margin).")
    if linear_rmse > rmse:
        return (f"slightly ahead but not clearly better (it must explain {margin} more "
                "than the line).")
    return (f"level with it within {margin}: not clearly better (it must explain {margin} "
            "more than the line).")


def _unless_ahead(gain: float, found: Finding) -> Finding:
    """A warning when the line is ahead of the network (regression); level with it or ahead
    by less than the margin, a note: a level network is no reason to warn."""
    if gain < 0:
        return found
    return explained(found, "The line is not ahead of it: a note, not a warning.", "")


def _behind(gain: float, size: str) -> str:
    """'behind it by 3.2 points', 'level with it' or 'ahead of it by 0.8 points'."""
    if gain == 0:
        return "level with it"
    return f"{'ahead of' if gain > 0 else 'behind'} it by {size}"


def _r2(rmse: float, variance: float) -> str:
    return f" (R^2 {1 - rmse ** 2 / variance:.3g})" if variance > 0 else ""


def _fix(fit: LinearFit, line_ahead: bool = False) -> str:
    lead = "A line does better than the network here" if line_ahead else \
        "A line does as well as the network here"
    return (f"{lead}: keep the linear model (scikit-learn's "
            f"{'RidgeCV' if fit.name == 'ridge regression' else 'LogisticRegression'} on the "
            "standardised features; the run folder's linear_reference.npz holds it: "
            "x @ coef.T + intercept on the inputs normalised as preprocess.npz says), or give "
            "the network what a line cannot use: more rows "
            f"(it trained on {fit.train_rows:,}) or features whose effect is not linear (data "
            "stage). Before giving up on it, read the train stage's findings: a peak learning "
            "rate too high (loss_exploding, gradient_spike) or too low (lr_too_low), or a best "
            "epoch early in training, leave a network below its best (tune stage: train.lr).")
