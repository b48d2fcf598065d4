"""The shared train/eval loop for every task and model: `python -m seq2seq.train experiment=...`.

`train(cfg)` is a plain function (tests call it with configs from Hydra's compose API); `main` is
the thin Hydra entry point. Everything task-specific lives behind the interface in `seq2seq.tasks`.
"""

import contextlib
import logging
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm import tqdm

from seq2seq import checkpoint as ckpt
from seq2seq import distributed, hparams, rundir
from seq2seq.config import make, validate
from seq2seq.device import select_device, set_deterministic, set_threads
from seq2seq.errors import CheckpointError, ConfigError, Seq2seqError
from seq2seq.extras import missing_plugin
from seq2seq.interrupt import StopRequested
from seq2seq.loggers import Loggers
from seq2seq.memory import keep_freed_memory
from seq2seq.resume import (
    check_resumable,
    config_changes,
    early_checks,
    keep_old_behaviour,
    resume_in_place,
    resume_target,
)
from seq2seq.tasks import check_fits

log = logging.getLogger(__name__)


class NonFiniteLossError(Seq2seqError):
    pass


class TrainingInterrupted(Seq2seqError):
    """Raised after a stop signal, once the resumable checkpoint is written and the logs closed."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


@dataclass
class Setup:
    task: object
    model: nn.Module  # for evaluation, generation and checkpoints
    device: torch.device
    train_model: nn.Module  # what training steps call: the model, or its DDP wrapper under torchrun
    model_spec: dict  # {name, args}: saved in checkpoints, vocabulary size included (see checkpoint.py)
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    ctx: distributed.Context


def open_loggers(cfg: DictConfig, run_dir: Path, resume_at, ctx) -> Loggers:
    """The `logger` group's loggers (see seq2seq.loggers); ranks other than 0 log nothing."""
    if not ctx.is_main:
        return Loggers([])
    nodes = (cfg.get("logger") or {}).values()
    return Loggers([make(node, run_dir=str(run_dir), resume_at=resume_at) for node in nodes])


def build(cfg: DictConfig) -> Setup:
    """Task, model, optimizer and scheduler from the config; the seed fixes the initialisation."""
    set_deterministic(cfg.trainer.deterministic)
    set_threads(cfg.trainer.threads)
    ctx, device = distributed.init(select_device(cfg.trainer.device))
    keep_freed_memory()  # process-wide: training steps reuse their big buffers' pages
    torch.manual_seed(cfg.seed)
    task = make(cfg.task).to(device)
    if cfg.task.get("eval_limit"):
        log.warning("task.eval_limit=%d: validation and test see part of each split only", cfg.task.eval_limit)
    model = make(cfg.model, vocab_size=task.vocab_size).to(device)
    train_model = DistributedDataParallel(model) if ctx.enabled else model
    args = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "_target_"}
    model_spec = ckpt.model_spec(model, {**args, "vocab_size": task.vocab_size})
    try:  # torch checks the values (lr >= 0, ...) and raises TypeError / ValueError on bad ones
        optimizer = instantiate(cfg.optimizer)(model.parameters())
        scheduler = None
        if cfg.get("scheduler") is not None:
            # ReduceLROnPlateau steps per epoch on the task's monitor; others step per optimizer step.
            factory = instantiate(cfg.scheduler)
            if factory.func is ReduceLROnPlateau:
                scheduler = factory(optimizer, mode=task.mode)
            else:
                scheduler = factory(optimizer, total_steps=len(task.train_batches(0)) * cfg.trainer.max_epochs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"optimizer or scheduler: {e}") from None
    return Setup(task, model, device, train_model, model_spec, optimizer, scheduler, ctx)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast for `trainer.precision=bf16` (matrix products in bf16, reductions in fp32).
    The object can be entered again and again: build it once, not per step."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


FP32 = contextlib.nullcontext()  # the default `amp` of train_step: no autocast


def train_step(task, model, optimizer, batch, carry, grad_clip: float, amp=FP32):
    """One optimizer step, the forward pass inside `amp` (see autocast). Returns the loss and gradient
    norm as tensors (no host sync) and the carry."""
    with amp:
        loss, carry = task.training_step(model, batch, carry)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach(), grad_norm, carry


def cuda_rng_state() -> torch.Tensor | None:
    return torch.cuda.get_rng_state() if torch.cuda.is_available() else None


def track_best(progress: dict, value: float, finished: bool, mode: str) -> bool:
    """Record `value` as the best so far if it is; True when best.pt should be written. Full epochs
    compete; a partial epoch only sets a provisional best when there is none yet, and the next full
    epoch replaces it whatever its value."""
    best = progress["best"]
    if finished:
        sign = 1.0 if mode == "max" else -1.0
        improved = best is None or progress["best_partial"] or sign * value > sign * best
    else:
        improved = best is None
    if improved:
        progress.update(best=value, best_partial=not finished, best_step=progress["step"])
    return improved


def stale_epochs(options, metrics: dict, progress: dict, task) -> int:
    """trainer.early_stopping: count the full epochs in a row that have not improved the monitored
    metric by more than min_delta (kept in progress, so a resumed run goes on counting)."""
    monitor = options.monitor or task.monitor
    lower_is_better = monitor.rsplit("/", 1)[-1] in ("loss", "ppl")
    mode = options.mode or (task.mode if monitor == task.monitor else "min" if lower_is_better else "max")
    if monitor not in metrics:
        raise ConfigError(
            f"trainer.early_stopping.monitor={monitor!r} is not a validation metric here ({', '.join(sorted(metrics))})"
        )
    value, best = metrics[monitor], progress.get("stop_best")
    if best is None or (value - best if mode == "max" else best - value) > options.min_delta:
        progress.update(stop_best=value, stale_epochs=0)
    else:
        progress["stale_epochs"] = progress.get("stale_epochs", 0) + 1
    return progress["stale_epochs"]


def rank_top_k(progress: dict, value: float, k: int, mode: str) -> tuple[str | None, tuple[str, ...]]:
    """trainer.save_top_k: keep the k best full epochs as epoch-<N>.pt. Records this epoch in
    progress["top"] ([value, epoch] pairs, best first) if it is among the k best; returns its file name
    (or None) and the names of the files that fell out."""
    if k <= 1:  # best.pt alone
        return None, ()
    sign = -1.0 if mode == "max" else 1.0
    entries = sorted([*progress.get("top", []), [value, progress["epoch"]]], key=lambda e: (sign * e[0], -e[1]))
    kept, dropped = entries[:k], entries[k:]
    progress["top"] = kept
    added = ckpt.top_name(progress["epoch"]) if [value, progress["epoch"]] in kept else None
    return added, tuple(ckpt.top_name(epoch) for _, epoch in dropped if epoch != progress["epoch"])


def stopped_early(cfg: DictConfig, progress: dict) -> bool:
    patience = cfg.trainer.early_stopping.patience
    return patience is not None and progress.get("stale_epochs", 0) >= patience


class Checkpoints:
    """Writes a run's checkpoint events (rank 0 only) and knows the last one that was written, so a
    refusal can say which checkpoint is kept. Nothing non-finite is ever saved."""

    def __init__(self, cfg: DictConfig, setup: Setup, task_state: dict, run_dir: Path, writer, saved_step):
        self.cfg, self.setup, self.task_state, self.run_dir, self.writer = cfg, setup, task_state, run_dir, writer
        self.saved_step = saved_step  # step of the last.pt on disk, or None
        self.last_time = time.monotonic()

    def kept(self) -> str:
        if self.saved_step is None:
            return "no checkpoint was written (none held a finite state)"
        return f"the last good checkpoint is kept: {self.run_dir / 'last.pt'} (step {self.saved_step})"

    def due(self, step: int) -> bool:
        """A mid-epoch checkpoint is due (trainer.checkpoint_every_minutes / _n_steps)."""
        every_n, minutes = self.cfg.trainer.checkpoint_every_n_steps, self.cfg.trainer.checkpoint_every_minutes
        return bool(every_n and step % every_n == 0) or bool(
            minutes and time.monotonic() - self.last_time >= 60 * minutes
        )

    def commit(self, progress: dict, carry, metrics: dict, best: bool = False, top=None, drop=()) -> None:
        setup = self.setup
        weights = (f"parameter {n}" for n, p in setup.model.named_parameters() if not torch.isfinite(p).all())
        values = (k for k, v in metrics.items() if not math.isfinite(v))
        bad = next(weights, None) or next(values, None)
        if bad:
            where = f"step {progress['step']} (epoch {progress['epoch'] + 1})"
            raise NonFiniteLossError(f"{bad} is not finite at {where}: not saved; {self.kept()}")
        if setup.ctx.is_main:
            self.writer.flush()  # every event up to this checkpoint is on disk before it
            state = {
                "model": setup.model_spec,
                "model_state": setup.model.state_dict(),
                "task": self.task_state,
                "config": OmegaConf.to_container(self.cfg, resolve=True),
                "optimizer": setup.optimizer.state_dict(),
                "scheduler": setup.scheduler.state_dict() if setup.scheduler is not None else None,
                "progress": {**progress, "rng": torch.get_rng_state(), "cuda_rng": cuda_rng_state()},
                "carry": carry,
                "metrics": metrics,
            }
            ckpt.commit(state, self.run_dir, best, top, drop)
        self.saved_step, self.last_time = progress["step"], time.monotonic()


def train(cfg: DictConfig) -> dict[str, float]:
    validate(cfg)
    check_fits(cfg.task.get("_target_"), cfg.model.get("_target_"))
    run_dir = Path(cfg.paths.output_dir)
    resume_path = ckpt.resolve(cfg.trainer.resume, "last.pt") if cfg.trainer.resume else None
    lock = rundir.RunLock(run_dir) if distributed.is_main_process() else None
    try:
        return train_locked(cfg, run_dir, resume_path)
    finally:
        if lock is not None:
            lock.release()


def train_locked(cfg: DictConfig, run_dir: Path, resume_path: Path | None) -> dict[str, float]:
    resumed = None
    resume_target(resume_path, run_dir)
    if resume_path:
        resumed = ckpt.load(resume_path, "last.pt")
        keep_old_behaviour(resumed.get("config"), cfg)
        changes = config_changes(resumed.get("config"), cfg)
        if changes:
            raise CheckpointError(f"{resume_path}: resuming cannot change " + "; ".join(changes))
    setup = build(cfg)
    task, model, optimizer, scheduler, ctx = setup.task, setup.model, setup.optimizer, setup.scheduler, setup.ctx
    task_state = task.state_dict()
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 reports for everyone
    log.info(
        "model %s: %d parameters, on %s, %d CPU threads",
        type(model).__name__,
        sum(p.numel() for p in model.parameters()),
        setup.device,
        torch.get_num_threads(),
    )

    # Where training stands; saved in every checkpoint so a resumed run continues exactly.
    progress = {"epoch": 0, "batch": 0, "step": 0, "best": None, "best_partial": False, "best_step": None}
    progress.update(loss_sum=0.0, grad_sum=0.0, train_time=0.0)  # sums over the epoch so far
    carry, metrics = None, {}
    if resumed:
        check_resumable(resumed, setup, task_state, resume_path)
        model.load_state_dict(resumed["model_state"])
        optimizer.load_state_dict(resumed["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resumed["scheduler"])
        progress = {**progress, **resumed["progress"]}
        if resume_path.parent.resolve() != run_dir.resolve():
            progress["top"] = []  # a fork keeps its own top-k files; the source run's stay where they are
        torch.set_rng_state(progress.pop("rng"))
        cuda_rng = progress.pop("cuda_rng", None)
        if cuda_rng is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(cuda_rng)
        carry, metrics = resumed["carry"], resumed["metrics"]
        if carry is not None:  # checkpoints load on the CPU
            carry = tuple(c.to(setup.device) for c in carry)
        log.info("resuming %s at epoch %d, step %d", resume_path, progress["epoch"] + 1, progress["step"])
    in_place = resumed is not None and resume_path.parent.resolve() == run_dir.resolve()  # not a fork
    if ctx.is_main:
        rundir.remove_leftovers(run_dir)
        if in_place:
            ckpt.repair_best(run_dir, progress)
            ckpt.prune_top(run_dir, progress)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    writer = open_loggers(cfg, run_dir, (progress["step"], progress["epoch"]) if in_place else None, ctx)
    # The hyperparameters, from the start: a run stopped early is in TensorBoard's HPARAMS tab too.
    split, _, name = task.monitor.partition("/")
    columns = [task.monitor, f"{split}/loss", f"{split}/best_{name}"]
    columns += [f"{s}/{m}" for s in task.final_splits for m in ("loss", "ppl")]
    writer.start(hparams.columns(cfg, hparams.command_line_overrides()), list(dict.fromkeys(columns)))
    checkpoints = Checkpoints(cfg, setup, task_state, run_dir, writer, progress["step"] if in_place else None)
    max_steps = cfg.trainer.max_steps
    amp = autocast(setup.device, cfg.trainer.precision)
    started = time.perf_counter()
    try:
        with StopRequested() as stop:
            while (
                progress["epoch"] < cfg.trainer.max_epochs
                and not (max_steps and progress["step"] >= max_steps)
                and not stopped_early(cfg, progress)
            ):
                finished, carry = run_epoch(cfg, setup, writer, progress, stop, carry, amp, checkpoints, metrics)
                if not finished and stop.requested:
                    checkpoints.commit(progress, carry, metrics)
                    by = stop.signal_name or "a signal to another rank"
                    raise TrainingInterrupted(
                        f"stopped by {by} at step {progress['step']}, checkpoint saved; resume with "
                        f"the same overrides plus: trainer.resume={run_dir}",
                        stop.signum or signal.SIGTERM,
                    )
                with amp:
                    metrics = validate_epoch(task, model, writer, progress, finished) if ctx.is_main else None
                if ctx.is_main and (not finished or cfg.trainer.val_every_n_steps):  # the step curve's point
                    write_step_curve(writer, metrics, progress["step"])
                metrics = distributed.broadcast(metrics, ctx)
                # A partial epoch (max_steps) is validated for the report only: the scheduler, the
                # curves and best.pt follow full epochs, so a resumed run matches an uninterrupted one.
                if finished and isinstance(scheduler, ReduceLROnPlateau):
                    scheduler.step(metrics[task.monitor])
                improved = math.isfinite(metrics[task.monitor]) and track_best(
                    progress, metrics[task.monitor], finished, task.mode
                )
                top = drop = None
                if finished:
                    progress.update(epoch=progress["epoch"] + 1, batch=0, loss_sum=0.0, grad_sum=0.0)
                    carry = None
                    if math.isfinite(metrics[task.monitor]):
                        top, drop = rank_top_k(progress, metrics[task.monitor], cfg.trainer.save_top_k, task.mode)
                    if cfg.trainer.early_stopping.patience is not None:
                        stale = stale_epochs(cfg.trainer.early_stopping, metrics, progress, task)
                        if stopped_early(cfg, progress):
                            log.info("early stopping: no improvement for %d epochs", stale)
                checkpoints.commit(progress, carry, metrics, best=improved, top=top, drop=drop or ())

        metrics = {**metrics, f"best/{task.monitor}": progress["best"]}
        if task.final_splits and ctx.is_main and (run_dir / "best.pt").is_file():
            model.load_state_dict(ckpt.load(run_dir / "best.pt")["model_state"])  # repaired at the start if needed
            model.eval()
            for split in task.final_splits:
                with amp:
                    split_metrics, _ = task.evaluate(model, split)
                for name, value in split_metrics.items():
                    writer.add_scalar(name, value, progress["epoch"])
                metrics.update(split_metrics)
                log.info("best checkpoint on %s: %s", split, format_metrics(split_metrics))
        metrics = distributed.broadcast(metrics, ctx)
        if progress["best"] is not None:  # the best of the monitored metric, beside its curve
            split, _, name = task.monitor.partition("/")
            writer.add_scalar(f"{split}/best_{name}", progress["best"], progress["epoch"])
        writer.end()
        log.info("%s", summary(task.monitor, progress, metrics, time.perf_counter() - started, run_dir))
    finally:
        writer.close()
    return {**metrics, "epoch": float(progress["epoch"]), "step": float(progress["step"])}


def run_epoch(cfg, setup: Setup, writer, progress, stop, carry, amp, checkpoints: Checkpoints, metrics: dict):
    """Train from progress['batch'] to the end of the epoch. Returns (finished, carry): finished is
    False when stopped early (max_steps or a stop signal); progress says where to continue. A
    mid-epoch checkpoint (with the last validation `metrics`) is written whenever one is due."""
    task, model, optimizer, scheduler, ctx = setup.task, setup.model, setup.optimizer, setup.scheduler, setup.ctx
    model.train()
    batches = [b for b in task.train_batches(progress["epoch"]) if distributed.usable(b, ctx)]
    # Per-step values stay tensors on the training device until a flush: no host sync per step.
    losses = torch.zeros(len(batches), device=setup.device)
    grads = torch.zeros(len(batches), device=setup.device)
    step_scheduler = scheduler is not None and not isinstance(scheduler, ReduceLROnPlateau)
    max_steps, log_every, val_every = (
        cfg.trainer.max_steps,
        cfg.trainer.log_every_n_steps,
        cfg.trainer.val_every_n_steps,
    )
    start = logged = progress["batch"]
    bar = tqdm(
        range(start, len(batches)),
        desc=f"epoch {progress['epoch'] + 1}/{cfg.trainer.max_epochs}",
        disable=not (cfg.trainer.progress and ctx.is_main),
        leave=False,
        initial=start,
        total=len(batches),
    )

    def flush(upto: int) -> None:
        """Write train/loss for the steps since the last flush; stop on a non-finite loss."""
        nonlocal logged
        chunk = distributed.mean(losses[logged:upto], ctx).tolist()  # the global batch's loss
        first_step = progress["step"] - (upto - logged) + 1
        for i, value in enumerate(chunk):
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss is {value} at step {first_step + i} (epoch {progress['epoch'] + 1}); "
                    f"training stopped, {checkpoints.kept()}"
                )
            writer.add_scalar("train/loss", value, first_step + i)
        progress["loss_sum"] += sum(chunk)
        progress["grad_sum"] += grads[logged:upto].sum().item()
        if chunk:
            bar.set_postfix(loss=f"{sum(chunk) / len(chunk):.4f}", refresh=False)
        logged = upto

    started = time.perf_counter()
    for i in bar:
        batch = distributed.shard(batches[i], ctx)
        losses[i], grads[i], carry = train_step(
            task, setup.train_model, optimizer, batch, carry, cfg.trainer.grad_clip, amp
        )
        if step_scheduler:
            scheduler.step()
        progress["step"] += 1
        progress["batch"] = i + 1
        if i + 1 - logged >= log_every:
            flush(i + 1)
        if distributed.any_rank(stop.requested, ctx):  # every rank stops at the same step
            stop.requested = True
            break
        if max_steps and progress["step"] >= max_steps:
            break
        if val_every and progress["step"] % val_every == 0 and i + 1 < len(batches) and ctx.is_main:
            validate_at_step(task, model, writer, progress["step"], amp)
        if i + 1 < len(batches) and checkpoints.due(progress["step"]):
            flush(i + 1)
            progress["train_time"] += time.perf_counter() - started
            started = time.perf_counter()
            checkpoints.commit(progress, carry, metrics)
    bar.close()
    flush(progress["batch"])
    progress["train_time"] += time.perf_counter() - started
    finished = progress["batch"] == len(batches)
    if finished:
        epoch, seen = progress["epoch"] + 1, progress["batch"]
        mean_loss = progress["loss_sum"] / seen
        scalars = {
            "train/epoch_loss": mean_loss,
            **task.train_metrics(mean_loss),
            "train/grad_norm": progress["grad_sum"] / seen,
            "train/lr": optimizer.param_groups[0]["lr"],
            "train/epoch_time": progress["train_time"],
        }
        for name, value in scalars.items():
            writer.add_scalar(name, value, epoch)
        log.info("epoch %d: train/loss %.4f | %.2fs for %d steps", epoch, mean_loss, progress["train_time"], seen)
        progress["train_time"] = 0.0
    return finished, carry


def validate_epoch(task, model, writer, progress, finished) -> dict[str, float]:
    model.eval()
    started = time.perf_counter()
    metrics, text = task.evaluate(model, "val")
    metrics["val/time"] = time.perf_counter() - started
    epoch = progress["epoch"] + 1
    if finished:  # curves hold full epochs only (see train)
        for name, value in metrics.items():
            writer.add_scalar(name, value, epoch)
        if text:
            writer.add_text("val/samples", text, epoch)
        for name, figure in task.figures(model).items():
            writer.add_figure(name, figure, epoch)
        writer.flush()
    if text:
        log.info("validation samples:\n%s", text)
    partial = "" if finished else f" (partial epoch: {progress['batch']} steps)"
    log.info("epoch %d%s: %s", epoch, partial, format_metrics(metrics))
    return metrics


def validate_at_step(task, model, writer, step: int, amp) -> None:
    """trainer.val_every_n_steps: validate mid-epoch, for the report only (best.pt, the scheduler and
    early stopping follow full epochs)."""
    model.eval()
    started = time.perf_counter()
    with amp:
        metrics, _ = task.evaluate(model, "val")
    metrics["val/time"] = time.perf_counter() - started
    write_step_curve(writer, metrics, step)
    log.info("step %d: %s", step, format_metrics(metrics))
    model.train()


def write_step_curve(writer, metrics: dict, step: int) -> None:
    """Validation against the optimizer step, as `val_step/*` beside train/loss: written by
    trainer.val_every_n_steps and at the end of a run stopped by trainer.max_steps mid-epoch (the
    `val/*` curves hold full epochs)."""
    for name, value in metrics.items():
        writer.add_scalar(name.replace("val/", "val_step/", 1), value, step)
    writer.flush()


def summary(monitor: str, progress: dict, metrics: dict, seconds: float, run_dir: Path) -> str:
    """The end-of-run line: best and final monitored metric, how far training went, the checkpoints."""
    best = "none" if progress["best"] is None else f"{progress['best']:.4f}"
    if progress.get("best_step") is not None:  # checkpoints of earlier versions do not record it
        best += f" (step {progress['best_step']})"
    final = metrics.get(monitor)
    return (
        f"done: best {monitor} {best} | final {monitor} {'none' if final is None else f'{final:.4f}'} | "
        f"{progress['epoch']} epochs, {progress['step']} steps in {seconds:.1f} s | {run_dir / 'best.pt'}"
    )


def format_metrics(metrics: dict[str, float]) -> str:
    return " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
        distributed.shutdown()
    except TrainingInterrupted as e:
        log.warning("%s", e)
        sys.exit(128 + e.signum)
    except Seq2seqError as e:
        log.error("%s", e)
        sys.exit(1)
    # The value a sweeper optimises: the best value of the task's monitored metric.
    return next((v for k, v in metrics.items() if k.startswith("best/")), None)


# Model choices of 0.2, when each decoder had its model config: the decoder is a model argument now.
OLD_MODEL_CHOICES = {"model=peeky_seq2seq": "peeky", "model=attention_seq2seq": "attention"}


def translate_model_choice(args: list[str]) -> list[str]:
    """`model=peeky_seq2seq` -> `model=seq2seq model.decoder=peeky`, with a note. A key override wins over
    an experiment's own model.decoder wherever it stands, as the old model choice did."""
    out = []
    for arg in args:
        if arg in OLD_MODEL_CHOICES:
            decoder = f"model.decoder={OLD_MODEL_CHOICES[arg]}"
            print(f"note: {arg} is now model=seq2seq {decoder}", file=sys.stderr)
            out += ["model=seq2seq", decoder]
        else:
            out.append(arg)
    return out


def main() -> None:
    """`python -m seq2seq.train` and `seq2seq-train`."""
    sys.argv[1:] = translate_model_choice(sys.argv[1:])
    message = missing_plugin(sys.argv[1:])
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    try:
        sys.argv[1:] = resume_in_place(sys.argv[1:])
        early_checks(sys.argv[1:])
    except Seq2seqError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    hydra_main()


if __name__ == "__main__":
    main()
