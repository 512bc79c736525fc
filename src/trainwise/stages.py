"""The stages of the method, each `stage(ctx) -> list[Finding]`, run in order by recipe.py.

Each stage reads what earlier stages left on the RunContext and adds its own results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from lightning_fabric import Fabric
from torch import nn

from trainwise.config import Config
from trainwise.data.audit import audit
from trainwise.data.figures import plot_samples
from trainwise.data.leakage import check_leakage
from trainwise.data.sources import load_data
from trainwise.data.split import split_indices
from trainwise.data.task import TaskData
from trainwise.data.tensors import Normaliser, to_loader
from trainwise.findings import Finding, info
from trainwise.model.baselines import build_model, loss_function
from trainwise.model.init import init_weights
from trainwise.model.optim import make_adamw
from trainwise.model.summary import check_output_shape, shape_trace
from trainwise.rundir import RunDir

PREFLIGHT_SAMPLES = 256  # enough to overfit a batch and see a trend, small enough for ~2 s


@dataclass
class Arrays:
    """One split's normalised features and targets."""

    x: np.ndarray
    y: np.ndarray

    def loader(self, batch_size: int, *, shuffle: bool, seed: int, drop_last: bool = False) -> Any:
        return to_loader(self.x, self.y, batch_size, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)

    def tensors(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor(self.x[:limit]), torch.as_tensor(self.y[:limit])


@dataclass
class RunContext:
    config: Config
    run: RunDir
    fabric: Fabric
    user_model: nn.Module | None = None
    data: TaskData | None = None
    splits: dict[str, Arrays] = field(default_factory=dict)
    model: nn.Module | None = None
    loss_fn: nn.Module | None = None
    lr: float = 0.0
    target_scale: float = 1.0  # regression targets are standardised; metrics scale back
    history: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def make_optimizer(self, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        return make_adamw(model, lr or self.lr or 1e-3, self.config.train.weight_decay)


def stage_data(ctx: RunContext) -> list[Finding]:
    cfg = ctx.config.data
    data = load_data(cfg.source, cfg.target, cfg.task, ctx.config.split.group_column)
    if cfg.max_samples and cfg.max_samples < len(data.y):
        keep = np.sort(np.random.default_rng(ctx.config.run.seed).permutation(len(data.y))
                       [: cfg.max_samples])
        data.x, data.y = data.x[keep], data.y[keep]
        data.groups = data.groups[keep] if data.groups is not None else None
        data.notes.append(f"quick run: kept {cfg.max_samples} samples (data.max_samples)")
    ctx.data = data
    findings, summary = audit(data)
    figure = plot_samples(data, ctx.run.figure_path("samples.png"))
    ctx.meta["figures"] = [str(figure.relative_to(ctx.run.path))]
    ctx.meta["data"] = {"name": data.name, "kind": data.kind, "task": data.task,
                        "fingerprint": data.fingerprint(), "input_shape": list(data.input_shape),
                        "num_classes": data.num_classes, "class_names": data.class_names,
                        "feature_names": data.feature_names[:200], "notes": data.notes,
                        "audit": summary}
    headline = f"{len(data.y)} samples, shape {data.input_shape}, {data.task}"
    return [info("data", "loaded", f"Loaded '{data.name}': {headline}.")] + findings


def _carve(y: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int,
           task: str) -> tuple[np.ndarray, np.ndarray, str]:
    parts = split_indices(y, val_fraction=fraction, groups=groups, seed=seed, task=task)
    return parts.train, parts.val, parts.strategy


def stage_split(ctx: RunContext) -> list[Finding]:
    data, cfg, seed = ctx.data, ctx.config.split, ctx.config.run.seed
    assert data is not None
    pool = np.arange(len(data.y))
    findings: list[Finding] = []
    if data.x_test is None:  # no held-out part shipped: carve one before anything is fitted
        pool, test, _ = _carve(data.y, data.groups, cfg.test_fraction, seed, data.task)
        x_test, y_test = data.x[test], data.y[test]
        groups_test = data.groups[test] if data.groups is not None else None
    else:
        x_test, y_test, groups_test = data.x_test, data.y_test, None
    groups_pool = data.groups[pool] if data.groups is not None else None
    train, val, strategy = _carve(data.y[pool], groups_pool, cfg.val_fraction, seed + 1,
                                  data.task)
    train, val = pool[train], pool[val]
    groups = data.groups
    findings += check_leakage(data.x[train], data.x[val],
                              groups_a=groups[train] if groups is not None else None,
                              groups_b=groups[val] if groups is not None else None,
                              names=("train", "val"))
    findings += check_leakage(data.x[np.concatenate([train, val])], x_test,
                              groups_a=groups[np.concatenate([train, val])]
                              if groups is not None else None,
                              groups_b=groups_test, names=("train+val", "test"))
    _make_arrays(ctx, train, val, x_test, y_test)
    np.savez(ctx.run.path / "split.npz", train=train, val=val)
    sizes = {name: len(arrays.y) for name, arrays in ctx.splits.items()}
    ctx.meta["split"] = {"strategy": strategy, "sizes": sizes,
                         "fingerprint": _fingerprint(train, val)}
    if data.task == "classification":
        ctx.meta["data"]["class_counts"] = {
            name: np.bincount(a.y, minlength=data.num_classes).tolist()
            for name, a in ctx.splits.items()}
    return [info("split", "split", f"Split by '{strategy}': {sizes}.", **sizes)] + findings


def _fingerprint(*parts: np.ndarray) -> str:
    import xxhash

    digest = xxhash.xxh64()
    for part in parts:
        digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _make_arrays(ctx: RunContext, train: np.ndarray, val: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray) -> None:
    """Normalise with training statistics only; standardise regression targets likewise."""
    data = ctx.data
    assert data is not None
    normaliser = Normaliser().fit(data.x[train])
    y = data.y
    if data.task == "regression":
        mean, std = float(y[train].mean()), float(y[train].std() or 1.0)
        ctx.target_scale = std
        y, y_test = (y - mean) / std, (y_test - mean) / std
    ctx.splits = {
        "train": Arrays(normaliser.transform(data.x[train]), y[train]),
        "val": Arrays(normaliser.transform(data.x[val]), y[val]),
        "test": Arrays(normaliser.transform(x_test), y_test),
    }


def stage_model(ctx: RunContext) -> list[Finding]:
    data, cfg = ctx.data, ctx.config.model
    assert data is not None
    if ctx.user_model is not None:
        model = ctx.user_model
        findings = [info("model", "user_model", f"Using your model {type(model).__name__}.")]
    else:
        model = build_model(data, cfg.name, cfg.width, cfg.dropout)
        records = init_weights(model)
        findings = [info("model", "init", f"Initialised {len(records)} layers "
                         "(He for ReLU layers, Xavier otherwise, zero biases).",
                         layers=records)]
    ctx.model, ctx.loss_fn = model, loss_function(data.task)
    x, y = ctx.splits["train"].tensors(limit=64)
    summary = shape_trace(model, x)
    ctx.run.write_json("model_summary.json", summary)
    if not ctx.config.run.checks:  # otherwise preflight runs this among its checks
        findings += check_output_shape(model, x, y, data.task, data.num_classes)
    params = summary.get("total_params", sum(p.numel() for p in model.parameters()))
    findings.insert(0, info("model", "built", f"{type(model).__name__} with {params:,} "
                            "parameters.", total_params=params))
    return findings
