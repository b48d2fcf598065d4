"""What a run is made of, built from its config: the task, the model (and its DDP wrapper under torchrun),
the optimizer and the learning-rate schedule, on the chosen device; and the run's loggers."""

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from seq2seq.core.device import select_device, set_deterministic
from seq2seq.core.errors import ConfigError
from seq2seq.core.memory import keep_freed_memory
from seq2seq.core.threads import Threads
from seq2seq.training import checkpoint as ckpt
from seq2seq.training import distributed
from seq2seq.training.config import make
from seq2seq.training.loggers import Loggers
from seq2seq.training.schedule import Schedule

log = logging.getLogger(__name__)


@dataclass
class Setup:
    task: object  # a seq2seq.tasks.base.Task
    model: nn.Module  # for evaluation, generation and checkpoints
    device: torch.device
    train_model: nn.Module  # what training steps call: the model, or its DDP wrapper under torchrun
    model_spec: dict  # {name, args}: saved in checkpoints, vocabulary size included (see checkpoint.py)
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    ctx: distributed.Context
    threads: Threads  # torch's thread count, fitted to the free cores (checked again while training)


def build(cfg: DictConfig) -> Setup:
    """Task, model, optimizer and schedule from the config; the seed fixes the initialisation."""
    set_deterministic(cfg.trainer.deterministic)
    threads = Threads(cfg.trainer.threads, cfg.trainer.deterministic)
    threads.start()
    ctx, device = distributed.init(select_device(cfg.trainer.device))
    keep_freed_memory()  # process-wide: training steps reuse their big buffers' pages
    torch.manual_seed(cfg.seed)
    task = make(cfg.task).to(device)
    if cfg.task.get("eval_limit"):
        log.warning("task.eval_limit=%d: validation and test see part of each split only", cfg.task.eval_limit)
    model = make(cfg.model, vocab_size=task.vocab_size).to(device)  # the data fixes the vocabulary size
    train_model = DistributedDataParallel(model) if ctx.enabled else model
    args = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "_target_"}
    model_spec = ckpt.model_spec(model, {**args, "vocab_size": task.vocab_size})
    try:  # torch checks the values (lr >= 0, ...) and raises TypeError / ValueError on bad ones
        optimizer = instantiate(cfg.optimizer)(model.parameters())
        factory = instantiate(cfg.scheduler) if cfg.get("scheduler") is not None else None
        total_steps = len(task.train_batches(0)) * cfg.trainer.max_epochs if factory is not None else 0
        schedule = Schedule(factory, optimizer, task.mode, total_steps)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"optimizer or scheduler: {e}") from None
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "model %s: %d parameters, on %s, %d CPU threads", type(model).__name__, n_params, device, threads.choice.threads
    )
    return Setup(task, model, device, train_model, model_spec, optimizer, schedule, ctx, threads)


def open_loggers(cfg: DictConfig, run_dir: Path, resume_at, ctx) -> Loggers:
    """The `logger` group's loggers (see seq2seq.training.loggers); ranks other than 0 log nothing."""
    if not ctx.is_main:
        return Loggers([])
    nodes = (cfg.get("logger") or {}).values()
    return Loggers([make(node, run_dir=str(run_dir), resume_at=resume_at) for node in nodes])


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast for `trainer.precision=bf16` (matrix products in bf16, reductions in fp32).
    The object can be entered again and again: build it once, not per step."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


FP32 = contextlib.nullcontext()  # the default `amp` of train_step: no autocast
