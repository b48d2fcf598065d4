"""Data-parallel training under torchrun: `torchrun --nproc_per_node=N -m seq2seq.train ...`.

Every rank builds the same task and model (same seed) and reads the same global batches; each
takes its own contiguous slice of rows of every batch. For a pair task that is a shard of the
examples; for a language model, rows are contiguous pieces of the token stream, so each rank
carries the LSTM state of its own rows. DistributedDataParallel averages the gradients, so a
step equals a one-process step on the whole global batch. Rank 0 evaluates and broadcasts the
metrics, writes TensorBoard events, logs and checkpoints.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seq2seq.core.errors import ConfigError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"  # where collectives' tensors live (nccl needs the GPU)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process (before or without a process group)."""
    return int(os.environ.get("RANK", "0")) == 0


def init(device: torch.device) -> tuple[Context, torch.device]:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on GPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Context(device=str(device)), device
    if device.type == "cuda":
        local_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        gpus = torch.cuda.device_count()
        if local_size > gpus:  # before any process group: one line, not a CUDA error on some rank
            raise ConfigError(
                f"{local_size} processes, {gpus} visible GPU{'s' if gpus != 1 else ''}: "
                "use trainer.device=cpu, or fewer processes"
            )
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), str(device)), device


def shard(batch, ctx: Context):
    """This rank's contiguous slice of the rows of every tensor in the batch (None stays None)."""
    if not ctx.enabled:
        return batch
    return tuple(None if t is None else t.tensor_split(ctx.world_size)[ctx.rank] for t in batch)


def usable(batch, ctx: Context) -> bool:
    """A batch with fewer rows than ranks would leave a rank empty: every rank skips it alike."""
    return not ctx.enabled or batch[0].shape[0] >= ctx.world_size


def mean(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Average a tensor over ranks (the logged training loss is the global batch's)."""
    if ctx.enabled:
        values = values.clone()
        dist.all_reduce(values)
        values /= ctx.world_size
    return values


def any_rank(flag: bool, ctx: Context) -> bool:
    """True on every rank when it is true on one: all ranks stop at the same step."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([float(flag)], device=ctx.device)
    dist.all_reduce(t)
    return bool(t.item())


def broadcast(obj, ctx: Context):
    """Rank 0's object on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    """Leave the process group at the end of a torchrun job: ranks wait for each other, then tear
    gloo/nccl down, so no rank exits while another still talks to it (which can abort the process)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
