"""The shared train/eval loop for every task and model: `python -m seq2seq.train experiment=...`.

`train(cfg)` is a plain function (tests call it with configs from Hydra's compose API); `main` is
the thin Hydra entry point. Everything task-specific lives behind the interface in
`seq2seq.tasks.base`; what a run is made of is built by `seq2seq.build`; where it stands is a
`seq2seq.progress.Progress`; checkpoints are assembled in `seq2seq.checkpoint`.
"""

import logging
import math
import re
import signal
import sys
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from seq2seq import checkpoint as ckpt
from seq2seq import cli, distributed, hparams, preflight, resume, rundir
from seq2seq.build import FP32, Setup, autocast, build, open_loggers
from seq2seq.checks import unknown_key_message
from seq2seq.config import unknown_keys
from seq2seq.device import resolve_precision, select_device
from seq2seq.errors import CheckpointError, ConfigError, Seq2seqError
from seq2seq.extras import missing_plugin
from seq2seq.interrupt import StopRequested
from seq2seq.progress import Progress
from seq2seq.resume import (
    check_resumable,
    config_changes,
    early_checks,
    keep_old_behaviour,
    resume_in_place,
    resume_target,
)
from seq2seq.tasks.base import data_fingerprint, held_data_fingerprint

__all__ = ["build", "train", "train_step"]

log = logging.getLogger(__name__)
summary_log = logging.getLogger("seq2seq.summary")  # the end-of-run line


class NonFiniteLossError(Seq2seqError):
    pass


class TrainingInterrupted(Seq2seqError):
    """Raised after a stop signal, once the resumable checkpoint is written and the logs closed."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


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


class Checkpoints:
    """Writes a run's checkpoint events (rank 0 only) and knows the last one that was written, so a
    refusal can say which checkpoint is kept. Nothing non-finite is ever saved."""

    def __init__(self, cfg: DictConfig, setup: Setup, run_dir: Path, writer, saved_step):
        self.cfg, self.setup, self.run_dir, self.writer = cfg, setup, run_dir, writer
        self.config, self.task_state = OmegaConf.to_container(cfg, resolve=True), setup.task.state_dict()
        self.saved_step = saved_step  # step of the last.pt on disk, or None
        self.last_time = time.monotonic()

    def kept(self) -> str:
        if self.saved_step is None:
            return "no checkpoint was written (none held a finite state)"
        return f"the last good checkpoint is kept: {self.run_dir / 'last.pt'} (step {self.saved_step})"

    def mark_finished(self) -> None:
        """Record in last.pt that the run ended and wrote its final splits. Read back from disk: the model
        now holds best.pt's weights (the final splits are evaluated on them), last.pt must keep its own."""
        path = self.run_dir / "last.pt"
        if self.setup.ctx.is_main and path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            state["progress"]["finished"] = True
            ckpt.save(state, path)

    def due(self, step: int) -> bool:
        """A mid-epoch checkpoint is due (trainer.checkpoint_every_minutes / _n_steps)."""
        every_n, minutes = self.cfg.trainer.checkpoint_every_n_steps, self.cfg.trainer.checkpoint_every_minutes
        return bool(every_n and step % every_n == 0) or bool(
            minutes and time.monotonic() - self.last_time >= 60 * minutes
        )

    def commit(self, progress: Progress, carry, metrics: dict, best: bool = False, top=None, drop=()) -> None:
        setup = self.setup
        weights = (f"parameter {n}" for n, p in setup.model.named_parameters() if not torch.isfinite(p).all())
        values = (k for k, v in metrics.items() if not math.isfinite(v))
        bad = next(weights, None) or next(values, None)
        if bad:
            where = f"step {progress.step} (epoch {progress.epoch + 1})"
            raise NonFiniteLossError(f"{bad} is not finite at {where}: not saved; {self.kept()}")
        if setup.ctx.is_main:
            self.writer.flush()  # every event up to this checkpoint is on disk before it
            state = ckpt.training_state(
                model_spec=setup.model_spec,
                model=setup.model,
                task=self.task_state,
                config=self.config,
                optimizer=setup.optimizer,
                schedule=setup.schedule,
                progress=progress.as_dict(),
                carry=carry,
                metrics=metrics,
            )
            ckpt.commit(state, self.run_dir, best, top, drop)
        self.saved_step, self.last_time = progress.step, time.monotonic()


def train(cfg: DictConfig) -> dict[str, float]:
    preflight.check(cfg)  # as the command line did before Hydra made the run directory
    precision = resolve_precision(cfg.trainer.precision, select_device(cfg.trainer.device))
    run_dir = Path(cfg.paths.output_dir)
    resume_path = ckpt.resolve(cfg.trainer.resume, "last.pt") if cfg.trainer.resume else None
    lock = rundir.hold(run_dir) if distributed.is_main_process() else None
    try:
        return fit(cfg, run_dir, resume_path, precision)
    finally:
        if lock is not None:
            lock.release()


def fit(cfg: DictConfig, run_dir: Path, resume_path: Path | None, precision: str) -> dict[str, float]:
    """The chapter's Trainer.fit: epochs of training, each validated, until max_epochs, max_steps or
    early stopping; then the final splits on best.pt."""
    resumed = load_for_resume(cfg, run_dir, resume_path)
    setup = build(cfg)
    task, ctx = setup.task, setup.ctx
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 reports for everyone
    n_params = sum(p.numel() for p in setup.model.parameters())
    threads = torch.get_num_threads()
    log.info(
        "model %s: %d parameters, on %s, %d CPU threads", type(setup.model).__name__, n_params, setup.device, threads
    )
    fingerprints = data_fingerprint(task), held_data_fingerprint(task)
    progress, carry, metrics = Progress(data=fingerprints[0], held_data=fingerprints[1]), None, {}
    if resumed is not None:
        progress, carry, metrics = restore(resumed, setup, resume_path, run_dir)
        check_same_data(cfg, progress, fingerprints, resume_path, run_dir)
    in_place = resumed is not None and resume_path.parent.resolve() == run_dir.resolve()  # not a fork
    if resumed is not None and not in_place and done(cfg, progress):  # a fork would hold no checkpoint of its own
        raise CheckpointError(
            f"{resume_path}: the run has finished (epoch {progress.epoch}, step {progress.step}): a fork of it "
            "needs more to train: raise trainer.max_epochs or trainer.max_steps"
        )
    if resumed is not None and progress.finished and done(cfg, progress):
        # A run that finished (its final splits written): nothing to train, nothing written at all.
        log.info("%s: the run has finished (epoch %d, step %d); raise trainer.max_epochs or trainer.max_steps "
                 "to train on", resume_path, progress.epoch, progress.step)  # fmt: skip
        return {**metrics, f"best/{task.monitor}": progress.best, "epoch": progress.epoch, "step": progress.step}
    progress.finished = False
    if ctx.is_main:
        if in_place and cfg.trainer.save_top_k > 1:  # epoch-<N>.pt files still to come
            rundir.check_top_free(run_dir, progress.epoch + 1, cfg.trainer.max_epochs)
        resume.adopt_staged(run_dir)  # the checks passed: Hydra's record and log join the run directory
        prepare_run_dir(cfg, run_dir, progress, in_place)
    writer = open_loggers(cfg, run_dir, (progress.step, progress.epoch) if in_place else None, ctx)
    writer.start(hparams.columns(cfg, hparams.command_line_overrides()), metric_columns(task))
    checkpoints = Checkpoints(cfg, setup, run_dir, writer, progress.step if in_place else None)
    amp = autocast(setup.device, precision)
    started = time.perf_counter()
    try:
        with StopRequested() as stop:
            while not done(cfg, progress):
                finished, carry = run_epoch(cfg, setup, writer, progress, stop, carry, amp, checkpoints, metrics)
                if not finished and stop.requested:
                    checkpoints.commit(progress, carry, metrics)
                    by = stop.signal_name or "a signal to another rank"
                    raise TrainingInterrupted(
                        f"stopped by {by} at step {progress.step}, checkpoint saved; resume with "
                        f"the same overrides plus: trainer.resume={run_dir}",
                        stop.signum or signal.SIGTERM,
                    )
                metrics, carry = end_epoch(cfg, setup, writer, progress, finished, carry, amp, checkpoints)
        metrics = finish(setup, writer, progress, metrics, run_dir, amp)
        checkpoints.mark_finished()  # so that resuming the run again writes nothing
        line = summary(task.monitor, progress, metrics, time.perf_counter() - started, run_dir)
        summary_log.info("%s", line)  # stdout and train.log (configs/hydra/default.yaml)
    finally:
        writer.close()
    return {**metrics, "epoch": float(progress.epoch), "step": float(progress.step)}


def load_for_resume(cfg: DictConfig, run_dir: Path, resume_path: Path | None) -> dict | None:
    """The checkpoint to resume from, if any, refused when the config changes what it cannot."""
    resume_target(resume_path, run_dir)
    if resume_path is None:
        return None
    resumed = ckpt.load(resume_path, "last.pt")
    if not isinstance(resumed.get("config"), dict):
        raise CheckpointError(f"{resume_path}: holds no config to compare this run's with, so it cannot be resumed")
    keep_old_behaviour(resumed.get("config"), cfg)
    changes = config_changes(resumed.get("config"), cfg)
    if changes:
        raise CheckpointError(f"{resume_path}: resuming cannot change " + "; ".join(changes))
    return resumed


def restore(resumed: dict, setup: Setup, resume_path: Path, run_dir: Path) -> tuple[Progress, object, dict]:
    check_resumable(resumed, setup, setup.task.state_dict(), resume_path)
    saved, carry, metrics = ckpt.restore(resumed, setup.model, setup.optimizer, setup.schedule, setup.device)
    progress = Progress.from_saved(saved, str(resume_path))
    if resume_path.parent.resolve() != run_dir.resolve():
        progress.top = []  # a fork keeps its own top-k files; the source run's stay where they are
    log.info("resuming %s at epoch %d, step %d", resume_path, progress.epoch + 1, progress.step)
    return progress, carry, metrics


DATA_KEYS = ("task.path", "task.train", "task.val", "task.data_dir", "task.num_examples", "seed")


def check_same_data(cfg: DictConfig, progress: Progress, fingerprints: tuple[str, str], resume_path: Path,
                    run_dir: Path) -> None:  # fmt: skip
    """A run resumes on the data it trained and validated on: other data (a file changed or cut) is
    refused in place, and allowed, with a warning, when forking into a new directory. Checkpoints of
    earlier versions hold no fingerprint (or none of the validation data)."""
    saved = {"training": progress.data, "validation": progress.held_data}
    changed = [what for what, now in zip(saved, fingerprints, strict=True) if saved[what] not in (None, now)]
    progress.data, progress.held_data = fingerprints
    if not changed:
        return
    where = ", ".join(f"{k}={OmegaConf.select(cfg, k)}" for k in DATA_KEYS if OmegaConf.select(cfg, k) is not None)
    if resume_path.parent.resolve() == run_dir.resolve():
        raise CheckpointError(
            f"{resume_path}: the {changed[0]} data is not what this run used ({where}): resuming would change "
            f"the experiment; fork it into a new run instead: add hydra.run.dir=<a new directory>"
        )
    log.warning("forking %s onto other %s data (%s)", resume_path, changed[0], where)


def prepare_run_dir(cfg: DictConfig, run_dir: Path, progress: Progress, in_place: bool) -> None:
    """Leftovers of a crash removed, best.pt and the top-k files mended (resuming in place), and the
    resolved config written."""
    try:
        if in_place:
            repair_run_dir(run_dir, progress)
        else:
            rundir.remove_leftovers(run_dir)
        rundir.write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    except OSError as e:  # a full disk, a read-only directory: the checkpoints stay as they are
        raise ConfigError(f"cannot write to the run directory {run_dir}: {e.strerror or e}") from None


def repair_run_dir(run_dir: Path, progress: Progress) -> None:
    """What a crash between writes left: temporary files, a stale best.pt, top-k files last.pt does not list."""
    rundir.remove_leftovers(run_dir)
    ckpt.repair_best(run_dir, progress.as_dict())
    ckpt.prune_top(run_dir, progress.as_dict())


def metric_columns(task) -> list[str]:
    """The HPARAMS tab's metric columns: the monitored metric, its loss and best, the final splits'."""
    split, _, name = task.monitor.partition("/")
    columns = [task.monitor, f"{split}/loss", f"{split}/best_{name}"]
    columns += [f"{s}/{m}" for s in task.final_splits for m in ("loss", "ppl")]
    return list(dict.fromkeys(columns))


def done(cfg: DictConfig, progress: Progress) -> bool:
    patience, max_steps = cfg.trainer.early_stopping.patience, cfg.trainer.max_steps
    return (
        progress.epoch >= cfg.trainer.max_epochs
        or bool(max_steps and progress.step >= max_steps)
        or (patience is not None and progress.stale_epochs >= patience)
    )


def end_epoch(cfg, setup: Setup, writer, progress: Progress, finished: bool, carry, amp, checkpoints):
    """Validate, then decide from the metrics (schedule, best.pt, top-k, early stopping) and commit the
    checkpoint. A partial epoch (max_steps) is validated for the report only: the schedule, the curves
    and best.pt follow full epochs, so a resumed run matches an uninterrupted one."""
    task, ctx = setup.task, setup.ctx
    with amp:
        metrics = validate_epoch(task, setup.model, writer, progress, finished) if ctx.is_main else None
    if ctx.is_main and (not finished or cfg.trainer.val_every_n_steps):  # the step curve's point
        write_step_curve(writer, metrics, progress.step)
    metrics = distributed.broadcast(metrics, ctx)
    monitored = metrics[task.monitor]
    if finished:
        setup.schedule.after_epoch(monitored)
    improved = math.isfinite(monitored) and progress.track_best(monitored, finished, task.mode)
    top = drop = None
    if finished:
        progress.end_epoch()
        carry = None
        if math.isfinite(monitored):
            top, drop = progress.rank_top_k(monitored, cfg.trainer.save_top_k, task.mode)
        if cfg.trainer.early_stopping.patience is not None:
            stale = progress.count_stale(cfg.trainer.early_stopping, metrics, task)
            if stale >= cfg.trainer.early_stopping.patience:
                log.info("early stopping: no improvement for %d epochs", stale)
    checkpoints.commit(progress, carry, metrics, best=improved, top=top, drop=drop or ())
    return metrics, carry


def finish(setup: Setup, writer, progress: Progress, metrics: dict, run_dir: Path, amp) -> dict:
    """The final splits (test) on best.pt, the best of the monitored metric beside its curve."""
    task, model, ctx = setup.task, setup.model, setup.ctx
    metrics = {**metrics, f"best/{task.monitor}": progress.best}
    if task.final_splits and ctx.is_main and (run_dir / "best.pt").is_file():
        model.load_state_dict(ckpt.load(run_dir / "best.pt")["model_state"])  # repaired at the start if needed
        model.eval()
        for split in task.final_splits:
            with amp:
                split_metrics, _ = task.evaluate(model, split)
            for name, value in split_metrics.items():
                writer.add_scalar(name, value, progress.epoch)
            metrics.update(split_metrics)
            log.info("best checkpoint on %s: %s", split, format_metrics(split_metrics))
    metrics = distributed.broadcast(metrics, ctx)
    if progress.best is not None:
        split, _, name = task.monitor.partition("/")
        writer.add_scalar(f"{split}/best_{name}", progress.best, progress.epoch)
    writer.end()
    return metrics


def run_epoch(cfg, setup: Setup, writer, progress: Progress, stop, carry, amp, checkpoints: Checkpoints, metrics):
    """Train from progress.batch to the end of the epoch. Returns (finished, carry): finished is False
    when stopped early (max_steps or a stop signal); progress says where to continue. A mid-epoch
    checkpoint (with the last validation `metrics`) is written whenever one is due."""
    task, ctx = setup.task, setup.ctx
    setup.model.train()
    batches = [b for b in task.train_batches(progress.epoch) if distributed.usable(b, ctx)]
    if progress.batch > len(batches):
        raise CheckpointError(
            f"the checkpoint stands at batch {progress.batch} of epoch {progress.epoch + 1}, which has only "
            f"{len(batches)} batches: it was made on other data"
        )
    log_curve = TrainCurve(len(batches), setup.device, progress, writer, ctx, checkpoints)
    max_steps, val_every = cfg.trainer.max_steps, cfg.trainer.val_every_n_steps
    bar = tqdm(
        range(progress.batch, len(batches)),
        desc=f"epoch {progress.epoch + 1}/{cfg.trainer.max_epochs}",
        disable=not (cfg.trainer.progress and ctx.is_main),
        leave=False,
        initial=progress.batch,
        total=len(batches),
    )
    started = time.perf_counter()
    for i in bar:
        batch = distributed.shard(batches[i], ctx)
        step = train_step(task, setup.train_model, setup.optimizer, batch, carry, cfg.trainer.grad_clip, amp)
        log_curve.losses[i], log_curve.grads[i], carry = step
        setup.schedule.after_step()
        progress.step, progress.batch = progress.step + 1, i + 1
        if i + 1 - log_curve.logged >= cfg.trainer.log_every_n_steps:
            log_curve.flush(i + 1, bar)
        if distributed.any_rank(stop.requested, ctx):  # every rank stops at the same step
            stop.requested = True
            break
        if max_steps and progress.step >= max_steps:
            break
        if val_every and progress.step % val_every == 0 and i + 1 < len(batches) and ctx.is_main:
            validate_at_step(task, setup.model, writer, progress.step, amp)
        if i + 1 < len(batches) and checkpoints.due(progress.step):
            log_curve.flush(i + 1, bar)
            progress.train_time, started = progress.train_time + time.perf_counter() - started, time.perf_counter()
            checkpoints.commit(progress, carry, metrics)
    bar.close()
    log_curve.flush(progress.batch, bar)
    progress.train_time += time.perf_counter() - started
    finished = progress.batch == len(batches)
    if finished:
        write_epoch_scalars(task, setup.optimizer, writer, progress)
    return finished, carry


class TrainCurve:
    """Per-step losses and gradient norms stay tensors on the training device until a flush (no host
    sync per step); a flush writes train/loss for the steps since the last one and stops on a
    non-finite loss."""

    def __init__(self, n: int, device, progress: Progress, writer, ctx, checkpoints: Checkpoints):
        self.losses, self.grads = torch.zeros(n, device=device), torch.zeros(n, device=device)
        self.progress, self.writer, self.ctx, self.checkpoints = progress, writer, ctx, checkpoints
        self.logged = progress.batch  # batches of this epoch already flushed

    def flush(self, upto: int, bar) -> None:
        progress = self.progress
        chunk = distributed.mean(self.losses[self.logged : upto], self.ctx).tolist()  # the global batch's loss
        first_step = progress.step - (upto - self.logged) + 1
        for i, value in enumerate(chunk):
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss is {value} at step {first_step + i} (epoch {progress.epoch + 1}); "
                    f"training stopped, {self.checkpoints.kept()}"
                )
            self.writer.add_scalar("train/loss", value, first_step + i)
        progress.loss_sum += sum(chunk)
        progress.grad_sum += self.grads[self.logged : upto].sum().item()
        if chunk:
            bar.set_postfix(loss=f"{sum(chunk) / len(chunk):.4f}", refresh=False)
        self.logged = upto


def write_epoch_scalars(task, optimizer, writer, progress: Progress) -> None:
    """The finished epoch's training scalars (its number counted from 1)."""
    epoch, seen = progress.epoch + 1, progress.batch
    mean_loss = progress.loss_sum / seen
    scalars = {
        "train/epoch_loss": mean_loss,
        **task.train_metrics(mean_loss),
        "train/grad_norm": progress.grad_sum / seen,
        "train/lr": optimizer.param_groups[0]["lr"],
        "train/epoch_time": progress.train_time,
    }
    for name, value in scalars.items():
        writer.add_scalar(name, value, epoch)
    log.info("epoch %d: train/loss %.4f | %.2fs for %d steps", epoch, mean_loss, progress.train_time, seen)
    progress.train_time = 0.0


def validate_epoch(task, model, writer, progress, finished) -> dict[str, float]:
    model.eval()
    started = time.perf_counter()
    metrics, text = task.evaluate(model, "val")
    metrics["val/time"] = time.perf_counter() - started
    epoch = progress.epoch + 1
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
    partial = "" if finished else f" (partial epoch: {progress.batch} steps)"
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


def summary(monitor: str, progress: Progress, metrics: dict, seconds: float, run_dir: Path) -> str:
    """The end-of-run line: best and final monitored metric, how far training went, the checkpoints."""
    best = "none" if progress.best is None else f"{progress.best:.4f}"
    if progress.best_step is not None:  # checkpoints of earlier versions do not record it
        best += f" (step {progress.best_step})"
    final = metrics.get(monitor)
    return (
        f"done: best {monitor} {best} | final {monitor} {'none' if final is None else f'{final:.4f}'} | "
        f"{progress.epoch} epochs, {progress.step} steps in {seconds:.1f} s | {run_dir / 'best.pt'}"
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
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM while the first was being honoured, or one before training
        run_dir = Path(cfg.paths.output_dir)
        if (run_dir / "last.pt").is_file():
            log.warning("stopped at once by a signal: %s holds the last checkpoint written", run_dir / "last.pt")
        else:
            log.warning("stopped by a signal before any checkpoint was written")
            if str(run_dir.resolve()) not in EXISTING_RUN_DIRS:  # this command made it: no empty folder left
                rundir.remove_unstarted(run_dir)
        sys.exit(130)
    except Seq2seqError as e:
        log.error("%s", e)
        run_dir = Path(cfg.paths.output_dir)
        if str(run_dir.resolve()) not in EXISTING_RUN_DIRS:  # this command made it: no empty folder left
            rundir.remove_unstarted(run_dir)
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


def check_overrides(args: list[str]) -> None:
    """Hydra's own errors for an override (a key that does not exist, a value of the wrong type, an
    interpolation that does not resolve) in one line, before Hydra prints them with a traceback hint;
    in a sweep (-m), for each value of its lists."""
    overrides = cli.overrides_of(args)
    for variant in cli.sweep_variants(overrides) if {"-m", "--multirun"} & set(args) else [overrides]:
        try:
            cfg = cli.compose_config("train", variant, [])
        except ConfigError as e:
            unknown = re.match(r"(\S+): unknown key", str(e))
            if not unknown:
                raise
            others = [a for a in variant if a.lstrip("+~").partition("=")[0] != unknown.group(1)]
            valid = unknown_keys(cli.compose_config("train", others, []))[1]
            raise ConfigError(unknown_key_message(unknown.group(1), valid, "python -m seq2seq.train --help")) from None
        cli.check_interpolations(cfg, variant)


# Run directories named on the command line (hydra.run.dir, or a resumed run's) that existed before this
# command: a refused run never removes them.
EXISTING_RUN_DIRS: set[str] = set()


def main() -> None:
    """`python -m seq2seq.train` and `seq2seq-train`."""
    sys.argv[1:] = translate_model_choice(sys.argv[1:])
    cli.check_args(
        "seq2seq.train", sys.argv[1:], lambda word: "choose with group=option (experiment=peeky_addition) and set "
        "key=value (trainer.max_epochs=3); --help lists both", config_name="train",
    )  # fmt: skip
    try:
        message = missing_plugin(sys.argv[1:])
        if message:
            raise ConfigError(message)
        sys.argv[1:] = resume_in_place(sys.argv[1:])
        early_checks(sys.argv[1:])
        check_overrides(sys.argv[1:])
        for arg in sys.argv[1:]:
            key, _, value = arg.partition("=")
            if key in ("hydra.run.dir", "hydra.sweep.dir") and Path(value.strip("\"'")).exists():
                EXISTING_RUN_DIRS.add(str(Path(value.strip("\"'")).resolve()))
    except Seq2seqError as e:
        resume.discard_staged()
        cli.fail(e)
    try:
        hydra_main()
    finally:
        resume.discard_staged()  # a refused resume leaves nothing behind


if __name__ == "__main__":
    main()
