"""What the crossval stage's per-fold scores say (pure: rows in, a finding and a figure out).

Random folds are draws of the same model on the same data: their spread is split noise, and the
mean is the score to quote. Whether the folds really disagree is a chi-square test of the folds'
right/wrong counts, not a fixed gap: five 30-row folds of one model with a true accuracy of 90%
spread over 10+ points in 80% of draws (binomial simulation, review s11 VD6). Time folds are a
backtest instead: expanding windows train on 1/(k+1) .. k/(k+1) of the rows, so their spread may
be the learning curve (called so only when the scores rise with the training rows,
crossval_windows.CURVE_RHO) or the periods' own difficulty; the latest fold, the run's, is no
draw from it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from scipy.stats import chi2_contingency

from trainwise.findings import Finding, info, warning
from trainwise.train.crossval_windows import (
    BALANCED,
    CURVE_RHO,
    METRIC,
    ap_verdict,
    at_majority,
    chosen_metric,
    learning_rho,
    right_rows,
    shown,
    window_text,
)

DISAGREE_P = 0.05  # the folds' accuracies differ beyond binomial noise at this significance


def folds_disagree(rows: list[dict[str, Any]]) -> float | None:
    """The p-value of a chi-square test that every fold has the same accuracy (its right and
    wrong counts), or None when it cannot be computed (one fold, or all right or all wrong)."""
    right = np.array([right_rows(row) for row in rows])
    wrong = np.array([row["val_rows"] for row in rows]) - right
    if len(rows) < 2 or right.sum() == 0 or wrong.sum() == 0:
        return None
    return float(chi2_contingency(np.stack([right, wrong]))[1])


def crossval_finding(rows: list[dict[str, Any]], task: str, timed: bool, trained_fold: int,
                     setup: str, note: str = "") -> tuple[Finding, dict[str, Any]]:
    """The stage's finding and meta.json's cross_validation (without the figure). The metric
    is balanced accuracy when the folds' classes are imbalanced (crossval_windows); `note`
    ends the message (what kind of folds these are, when it needs saying)."""
    key, name = chosen_metric(rows, task, METRIC[task])
    scored = [row for row in rows if row.get(key) is not None and np.isfinite(row[key])]
    scores = np.array([row[key] for row in scored], dtype=float)
    mean = float(scores.mean()) if len(scores) else float("nan")
    sd = float(scores.std(ddof=1)) if len(scores) > 1 else 0.0
    own = next((row.get(key) for row in rows if row["fold"] == trained_fold), None)
    summary = {"metric": key, "mean": mean, "std": sd, "trained_fold": trained_fold,
               "timed": timed, "folds": rows}
    evidence = {"metric": key, "mean": mean, "std": sd, "scores": scores.tolist()}
    failed = [row for row in rows if row.get("error")]
    if failed or len(scores) < 2:
        return _noted(_unscored(rows, failed, name), note), summary
    evidence["p_folds_agree"] = folds_disagree(scored) if key == "val_accuracy" else None
    if at_majority(rows):  # imbalanced: the class shares learned; else nothing learned
        judge = _at_majority if key == BALANCED[0] else _at_chance
        return _noted(judge(rows, timed, evidence), note), summary
    if timed:
        return _backtest(rows, (key, name), f"({setup})", (trained_fold, own), evidence), summary
    points = "" if "accuracy" not in key else " points"
    spread = (f"{100 * sd:.1f}" if "accuracy" in key else f"{sd:.4g}") + points
    message = (f"Cross-validation over {len(rows)} folds ({setup}): {name} {shown(mean, key)} "
               f"+- {spread} (standard deviation over folds; from {shown(scores.min(), key)} "
               f"to {shown(scores.max(), key)}). The run's model (fold {trained_fold}) scored "
               f"{shown(own, key)} and is the one tested.{note}")
    p = evidence["p_folds_agree"]
    if p is not None and p < DISAGREE_P:
        return warning("crossval", "crossval_spread", message + f" The folds disagree beyond "
                       f"what their row counts explain (chi-square p = {p:.3g}): some folds hold "
                       "rows unlike the others.", "Quote the mean and spread, not one fold's "
                       "score; look at the folds with the lowest scores for rows unlike the "
                       "rest (data stage).", **evidence), summary
    return info("crossval", "cross_validation", message, **evidence), summary


def _noted(finding: Finding, note: str) -> Finding:
    """`note` (what kind of folds these are) ends every message of the stage, not only the
    plain one: group_time folds at chance lost "no backtest" (final read s13)."""
    return replace(finding, message=finding.message + note) if note else finding


def _backtest(rows: list[dict[str, Any]], metric: tuple[str, str], setup: str,
              own: tuple[int, float | None], evidence: dict[str, Any]) -> Finding:
    """Time folds: each window beside its dates and baselines; "learning curve" only when the
    scores improve with the training rows (Spearman), and a warning when the windows differ
    beyond row noise without it (the period, not the training size, moves the score)."""
    (key, name), (fold, score) = metric, own
    each = ", ".join(window_text(row, key) for row in rows)
    rho = evidence["learning_rho"] = learning_rho(rows, key)
    said = "undefined" if rho is None else f"{rho:.2f}"
    curve = rho is not None and rho >= CURVE_RHO
    message = (f"Backtest over {len(rows)} expanding time windows {setup}: {name} per window "
               f"{each}. " + (f"The scores improve with the training rows (Spearman rho "
                              f"{said}), so the spread is mostly the learning curve"
                              if curve else f"The scores do not improve with the training rows "
                              f"(Spearman rho {said}): more training rows did not help, and "
                              "the spread is each period's own difficulty (read each window "
                              "beside its baselines)") +
               f"; the run's model (fold {fold}, the latest) scored {shown(score, key)} and is "
               "the one tested.")
    p = evidence["p_folds_agree"]
    if curve or p is None or p >= DISAGREE_P:
        return info("crossval", "backtest", message, **evidence)
    return warning("crossval", "backtest_spread", message + f" The windows' accuracies differ "
                   f"beyond their row counts (chi-square p = {p:.3g}).", "Compare each "
                   "window with its majority share and class counts: a score that moves with "
                   "the period calls for features of the period (season, trend) or a more "
                   "recent training window (data stage); quote the latest window, not the "
                   "mean.", **evidence)


def _balanced_words(evidence: dict[str, Any], unit: str) -> str:
    """' Validation balanced accuracy per window: 50.0%, ...' when that is the metric."""
    if evidence["metric"] != "val_balanced_accuracy":
        return ""
    return (f" Validation balanced accuracy per {unit}: "
            + ", ".join(shown(v, evidence["metric"]) for v in evidence["scores"]) + ".")


def _at_majority(rows: list[dict[str, Any]], timed: bool, evidence: dict[str, Any]) -> Finding:
    """A warning when no fold's accuracy beats always answering its majority class: a mean
    accuracy over such folds (98.1% in audit s13 F4) is the label's share, not the model."""
    unit, beats, at_most, shares = _below_majority(rows, timed)
    trend = (f" The majority share moves from {shares[0]:.1%} to {shares[-1]:.1%} across "
             "the windows: the label's rate changes with time, and accuracy follows it."
             if timed and abs(shares[-1] - shares[0]) >= 0.01 else "")
    return warning(
        "crossval", "crossval_at_majority",
        f"{beats}: {at_most}; the model learned the class shares, not the classes."
        f"{_balanced_words(evidence, unit)}{ap_verdict(rows, unit)}{trend}",
        "Judge the run by balanced accuracy (or average precision), not accuracy: set "
        "train.class_weights = \"balanced\" or use the decision threshold the evaluate stage "
        "keeps, and check that the inputs carry signal about the rare classes (data stage); "
        "then rerun.", **evidence, majority_shares=shares)


def _at_chance(rows: list[dict[str, Any]], timed: bool, evidence: dict[str, Any]) -> Finding:
    """A warning when no fold beats its majority class although the classes are not imbalanced
    (smallest/largest >= IMBALANCE_RATIO, chosen_metric): there is no rare class to weight, so
    the model learned nothing from the inputs (review s13 VD5: 50/50 folds at 47-50% were told
    to set class weights, which change nothing on balanced classes)."""
    _, beats, at_most, shares = _below_majority(rows, timed)
    return warning(
        "crossval", "crossval_at_chance",
        f"{beats}, and the classes are not imbalanced: {at_most}; the model learned nothing "
        "from the inputs.",
        "Check the learning rate first (tune stage): a training loss that stays at its value "
        "at initialisation means the lr is far off; let the tune stage pick it (train.lr = "
        "\"auto\") or read `trainwise find-lr`'s range test. Then check that the inputs "
        "carry signal about the label (data stage: features dropped or scaled away, labels "
        "shuffled against their rows); then rerun.",
        **evidence, majority_shares=shares)


def _below_majority(rows: list[dict[str, Any]],
                    timed: bool) -> tuple[str, str, str, list[float]]:
    """What _at_majority and _at_chance both say: the unit (window or fold), "No fold beats
    always answering its majority class", each fold's accuracy against its majority share,
    and the majority shares (evidence)."""
    unit = "window" if timed else "fold"
    each = ", ".join(window_text(row, "val_accuracy") for row in rows)
    return (unit, f"No {unit} beats always answering its majority class",
            f"each {unit}'s validation accuracy is at most its majority share ({each})",
            [row["majority_share"] for row in rows])


def _unscored(rows: list[dict[str, Any]], failed: list[dict[str, Any]], name: str) -> Finding:
    """A warning when some folds could not be trained or scored: no mean over the others, which
    would quote a spread the missing folds may hide."""
    said = "; ".join(f"fold {row['fold']}: {row['error']}" for row in failed) or \
        "fewer than two folds gave a finite score"
    return warning("crossval", "crossval_incomplete", f"Cross-validation incomplete: {said}. "
                   f"No {name} is quoted over the folds.", "Each fold trains with the run's "
                   "batch size and settings: a fold too small for them (a short time window, a "
                   "BatchNorm model on a few rows) fails. Use fewer folds (split.num_folds) or "
                   "a smaller train.batch_size (split stage).",
                   folds=[{k: v for k, v in row.items()} for row in rows])


def crossval_figure(rows: list[dict[str, Any]], task: str, trained_fold: int,
                    timed: bool = False) -> Figure | None:
    """One dot per fold with the mean and +-1 standard deviation: the spread at a glance (time
    folds: the dots alone, one per window, not a spread), and each fold's naive baseline
    (majority share, previous value or training mean) as a grey mark where it is known."""
    key, name = chosen_metric(rows, task, METRIC[task])
    folds = [row for row in rows if row.get(key) is not None and np.isfinite(row[key])]
    if len(folds) < 2:
        return None
    scores = np.array([row[key] for row in folds])
    mean, sd = scores.mean(), scores.std(ddof=1)
    figure = Figure(figsize=(5.5, 2.6))
    ax = figure.subplots()
    if not timed:
        ax.axhspan(mean - sd, mean + sd, color="0.9", label="mean +- 1 sd")
        ax.axhline(mean, color="0.5", linewidth=1)
    for row in folds:
        own = row["fold"] == trained_fold
        ax.plot(row["fold"], row[key], "o", color="C1" if own else "C0",
                label="the run's fold (tested)" if own else None)
    _baselines(ax, folds, key)
    ax.set_xticks([row["fold"] for row in folds])
    ax.set_xlabel("time window (fold)" if timed else "fold")
    ax.set_ylabel(name)
    if "accuracy" in key:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=7, loc="best")
    figure.tight_layout()
    return figure


def _baselines(ax: Any, folds: list[dict[str, Any]], key: str) -> None:
    """Grey marks for what each fold is judged against, in the plotted metric's units."""
    field, label = {"val_accuracy": ("majority_share", "always the majority class"),
                    "val_rmse": ("previous_rmse", "previous value")}.get(key, ("", ""))
    if key == "val_rmse" and not any(field in row for row in folds):
        field, label = "mean_rmse", "training mean"
    marked = [row for row in folds if field in row]
    if marked:
        ax.plot([row["fold"] for row in marked], [row[field] for row in marked], "x",
                color="0.4", label=label)
