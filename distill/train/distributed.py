"""Data-parallel training under `torchrun` (DDP); a no-op in a plain single process.

torchrun sets WORLD_SIZE / RANK / LOCAL_RANK. Every rank builds the same model and data, takes
its slice of each global batch, and DDP averages the gradients; only rank 0 logs, checkpoints,
evaluates and saves. `tests/test_ddp.py` runs two gloo processes on CPU against one process (stages 1-3
match to 1e-4; stage 4's in-batch terms are per rank, so its result differs slightly).
"""

from __future__ import annotations

import os

import torch


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def enabled() -> bool:
    return world_size() > 1


def setup(device: str) -> str:
    """Start the process group under torchrun; returns the device this rank uses."""
    if not enabled():
        return device
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    if not enabled():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
    )


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") and enabled() else model


def barrier() -> None:
    if enabled():
        import torch.distributed as dist

        dist.barrier()
