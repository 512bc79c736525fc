"""BatchNorm in train mode needs two or more samples in each piece of a batch: it raises
"Expected more than 1 value per channel when training" on one. Which batches would hold one.

A step's batch is sliced over the processes and then into micro-batches (`parts` pieces in
all, tensor_split: sizes q and q + 1 for q = rows // parts), so a piece of one sample exists
when rows // parts <= 1.
"""

from __future__ import annotations

from torch import nn

from trainwise.findings import Finding, error, info
from trainwise.tune.large_batch import accumulation_steps


def has_batch_norm(model: nn.Module | None) -> bool:
    return model is not None and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                     for m in model.modules())


def batch_parts(batch_size: int, processes: int, configured: int) -> int:
    """Pieces one step's batch is cut into: a slice per process, then its micro-batches."""
    return processes * accumulation_steps(batch_size, processes, configured)


def _has_lone_sample(rows: int, parts: int) -> bool:
    return 0 < rows and rows // parts <= 1


def batch_too_small(model: nn.Module | None, num_rows: int, batch_size: int, parts: int,
                    stage: str) -> Finding | None:
    """An error when every batch would give BatchNorm a piece of one sample."""
    if not has_batch_norm(model) or not _has_lone_sample(min(batch_size, num_rows), parts):
        return None
    split = f", split into {parts} pieces (processes x micro-batches)," if parts > 1 else ""
    return error(stage, "batch_norm_batch_of_one",
                 f"train.batch_size = {batch_size}{split} gives BatchNorm a batch of one "
                 "sample: in training mode it cannot compute a spread from one value and "
                 "raises.",
                 f"set train.batch_size to at least {2 * parts} (16 or more gives steadier "
                 "batch statistics)"
                 f"{', or lower train.accumulate_grad_batches' if parts > 1 else ''}, or "
                 "replace BatchNorm with LayerNorm / GroupNorm in the model; then revisit the "
                 "model stage.", batch_size=batch_size, parts=parts)


def drop_lone_last_batch(model: nn.Module | None, num_rows: int, batch_size: int,
                         parts: int, stage: str) -> tuple[bool, list[Finding]]:
    """(drop_last, findings): drop each epoch's short last batch when it would give BatchNorm
    a piece of one sample (a shuffled loader leaves out different rows each epoch)."""
    last = num_rows % batch_size
    if num_rows < batch_size or not has_batch_norm(model) or not _has_lone_sample(last, parts):
        return False, []
    pieces = ""
    if parts > 1:  # tensor_split's sizes: the first last % parts pieces hold one more
        sizes = [last // parts + 1] * (last % parts) + [last // parts] * (parts - last % parts)
        pieces = f", split into {parts} pieces of {', '.join(map(str, sizes))}"
    return True, [info(stage, "last_batch_dropped",
                       f"Each epoch's last batch is dropped: {num_rows} training rows at "
                       f"train.batch_size = {batch_size} leave {last} sample"
                       f"{'s' if last > 1 else ''} over{pieces}, and BatchNorm in training "
                       "mode raises on a batch of one. The order is reshuffled every epoch, so "
                       f"other rows sit out each time (set train.batch_size so that "
                       f"{num_rows} rows leave 0 or {2 * parts}+ over to use them all).",
                       num_rows=num_rows, batch_size=batch_size, left_over=last, parts=parts)]
