"""What a run reports as it trains: the per-step train/loss curve, the epoch's training scalars, the
validation curves (by epoch, and against the step), the metric columns of TensorBoard's HPARAMS tab, the
end-of-run summary line, and status.json (where the run stands, read by the explorer and by the commands that
pick runs). Names: `train/*` by step or epoch, `val/*` by full epoch, `val_step/*` by step."""

import logging
import math
from pathlib import Path

import torch

from seq2seq.core.errors import NonFiniteLossError
from seq2seq.training import distributed, rundir
from seq2seq.training.state import RunState

log = logging.getLogger(__name__)


class TrainCurve:
    """Per-step losses and gradient norms stay tensors on the training device until a flush (no host
    sync per step); a flush writes train/loss for the steps since the last one and stops on a
    non-finite loss."""

    def __init__(self, n: int, device, state: RunState, writer, ctx, checkpoints):
        self.losses, self.grads = torch.zeros(n, device=device), torch.zeros(n, device=device)
        self.state, self.writer, self.ctx, self.checkpoints = state, writer, ctx, checkpoints
        self.logged = state.batch  # batches of this epoch already flushed

    def flush(self, upto: int, bar) -> None:
        state = self.state
        chunk = distributed.mean(self.losses[self.logged : upto], self.ctx).tolist()  # the global batch's loss
        first_step = state.step - (upto - self.logged) + 1
        for i, value in enumerate(chunk):
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss is {value} at step {first_step + i} (epoch {state.epoch + 1}); "
                    f"training stopped, {self.checkpoints.kept()}"
                )
            self.writer.add_scalar("train/loss", value, first_step + i)
        state.loss_sum += sum(chunk)
        state.grad_sum += self.grads[self.logged : upto].sum().item()
        if chunk:
            bar.set_postfix(loss=f"{sum(chunk) / len(chunk):.4f}", refresh=False)
        self.logged = upto


def write_epoch_scalars(task, optimizer, writer, state: RunState) -> None:
    """The finished epoch's training scalars (its number counted from 1)."""
    epoch, seen = state.epoch + 1, state.batch
    mean_loss = state.loss_sum / seen
    scalars = {
        "train/epoch_loss": mean_loss,
        **task.train_metrics(mean_loss),
        "train/grad_norm": state.grad_sum / seen,
        "train/lr": optimizer.param_groups[0]["lr"],
        "train/epoch_time": state.train_time,
    }
    for name, value in scalars.items():
        writer.add_scalar(name, value, epoch)
    log.info("epoch %d: train/loss %.4f | %.2fs for %d steps", epoch, mean_loss, state.train_time, seen)
    state.train_time = 0.0


def write_step_curve(writer, metrics: dict, step: int) -> None:
    """Validation against the optimizer step, as `val_step/*` beside train/loss: written by
    trainer.val_every_n_steps and at the end of a run stopped by trainer.max_steps mid-epoch (the
    `val/*` curves hold full epochs)."""
    for name, value in metrics.items():
        writer.add_scalar(name.replace("val/", "val_step/", 1), value, step)
    writer.flush()


def metric_columns(task) -> list[str]:
    """The HPARAMS tab's metric columns: the monitored metric, its loss and best, the final splits'."""
    split, _, name = task.monitor.partition("/")
    columns = [task.monitor, f"{split}/loss", f"{split}/best_{name}"]
    columns += [f"{s}/{m}" for s in task.final_splits for m in ("loss", "ppl")]
    return list(dict.fromkeys(columns))


def summary(monitor: str, state: RunState, metrics: dict, seconds: float, run_dir: Path) -> str:
    """The end-of-run line: best and final monitored metric, how far training went, the checkpoints."""
    best = "none" if state.best is None else f"{state.best:.4f}"
    if state.best_step is not None:  # checkpoints of earlier versions do not record it
        best += f" (step {state.best_step})"
    final = metrics.get(monitor)
    return (
        f"done: best {monitor} {best} | final {monitor} {'none' if final is None else f'{final:.4f}'} | "
        f"{progress(state)} in {seconds:.1f} s | {run_dir / 'best.pt'}"
    )


def progress(state: RunState) -> str:
    """How far training went: full epochs and steps, and the batches of an epoch stopped within (max_steps)."""
    within = f" and {state.batch} batches of epoch {state.epoch + 1}" if state.batch else ""
    return f"{state.epoch} full epochs{within}, {state.step} steps"


def format_metrics(metrics: dict[str, float]) -> str:
    return " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def write_validation(writer, task, model, state: RunState, metrics: dict, text: str | None, finished: bool) -> None:
    """The validation's metrics, samples and figures: curves of full epochs only (a partial epoch, max_steps,
    is logged, not drawn), and the log lines."""
    epoch = state.epoch + 1
    if finished:
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


def finite(value):
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def write_status(run, state: str, **facts) -> None:
    """status.json of a run (seq2seq.training.start.Run) in `state`, rank 0 only. A status that cannot be
    written (a full disk) is a warning, not the end of the run: the checkpoints say the same."""
    if not run.setup.ctx.is_main:
        return
    task, progress = run.setup.task, run.state
    try:
        rundir.write_status(
            run.checkpoints.run_dir, state, name=run.cfg.name, monitor=task.monitor, mode=task.mode,
            best=finite(progress.best), best_step=progress.best_step, final=finite(run.metrics.get(task.monitor)),
            epoch=progress.epoch, step=progress.step, **facts,
        )  # fmt: skip
    except OSError as e:
        log.warning("status.json not written (%s): the checkpoints stand", e.strerror or e)
