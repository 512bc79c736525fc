"""Arrays -> normalised tensors -> batches: statistics from training rows only, fast loading."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trainwise.data.errors import DataError

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]  # (B, ...) -> (B, ...)


def _reduce_axes(ndim: int) -> tuple[int, ...]:
    # (N, F): one statistic per feature; (N, C, T) and beyond: one per channel, so a
    # sequence keeps its shape over time (per-step statistics would erase it).
    return (0,) if ndim == 2 else (0, *range(2, ndim))


class Normaliser:
    """Per-feature (N, F) or per-channel (N, C, T) standardisation, fitted on training rows.

    Missing and non-finite values are ignored when fitting and filled with the training mean
    when transforming (0 after normalising). A feature with zero spread, or with no finite
    training value, is scaled by 1 so it cannot divide by zero.
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None  # (F,) or (C,), float64
        self.std: np.ndarray | None = None

    def fit(self, x_train: np.ndarray) -> Normaliser:
        x = np.asarray(x_train, dtype=np.float64)
        if x.ndim < 2 or len(x) == 0:
            raise DataError(f"cannot fit normalisation on an array of shape {x.shape}: expected "
                            "(N, F) or (N, C, T) with N >= 1 training rows.")
        finite = np.isfinite(x)
        axes = _reduce_axes(x.ndim)
        count = finite.sum(axis=axes)
        total = np.where(finite, x, 0.0).sum(axis=axes)
        mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        centred = np.where(finite, x - self._expand(mean, x.ndim), 0.0)
        var = np.divide((centred**2).sum(axis=axes), count, out=np.zeros_like(total),
                        where=count > 0)  # population variance, as numpy's default std
        std = np.sqrt(var)
        self.mean, self.std = mean, np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return self

    @staticmethod
    def _expand(stat: np.ndarray, ndim: int) -> np.ndarray:
        return stat.reshape((1, -1) + (1,) * (ndim - 2))  # broadcast over N (and T)

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None or self.std is None:
            raise DataError("Normaliser.transform called before fit; fit it on the training "
                            "rows first.")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 2 or x.shape[1] != len(self.mean):
            raise DataError(f"normaliser was fitted on {len(self.mean)} features/channels but "
                            f"got an array of shape {x.shape}.")
        z = (x - self._expand(self.mean, x.ndim)) / self._expand(self.std, x.ndim)
        return np.where(np.isfinite(z), z, 0.0).astype(np.float32)

    def fit_transform(self, x_train: np.ndarray) -> np.ndarray:
        return self.fit(x_train).transform(x_train)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able statistics, for meta.json and for normalising new data the same way."""
        if self.mean is None or self.std is None:
            return {"mean": None, "std": None}
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> Normaliser:
        self.mean = np.asarray(state["mean"], dtype=np.float64)
        self.std = np.asarray(state["std"], dtype=np.float64)
        return self


class _Batches(Dataset):
    """Indexed by a whole batch of row indices: one fancy-index per batch, no per-sample
    __getitem__ + collate (which costs ~2 us per sample on in-memory tensors)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, augment: Augment | None = None,
                 generator: torch.Generator | None = None) -> None:
        self.x, self.y, self.augment, self.generator = x, y, augment, generator

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment is None:
            return self.x[index], self.y[index]
        return self.augment(self.x[index], self.generator), self.y[index]


class _BatchIndexSampler(Sampler[torch.Tensor]):
    """Yields (B,) index tensors: a fresh permutation per epoch from its own Generator."""

    def __init__(self, num_rows: int, batch_size: int, shuffle: bool, drop_last: bool,
                 generator: torch.Generator) -> None:
        self.num_rows, self.batch_size = num_rows, batch_size
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator

    def __len__(self) -> int:
        full, rest = divmod(self.num_rows, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            order = torch.randperm(self.num_rows, generator=self.generator)
        else:
            order = torch.arange(self.num_rows)
        for batch in range(len(self)):
            yield order[batch * self.batch_size:(batch + 1) * self.batch_size]


def _as_tensor(array: np.ndarray | torch.Tensor, floating: torch.dtype) -> torch.Tensor:
    tensor = torch.as_tensor(array)  # shares memory with a numpy array: no copy
    return tensor.to(floating) if tensor.is_floating_point() else tensor


def to_loader(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, batch_size: int, *,
              shuffle: bool, seed: int, drop_last: bool = False,
              augment: Augment | None = None) -> DataLoader:
    """A DataLoader of (x, y) batches over in-memory arrays, reproducible from `seed`.

    Floating x and y become float32, integer labels stay integer. Each epoch draws a new
    order from a Generator seeded once, so a new loader with the same seed replays the same
    sequence of epochs; the global torch RNG is never used. `augment(batch, generator)` (e.g.
    augment.random_flip, for the training loader only) draws from its own seeded Generator.
    """
    x_t, y_t = _as_tensor(x, torch.float32), _as_tensor(y, torch.float32)
    if len(x_t) != len(y_t):
        raise DataError(f"x has {len(x_t)} rows but y has {len(y_t)}; give one target per row.")
    if batch_size < 1 or (drop_last and len(x_t) < batch_size) or len(x_t) == 0:
        raise DataError(f"batch_size {batch_size} gives no batch from {len(x_t)} rows"
                        f"{' with drop_last' if drop_last else ''}; lower the batch size "
                        f"(train.batch_size = {max(1, min(len(x_t), batch_size))} or less) or "
                        "use more rows (if you set data.max_samples, 0 keeps all).")
    sampler = _BatchIndexSampler(len(x_t), batch_size, shuffle, drop_last,
                                 torch.Generator().manual_seed(seed))
    # batch_size=None: each sampler item is already a batch. The loader's own generator only
    # draws a worker base seed, but without one it would draw from the global RNG.
    batches = _Batches(x_t, y_t, augment, torch.Generator().manual_seed(seed + 1))
    return DataLoader(batches, sampler=sampler, batch_size=None,
                      generator=torch.Generator().manual_seed(seed))


def sample_rows(y: np.ndarray, num_rows: int, *, seed: int, stratify: bool) -> np.ndarray:
    """`num_rows` row indices (all, when there are fewer) in a seeded random order; the file's
    order must not decide what a check sees (a file sorted by label would give one class).

    Stratified: each class's rows in a seeded order, ranked by rank-in-class / class size, so
    the first `num_rows` hold each class in proportion (within one row) and every class is
    present once num_rows >= the number of classes. Pure: no global RNG state is touched.
    """
    order = np.random.default_rng(seed).permutation(len(y))
    if not stratify:
        return order[:num_rows]
    _, codes, counts = np.unique(np.asarray(y)[order], return_inverse=True, return_counts=True)
    by_class = np.argsort(codes, kind="stable")  # permuted order kept within each class
    rank = np.empty(len(order))
    rank[by_class] = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    return order[np.argsort(rank / counts[codes], kind="stable")[:num_rows]]
