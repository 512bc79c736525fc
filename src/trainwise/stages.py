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
from trainwise.data.audit import OUTLIER_IQRS, audit, class_rows_needed, extreme_targets
from trainwise.data.augment import augment_findings
from trainwise.data.column_table import with_ignored_keys
from trainwise.data.distribution_figures import distribution_caption, plot_distributions
from trainwise.data.feature_pick import flagged_features
from trainwise.data.figures import picked, plot_samples, samples_caption
from trainwise.data.plan import key_findings
from trainwise.data.sources import load_data
from trainwise.data.task import TaskData
from trainwise.data.tensors import sample_rows, to_loader
from trainwise.findings import Finding, errors, info, warning
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
from trainwise.model.trained_mark import loaded_from_run, trained_by
from trainwise.rundir import RunDir
from trainwise.train.batch_norm import batch_parts, batch_too_small, has_batch_norm
from trainwise.train.regression_predictions import TargetUnits, apply_log, log_function

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
    target_log: str = ""  # ... of log(target) or log1p(target) (data.target_transform = "log":
    # regression_predictions.log_function), "" for none
    history: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # split.num_folds
    # > 1: each fold's (train, val) rows, for the crossval stage; trained_fold is the run's
    trained_fold: int = 0
    initial_weights: dict[str, Any] | None = None  # the model's state before training (folds)
    epochs_cap: int | None = None  # the epoch train.max_minutes stopped training at: the
    # crossval stage's folds stop there too, so every fold trains as long as the run did
    user_callbacks: list[Any] = field(default_factory=list)  # run(callbacks=...): the train
    # stage's fit calls them (not the folds', nor the tune stage's short runs)
    starts_trained: str = ""  # why the model starts from trained weights (the check stage's
    # loss at init, or an earlier run's mark): the range test then reads a fine-tuning lr

    def target_units(self) -> TargetUnits:
        """What turns the values the model is trained on back into the target's units."""
        return TargetUnits(self.target_mean, self.target_scale, self.target_log)

    def trained_targets(self) -> np.ndarray:
        """Every row's target (not only the training split's) on the scale the run trains
        on: the log's, when in force; what the data stage's target_outliers is judged on."""
        assert self.data is not None
        y = np.asarray(self.data.y, dtype=np.float64).reshape(-1)
        return apply_log(y, self.target_log) if self.target_log else y

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


def max_samples_subset(config: Config, data: TaskData) -> np.ndarray | None:
    """The sorted rows data.max_samples keeps, or None for all: for classification drawn per
    class in proportion (stratified), each class keeping at least class_rows_needed (13 at
    the default fractions: one row expected in each scored part; all a smaller class has);
    else uniformly. A uniform draw of 300 of 6,000 rows kept 6 of 60 positives, 100 kept 1,
    and the audit then said "collect more rows" of a class the file holds 60 of (audit s14
    C13). stage_data and a resumed run's reload both draw here: two copies drifting would
    resume on other rows (review s11 VA6)."""
    limit, num_rows = config.data.max_samples, len(data.y)
    if not limit or limit >= num_rows:
        return None
    rng = np.random.default_rng(split_seed(config))
    if data.task != "classification":
        return np.sort(rng.permutation(num_rows)[:limit])
    labels = np.asarray(data.y, dtype=np.int64)
    split = config.split
    floor = class_rows_needed(split.val_fraction, split.test_fraction, split.num_folds,
                              own_test=data.y_test is not None)
    take = per_class_quota(np.bincount(labels), limit, floor)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:n]
                                   for k, n in enumerate(take) if n]))


def per_class_quota(counts: np.ndarray, limit: int, min_rows: int) -> np.ndarray:
    """(k,) rows to keep per class, summing to `limit` (< counts.sum()): in proportion to the
    class counts, but at least a floor of `min_rows` (all of a smaller class;
    shared evenly when the floors alone pass `limit`); the classes above their floor share
    what is left in proportion, largest remainders first."""
    floor = np.minimum(counts, max(1, min(min_rows, limit // len(counts))))
    while floor.sum() > limit:  # more classes than rows to keep: the largest give way
        floor[np.argmax(floor)] -= 1
    at_floor = np.zeros(len(counts), dtype=bool)
    for _ in range(len(counts)):  # a class pinned to its floor frees rows for the rest
        free = ~at_floor
        share = np.zeros(len(counts))
        share[free] = (limit - floor[at_floor].sum()) * counts[free] / counts[free].sum()
        pinned = free & (share < floor)
        if not pinned.any():
            break
        at_floor |= pinned
    take = np.where(at_floor, floor, np.floor(share)).astype(np.int64)
    order = np.argsort(-np.where(at_floor, -1.0, share - np.floor(share)), kind="stable")
    for k in order[:limit - int(take.sum())]:
        take[k] += 1
    return take


def load_subset(config: Config) -> TaskData:
    """The configured data with data.max_samples applied, as every stage sees it."""
    data = load_configured(config)
    if (keep := max_samples_subset(config, data)) is not None:
        data.subset(keep)
        data.notes.append(f"quick run: kept {config.data.max_samples} samples "
                          "(data.max_samples)" + (", drawn per class in proportion, each "
                                                  "keeping enough rows to be validated and "
                                                  "tested (or all it has)"
                                                  if data.task == "classification" else ""))
    return data


def stage_data(ctx: RunContext) -> list[Finding]:
    cfg = ctx.config.data
    # a resume with no checkpoint loaded it to compare fingerprints: not twice (review VO6)
    data = getattr(ctx, "preloaded", None)
    if data is None:
        data = load_subset(ctx.config)
    else:
        ctx.preloaded = None  # type: ignore[attr-defined]
    ctx.data = data
    split = ctx.config.split
    findings, summary = audit(data, cfg.target if data.kind == "table" else "",  # its name
                              class_weights=ctx.config.train.class_weights,
                              min_class_rows=class_rows_needed(
                                  split.val_fraction, split.test_fraction, split.num_folds,
                                  own_test=data.y_test is not None))
    if cfg.target_transform == "log" and data.task == "regression":  # judged on the log
        findings = [g for f in findings if (g := _on_the_log(f, data)) is not None]
    findings += key_findings(data, ctx.config.split.strategy, ctx.config.split.gap)
    findings += augment_findings(data, cfg.augment)
    # a wide table's flagged columns are drawn first (audit s15 M8), here and after the split
    flagged = flagged_features(findings, data.feature_names)
    chosen = picked(data, None, flagged)
    figure = plot_samples(data, ctx.run.figure_path("samples.png"), chosen)
    ctx.meta["figures"] = [{"path": str(figure.relative_to(ctx.run.path)),
                            "title": "Data samples", "caption": samples_caption(data, chosen)}]
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
                        # tables: how each column was treated (a key the split ignores: so)
                        "columns": with_ignored_keys(data.columns, findings,
                                                     ctx.config.split.strategy),
                        # named again if training then scores perfectly (diagnose_perfect)
                        "target_leaks": [c for f in findings if f.code == "target_leak"
                                         for c in f.evidence.get("columns", [])],
                        "flagged_features": flagged}
    own_test = f" (plus its own {len(data.y_test)}-row test part)" \
        if data.y_test is not None else ""
    headline = f"{len(data.y)} samples{own_test}, shape {data.input_shape}, {data.task}"
    return [info("data", "loaded", f"Loaded '{data.name}': {headline}.")] + findings


def _on_the_log(finding: Finding, data: TaskData) -> Finding | None:
    """The audit judged the raw target; the run trains on its log. A target_outliers warning
    is dropped when the log leaves no outlier, else said again of the log's outliers without
    its own fix (train on the log: already in force, audit s14 R3). A target below 0 is
    refused later, by log_target."""
    y = np.asarray(data.y, dtype=np.float64).reshape(-1)
    if finding.code != "target_outliers" or not len(y) or float(np.nanmin(y)) < 0:
        return finding
    function = log_function(y, data.y_test)
    logged = apply_log(y, function)
    far = extreme_targets(logged)
    if not len(far):
        return None
    median = float(np.median(logged))
    shown = far[np.argsort(-np.abs(logged[far] - median))][:5]
    rows = [int(r) for r in data.source(shown)]
    return warning(
        "data", "target_outliers",
        f"{len(far)} target values lie more than {OUTLIER_IQRS:g} interquartile ranges from "
        f"the median even on the {function} scale the run trains on (data.target_transform "
        f"= \"log\"); the most extreme: {y[shown[0]]:.4g} (rows {rows}, counted from 0 at the "
        "first row under the header). A squared loss is still dominated by them.",
        "Look at those rows: fix values entered in the wrong unit, or drop them from the "
        "file (then rerun from the data stage). The log is already in force: it cannot "
        "tame these.",
        num_rows=len(far), rows=rows, values=[float(y[i]) for i in shown],
        scale=function)

def stage_model(ctx: RunContext) -> list[Finding]:
    data, cfg = ctx.data, ctx.config.model
    assert data is not None
    if ctx.user_model is not None:
        model = ctx.user_model
        findings = [info("model", "user_model", f"Using your model {type(model).__name__}.")]
    else:
        model = build_model(data, cfg.name, cfg.width, cfg.dropout, cfg.folder)
        findings = []
    earlier_run = trained_by(model) if ctx.user_model is not None else None
    loaded = ctx.user_model is not None and loaded_from_run(model)
    findings += apply_init_policy(model, cfg.init, own=own_model(ctx), trained_by=earlier_run,
                                  loaded=loaded)
    if earlier_run is not None and kept_weights(ctx):
        ctx.starts_trained = f"its weights are run {earlier_run}'s best.pt" if loaded else \
            f"its weights come from run {earlier_run}'s training"
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


def own_model(ctx: RunContext) -> bool:
    """Your own module (model=net, or model.name = "pkg.module:Class"), not a built-in
    baseline: the init policy, the report's model name and the dropout lever agree on it."""
    return ctx.user_model is not None or ":" in ctx.config.model.name


def kept_weights(ctx: RunContext) -> str:
    """How the run kept the weights of a module the user built ("" when it drew them: the
    built-in baselines' own init, model.init = "keep" included, is a fresh PyTorch draw)."""
    if not own_model(ctx) or ctx.config.model.init == "policy":
        return ""
    if ctx.config.model.init == "keep":
        return 'model.init = "keep"'
    return 'model.init = "auto" keeps your module\'s own weights'


def _model_name(ctx: RunContext, model: nn.Module) -> str:
    """Which model, and why that one: a bare "Sequential" named neither the baseline nor the
    rule that chose it."""
    name, kind = ctx.config.model.name, ctx.data.kind
    if own_model(ctx):
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
    extreme = extreme_weights(weights, ctx.splits["train"].y, data.class_names,
                             ctx.config.train.batch_size)
    return weights, [info("model", "class_weights", "Loss weighted per class "
                          "(train.class_weights = \"balanced\", from the training split's "
                          f"counts): {shown}.", weights=[round(w, 6) for w in weights.tolist()]),
                     *([extreme_weights_finding(extreme)] if extreme else [])]
