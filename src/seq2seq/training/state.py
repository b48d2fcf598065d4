"""RunState: where a run stands, and the per-epoch decisions taken from it: is this the best epoch, is
it among the top k, has the monitored metric stopped improving, has training reached its end. Saved in
every checkpoint (as a dict, under the key "progress"), so a resumed run decides exactly as an
uninterrupted one. (The progress *bars* are trainer.progress, tqdm's.)"""

import dataclasses
from dataclasses import dataclass, field

from seq2seq.core.checks import check_fields
from seq2seq.core.errors import CheckpointError, ConfigError
from seq2seq.core.metrics import mode as metric_mode
from seq2seq.training.checkpoints import top_name


@dataclass
class RunState:
    epoch: int = 0  # full epochs done
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps done
    best: float | None = None  # the best value of the task's monitored metric (behind best.pt)
    best_partial: bool = False  # best came from a partial epoch (max_steps): the next full epoch replaces it
    best_step: int | None = None  # the step of best.pt
    loss_sum: float = 0.0  # sums over the current epoch so far
    grad_sum: float = 0.0
    train_time: float = 0.0
    stop_best: float | None = None  # early stopping: the best value of its monitor, and full epochs since
    stale_epochs: int = 0
    top: list[list[float]] = field(default_factory=list)  # save_top_k: [value, epoch] of the kept epochs, best first
    data: str | None = None  # the training data's fingerprint (seq2seq.tasks.base.data_fingerprint)
    held_data: str | None = None  # all data the task holds, validation included (held_data_fingerprint)
    finished: bool = False  # the run ended and wrote its final splits: resuming it again does nothing
    precision: str | None = None  # what trainer.precision (auto included) chose at the run's start
    run: str | None = None  # this run's identity, drawn at its start: a checkpoint of another run is not its own

    @classmethod
    def from_saved(cls, saved, where: str) -> "RunState":
        """A checkpoint's progress (its rng states aside), checked field by field; fields an earlier
        version did not save take their defaults."""
        names = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {k: v for k, v in saved.items() if k not in ("rng", "cuda_rng")} if isinstance(saved, dict) else saved
        check_fields(values, names, f"{where}: progress")
        for name in ("epoch", "batch", "step", "stale_epochs"):  # counts: never negative, never astronomic
            value = values.get(name, 0)
            if not 0 <= value <= 10**12:
                raise CheckpointError(f"{where}: progress.{name}={str(value)[:30]} is not a count of this run")
        for entry in values.get("top", []):  # [value, epoch] pairs
            if len(entry) != 2 or not float(entry[1]).is_integer() or not 0 <= entry[1] <= 10**12:
                raise CheckpointError(f"{where}: progress.top holds {str(entry)[:40]}, not a [value, epoch] pair")
        return cls(**values)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def done(self, trainer) -> bool:
        """Training has reached its end: trainer.max_epochs, trainer.max_steps or early stopping."""
        patience, max_steps = trainer.early_stopping.patience, trainer.max_steps
        return (
            self.epoch >= trainer.max_epochs
            or bool(max_steps and self.step >= max_steps)
            or (patience is not None and self.stale_epochs >= patience)
        )

    def end_epoch(self) -> None:
        self.epoch, self.batch, self.loss_sum, self.grad_sum = self.epoch + 1, 0, 0.0, 0.0

    def track_best(self, value: float, finished: bool, mode: str) -> bool:
        """Record `value` as the best so far if it is; True when best.pt should be written. Full epochs
        compete; a partial epoch only sets a provisional best when there is none yet, and the next full
        epoch replaces it whatever its value."""
        if finished:
            sign = 1.0 if mode == "max" else -1.0
            improved = self.best is None or self.best_partial or sign * value > sign * self.best
        else:
            improved = self.best is None
        if improved:
            self.best, self.best_partial, self.best_step = value, not finished, self.step
        return improved

    def rank_top_k(self, value: float, k: int, mode: str) -> tuple[str | None, tuple[str, ...]]:
        """trainer.save_top_k: keep the k best full epochs (this one is self.epoch) as epoch-<N>.pt.
        Returns this epoch's file name if it is among them (else None), and the files that fell out."""
        if k <= 1:  # best.pt alone
            return None, ()
        sign = -1.0 if mode == "max" else 1.0
        entries = sorted([*self.top, [value, self.epoch]], key=lambda e: (sign * e[0], -e[1]))
        self.top, dropped = entries[:k], entries[k:]
        added = top_name(self.epoch) if [value, self.epoch] in self.top else None
        return added, tuple(top_name(epoch) for _, epoch in dropped if epoch != self.epoch)

    def count_stale(self, options, metrics: dict, task) -> int:
        """trainer.early_stopping: count the full epochs in a row that have not improved its monitored
        metric by more than min_delta."""
        monitor = options.monitor or task.monitor
        mode = options.mode or (task.mode if monitor == task.monitor else metric_mode(monitor))
        if monitor not in metrics:
            known = ", ".join(sorted(metrics))
            raise ConfigError(f"trainer.early_stopping.monitor={monitor!r} is not a validation metric here ({known})")
        value = metrics[monitor]
        if (
            self.stop_best is None
            or (value - self.stop_best if mode == "max" else self.stop_best - value) > options.min_delta
        ):
            self.stop_best, self.stale_epochs = value, 0
        else:
            self.stale_epochs += 1
        return self.stale_epochs
