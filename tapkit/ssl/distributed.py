"""Data-parallel pretraining on PyTorch's own engine (torch.distributed + DistributedDataParallel).

One code path: `tapkit train` (and `tapkit.ssl.trainer.train`) run unchanged as one process or under
`torchrun --nproc_per_node N` (one process per GPU; several nodes with torchrun's rendezvous flags).
`setup()` reads torchrun's environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`); without it there is no
process group and every helper below is a no-op, so a single process computes exactly what it did
before. With it: `nccl` on CUDA (device `cuda:LOCAL_RANK`), `gloo` on CPU, and a timeout
($TAPKIT_DIST_TIMEOUT seconds, default 300) after which a collective that waits for a dead or hung
rank fails instead of hanging; `cleanup()` destroys the group at the end.

Design (what is identical to a single process, and where it is not):
- Crops come in *shards*. The global batch `batch_size` is always made of `shards` sub-batches of
  `batch_size / shards` crops; shard k draws from its own PairSampler whose generator is seeded by
  `shard_seed(seed, k)` (shard 0: the run seed itself, so an unsharded run is unchanged). Under
  torchrun `shards` defaults to the world size and rank r draws shards r*S/N ... (r+1)*S/N - 1; one
  process asked for `shards=N` draws all of them and concatenates. So a 1-process run with batch B
  and `--shards 2` sees exactly the crops of a 2-process run with per-rank batch B/2: no sample is
  duplicated across ranks, and the stream layout does not depend on the number of processes.
- Gradients: DDP averages the ranks' gradients. For a loss that is a mean over samples (TAP: CE and
  the per-sample decorrelation term; MIM: masked reconstruction, the same number of hidden pixels in
  every crop) that average IS the gradient of the global batch, provided BatchNorm sees the global
  batch: with `sync_bn=True` it does (`sync_batchnorm`: torch's SyncBatchNorm on CUDA; on CPU, where
  torch refuses it, `GlobalBatchNorm2d`, the same maths with differentiable all-reduces over gloo),
  and the 2-process loss curve equals the 1-process one up to float32 summation order (tested;
  validation metrics less closely: see tests/test_distributed.py). Without SyncBatchNorm every rank
  normalises with its own B/N crops (like a smaller batch): close, not equal. The contrastive
  task's NT-Xent takes its negatives within the batch; tapkit does not all-gather them, so under N
  processes each anchor sees 2B/N - 2 negatives instead of 2B - 2 (as SimCLR without a global
  gather): its curve is not the 1-process one.
- The learning-rate schedule counts global optimisation steps (one per global batch), the same for
  any number of processes. Train metrics are all-reduced (mean over ranks, equal shard sizes) for
  the progress bar and the history; BatchNorm buffers are broadcast from rank 0 before validation,
  and every rank validates the same fixed batches, so every rank holds the same history.
- Only rank 0 writes: the atomic checkpoint (with every shard's sampler state, gathered) and the
  history; the others wait at a barrier. Resume: every rank loads the checkpoint. With another
  number of processes but the same `shards` everything is identical: weights, optimiser, scheduler
  step, and every crop stream. With another `shards` (e.g. the default, the world size, changed)
  weights, optimiser and step count are identical, the shards that existed continue their streams,
  new shards start fresh streams (no crop repeats) and dropped ones end: the crops differ from an
  uninterrupted run.
- A failed rank: torchrun's agent stops the other workers and reports the failed rank; a rank that
  raises prints which rank failed and how to resume; a collective that never completes ends after
  the timeout.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from tapkit.data.movie import InputError
from tapkit.validate import whole

TIMEOUT_ENV = "TAPKIT_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0

__all__ = [
    "GlobalBatchNorm2d",
    "sync_batchnorm",
    "DistInfo",
    "setup",
    "cleanup",
    "info",
    "launched",
    "timeout_seconds",
    "shard_seed",
    "rank_shards",
    "check_shards",
    "LossModule",
    "wrap",
    "mean_over_ranks",
    "broadcast_buffers",
    "gather_objects",
    "barrier",
    "is_main",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, local rank (GPU index on its node), and whether
    DDP is on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False


def launched() -> bool:
    """True when a launcher (torchrun, or srun with the same variables) started this process as one
    rank."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def timeout_seconds() -> float:
    """The process-group timeout: $TAPKIT_DIST_TIMEOUT seconds (default 300)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InputError(f"${TIMEOUT_ENV}={text!r}: use a number of seconds > 0, e.g. 300.")
    return value


def setup(device: "str | torch.device" = "auto") -> "tuple[DistInfo, str | torch.device]":
    """Join the process group when launched by torchrun (nccl on CUDA, gloo on CPU); return
    (info, device).

    Without a launcher: (DistInfo(), `device` unchanged) and no group. Under torchrun,
    `device='auto'` or 'cuda' means this rank's GPU `cuda:LOCAL_RANK`, when there is one.
    """
    if not launched():
        return DistInfo(), device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", 0))
    name = str(device)
    cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    if cuda:
        if not torch.cuda.is_available():
            raise InputError(
                f"device={name!r} under torchrun, but PyTorch sees no GPU; use --device cpu (gloo)."
            )
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu" if name == "auto" else name)
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if cuda else "gloo",
            timeout=datetime.timedelta(seconds=timeout_seconds()),
            **({"device_id": dev} if cuda else {}),
        )
    return DistInfo(rank, world, local, True), dev


def info() -> DistInfo:
    """This process's rank and world size from the process group (DistInfo() when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True
    )


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes files."""
    return info().rank == 0


def cleanup() -> None:
    """Destroy the process group (if any) at the end of a run."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_seed(seed: int, shard: int) -> int:
    """The crop-stream seed of shard `shard`: the run seed for shard 0, a hash of (seed, shard)
    otherwise.

    Hashed (numpy SeedSequence, 32 bits) because torch's CPU generator keeps only the low 32 bits of
    a seed: `seed + shard` would give run seed 1 the stream of shard 1 of run seed 0.
    """
    if shard == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(shard)]).generate_state(1)[0])


def check_shards(batch_size: int, shards: "int | None", world_size: int) -> int:
    """The number of crop shards (None: one per process), checked against the batch and the world
    size."""
    n = (
        world_size
        if shards is None
        else whole(1, "one shard per process", example=2)("shards", shards)
    )
    if n % world_size:
        raise InputError(
            f"shards={n} cannot be split over {world_size} processes: use a multiple of "
            f"{world_size} (or leave shards unset: one shard per process)."
        )
    if batch_size % n:
        raise InputError(
            f"batch_size={batch_size} is not divisible by {n} "
            f"{'shards' if shards else 'processes'}: every shard draws batch_size / {n} crops. Use "
            f"a batch size that is a multiple of {n}."
        )
    return int(n)


def rank_shards(shards: int, rank: int, world_size: int) -> list[int]:
    """The shards rank `rank` draws: a contiguous block of shards / world_size of them."""
    k = shards // world_size
    return list(range(rank * k, (rank + 1) * k))


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with a gradient: the backward pass sums the incoming gradients over the ranks
    too."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are over the batches of all ranks (SyncBatchNorm's
    maths, on CPU too).

    Two differentiable all-reduces per call (sum and count -> mean; sum of squared
    deviations -> biased variance), so the backward pass also sums the statistics' gradients over
    the ranks. Without a process group, or in eval mode, it is a plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, Y, X) -> (N, C, Y, X), normalised with the global batch's per-channel mean and
        variance."""
        if not (self.training and info().world_size > 1):
            return super().forward(x)
        all_reduce = _SumOverRanks.apply
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        # (C + 1,) sums over every rank's batch
        total = all_reduce(torch.cat([x.sum((0, 2, 3)), count]))
        n = total[-1]
        mean = total[:-1] / n  # (C,)
        var = all_reduce(((x - mean[None, :, None, None]) ** 2).sum((0, 2, 3))) / n  # (C,) biased
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                self.running_mean.lerp_(mean.detach(), factor)
                # unbiased, as BatchNorm2d keeps it
                self.running_var.lerp_(var.detach() * n / (n - 1), factor)
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        return (
            y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
            if self.affine
            else y
        )


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm2d of `model` made global over the ranks (SyncBatchNorm on CUDA,
    GlobalBatchNorm2d else)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                new = GlobalBatchNorm2d(
                    child.num_features,
                    child.eps,
                    child.momentum,
                    child.affine,
                    child.track_running_stats,
                )
                new.load_state_dict(child.state_dict())
                setattr(parent, name, new)
    return model


class LossModule(nn.Module):
    """`model.loss(batch)` as a forward pass, so that DistributedDataParallel sees (and syncs)
    it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        """(total loss, metrics) of the wrapped pretext model on `batch`."""
        return self.model.loss(batch)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `LossModule(model)`; call it as
    `loss, metrics = wrapped(batch)`."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(LossModule(model), device_ids=ids)


def mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every value averaged over the ranks (one all-reduce); unchanged without a process group."""
    if not info().enabled or not values:
        return values
    stacked = torch.stack(
        [torch.as_tensor(v, dtype=torch.float32).detach().reshape(()) for v in values.values()]
    )
    stacked = stacked.to(_collective_device())
    dist.all_reduce(stacked)
    stacked /= dist.get_world_size()
    return dict(zip(values, stacked.unbind()))


def broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
    if info().enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def gather_objects(obj: Any) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank ([obj] without a process group)."""
    if not info().enabled:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if info().enabled:
        dist.barrier(
            **(
                {"device_ids": [torch.cuda.current_device()]}
                if _collective_device().type == "cuda"
                else {}
            )
        )


def _collective_device() -> torch.device:
    """Where collective tensors live: this rank's GPU with nccl, the CPU with gloo."""
    return (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
