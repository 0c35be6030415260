"""DistributedDataParallel helpers: set-up from torchrun's environment, sharding and gathering.

``torchrun --nproc_per_node N -m tdrag train ...`` sets RANK, LOCAL_RANK and WORLD_SIZE; the
engine calls :func:`setup` and trains with DDP (nccl on CUDA, gloo on CPU). Without those
variables everything runs in one process and these helpers reduce to no-ops.

Evaluation does not use a padding sampler: each rank takes the rows ``rows[rank::world]`` (which
covers every row exactly once), and :func:`gather_rows` collects ``(row, ...)`` arrays from all
ranks and orders them by row, so no clip is counted twice or missed.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """DistInfo from torchrun's environment variables (single process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(rank=int(os.environ["RANK"]), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def setup(device_kind: str) -> DistInfo:
    """Join the process group torchrun describes (nccl for CUDA, gloo for CPU), if any.

    Args:
        device_kind: "cuda" or "cpu": the device type training will use.
    """
    info = env_info()
    if not info.enabled:
        return info
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        log.info("joined %s process group: rank %d of %d", backend, info.rank, info.world_size)
    return info


def cleanup() -> None:
    """Leave the process group (safe to call when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current() -> DistInfo:
    """DistInfo of the initialised process group (rank 0 of 1 when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=env_info().local_rank)
    return DistInfo()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shard_rows(rows: np.ndarray, info: DistInfo) -> np.ndarray:
    """The rows this rank evaluates: every ``world_size``-th, no padding, no overlap."""
    return np.asarray(rows)[info.rank :: info.world_size]


def gather_rows(local: dict[str, np.ndarray], info: DistInfo) -> dict[str, np.ndarray]:
    """Concatenate per-rank arrays keyed alike (one must be ``"row"``), sorted and unique by row.

    Every rank receives the full result. A row seen twice keeps one copy (identical by
    construction, since each rank computes a row's outputs deterministically).
    """
    if info.enabled:
        parts: list[Any] = [None] * info.world_size
        dist.all_gather_object(parts, {k: np.asarray(v) for k, v in local.items()})
        merged = {k: np.concatenate([p[k] for p in parts]) for k in local}
    else:
        merged = {k: np.asarray(v) for k, v in local.items()}
    _, first = np.unique(merged["row"], return_index=True)
    return {k: v[first] for k, v in merged.items()}


def all_true(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` holds on every rank (a collective: call it on all ranks)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1 if flag else 0], device=device, dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def sync_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank.

    DDP keeps parameters equal but each rank updates its BatchNorm statistics on its own batches
    after DDP's start-of-forward broadcast, so before evaluating (and checkpointing rank 0's
    model) the ranks must agree on them.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=src)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
