"""The checkpoints a run directory holds and when they are written: last.pt (the latest state, resume from it),
best.pt (the best epoch so far of the task's monitored metric) and, with trainer.save_top_k above 1, the k best
epochs as epoch-<N>.pt; what a crash between two writes leaves, and how a resume mends it. The file format
itself is seq2seq.training.checkpoint."""

import json
import logging
import math
import re
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from seq2seq.core.errors import CheckpointError, ConfigError, NonFiniteLossError
from seq2seq.core.files import read_names, write_file
from seq2seq.training import checkpoint as ckpt

log = logging.getLogger(__name__)


# The epoch-<N>.pt files (trainer.save_top_k) this run wrote, recorded before each is written: cleaning
# deletes only these, never a user's copy or link of the same name.
TOP_RECORD = ".topk.json"
TOP_FILE = re.compile(r"epoch-(\d+)\.pt")  # top_name's


def top_name(epoch: int) -> str:
    """The file of a top-k epoch (trainer.save_top_k): epoch-<N>.pt, N counted from 1."""
    return f"epoch-{epoch}.pt"


def written_top(run_dir: Path) -> set[str]:
    return read_names(run_dir / TOP_RECORD, TOP_FILE)


def record_top(run_dir: Path, names: set[str]) -> None:
    write_file(run_dir / TOP_RECORD, json.dumps(sorted(names)))


def check_top_free(run_dir: Path, first: int, last: int) -> None:
    """trainer.save_top_k writes epoch-<N>.pt for the epochs still to train (first..last): a file of
    such a name that this run did not write (a user's copy, a link) is refused, never written over."""
    ours = written_top(run_dir)
    epochs = {p.name: TOP_FILE.fullmatch(p.name) for p in run_dir.glob("epoch-*.pt") if p.name not in ours}
    theirs = sorted(
        (name for name, m in epochs.items() if m and first <= int(m.group(1)) <= last),
        key=lambda name: int(epochs[name].group(1)),
    )
    if theirs:
        raise ConfigError(
            f"{run_dir / theirs[0]} was not written by this run, and trainer.save_top_k would write over it: "
            "move it out of the run directory"
        )


def delete_top(run_dir: Path, names) -> None:
    """Delete top-k files this run wrote (links are never followed nor removed)."""
    for name in names:
        path = run_dir / name
        if not path.is_symlink():
            path.unlink(missing_ok=True)


def commit(state: dict, run_dir: Path, best: bool, top: str | None = None, drop: tuple[str, ...] = ()) -> None:
    """One checkpoint event: the epoch's `top` file when it enters the save_top_k best, last.pt (whose
    progress lists the top files), best.pt when this state is the best, then the top files that fell
    out are deleted. A crash between the writes leaves best.pt behind last.pt's record of the best
    step, which `repair_best` mends, or top files that last.pt does not list, which `prune_top` deletes."""
    if top:
        record_top(run_dir, written_top(run_dir) | {top})  # recorded before it exists
        ckpt.save(state, run_dir / top)
    ckpt.save(state, run_dir / "last.pt")
    if best:
        ckpt.crash_point("between-last-and-best")
        ckpt.save(state, run_dir / "best.pt")
    if drop:
        delete_top(run_dir, drop)
        record_top(run_dir, written_top(run_dir) - set(drop))


def prune_top(run_dir: Path, progress: dict) -> None:
    """Delete the epoch-<N>.pt files this run wrote (TOP_RECORD) that progress["top"] does not
    list (left by a crash between writes); a file of that name the run did not write is never touched."""
    kept = {top_name(epoch) for _, epoch in progress.get("top", [])}
    written = written_top(run_dir)
    if written - kept:
        delete_top(run_dir, written - kept)
        record_top(run_dir, written & kept)


def repair_best(run_dir: Path, progress: dict) -> None:
    """Make best.pt the checkpoint of progress["best_step"]. Only the last write can have been lost, and
    then the best is last.pt itself, so best.pt becomes a copy of it. A best.pt of another run (a copy put
    there: its progress names another run) is refused, never used nor written over."""
    step = progress.get("best_step")
    best = run_dir / "best.pt"
    if step is None:
        return
    if best.is_file():
        saved = ckpt.read(best).get("progress")  # a best.pt made elsewhere may hold none
        saved = saved if isinstance(saved, dict) else {}
        if None not in (saved.get("run"), progress.get("run")) and saved["run"] != progress["run"]:
            raise CheckpointError(
                f"{best}: written by another run ({saved['run']}, this run is {progress['run']}): move it out of "
                "the run directory, then resume"
            )
        if saved.get("step") == step:
            return
    last = ckpt.read(run_dir / "last.pt", "last.pt")
    if last["progress"].get("step") != step:
        raise CheckpointError(f"{best}: not the best checkpoint (step {step}) and last.pt cannot replace it")
    log.warning("best.pt is behind the recorded best (step %d): rewriting it from last.pt", step)
    ckpt.save({k: v for k, v in last.items() if k not in ("format", "version")}, best)


class Checkpoints:
    """Writes a run's checkpoint events (rank 0 only) and knows the last one that was written, so a
    refusal can say which checkpoint is kept. Nothing non-finite is ever saved."""

    def __init__(self, cfg, setup, run_dir: Path, writer, saved_step: int | None):
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

    def commit(self, state, carry, metrics: dict, best: bool = False, top=None, drop=()) -> None:
        """Save the run's `state` (a RunState) with the model, optimizer, schedule and `carry`: last.pt,
        best.pt when `best`, the epoch's top-k file `top`, and the top-k files `drop` deleted."""
        setup = self.setup
        weights = (f"parameter {n}" for n, p in setup.model.named_parameters() if not torch.isfinite(p).all())
        values = (k for k, v in metrics.items() if not math.isfinite(v))
        bad = next(weights, None) or next(values, None)
        if bad:
            where = f"step {state.step} (epoch {state.epoch + 1})"
            raise NonFiniteLossError(f"{bad} is not finite at {where}: not saved; {self.kept()}")
        if setup.ctx.is_main:
            self.writer.flush()  # every event up to this checkpoint is on disk before it
            saved = ckpt.training_state(setup, self.task_state, self.config, state.as_dict(), carry, metrics)
            commit(saved, self.run_dir, best, top, drop)
        self.saved_step, self.last_time = state.step, time.monotonic()
