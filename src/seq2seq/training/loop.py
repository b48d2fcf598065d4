"""The shared train/eval loop for every task and model: `train(cfg) -> metrics` (tests call it with configs
from Hydra's compose API; `python -m seq2seq.train` is the command line around it, seq2seq.cli.train) and
`fit`, the chapter's Trainer.fit. Everything task-specific lives behind the interface in seq2seq.tasks.base.
Elsewhere, one question each:

    what the command line asked, completed before Hydra  seq2seq.training.launch
    how the run starts (fresh, resume, fork)             seq2seq.training.start
    what it is made of (task, model, optimizer)          seq2seq.training.build
    where it stands                                      seq2seq.training.state.RunState
    which checkpoints it keeps, and when                 seq2seq.training.checkpoints (the file: .checkpoint)
    what it reports (curves, summary, status.json)       seq2seq.training.reporting
"""

import logging
import math
import signal
import time
from pathlib import Path

from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from seq2seq.core.errors import CheckpointError, NonFiniteLossError, Seq2seqError, TrainingInterrupted
from seq2seq.training import checkpoint as ckpt
from seq2seq.training import distributed, start
from seq2seq.training.build import FP32, build
from seq2seq.training.config import check as check_config
from seq2seq.training.interrupt import StopRequested
from seq2seq.training.launch import Launch
from seq2seq.training.reporting import (
    TrainCurve,
    format_metrics,
    summary,
    write_epoch_scalars,
    write_status,
    write_step_curve,
    write_validation,
)
from seq2seq.training.start import Run

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


def train(cfg: DictConfig, launch: Launch | None = None) -> dict[str, float]:
    """Train the run `cfg` describes into cfg.paths.output_dir; its final metrics. `launch`: what the command
    line completed before Hydra started (seq2seq.training.launch), none for a call from Python."""
    launch = launch or Launch()
    check_config(cfg)  # as the command line did before Hydra made the run directory
    run_dir = Path(cfg.paths.output_dir)
    held = launch.lock(run_dir) if distributed.is_main_process() else None
    try:
        return fit(cfg, run_dir, launch)
    finally:
        if held is not None:
            held.release()


def fit(cfg: DictConfig, run_dir: Path, launch: Launch) -> dict[str, float]:
    """The chapter's Trainer.fit: epochs of training, each validated, until max_epochs, max_steps or
    early stopping; then the final splits on best.pt."""
    run = start.begin(cfg, run_dir, launch.adopt_staged)  # fresh, resume or fork, every check passed
    if not isinstance(run, Run):
        return run  # a finished run, resumed: nothing to train, nothing written
    state, started = run.state, time.perf_counter()
    write_status(run, "running")
    try:
        with StopRequested() as stop:
            while not state.done(cfg.trainer):
                finished = run_epoch(run, stop)
                if not finished and stop.requested:
                    stop_here(run, stop)
                end_epoch(run, finished)
        metrics = finish(run)
        run.checkpoints.mark_finished()  # so that resuming the run again writes nothing
        write_status(run, "finished")
        summary_log.info("%s", summary(run.setup.task.monitor, state, metrics, time.perf_counter() - started, run_dir))
    except Seq2seqError as e:
        write_status(run, "interrupted" if isinstance(e, TrainingInterrupted) else "failed", error=str(e)[:500])
        raise
    finally:
        run.writer.close()
    return {**metrics, "epoch": float(state.epoch), "step": float(state.step)}


def stop_here(run: Run, stop) -> None:
    """A stop signal mid-epoch: the checkpoint of this step, then TrainingInterrupted with the command to resume."""
    run.checkpoints.commit(run.state, run.carry, run.metrics)
    by = stop.signal_name or "a signal to another rank"
    raise TrainingInterrupted(
        f"stopped by {by} at step {run.state.step}, checkpoint saved; resume with the same overrides plus: "
        f"trainer.resume={run.checkpoints.run_dir}",
        stop.signum or signal.SIGTERM,
    )


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
    write_status(run, "running")


def finish(run: Run) -> dict:
    """The final splits (test) on best.pt, the best of the monitored metric beside its curve."""
    setup, state, writer = run.setup, run.state, run.writer
    task, model, ctx = setup.task, setup.model, setup.ctx
    metrics = {**run.metrics, f"best/{task.monitor}": state.best}
    best_pt = run.checkpoints.run_dir / "best.pt"
    if task.final_splits and ctx.is_main and best_pt.is_file():
        model.load_state_dict(ckpt.read(best_pt)["model_state"])  # repaired at the start if needed
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
    metrics, text = evaluate_val(run)
    write_validation(run.writer, run.setup.task, run.setup.model, run.state, metrics, text, finished)
    return metrics


def validate_at_step(run: Run) -> None:
    """trainer.val_every_n_steps: validate mid-epoch, for the report only (best.pt, the scheduler and
    early stopping follow full epochs)."""
    with run.amp:
        metrics, _ = evaluate_val(run)
    write_step_curve(run.writer, metrics, run.state.step)
    log.info("step %d: %s", run.state.step, format_metrics(metrics))
    run.setup.model.train()
