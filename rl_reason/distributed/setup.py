"""Process groups from the launcher's environment, rank helpers and collectives that time out.

Both launchers export the same variables: ``torchrun`` and ``deepspeed`` (and ``srun`` through
``scripts/launch_slurm.sbatch``) set RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
A single plain ``python`` process has none of them and gets no process group at all.
Every collective here runs under the group's timeout and re-raises a timeout with the rank,
the operation and the usual cause, so a hang becomes an error a user can act on.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from rl_reason.algorithms.aggregation import LossNormalisers, all_reduce_normalisers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    backend: str | None  # None: single process, no process group
    device: torch.device


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"environment variable {name}={value!r} is not a non-negative integer (set by the launcher)")
    return int(value)


def init_distributed(backend: str = "auto", timeout_s: float = 600.0, device: str = "cpu") -> DistInfo:
    """Join the launcher's process group (idempotent) and return this process's place in it.

    backend "auto": NCCL when CUDA is available, else gloo. ``device`` is the trainer's device
    setting; on CUDA each rank is pinned to ``cuda:LOCAL_RANK``.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    if device.startswith("cuda") and not cuda:
        raise RuntimeError(f"model.device={device!r} but CUDA is not available on rank {rank}")
    torch_device = torch.device("cuda", local_rank) if cuda else torch.device(device)
    if cuda:
        torch.cuda.set_device(torch_device)
    if world == 1 and not dist.is_initialized():
        return DistInfo(0, 0, 1, None, torch_device)
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name):
                raise RuntimeError(f"WORLD_SIZE={world} but {name} is unset: launch with torchrun or deepspeed (see scripts/)")
        # NCCL only honours the timeout when errors are handled asynchronously (watchdog aborts).
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout_s))
    _quiet_other_ranks(dist.get_rank())
    return DistInfo(dist.get_rank(), local_rank, dist.get_world_size(), dist.get_backend(), torch_device)


def finish_distributed() -> None:
    """Leave the process group together: without it a rank that exits first closes its gloo
    connections under a peer still finishing, whose transport thread then aborts the process."""
    if dist.is_initialized():
        barrier("finish")
        dist.destroy_process_group()


def _quiet_other_ranks(rank: int) -> None:
    """Only rank 0 logs INFO; the others keep warnings and errors."""
    if rank != 0:
        logging.getLogger("rl_reason").setLevel(logging.WARNING)


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


@contextlib.contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a collective's timeout or peer failure into an error that says what to check."""
    try:
        yield
    except (RuntimeError, dist.DistBackendError) as err:
        raise RuntimeError(
            f"rank {rank()}/{world_size()}: collective '{what}' failed ({err}). Usually another rank crashed "
            "(see its log) or took a different path, e.g. fewer optimizer steps; raise distributed.timeout_s "
            "only when a rank is merely slow."
        ) from err


def barrier(what: str = "barrier") -> None:
    if world_size() > 1:
        with collective(what):
            # gloo honours the group timeout in barrier; monitored_barrier names a missing rank.
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(wait_all_ranks=True)
            else:
                dist.barrier()


def global_normalisers(local: LossNormalisers, device: torch.device | str = "cpu") -> LossNormalisers:
    """The optimizer step's token/sequence counts over all ranks (identity on one process)."""
    if world_size() == 1:
        return local
    with collective("all_reduce_normalisers"):
        return all_reduce_normalisers(local, device=device if dist.get_backend() == "nccl" else "cpu")


def mean_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Average each metric over the ranks that report it (ranks may log different keys,
    e.g. verifier statuses that occurred only on some)."""
    if world_size() == 1:
        return metrics
    gathered: list[Any] = [None] * world_size()
    with collective("all_gather_object(metrics)"):
        dist.all_gather_object(gathered, metrics)
    keys = sorted({k for m in gathered for k in m})
    return {k: sum(m[k] for m in gathered if k in m) / sum(k in m for m in gathered) for k in keys}


def on_main(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on rank 0 only (files every rank would otherwise write), then sync the ranks."""
    result = fn(*args, **kwargs) if is_main() else None
    barrier(f"after rank-0 {getattr(fn, '__name__', 'write')}")
    return result


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (a decision such as stopping early that all must share)."""
    if world_size() == 1:
        return flag
    box = [flag]
    with collective("broadcast_object_list(flag)"):
        dist.broadcast_object_list(box, src=0)
    return bool(box[0])
