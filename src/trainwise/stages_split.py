"""The split stage: plan the split (data/plan.py), fit the parts on the training rows alone
(fit_parts, also each crossval fold's), save split.npz, and the findings about the parts.
Moved out of stages.py (review s11 VD11), as stages_crossval/stages_tune were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainwise.config import split_seed
from trainwise.data.augment import augment_plan, random_flip
from trainwise.data.drift import split_drift
from trainwise.data.figures import picked, plot_samples, samples_caption
from trainwise.data.label_over_time import label_over_time
from trainwise.data.part_findings import (
    missing_classes,
    small_parts,
    stratify_fallback,
)
from trainwise.data.periods import groups_share_period, held_out_pairs
from trainwise.data.plan import (
    SplitResult,
    SplitSettings,
    folds_note,
    plan_split,
)
from trainwise.data.split import PART_WORDS, TIMED
from trainwise.data.split_figure import plot_split_timeline
from trainwise.data.task import TaskData
from trainwise.data.tensors import Normaliser
from trainwise.findings import Finding, TrainwiseError, info
from trainwise.preprocessing import FILE_NAME as PREPROCESS_FILE
from trainwise.preprocessing import Preprocessing, fitted_preprocessing
from trainwise.safe_write import replacing
from trainwise.stages import Arrays, RunContext
from trainwise.train.regression_predictions import apply_log, log_function


def stage_split(ctx: RunContext) -> list[Finding]:
    data, cfg = ctx.data, ctx.config.split
    assert data is not None
    result = plan_split(data, SplitSettings(
        val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, strategy=cfg.strategy,
        cut=cfg.cut, gap=cfg.gap, num_folds=cfg.num_folds, seed=split_seed(ctx.config),
        augment=ctx.config.data.augment))
    train, val, test = result.train, result.val, result.test
    if test is not None:  # no held-out part shipped: carved from the pool before any fitting
        x_test, y_test = data.x[test], data.y[test]
    else:
        x_test, y_test = data.x_test, data.y_test
    _make_arrays(ctx, train, val, x_test, y_test, test)
    saved = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    if data.source_rows is not None:  # rows dropped (missing target) or left out (max_samples):
        saved["source_rows"] = data.source_rows  # the indices above are not the file's (P11)
    for j, fold in enumerate(result.folds):  # fold indices are into the pool after the test cut
        saved[f"fold{j}_train"], saved[f"fold{j}_val"] = fold.train, fold.val
    if result.folds:  # what a resumed run needs to cross-validate: resume.saved_folds
        saved["pool"], saved["trained_fold"] = result.pool, np.array(result.trained_fold)
    ctx.folds, ctx.trained_fold = result.fold_rows(), result.trained_fold
    with replacing(ctx.run.path / "split.npz", "wb") as handle:  # not through a link: S3
        np.savez(handle, **saved)
    sizes = {name: len(arrays.y) for name, arrays in ctx.splits.items()}
    ctx.meta["split"] = {"strategy": result.strategy, "sizes": sizes,
                         "num_folds": max(1, len(result.folds)),
                         "num_dropped": result.num_dropped,
                         **({"target_log": ctx.target_log} if ctx.target_log else {}),
                         "same_period": _same_period(ctx, result),
                         "fingerprint": _fingerprint(train, val)}
    if result.num_dropped:
        data.notes.append(f"{result.num_dropped} rows inside the time gap are in no split")
    _add_timeline(ctx, {"train": train, "val": val, "test": test}, result)
    _redraw_samples(ctx, train)
    carved = {"test": cfg.test_fraction} if test is not None else {}
    findings = result.findings + small_parts(
        sizes, data.task, result.num_groups,
        {**({} if result.folds else {"val": cfg.val_fraction}), **carved},
        max(1, len(result.folds))) + _stratify_fallback(ctx, result) + _drift_and_classes(
        ctx, result)
    folds = folds_note(result)
    return [info("split", "split", f"Split by '{result.strategy}': "
                 f"{split_sizes_text(sizes, test is None, cfg.test_fraction)}{folds}"
                 f"{log_note(ctx.target_log)}.", **sizes)] + findings


def _drift_and_classes(ctx: RunContext, result: SplitResult) -> list[Finding]:
    """Drift between the parts, then (classification) the classes a part lacks. A class gone
    from later parts of a time split is the label changing with time: classes_missing_from_split
    says so, and drift leaves the label out (review s12 VD4: two warnings, opposite fixes)."""
    data = ctx.data
    assert data is not None
    parts = {"train": result.train, "val": result.val, "test": result.test}
    over_time: dict[str, str] = {}
    missing: list[Finding] = []
    if data.task == "classification":
        counts = {name: np.bincount(a.y, minlength=data.num_classes).tolist()
                  for name, a in ctx.splits.items()}
        ctx.meta["data"]["class_counts"] = counts
        if result.strategy in TIMED and result.times is not None:
            over_time = label_over_time(data.y, result.times, parts, data.class_names, counts)
        missing = missing_classes(counts, data.class_names, result.strategy, over_time)
    return split_drift(data, parts, result.strategy, split_seed(ctx.config),
                       label_told=bool(over_time),
                       same_period=ctx.meta["split"]["same_period"]) + missing


def _same_period(ctx: RunContext, result: SplitResult) -> bool:
    """The split's verdict, recorded once for drift and crossval to read (review s13 VD4):
    whole groups by start time over one shared period (periods.py), in any fold or part."""
    if result.strategy != "group_time" or result.times is None:
        return False
    return groups_share_period(result.times, held_out_pairs(
        result.train, result.val, result.test, ctx.folds))


def _redraw_samples(ctx: RunContext, train: np.ndarray) -> None:
    """A table wider than the figure: its histograms redrawn for the features that tell the
    classes apart most on the training rows, now that they are known (figures.picked)."""
    data = ctx.data
    assert data is not None
    flagged = ctx.meta.get("data", {}).get("flagged_features")  # the data stage's
    chosen = picked(data, train, flagged)  # one F test over every column, figure and caption
    if chosen is None:
        return
    path = plot_samples(data, ctx.run.figure_path("samples.png"), chosen)
    for entry in ctx.meta.get("figures", []):
        if isinstance(entry, dict) and entry.get("path") == str(path.relative_to(ctx.run.path)):
            entry["caption"] = samples_caption(data, chosen)


def _stratify_fallback(ctx: RunContext, result: SplitResult) -> list[Finding]:
    """Why "auto" drew a classifier's validation part at random (part_findings says)."""
    data, cfg = ctx.data, ctx.config.split
    assert data is not None
    if (cfg.strategy != "auto" or data.task != "classification" or result.strategy != "random"
            or result.folds):
        return []
    pool = np.concatenate([result.train, result.val])
    return stratify_fallback(np.asarray(data.y)[pool], len(result.val), cfg.val_fraction)


def _add_timeline(ctx: RunContext, parts: dict, result: SplitResult) -> None:
    figure = plot_split_timeline(parts, result.groups, result.times,
                                 ctx.run.figure_path("split_timeline.png"))
    if figure is not None:
        ctx.meta.setdefault("figures", []).append({
            "path": str(figure.relative_to(ctx.run.path)), "title": "The split",
            "caption": "Each row at its time (or row number), one line per group in order of "
                       "first time, coloured by the part it went to."})


def split_sizes_text(sizes: dict[str, int], own_test: bool, test_fraction: float) -> str:
    """'train 3600, validation 400, test 1000 (...)': where the test rows came from, since a
    source's own test part leaves split.test_fraction unused (mnist1d: 4000 loaded, 5000
    in the parts)."""
    words = [f"{PART_WORDS.get(part, part)} {n}" for part, n in sizes.items()]
    if "test" in sizes:
        words[list(sizes).index("test")] += (
            " (the data set's own test part; split.test_fraction not used)" if own_test
            else f" (carved by split.test_fraction = {test_fraction:g})")
    return ", ".join(words)


def _fingerprint(*parts: np.ndarray) -> str:
    import xxhash

    digest = xxhash.xxh64()
    for part in parts:
        digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    return digest.hexdigest()


@dataclass
class FittedParts:
    """A training and a validation part with what was fitted on the training rows alone."""

    train: Arrays
    val: Arrays
    normaliser: Normaliser | None
    target_mean: float = 0.0  # regression: the model trains on (y - mean) / scale
    target_scale: float = 1.0


def fit_parts(data: TaskData, train: np.ndarray, val: np.ndarray, augment: str,
              log: str) -> FittedParts:
    """Normalise with training statistics only (token ids stay int64 ids: augment_plan);
    standardise regression targets likewise (of log(y) or log1p(y) when `log` names one:
    log_function). The split stage fits
    the run's parts with it, the crossval stage each fold's."""
    plan = augment_plan(data, augment)[0]
    normaliser = Normaliser().fit(data.x[train]) if plan.normalise else None
    scale = normaliser.transform if normaliser is not None else np.asarray
    y, mean, std = data.y, 0.0, 1.0
    if data.task == "regression":  # float64: float32 squares overflow from |y| ~ 2e19
        y = log_target(y, log) if log else y
        y_train = y[train].astype(np.float64)
        mean, std = float(y_train.mean()), float(y_train.std())
        if not (np.isfinite(mean) and np.isfinite(std)):
            raise TrainwiseError(f"the regression target's mean ({mean:.3g}) or spread "
                                 f"({std:.3g}) over the training rows is not finite. Rescale "
                                 "the target (divide it by a power of ten, or take its log).")
        std = std or 1.0
        y = (y - mean) / std
    return FittedParts(Arrays(scale(data.x[train]), y[train], random_flip if plan.flip else None,
                              train),
                       Arrays(scale(data.x[val]), y[val], rows=val), normaliser, mean, std)


def _make_arrays(ctx: RunContext, train: np.ndarray, val: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, test: np.ndarray | None) -> None:
    data = ctx.data
    assert data is not None
    log = ""  # data.target_transform = "log": the log, or log1p when a target is 0
    if data.task == "regression" and ctx.config.data.target_transform == "log":
        log = _resumed_log(ctx) or log_function(data.y, y_test)
    parts = fit_parts(data, train, val, ctx.config.data.augment, log)
    scale = parts.normaliser.transform if parts.normaliser is not None else np.asarray
    if data.task == "regression":
        ctx.target_log = log
        y_test = log_target(y_test, log) if log else y_test
        ctx.target_scale, ctx.target_mean = parts.target_scale, parts.target_mean
        y_test = (y_test - parts.target_mean) / parts.target_scale
    # saved for trainwise.predict: new rows need the same statistics (the model expects them)
    fitted_preprocessing(data, parts.normaliser, ctx.target_mean, ctx.target_scale,
                         ctx.target_log).save(ctx.run.path)
    ctx.splits = {"train": parts.train, "val": parts.val,
                  "test": Arrays(scale(x_test), y_test, rows=test)}


def _resumed_log(ctx: RunContext) -> str:
    """A resumed run's log, as its preprocess.npz recorded it ("" for a new run): its
    checkpoints were trained on it. A folder written before the log was chosen per target
    records none and was trained on log1p (Preprocessing.target_function)."""
    if not (ctx.run.path / PREPROCESS_FILE).is_file():
        return ""
    return Preprocessing.load(ctx.run.path).target_function("log")


def log_target(y: np.ndarray, function: str) -> np.ndarray:
    """A regression target on its log (data.target_transform = "log"; `function` from
    log_function: "log", or "log1p" when a target is 0); an error for values below 0, whose
    log is undefined."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) and float(np.nanmin(y)) < 0:
        raise TrainwiseError(
            f"data.target_transform = \"log\" trains on the target's log, but the target goes "
            f"down to {float(np.nanmin(y)):.4g} and the log of a value below 0 is undefined. "
            "Set data.target_transform = \"none\", or shift the target to start at 0 in the "
            "data (data stage).")
    return apply_log(y, function)


def log_note(function: str) -> str:
    """Which log the run trains on, for the split stage's line and meta.json."""
    if function == "log":
        return "; the target is trained on its natural log (every value is above 0)"
    if function == "log1p":
        return ("; the target is trained on log(1 + target) (a value is 0, whose log is "
                "undefined; on a target far below 1 that is close to no log at all: rescale "
                "it to larger units, or drop the rows at 0)")
    return ""
