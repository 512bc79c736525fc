"""Several processes, one loop: Fabric from the config, rank-0 guards, cross-rank reductions.

`trainwise run --devices N` starts N processes on this machine (Fabric re-runs the command with
LOCAL_RANK set); under torchrun or SLURM the launcher starts them and Fabric only joins them.
Every process runs the same recipe on the same data and split (both deterministic from the
seed); each trains on its shard of every batch, and only global rank 0 writes the run folder.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch
from lightning_fabric import Fabric

from trainwise.config import RunConfig
from trainwise.findings import Finding, TrainwiseError, warning
from trainwise.train.grad_norms import precision_in_use

# strategies whose processes Fabric starts from Python, running a function in each
FUNCTION_LAUNCHED = ("ddp_spawn", "ddp_fork")
SHARDED = ("fsdp",)  # each process holds a slice of the parameters and gradients


class DistributedError(TrainwiseError):
    """Devices, nodes or strategy cannot work as configured; the message says which to change."""


def num_processes(run: RunConfig) -> int:
    return run.devices * run.num_nodes


def strategy_name(run: RunConfig) -> str:
    if run.strategy != "auto":
        return run.strategy
    return "ddp" if num_processes(run) > 1 else "auto"


def make_fabric(run: RunConfig) -> Fabric:
    """A Fabric for `run.devices` x `run.num_nodes` processes (not yet launched)."""
    strategy = strategy_name(run)
    try:
        fabric = Fabric(accelerator=run.accelerator, devices=run.devices,
                        num_nodes=run.num_nodes, strategy=strategy, precision=run.precision)
    except Exception as exc:  # Fabric raises ValueError, RuntimeError or its own exceptions
        raise DistributedError(
            f"cannot set up {run.devices} device(s) x {run.num_nodes} node(s) with strategy "
            f"'{strategy}' at precision '{run.precision}' on accelerator '{run.accelerator}': "
            f"{exc}. Check run.devices, run.num_nodes, run.strategy, run.precision and "
            "run.accelerator (fsdp needs GPUs; under SLURM, --ntasks-per-node must equal "
            "run.devices).") from None
    _refuse_unrerunnable(fabric, run)
    return fabric


def _refuse_unrerunnable(fabric: Fabric, run: RunConfig) -> None:
    """Fabric's ddp launcher starts ranks 1..N-1 by re-running the command: `python SCRIPT
    args` or `python -m MODULE args`. From `python -c "..."` (or stdin) sys.argv[0] is "-c" or
    "", so each child ran `python ./-c`, "can't open file", and the parent was killed: exit 137
    (audit s16 D6). Refused before any process starts; torchrun and SLURM start the processes
    themselves (creates_processes_externally) and are not affected."""
    launcher = getattr(fabric.strategy, "launcher", None)
    if type(launcher).__name__ != "_SubprocessScriptLauncher" or \
            launcher.cluster_environment.creates_processes_externally:
        return
    import __main__

    if getattr(__main__, "__spec__", None) is not None or os.path.isfile(sys.argv[0]):
        return
    raise DistributedError(
        f"run.devices = {run.devices} starts the other processes by re-running this command, "
        f"and this one cannot be re-run: it came from `python {sys.argv[0] or '-'}`, not a "
        "script file or a module. Start it as `python -m trainwise.cli run ... --devices "
        f"{run.devices}` (or the `trainwise` command, or your script's file), or add "
        "`--strategy ddp_fork` (run.strategy = \"ddp_fork\"; Linux and macOS) or `--strategy "
        "ddp_spawn`, which start only the recipe in the new processes.")


def precision_findings(fabric: Fabric, run: RunConfig) -> list[Finding]:
    """A warning when the precision in use is not the one asked for."""
    used = precision_in_use(fabric)
    if used == run.precision:
        return []
    device = fabric.device.type
    return [warning("setup", "precision_changed",
                    f"run.precision = \"{run.precision}\" needs a CUDA GPU; on {device} Fabric "
                    f"trains at \"{used}\" instead (autocast to bfloat16, no loss scaling).",
                    f"Set run.precision = \"{used}\" to say so, or \"32-true\" for full "
                    "precision.", asked=run.precision, used=used)]


def launches_function(run: RunConfig) -> bool:
    """True when Fabric must start the processes itself around a function (spawn or fork)."""
    return strategy_name(run) in FUNCTION_LAUNCHED


def threads_per_process(run: RunConfig) -> int:
    """CPU threads for each process: this machine's cores split between its processes, since
    N processes each starting one thread per core would oversubscribe the cores N times."""
    if run.threads or run.devices == 1 or run.accelerator not in ("cpu", "auto"):
        return run.threads
    if run.accelerator == "auto" and torch.cuda.is_available():
        return run.threads
    return max(1, (os.cpu_count() or 1) // run.devices)


def is_sharded(fabric: Fabric) -> bool:
    name = type(fabric.strategy).__name__.lower()
    return "fsdp" in name or "modelparallel" in name


def reduce_mean(fabric: Fabric, value: torch.Tensor) -> torch.Tensor:
    """The mean over processes of a device tensor (a copy: Fabric reduces in place).

    NCCL queues the reduction on the stream, so this adds no host sync per step."""
    if fabric.world_size == 1:
        return value
    return fabric.all_reduce(value.detach().clone(), reduce_op="mean")


def reduce_grad_norm(fabric: Fabric, norm: torch.Tensor) -> torch.Tensor:
    """The global gradient norm. DDP gradients are already averaged over processes, so the
    local norm is the global one; sharded strategies hold a slice each: sqrt(sum of squares)."""
    if fabric.world_size == 1 or not is_sharded(fabric):
        return norm
    return fabric.all_reduce(norm.detach().float() ** 2, reduce_op="sum").sqrt()


def gather_rows(fabric: Fabric, rows: torch.Tensor) -> torch.Tensor:
    """Concatenate (N_r, ...) tensors of every process (N_r may differ), on the host."""
    if fabric.world_size == 1:
        return rows
    sizes = fabric.all_gather(torch.tensor(len(rows))).reshape(-1).tolist()  # (W,)
    padded = torch.zeros((max(sizes), *rows.shape[1:]), dtype=rows.dtype)
    padded[: len(rows)] = rows
    gathered = fabric.all_gather(padded).cpu()  # (W, max N_r, ...)
    return torch.cat([gathered[rank, :size] for rank, size in enumerate(sizes)])


def gather_objects(fabric: Fabric, obj: Any) -> list[Any]:
    """Every process's `obj` (picklable), in rank order."""
    if fabric.world_size == 1:
        return [obj]
    gathered: list[Any] = [None] * fabric.world_size
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def any_process(fabric: Fabric, flag: bool) -> bool:
    """True on every process when `flag` is True on at least one (keeps stops in step)."""
    if fabric.world_size == 1:
        return flag
    return bool(fabric.all_reduce(torch.tensor(float(flag)), reduce_op="sum").item() > 0)
