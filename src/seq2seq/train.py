"""The shared train/eval loop for every task and model: `python -m seq2seq.train experiment=...`.

`train(cfg)` is a plain function (tests call it with configs from Hydra's compose API); `main` is
the thin Hydra entry point. Everything task-specific lives behind the interface in `seq2seq.tasks`.
"""

import logging
import math
import time
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from seq2seq import checkpoint as ckpt
from seq2seq.config import validate
from seq2seq.errors import CheckpointError, Seq2seqError
from seq2seq.interrupt import StopRequested

log = logging.getLogger(__name__)


class NonFiniteLossError(Seq2seqError):
    pass


def flat_hparams(cfg: DictConfig) -> dict:
    """Scalar leaves of the config as 'a.b.c' keys, for TensorBoard's hparams table."""
    out = {}

    def walk(node, prefix):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, name + ".")
            elif isinstance(value, bool | int | float | str):
                out[name] = value
            elif value is None:
                out[name] = "None"

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def make_scheduler(cfg: DictConfig, optimizer, task, total_steps: int):
    """Schedulers step per optimizer step, except ReduceLROnPlateau, which steps per epoch on the monitor."""
    if cfg.get("scheduler") is None:
        return None
    factory = instantiate(cfg.scheduler)  # _partial_: true, the optimizer is passed here
    if factory.func is ReduceLROnPlateau:
        return factory(optimizer, mode=task.mode)
    return factory(optimizer, total_steps=total_steps)


def check_resumable(checkpoint: dict, model_spec: dict, task_state: dict, path) -> None:
    """Refuse a checkpoint that was made for another model, task or vocabulary."""
    if checkpoint["model"] != model_spec:
        raise CheckpointError(f"{path}: made for model {checkpoint['model']}, but the config builds {model_spec}")
    if checkpoint["task"] != task_state:
        diff = sorted(
            k for k in set(checkpoint["task"]) | set(task_state) if checkpoint["task"].get(k) != task_state.get(k)
        )
        raise CheckpointError(f"{path}: made for another task or vocabulary (differs in: {', '.join(diff)})")
    for key in ("optimizer", "progress"):
        if key not in checkpoint:
            raise CheckpointError(f"{path}: has no {key} state to resume from (is it a best.pt of an old run?)")


def train(cfg: DictConfig) -> dict[str, float]:
    validate(cfg)
    resume_path = ckpt.resolve(cfg.trainer.resume) if cfg.trainer.resume else None
    resumed = ckpt.load(resume_path) if resume_path else None
    # A resumed run continues in its own directory, with its own TensorBoard writer.
    run_dir = resume_path.parent if resume_path else Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    task = instantiate(cfg.task)
    model = instantiate(cfg.model, vocab_size=task.vocab_size)
    model_spec = {**OmegaConf.to_container(cfg.model, resolve=True), "vocab_size": task.vocab_size}
    task_state = task.state_dict()
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    steps_per_epoch = len(task.train_batches(0))
    scheduler = make_scheduler(cfg, optimizer, task, steps_per_epoch * cfg.trainer.max_epochs)
    log.info("model %s: %d parameters", type(model).__name__, sum(p.numel() for p in model.parameters()))

    sign = 1.0 if task.mode == "max" else -1.0
    progress = {"epoch": 0, "batch": 0, "step": 0, "best": None, "loss_sum": 0.0, "grad_sum": 0.0}
    carry, metrics = None, {}
    if resumed:
        check_resumable(resumed, model_spec, task_state, resume_path)
        model.load_state_dict(resumed["model_state"])
        optimizer.load_state_dict(resumed["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resumed["scheduler"])
        progress = dict(resumed["progress"])
        torch.set_rng_state(progress.pop("rng"))
        carry, metrics = resumed["carry"], resumed["metrics"]
        log.info("resuming %s at epoch %d, step %d", resume_path, progress["epoch"] + 1, progress["step"])
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)

    def make_checkpoint() -> dict:
        return {
            "model": model_spec,
            "model_state": model.state_dict(),
            "task": task_state,
            "config": OmegaConf.to_container(cfg, resolve=True),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "progress": {**progress, "rng": torch.get_rng_state()},
            "carry": carry,
            "metrics": metrics,
        }

    # purge_step drops events a crashed run wrote after its checkpoint, so no step appears twice.
    writer = SummaryWriter(str(run_dir), purge_step=progress["step"] + 1 if resumed else None)
    max_steps = cfg.trainer.max_steps
    stop = StopRequested()
    try:
        with stop:
            while progress["epoch"] < cfg.trainer.max_epochs and not (max_steps and progress["step"] >= max_steps):
                finished, carry = run_epoch(cfg, task, model, optimizer, scheduler, writer, progress, stop, carry)
                if not finished and stop.requested:
                    ckpt.save(make_checkpoint(), run_dir / "last.pt")
                    log.warning(
                        "stopped by %s at step %d; resume with the same overrides plus: trainer.resume=%s",
                        stop.signal_name,
                        progress["step"],
                        run_dir,
                    )
                    break
                metrics = validate_epoch(task, model, optimizer, writer, progress, finished)
                if isinstance(scheduler, ReduceLROnPlateau):
                    scheduler.step(metrics[task.monitor])
                improved = progress["best"] is None or sign * metrics[task.monitor] > sign * progress["best"]
                if improved:
                    progress["best"] = metrics[task.monitor]
                if finished:
                    progress.update(epoch=progress["epoch"] + 1, batch=0, loss_sum=0.0, grad_sum=0.0)
                    carry = None
                state = make_checkpoint()
                ckpt.save(state, run_dir / "last.pt")
                if improved:
                    ckpt.save(state, run_dir / "best.pt")
        if stop.requested:
            return {**metrics, f"best/{task.monitor}": progress["best"], "interrupted": 1.0}

        metrics = {**metrics, f"best/{task.monitor}": progress["best"]}
        if task.final_splits and (run_dir / "best.pt").is_file():
            model.load_state_dict(ckpt.load(run_dir / "best.pt")["model_state"])
            model.eval()
            for split in task.final_splits:
                split_metrics, _ = task.evaluate(model, split)
                for name, value in split_metrics.items():
                    writer.add_scalar(name, value, progress["epoch"])
                metrics.update(split_metrics)
                log.info("best checkpoint on %s: %s", split, format_metrics(split_metrics))
        writer.add_hparams(
            flat_hparams(cfg),
            {f"hparam/{k}": v for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v)},
            run_name=".",
            global_step=progress["epoch"],
        )
    finally:
        writer.close()
    return {**metrics, "epoch": float(progress["epoch"]), "step": float(progress["step"])}


def run_epoch(cfg, task, model, optimizer, scheduler, writer, progress, stop, carry):
    """Train from progress['batch'] to the end of the epoch. Returns (finished, carry): finished is
    False when stopped early (max_steps reached or a stop signal); progress says where to continue."""
    model.train()
    batches = task.train_batches(progress["epoch"])
    losses = torch.zeros(len(batches))  # per-step losses stay on the tensor side: no sync per step
    grads = torch.zeros(len(batches))
    log_every = cfg.trainer.log_every_n_steps
    step_scheduler = scheduler is not None and not isinstance(scheduler, ReduceLROnPlateau)
    max_steps = cfg.trainer.max_steps
    start_batch, logged = progress["batch"], progress["batch"]
    started = time.perf_counter()
    bar = tqdm(
        range(start_batch, len(batches)),
        desc=f"epoch {progress['epoch'] + 1}/{cfg.trainer.max_epochs}",
        disable=not cfg.trainer.progress,
        leave=False,
        initial=start_batch,
        total=len(batches),
    )

    def flush(upto: int) -> None:
        """Write train/loss for the steps since the last flush; stop on a non-finite loss."""
        nonlocal logged
        chunk = losses[logged:upto].tolist()
        first_step = progress["step"] - (upto - logged)
        for i, value in enumerate(chunk):
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss is {value} at step {first_step + i + 1} (epoch {progress['epoch'] + 1}); "
                    "training stopped, the last good checkpoint is kept"
                )
            writer.add_scalar("train/loss", value, first_step + i + 1)
        progress["loss_sum"] += sum(chunk)
        progress["grad_sum"] += grads[logged:upto].sum().item()
        if chunk:
            bar.set_postfix(loss=f"{sum(chunk) / len(chunk):.4f}", refresh=False)
        logged = upto

    i = start_batch
    for i in bar:
        loss, carry = task.training_step(model, batches[i], carry)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads[i] = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.grad_clip)
        optimizer.step()
        if step_scheduler:
            scheduler.step()
        losses[i] = loss.detach()
        progress["step"] += 1
        progress["batch"] = i + 1
        if (i + 1 - logged) >= log_every:
            flush(i + 1)
        if stop.requested or (max_steps and progress["step"] >= max_steps):
            break
    bar.close()
    flush(progress["batch"])
    done = progress["batch"] - start_batch
    progress.setdefault("train_time", 0.0)
    progress["train_time"] += time.perf_counter() - started
    finished = progress["batch"] == len(batches)
    if done and (finished or not stop.requested):
        seen = progress["batch"]
        epoch_step = progress["epoch"] + 1
        mean_loss = progress["loss_sum"] / seen
        writer.add_scalar("train/epoch_loss", mean_loss, epoch_step)
        for name, value in task.train_metrics(mean_loss).items():
            writer.add_scalar(name, value, epoch_step)
        writer.add_scalar("train/grad_norm", progress["grad_sum"] / seen, epoch_step)
        writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], epoch_step)
        writer.add_scalar("train/epoch_time", progress["train_time"], epoch_step)
        log.info(
            "epoch %d: train/loss %.4f | %.2fs for %d steps",
            epoch_step,
            mean_loss,
            progress["train_time"],
            seen,
        )
        progress["train_time"] = 0.0
    return finished, carry


def validate_epoch(task, model, optimizer, writer, progress, finished) -> dict[str, float]:
    model.eval()
    started = time.perf_counter()
    metrics, text = task.evaluate(model, "val")
    metrics["val/time"] = time.perf_counter() - started
    epoch_step = progress["epoch"] + 1
    for name, value in metrics.items():
        writer.add_scalar(name, value, epoch_step)
    if text:
        writer.add_text("val/samples", "    " + text.replace("\n", "\n    "), epoch_step)
        log.info("validation samples:\n%s", text)
    writer.flush()
    partial = "" if finished else f" (partial epoch: {progress['batch']} steps)"
    log.info("epoch %d%s: %s", epoch_step, partial, format_metrics(metrics))
    return metrics


def format_metrics(metrics: dict[str, float]) -> str:
    return " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())


@hydra.main(version_base="1.3", config_path="../../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    monitor = next((k for k in metrics if k.startswith("best/")), None)
    return metrics[monitor] if monitor else None


if __name__ == "__main__":
    main()
