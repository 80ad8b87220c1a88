"""One run on many processes with torch.distributed: the process group from the launcher's environment
(`torchrun`, or `srun` with MASTER_ADDR and MASTER_PORT set), one device per local rank, and the few
collectives the engine needs. Without a launcher everything here is a no-op on one process."""

from __future__ import annotations

import datetime
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from segbench.errors import SegbenchError

BACKENDS = ("auto", "nccl", "gloo")
T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: global rank, number of processes, rank on its node, backend."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Global rank 0: the process that writes every file of the run and calls the plugins' hooks."""
        return self.rank == 0


SINGLE = Distributed()


def launcher_environment() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) from torchrun's variables, or from SLURM's under srun when a
    rendezvous address is set; None without a launcher."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0"))
    if "SLURM_PROCID" in env and "MASTER_ADDR" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        env.setdefault("RANK", env["SLURM_PROCID"])
        env.setdefault("WORLD_SIZE", env["SLURM_NTASKS"])
        env.setdefault("LOCAL_RANK", env.get("SLURM_LOCALID", "0"))
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"])
    return None


def start(device: torch.device, backend: str = "auto", timeout_seconds: float = 600.0) -> tuple[Distributed, torch.device]:
    """Join the launcher's process group (env://) and pick this rank's device: cuda:<local rank> when
    `device` is CUDA, else `device`. `timeout_seconds` bounds every collective, so a rank that hangs or
    died is reported instead of waited on forever. Without a launcher (or one process): (SINGLE, device)."""
    if backend not in BACKENDS:
        raise SegbenchError(f"unknown --dist-backend {backend!r}; valid: {', '.join(BACKENDS)}")
    found = launcher_environment()
    if found is None or found[1] == 1:
        return SINGLE, device
    rank, world, local_rank = found
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise SegbenchError(f"rank {rank} (local rank {local_rank}) cannot see a GPU: this node has {count}; "
                                f"start at most {count} processes per node (torchrun --nproc_per_node={count})")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    chosen = ("nccl" if device.type == "cuda" else "gloo") if backend == "auto" else backend
    if chosen == "nccl" and device.type != "cuda":
        raise SegbenchError("--dist-backend nccl needs CUDA devices, and this run is on the "
                            f"{device.type}; use --dist-backend gloo (or auto) here")
    if not torch.distributed.is_available():
        raise SegbenchError("this torch build has no torch.distributed; run one process")
    torch.distributed.init_process_group(chosen, init_method="env://", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=timeout_seconds))
    return Distributed(rank, world, local_rank, chosen), device


def leave_together(dist: Distributed) -> None:
    """Wait for every rank at the end of a finished run, so none tears its process group down and exits while
    another is still at work (rank 0 writing the results and report): the usual end of a distributed job.
    A mitigation, not a proven fix: twice, a two-process gloo run's rank 1 aborted at exit ("terminate called
    without an active exception") while rank 0 was still writing; not reproduced in 13 runs by hand."""
    if dist.enabled:
        torch.distributed.barrier()


def stop(dist: Distributed) -> None:
    if dist.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def gather(value: T, dist: Distributed) -> list[T]:
    """Every rank's `value`, in rank order, on every rank ([value] on one process)."""
    if not dist.enabled:
        return [value]
    values: list[Any] = [None] * dist.world
    torch.distributed.all_gather_object(values, value)
    return values


def broadcast(value: T, dist: Distributed) -> T:
    """Rank 0's `value` on every rank."""
    if not dist.enabled:
        return value
    box = [value if dist.main else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flags: list[bool], dist: Distributed) -> list[bool]:
    """Each flag, true on every rank when it is true on any (one small all-reduce)."""
    if not dist.enabled:
        return flags
    tensor = torch.tensor([int(f) for f in flags], dtype=torch.int64,
                          device="cuda" if dist.backend == "nccl" else "cpu")
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


def total(value: float, dist: Distributed) -> float:
    """The sum of `value` over ranks (the value itself on one process)."""
    if not dist.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device="cuda" if dist.backend == "nccl" else "cpu")
    torch.distributed.all_reduce(tensor)
    return float(tensor.item())


def on_main(work: Callable[[], T], dist: Distributed) -> T:
    """Run `work` on rank 0 only and give its result to every rank; a SegbenchError it raises is raised
    on every rank (so none waits for a rank that already stopped)."""
    if not dist.enabled:
        return work()
    outcome: tuple[bool, Any] = (True, None)
    if dist.main:
        try:
            outcome = (True, work())
        except SegbenchError as exc:
            outcome = (False, pickle.dumps(exc))
    ok, value = broadcast(outcome, dist)
    if not ok:
        raise pickle.loads(value)
    return value
