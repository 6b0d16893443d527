"""The process group under ``torchrun``: each process trains on its slice of every batch (data parallel,
gradients all-reduced by DDP); rank 0 alone reports and writes files. Outside torchrun it is one process
and every collective is a no-op."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch


class Forward(torch.nn.Module):
    """The student as DistributedDataParallel wraps it: ``forward(**kwargs)`` is the model's own, and
    ``forward(run=fn)`` returns ``fn(model)``. The fused loss (engine/fused_loss.py) reads the output
    weight itself instead of calling the model; run through here it happens inside DDP's forward, so DDP
    prepares its gradient all-reduce for that pass as for any other."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.module = model

    def forward(self, *args, run=None, **kwargs):
        if run is not None:
            return run(self.module)
        return self.module(*args, **kwargs)


@dataclass
class Parallel:
    """The process group when launched by torchrun (world_size 1 otherwise)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None

    @classmethod
    def from_env(cls) -> Parallel:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            # gloo for CPU tensors and NCCL for CUDA ones: a run with train.device = "cpu" on a machine with
            # GPUs still all-reduces CPU tensors, which NCCL alone refuses. The timeout is an hour, not
            # NCCL's 10 minutes: the other ranks wait at a barrier while rank 0 builds a top-k teacher
            # cache, which takes as long as one teacher pass over the data.
            backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend, timeout=datetime.timedelta(hours=1))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        return cls(rank=dist.get_rank(), world_size=world, local_rank=local)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(value)
        return value

    def any_of(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Each flag OR-ed over the processes. The reduction runs on the CPU (gloo) when the process group
        has a CPU backend, as the one made here always does: a CUDA tensor read back would wait for the
        GPU to finish every queued kernel, once a step, where this costs one small host message."""
        if self.world_size <= 1:
            return list(flags)
        import torch.distributed as dist

        on_cpu = "gloo" in str(dist.get_backend()).lower()
        values = torch.tensor([float(f) for f in flags], device="cpu" if on_cpu else device)
        dist.all_reduce(values)
        return [v > 0 for v in values.tolist()]

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self, ok: bool) -> None:
        """After a run that ended normally, wait for every process (rank 0 exports and measures last), then
        leave the group: a process that exits while the others still use the group is aborted.

        After a failure, return at once: the other processes may be inside a different collective (a
        barrier here would wait for them forever); this one exits with an error and torchrun stops
        the rest."""
        if self.world_size > 1 and ok:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()
