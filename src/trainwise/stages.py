"""The stages of the method, each `stage(ctx) -> list[Finding]`, run in order by recipe.py.

Each stage reads what earlier stages left on the RunContext and adds its own results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from lightning_fabric import Fabric
from torch import nn

from trainwise.config import Config, split_seed
from trainwise.data.audit import audit, class_rows_needed, extreme_targets
from trainwise.data.augment import augment_findings, augment_plan, random_flip
from trainwise.data.distribution_figures import distribution_caption, plot_distributions
from trainwise.data.figures import picked, plot_samples, samples_caption
from trainwise.data.part_findings import (
    missing_classes,
    small_parts,
    stratify_fallback,
)
from trainwise.data.plan import (
    SplitResult,
    SplitSettings,
    folds_note,
    key_findings,
    plan_split,
)
from trainwise.data.sources import load_data
from trainwise.data.split_figure import plot_split_timeline
from trainwise.data.task import TaskData
from trainwise.data.tensors import Normaliser, sample_rows, to_loader
from trainwise.findings import Finding, TrainwiseError, errors, info
from trainwise.model.baselines import baseline_name, build_model, loss_function
from trainwise.model.class_weights import (
    balanced_class_weights,
    extreme_weights,
    extreme_weights_finding,
)
from trainwise.model.init_notes import apply_init_policy
from trainwise.model.optim import group_table, make_adamw
from trainwise.model.summary import (
    check_batch_of_one,
    check_output_shape,
    forward_error,
    shape_trace,
)
from trainwise.model.trained_mark import trained_by
from trainwise.preprocessing import fitted_preprocessing
from trainwise.rundir import RunDir
from trainwise.train.batch_norm import batch_parts, batch_too_small, has_batch_norm
from trainwise.train.regression_predictions import TargetUnits

PREFLIGHT_SAMPLES = 256  # enough to overfit a batch and see a trend, small enough for ~2 s


@dataclass
class Arrays:
    """One split's normalised features (or int64 token ids) and targets."""

    x: np.ndarray
    y: np.ndarray
    augment: Callable[..., Any] | None = None  # training split only, e.g. random_flip
    rows: np.ndarray | None = None  # each row's position in the data as loaded (None: a
    # source's own test part); the label check names suspects by it

    def loader(self, batch_size: int, *, shuffle: bool, seed: int, drop_last: bool = False) -> Any:
        return to_loader(self.x, self.y, batch_size, shuffle=shuffle, seed=seed,
                         drop_last=drop_last, augment=self.augment)

    def tensors(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor(self.x[:limit]), torch.as_tensor(self.y[:limit])

    def sample(self, num_rows: int, *, seed: int,
               stratify: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded random subset (stratified by class when asked), not the first rows."""
        rows = sample_rows(self.y, num_rows, seed=seed, stratify=stratify)
        return torch.as_tensor(self.x[rows]), torch.as_tensor(self.y[rows])


@dataclass
class RunContext:
    config: Config
    run: RunDir
    fabric: Fabric
    user_model: nn.Module | None = None
    data: TaskData | None = None
    splits: dict[str, Arrays] = field(default_factory=dict)
    model: nn.Module | None = None
    trained_model: nn.Module | None = None  # `model` as Fabric set it up for training (FSDP:
    # the sharded wrapper, whose forward gathers the parameters); the test is evaluated with it
    loss_fn: nn.Module | None = None
    lr: float = 0.0
    target_scale: float = 1.0  # regression targets are standardised; metrics scale back
    target_mean: float = 0.0  # ... around the training rows' mean (regression baselines use it)
    target_log: bool = False  # ... of log1p(target) (data.target_transform = "log")
    history: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # split.num_folds
    # > 1: each fold's (train, val) rows, for the crossval stage; trained_fold is the run's
    trained_fold: int = 0
    initial_weights: dict[str, Any] | None = None  # the model's state before training (folds)
    epochs_cap: int | None = None  # the epoch train.max_minutes stopped training at: the
    # crossval stage's folds stop there too, so every fold trains as long as the run did

    def target_units(self) -> TargetUnits:
        """What turns the values the model is trained on back into the target's units."""
        return TargetUnits(self.target_mean, self.target_scale, self.target_log)

    def make_optimizer(self, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        return make_adamw(model, lr or self.lr or 1e-3, self.config.train.weight_decay)


def load_configured(config: Config) -> TaskData:
    """The data as the config names it (stage_data and a resumed run read it alike)."""
    cfg = config.data
    return load_data(cfg.source, cfg.target, cfg.task, config.split.group_column,
                     time_column=config.split.time_column, kind=cfg.kind,
                     image_size=cfg.image_size, na_values=tuple(cfg.na_values), sep=cfg.sep,
                     encoding=cfg.encoding, decimal=cfg.decimal, dayfirst=cfg.dayfirst,
                     drop_columns=tuple(cfg.drop_columns))


def stage_data(ctx: RunContext) -> list[Finding]:
    cfg = ctx.config.data
    data = load_configured(ctx.config)
    if cfg.max_samples and cfg.max_samples < len(data.y):
        keep = np.sort(np.random.default_rng(split_seed(ctx.config)).permutation(len(data.y))
                       [: cfg.max_samples])
        data.subset(keep)
        data.notes.append(f"quick run: kept {cfg.max_samples} samples (data.max_samples)")
    ctx.data = data
    split = ctx.config.split
    findings, summary = audit(data, class_weights=ctx.config.train.class_weights,
                              min_class_rows=class_rows_needed(
                                  split.val_fraction, split.test_fraction, split.num_folds,
                                  own_test=data.y_test is not None))
    if cfg.target_transform == "log":  # the outlier warning's own fix, already taken
        findings = [f for f in findings if not _gone_on_the_log(f, data.y)]
    findings += key_findings(data, ctx.config.split.strategy, ctx.config.split.gap)
    findings += augment_findings(data, cfg.augment)
    figure = plot_samples(data, ctx.run.figure_path("samples.png"))
    ctx.meta["figures"] = [{"path": str(figure.relative_to(ctx.run.path)),
                            "title": "Data samples", "caption": samples_caption(data)}]
    spread = plot_distributions(data, ctx.run.figure_path("distributions.png"))
    if spread is not None:  # tables and vectors: the samples figure is their histograms
        ctx.meta["figures"].append({"path": str(spread.relative_to(ctx.run.path)),
                                    "title": "Data distributions",
                                    "caption": distribution_caption(data)})
    ctx.meta["data"] = {"name": data.name, "kind": data.kind, "task": data.task,
                        "fingerprint": data.fingerprint(), "input_shape": list(data.input_shape),
                        "num_classes": data.num_classes, "class_names": data.class_names,
                        "feature_names": data.feature_names[:200], "notes": data.notes,
                        "keys": [vars(k) for k in data.keys], "audit": summary,
                        "columns": data.columns,  # tables: how each column was treated
                        # named again if training then scores perfectly (diagnose_perfect)
                        "target_leaks": [c for f in findings if f.code == "target_leak"
                                         for c in f.evidence.get("columns", [])]}
    own_test = f" (plus its own {len(data.y_test)}-row test part)" \
        if data.y_test is not None else ""
    headline = f"{len(data.y)} samples{own_test}, shape {data.input_shape}, {data.task}"
    return [info("data", "loaded", f"Loaded '{data.name}': {headline}.")] + findings


def stage_split(ctx: RunContext) -> list[Finding]:
    data, cfg = ctx.data, ctx.config.split
    assert data is not None
    result = plan_split(data, SplitSettings(
        val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, strategy=cfg.strategy,
        cut=cfg.cut, gap=cfg.gap, num_folds=cfg.num_folds, seed=split_seed(ctx.config)))
    train, val, test = result.train, result.val, result.test
    if test is not None:  # no held-out part shipped: carved from the pool before any fitting
        x_test, y_test = data.x[test], data.y[test]
    else:
        x_test, y_test = data.x_test, data.y_test
    _make_arrays(ctx, train, val, x_test, y_test, test)
    saved = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    for j, fold in enumerate(result.folds):  # fold indices are into the pool after the test cut
        saved[f"fold{j}_train"], saved[f"fold{j}_val"] = fold.train, fold.val
    if result.folds:  # what a resumed run needs to cross-validate: resume.saved_folds
        saved["pool"], saved["trained_fold"] = result.pool, np.array(result.trained_fold)
    ctx.folds, ctx.trained_fold = result.fold_rows(), result.trained_fold
    np.savez(ctx.run.path / "split.npz", **saved)
    sizes = {name: len(arrays.y) for name, arrays in ctx.splits.items()}
    ctx.meta["split"] = {"strategy": result.strategy, "sizes": sizes,
                         "num_folds": max(1, len(result.folds)),
                         "num_dropped": result.num_dropped,
                         "fingerprint": _fingerprint(train, val)}
    if result.num_dropped:
        data.notes.append(f"{result.num_dropped} rows inside the time gap are in no split")
    _add_timeline(ctx, {"train": train, "val": val, "test": test}, result)
    _redraw_samples(ctx, train)
    carved = {"test": cfg.test_fraction} if test is not None else {}
    findings = result.findings + small_parts(
        sizes, data.task, result.num_groups,
        {**({} if result.folds else {"val": cfg.val_fraction}), **carved},
        max(1, len(result.folds))) + _stratify_fallback(ctx, result)
    if data.task == "classification":
        counts = {name: np.bincount(a.y, minlength=data.num_classes).tolist()
                  for name, a in ctx.splits.items()}
        ctx.meta["data"]["class_counts"] = counts
        findings = findings + missing_classes(counts, data.class_names, result.strategy)
    folds = folds_note(result)
    return [info("split", "split", f"Split by '{result.strategy}': "
                 f"{split_sizes_text(sizes, test is None, cfg.test_fraction)}{folds}.",
                 **sizes)] + findings


def _redraw_samples(ctx: RunContext, train: np.ndarray) -> None:
    """A table wider than the figure: its histograms redrawn for the features that tell the
    classes apart most on the training rows, now that they are known (figures.picked)."""
    data = ctx.data
    assert data is not None
    chosen = picked(data, train)  # one F test over every column, for figure and caption
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


PART_NAMES = {"train": "train", "val": "validation", "test": "test"}


def split_sizes_text(sizes: dict[str, int], own_test: bool, test_fraction: float) -> str:
    """'train 3600, validation 400, test 1000 (...)': where the test rows came from, since a
    source's own test part leaves split.test_fraction unused (mnist1d: 4000 loaded, 5000
    in the parts)."""
    words = [f"{PART_NAMES.get(part, part)} {n}" for part, n in sizes.items()]
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
              log: bool) -> FittedParts:
    """Normalise with training statistics only (token ids stay int64 ids: augment_plan);
    standardise regression targets likewise (of log1p(y) when `log`). The split stage fits
    the run's parts with it, the crossval stage each fold's."""
    plan = augment_plan(data, augment)[0]
    normaliser = Normaliser().fit(data.x[train]) if plan.normalise else None
    scale = normaliser.transform if normaliser is not None else np.asarray
    y, mean, std = data.y, 0.0, 1.0
    if data.task == "regression":  # float64: float32 squares overflow from |y| ~ 2e19
        y = log_target(y) if log else y
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
    log = data.task == "regression" and ctx.config.data.target_transform == "log"
    parts = fit_parts(data, train, val, ctx.config.data.augment, log)
    scale = parts.normaliser.transform if parts.normaliser is not None else np.asarray
    if data.task == "regression":
        ctx.target_log = log
        y_test = log_target(y_test) if log else y_test
        ctx.target_scale, ctx.target_mean = parts.target_scale, parts.target_mean
        y_test = (y_test - parts.target_mean) / parts.target_scale
    # saved for trainwise.predict: new rows need the same statistics (the model expects them)
    fitted_preprocessing(data, parts.normaliser, ctx.target_mean, ctx.target_scale).save(
        ctx.run.path)
    ctx.splits = {"train": parts.train, "val": parts.val,
                  "test": Arrays(scale(x_test), y_test, rows=test)}


def _gone_on_the_log(finding: Finding, y: np.ndarray) -> bool:
    """A target_outliers warning that log1p, which the run trains on, leaves without outliers
    (a price spanning decades; a target below 0 is refused later, by log_target)."""
    y = np.asarray(y, dtype=np.float64)
    return (finding.code == "target_outliers" and bool(len(y)) and float(np.nanmin(y)) >= 0
            and not len(extreme_targets(np.log1p(y))))


def log_target(y: np.ndarray) -> np.ndarray:
    """log1p of a regression target (data.target_transform = "log"); an error for values below
    0, whose log is undefined."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) and float(np.nanmin(y)) < 0:
        raise TrainwiseError(
            f"data.target_transform = \"log\" trains on log(1 + target), but the target goes "
            f"down to {float(np.nanmin(y)):.4g} and the log of a value below 0 is undefined. "
            "Set data.target_transform = \"none\", or shift the target to start at 0 in the "
            "data (data stage).")
    return np.log1p(y)


def stage_model(ctx: RunContext) -> list[Finding]:
    data, cfg = ctx.data, ctx.config.model
    assert data is not None
    if ctx.user_model is not None:
        model = ctx.user_model
        findings = [info("model", "user_model", f"Using your model {type(model).__name__}.")]
    else:
        model = build_model(data, cfg.name, cfg.width, cfg.dropout, cfg.folder)
        findings = []
    own_class = ctx.user_model is not None or ":" in cfg.name
    earlier_run = trained_by(model) if ctx.user_model is not None else None
    findings += apply_init_policy(model, cfg.init, own=own_class, trained_by=earlier_run)
    weights, weight_findings = _class_weights(ctx)
    ctx.model, ctx.loss_fn = model, loss_function(data.task, weights)
    findings += weight_findings
    x, y = ctx.splits["train"].tensors(limit=64)
    try:
        summary = shape_trace(model, x)
    except Exception as exc:  # noqa: BLE001 - the user's forward raised: say where and why
        return findings + [forward_error(model, x, exc, data.kind)]
    decay = ctx.config.train.weight_decay  # for the report: which tensors AdamW decays
    summary["weight_decay"] = {"value": decay, "params": group_table(model, decay)}
    ctx.run.write_json("model_summary.json", summary)
    too_small = _batch_too_small(ctx, model)
    if too_small is not None:  # before checks and tuning spend minutes on a doomed run
        return findings + [too_small]
    full = check_output_shape(model, x, y, data.task, data.num_classes)
    if not ctx.config.run.checks:  # otherwise preflight reports this among its checks
        findings += full
    if not errors(full):
        findings += check_batch_of_one(model, x, y, data.task, data.num_classes,
                                       met_in_training=_meets_batch_of_one(ctx, model))
    params = summary.get("total_params", sum(p.numel() for p in model.parameters()))
    findings.insert(0, info("model", "built", f"{_model_name(ctx, model)} with {params:,} "
                            "parameters.", total_params=params))
    return findings


EVAL_BATCH_SIZE = 512  # evaluation keeps no gradients: bigger batches, fewer steps


def eval_batch_size(part: str, train_batch_size: int) -> int:
    """The batch size of the 'val' loader (never below the training batch) or the 'test' one;
    the stages and the batch-of-one check both use it, so they cannot drift apart."""
    return max(train_batch_size, EVAL_BATCH_SIZE) if part == "val" else EVAL_BATCH_SIZE


def _meets_batch_of_one(ctx: RunContext, model: nn.Module) -> bool:
    """Whether training or evaluation will forward a last batch of one sample at
    train.batch_size (BatchNorm models drop such a training batch: stages_training)."""
    batch_size = ctx.config.train.batch_size
    sizes = {"train": batch_size, "val": eval_batch_size("val", batch_size),
             "test": eval_batch_size("test", batch_size)}
    lone = {part for part, size in sizes.items()
            if part in ctx.splits and len(ctx.splits[part].y) % size == 1}
    return bool(lone - ({"train"} if has_batch_norm(model) else set()))


def _batch_too_small(ctx: RunContext, model: nn.Module) -> Finding | None:
    """train.batch_size 1 (per piece) with BatchNorm; tune.batch_size = "auto" picks its own."""
    cfg = ctx.config.train
    if ctx.config.tune.batch_size == "auto":
        return None
    processes = ctx.fabric.world_size if ctx.fabric is not None else 1
    parts = batch_parts(cfg.batch_size, processes, cfg.accumulate_grad_batches)
    return batch_too_small(model, len(ctx.splits["train"].y), cfg.batch_size, parts, "model")


def _model_name(ctx: RunContext, model: nn.Module) -> str:
    """Which model, and why that one: a bare "Sequential" named neither the baseline nor the
    rule that chose it."""
    name, kind = ctx.config.model.name, ctx.data.kind
    if ctx.user_model is not None or ":" in name:
        return f"Your {type(model).__name__}"
    chosen = baseline_name(kind, name)
    why = f"model.name = \"auto\" for {kind} data" if name == "auto" else "model.name"
    return f"The {chosen} baseline ({why}; a {type(model).__name__})"


def _class_weights(ctx: RunContext) -> tuple[torch.Tensor | None, list[Finding]]:
    """train.class_weights, from the training split only (the val and test splits must not
    shape training)."""
    data = ctx.data
    assert data is not None
    if ctx.config.train.class_weights == "none":
        return None, []
    if data.task != "classification":
        return None, [info("model", "class_weights_ignored", "train.class_weights applies to "
                           "classification only; this regression run ignores it (set it to "
                           "\"none\" to silence this note).")]
    weights = balanced_class_weights(ctx.splits["train"].y, data.num_classes)
    names = data.class_names or [str(i) for i in range(len(weights))]
    pairs = sorted(zip(weights.tolist(), names, strict=False))
    shown = ", ".join(f"'{n}' {w:.3g}" for w, n in pairs) if len(pairs) <= 10 else \
        f"from {pairs[0][0]:.3g} ('{pairs[0][1]}') to {pairs[-1][0]:.3g} ('{pairs[-1][1]}')"
    extreme = extreme_weights(weights, ctx.splits["train"].y, data.class_names)
    return weights, [info("model", "class_weights", "Loss weighted per class "
                          "(train.class_weights = \"balanced\", from the training split's "
                          f"counts): {shown}.", weights=[round(w, 6) for w in weights.tolist()]),
                     *([extreme_weights_finding(extreme)] if extreme else [])]
