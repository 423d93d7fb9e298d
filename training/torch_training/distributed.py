"""One training process, or one of torchrun's: rank, world size, device, and sums across ranks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from training.common import env


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Sum ``values`` over all processes (identity with one process)."""
        if self.world == 1:
            return [float(v) for v in values]
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup_distributed(device_flag: str, script: str) -> Dist:
    """One process, or one of torchrun's (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    ``script`` names the entry script in the error a multi-instance job without torchrun gets.
    """
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    env.require_one_host_unless_distributed(script, distributed="WORLD_SIZE" in os.environ)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    sm_gpus = env.num_gpus_from_env()
    if device_flag == "cuda" and not torch.cuda.is_available():
        raise env.UsageError("--device cuda, but no CUDA GPU is available (use --device auto)")
    use_cuda = device_flag == "cuda" or (
        device_flag == "auto" and torch.cuda.is_available() and sm_gpus != 0
    )
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank, world, local_rank, device)


def teardown_distributed(ctx: Dist) -> None:
    """Leave the process group (callers pass every rank through a final barrier first)."""
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
