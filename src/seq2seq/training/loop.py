"""The shared train/eval loop for every task and model: `python -m seq2seq.train experiment=...`.

`train(cfg)` is a plain function (tests call it with configs from Hydra's compose API) and `fit` the
chapter's Trainer.fit; `main` is the thin entry point around Hydra. Everything task-specific lives
behind the interface in `seq2seq.tasks.base`. Elsewhere, one question each:

    how the run starts (fresh, resume, fork)     seq2seq.training.start
    what it is made of (task, model, optimizer)  seq2seq.training.build
    where it stands                              seq2seq.training.state.RunState
    what its directory holds, and when           seq2seq.training.rundir (checkpoint files: seq2seq.training.checkpoint)
    what it reports                              seq2seq.training.reporting
"""

import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from seq2seq.core import compat
from seq2seq.core.errors import CheckpointError, NonFiniteLossError, TrainingInterrupted
from seq2seq.training import checkpoint as ckpt
from seq2seq.training import checkpoints, distributed, hparams, lock, start
from seq2seq.training import precision as precisions
from seq2seq.training.build import FP32, Setup, autocast, build, open_loggers
from seq2seq.training.config import check as check_config
from seq2seq.training.interrupt import StopRequested
from seq2seq.training.reporting import (
    TrainCurve,
    format_metrics,
    metric_columns,
    summary,
    write_epoch_scalars,
    write_step_curve,
)
from seq2seq.training.state import RunState

__all__ = ["NonFiniteLossError", "TrainingInterrupted", "build", "train", "train_step"]

log = logging.getLogger(__name__)
summary_log = logging.getLogger("seq2seq.summary")  # the end-of-run line


def train_step(task, model, optimizer, batch, carry, grad_clip: float, amp=FP32):
    """One optimizer step, the forward pass inside `amp` (see build.autocast). Returns the loss and
    gradient norm as tensors (no host sync) and the carry."""
    with amp:
        loss, carry = task.training_step(model, batch, carry)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach(), grad_norm, carry


@dataclass
class Run:
    """One run in progress: its config, what it is made of, where it stands and where it writes."""

    cfg: DictConfig
    setup: Setup
    state: RunState
    writer: object  # seq2seq.training.loggers.Loggers
    checkpoints: checkpoints.Checkpoints
    amp: object  # the autocast context of trainer.precision
    carry: object = None  # state carried between batches (the language model's LSTM state)
    metrics: dict = field(default_factory=dict)  # the latest validation metrics


def train(cfg: DictConfig) -> dict[str, float]:
    check_config(cfg)  # as the command line did before Hydra made the run directory
    run_dir = Path(cfg.paths.output_dir)
    held = lock.hold(run_dir) if distributed.is_main_process() else None
    try:
        return fit(cfg, run_dir)
    finally:
        if held is not None:
            held.release()


def fit(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """The chapter's Trainer.fit: epochs of training, each validated, until max_epochs, max_steps or
    early stopping; then the final splits on best.pt."""
    plan = start.plan(cfg, run_dir)  # fresh, resume or fork: checked before anything is built
    setup = build(cfg)
    task, ctx = setup.task, setup.ctx
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 reports for everyone
    n_params = sum(p.numel() for p in setup.model.parameters())
    threads = torch.get_num_threads()
    log.info(
        "model %s: %d parameters, on %s, %d CPU threads", type(setup.model).__name__, n_params, setup.device, threads
    )
    state, carry, metrics = start.restore(plan, cfg, setup)
    if plan.kind != "fresh" and state.finished and state.done(cfg.trainer):
        # A run that finished (its final splits written): nothing to train, nothing written at all.
        log.info("%s: the run has finished (epoch %d, step %d); raise trainer.max_epochs or trainer.max_steps "
                 "to train on", plan.source, state.epoch, state.step)  # fmt: skip
        return {**metrics, f"best/{task.monitor}": state.best, "epoch": state.epoch, "step": state.step}
    state.finished = False
    saved = state.precision or (compat.old_auto_precision(setup.device.type) if plan.kind != "fresh" else None)
    precision = precisions.choose(cfg.trainer.precision, setup, saved) if ctx.is_main else None
    state.precision = precision = distributed.broadcast(precision, ctx)  # every rank computes alike
    if ctx.is_main:
        start.prepare(plan, cfg, state)
    writer = open_loggers(cfg, run_dir, (state.step, state.epoch) if plan.in_place else None, ctx)
    writer.start(hparams.columns(cfg, hparams.command_line_overrides()), metric_columns(task))
    saver = checkpoints.Checkpoints(cfg, setup, run_dir, writer, state.step if plan.in_place else None)
    run = Run(cfg, setup, state, writer, saver, autocast(setup.device, precision), carry, metrics)
    started = time.perf_counter()
    try:
        with StopRequested() as stop:
            while not state.done(cfg.trainer):
                finished = run_epoch(run, stop)
                if not finished and stop.requested:
                    saver.commit(state, run.carry, run.metrics)
                    by = stop.signal_name or "a signal to another rank"
                    raise TrainingInterrupted(
                        f"stopped by {by} at step {state.step}, checkpoint saved; resume with "
                        f"the same overrides plus: trainer.resume={run_dir}",
                        stop.signum or signal.SIGTERM,
                    )
                end_epoch(run, finished)
        metrics = finish(run)
        saver.mark_finished()  # so that resuming the run again writes nothing
        line = summary(task.monitor, state, metrics, time.perf_counter() - started, run_dir)
        summary_log.info("%s", line)  # stdout and train.log (configs/hydra/default.yaml)
    finally:
        writer.close()
    return {**metrics, "epoch": float(state.epoch), "step": float(state.step)}


def run_epoch(run: Run, stop) -> bool:
    """Train from state.batch to the end of the epoch. Returns whether the epoch finished: False when
    stopped early (max_steps or a stop signal); the state says where to continue. A mid-epoch
    checkpoint (with the last validation metrics) is written whenever one is due."""
    cfg, setup, state = run.cfg, run.setup, run.state
    task, ctx = setup.task, setup.ctx
    setup.model.train()
    batches = [b for b in task.train_batches(state.epoch) if distributed.usable(b, ctx)]
    if state.batch > len(batches):
        raise CheckpointError(
            f"the checkpoint stands at batch {state.batch} of epoch {state.epoch + 1}, which has only "
            f"{len(batches)} batches: it was made on other data"
        )
    log_curve = TrainCurve(len(batches), setup.device, state, run.writer, ctx, run.checkpoints)
    max_steps, val_every = cfg.trainer.max_steps, cfg.trainer.val_every_n_steps
    bar = tqdm(
        range(state.batch, len(batches)),
        desc=f"epoch {state.epoch + 1}/{cfg.trainer.max_epochs}",
        disable=not (cfg.trainer.progress and ctx.is_main),
        leave=False,
        initial=state.batch,
        total=len(batches),
    )
    started = time.perf_counter()
    for i in bar:
        batch = distributed.shard(batches[i], ctx)
        step = train_step(task, setup.train_model, setup.optimizer, batch, run.carry, cfg.trainer.grad_clip, run.amp)
        log_curve.losses[i], log_curve.grads[i], run.carry = step
        setup.schedule.after_step()
        setup.threads.check()  # measures the machine's load every few seconds: other work may have come or gone
        state.step, state.batch = state.step + 1, i + 1
        if i + 1 - log_curve.logged >= cfg.trainer.log_every_n_steps:
            log_curve.flush(i + 1, bar)
        if distributed.any_rank(stop.requested, ctx):  # every rank stops at the same step
            stop.requested = True
            break
        if max_steps and state.step >= max_steps:
            break
        if val_every and state.step % val_every == 0 and i + 1 < len(batches) and ctx.is_main:
            validate_at_step(run)
        if i + 1 < len(batches) and run.checkpoints.due(state.step):
            log_curve.flush(i + 1, bar)
            state.train_time, started = state.train_time + time.perf_counter() - started, time.perf_counter()
            run.checkpoints.commit(state, run.carry, run.metrics)
    bar.close()
    log_curve.flush(state.batch, bar)
    state.train_time += time.perf_counter() - started
    finished = state.batch == len(batches)
    if finished:
        write_epoch_scalars(task, setup.optimizer, run.writer, state)
    return finished


def end_epoch(run: Run, finished: bool) -> None:
    """Validate, then decide from the metrics (schedule, best.pt, top-k, early stopping) and commit the
    checkpoint. A partial epoch (max_steps) is validated for the report only: the schedule, the curves
    and best.pt follow full epochs, so a resumed run matches an uninterrupted one."""
    cfg, setup, state = run.cfg, run.setup, run.state
    task, ctx = setup.task, setup.ctx
    with run.amp:
        metrics = validate_epoch(run, finished) if ctx.is_main else None
    if ctx.is_main and (not finished or cfg.trainer.val_every_n_steps):  # the step curve's point
        write_step_curve(run.writer, metrics, state.step)
    metrics = distributed.broadcast(metrics, ctx)
    monitored = metrics[task.monitor]
    if finished:
        setup.schedule.after_epoch(monitored)
    improved = math.isfinite(monitored) and state.track_best(monitored, finished, task.mode)
    top = drop = None
    if finished:
        state.end_epoch()
        run.carry = None
        if math.isfinite(monitored):
            top, drop = state.rank_top_k(monitored, cfg.trainer.save_top_k, task.mode)
        if cfg.trainer.early_stopping.patience is not None:
            stale = state.count_stale(cfg.trainer.early_stopping, metrics, task)
            if stale >= cfg.trainer.early_stopping.patience:
                log.info("early stopping: no improvement for %d epochs", stale)
    run.checkpoints.commit(state, run.carry, metrics, best=improved, top=top, drop=drop or ())
    run.metrics = metrics


def finish(run: Run) -> dict:
    """The final splits (test) on best.pt, the best of the monitored metric beside its curve."""
    setup, state, writer = run.setup, run.state, run.writer
    task, model, ctx = setup.task, setup.model, setup.ctx
    metrics = {**run.metrics, f"best/{task.monitor}": state.best}
    best_pt = run.checkpoints.run_dir / "best.pt"
    if task.final_splits and ctx.is_main and best_pt.is_file():
        model.load_state_dict(ckpt.load(best_pt)["model_state"])  # repaired at the start if needed
        model.eval()
        for split in task.final_splits:
            with run.amp:
                split_metrics, _ = task.evaluate(model, split)
            for name, value in split_metrics.items():
                writer.add_scalar(name, value, state.epoch)
            metrics.update(split_metrics)
            log.info("best checkpoint on %s: %s", split, format_metrics(split_metrics))
    metrics = distributed.broadcast(metrics, ctx)
    if state.best is not None:
        split, _, name = task.monitor.partition("/")
        writer.add_scalar(f"{split}/best_{name}", state.best, state.epoch)
    writer.end()
    return metrics


def evaluate_val(run: Run) -> tuple[dict[str, float], str]:
    """The validation split's metrics, with val/time, and its sample text; the model left in eval mode."""
    run.setup.model.eval()
    started = time.perf_counter()
    metrics, text = run.setup.task.evaluate(run.setup.model, "val")
    metrics["val/time"] = time.perf_counter() - started
    return metrics, text


def validate_epoch(run: Run, finished: bool) -> dict[str, float]:
    task, model, writer, state = run.setup.task, run.setup.model, run.writer, run.state
    metrics, text = evaluate_val(run)
    epoch = state.epoch + 1
    if finished:  # curves hold full epochs only (see end_epoch)
        for name, value in metrics.items():
            writer.add_scalar(name, value, epoch)
        if text:
            writer.add_text("val/samples", text, epoch)
        for name, figure in task.figures(model).items():
            writer.add_figure(name, figure, epoch)
        writer.flush()
    if text:
        log.info("validation samples:\n%s", text)
    partial = "" if finished else f" (partial epoch: {state.batch} steps)"
    log.info("epoch %d%s: %s", epoch, partial, format_metrics(metrics))
    return metrics


def validate_at_step(run: Run) -> None:
    """trainer.val_every_n_steps: validate mid-epoch, for the report only (best.pt, the scheduler and
    early stopping follow full epochs)."""
    with run.amp:
        metrics, _ = evaluate_val(run)
    write_step_curve(run.writer, metrics, run.state.step)
    log.info("step %d: %s", run.state.step, format_metrics(metrics))
    run.setup.model.train()
