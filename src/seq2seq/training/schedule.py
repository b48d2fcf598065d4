"""The learning-rate schedule and when it steps, in one place: ReduceLROnPlateau once per full epoch on
the task's monitored metric (in the task's direction), every other scheduler once per optimizer step
(built for the run's total steps: a one-cycle schedule needs them)."""

from functools import partial

from torch.optim.lr_scheduler import ReduceLROnPlateau


class Schedule:
    def __init__(self, factory: partial | None, optimizer, mode: str, total_steps: int):
        """factory: the `scheduler` config instantiated (`_partial_: true`), or None for a constant rate."""
        self.per_epoch = factory is not None and factory.func is ReduceLROnPlateau
        if factory is None:
            self.scheduler = None
        elif self.per_epoch:
            self.scheduler = factory(optimizer, mode=mode)
        else:
            self.scheduler = factory(optimizer, total_steps=total_steps)

    def after_step(self) -> None:
        if self.scheduler is not None and not self.per_epoch:
            self.scheduler.step()

    def after_epoch(self, monitored: float) -> None:
        """After a full epoch's validation (partial epochs do not count: a resumed run must match)."""
        if self.per_epoch:
            self.scheduler.step(monitored)

    @property
    def total_steps(self) -> int | None:
        return getattr(self.scheduler, "total_steps", None)

    def state_dict(self) -> dict | None:
        return None if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)
