"""Processes of a training run: one, or several started by `torchrun` (DDP).

`torchrun --nproc-per-node N -m masklet train CONFIG.toml` sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; `start_processes` then joins the group: NCCL when the processes
run on GPUs, gloo on the CPU. Rank 0 writes every file; all ranks compute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from masklet.errors import ConfigError


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands in the run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, metrics and plots."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _device(choice: str, local_rank: int) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("[train] device = 'cuda' but CUDA is not available")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def start_processes(device_choice: str) -> ProcessGroup:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(device_choice, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return ProcessGroup(rank, world_size, device)


def stop_processes(group: ProcessGroup) -> None:
    """Leave the process group (after the last collective call)."""
    if group.distributed and dist.is_initialized():
        dist.destroy_process_group()


def sum_over_processes(values: list[float], group: ProcessGroup) -> list[float]:
    """Element-wise sum of `values` over all processes (the values themselves when alone)."""
    if not group.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=group.device)
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def sample_indices(
    step: int, micro: int, group: ProcessGroup, batch_size: int, accumulate: int
) -> list[int]:
    """Global indices of the clips of micro-batch `micro` of `step` on this process.

    The global batch of a step is `world_size * batch_size * accumulate` consecutive indices;
    a process reads its own slice of each micro-batch. The same indices, hence the same clips
    and prompts, make up a step whatever the number of processes (for a fixed global batch).
    """
    per_step = group.world_size * batch_size * accumulate
    first = step * per_step + (micro * group.world_size + group.rank) * batch_size
    return list(range(first, first + batch_size))
