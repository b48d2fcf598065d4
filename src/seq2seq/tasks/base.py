"""What the training loop asks of a task, and what a task asks of its model.

The loop in `seq2seq.train` only calls `Task` below, so a new task is one class and one
`configs/task/*.yaml`, never a branch in the loop. A task and a model fit when their `family` is the
same; seq2seq.training.config refuses a mismatch before any data loads.

Families: "seq2seq" (token sources in, tokens out: `EncoderDecoder` below), "captioner" (images in,
tokens out: the same interface), "lm" (language models: `forward(x, state, targets) -> loss, state`).
"""

import hashlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from seq2seq.core.checks import check_fields, component_checks
from seq2seq.core.compat import added_task_values
from seq2seq.core.errors import CheckpointError
from seq2seq.core.options import options
from seq2seq.core.registry import TASKS, by_target, target


@runtime_checkable
class Task(Protocol):
    family: str  # the models it trains (seq2seq.core.registry.FAMILIES)
    CODEC: type  # what generation rebuilds from its state_dict() (seq2seq.tasks.codec)
    DATA_KEYS: tuple[str, ...]  # options that name data files: in no run name, no hparam column
    REPORT_OPTIONS: tuple[str, ...]  # options of what is reported, not trained: may change on resume
    EXTRAS: tuple[str, ...]  # optional packages it needs (seq2seq.core.extras)
    monitor: str  # the validation metric behind best.pt, e.g. "val/acc"
    mode: str  # "max" or "min": which way the monitored metric improves
    final_splits: tuple[str, ...]  # splits evaluated once with best.pt when training ends

    @property
    def vocab_size(self) -> int: ...

    def to(self, device: torch.device) -> "Task":
        """Move the task's tensors to the training device once."""

    def train_batches(self, epoch: int) -> list:
        """The epoch's batches, in an order fixed by the seed and the epoch."""

    def training_step(self, model, batch, carry) -> tuple[torch.Tensor, object]:
        """(loss, carry): carry is state kept between an epoch's batches (the language model's LSTM
        state); None at the start of an epoch."""

    def train_metrics(self, mean_loss: float) -> dict[str, float]:
        """Extra per-epoch training scalars (e.g. train/ppl)."""

    def evaluate(self, model, split: str) -> tuple[dict[str, float], str | None]:
        """Metrics named `<split>/<name>`, and text to log (samples) or None."""

    def figures(self, model) -> dict:
        """{name: matplotlib Figure} for TensorBoard after each epoch (may be empty)."""

    def state_dict(self) -> dict:
        """What generation needs to rebuild the vocabulary and input handling (seq2seq.tasks.codec)."""


class EncoderDecoder(Protocol):
    """What the seq2seq and captioner tasks call on their model (seq2seq.models.Seq2seq and ImageCaptioner)."""

    family: str
    has_attention: bool  # attention() gives weights for heatmaps

    def encoder(self, src: torch.Tensor, lengths: torch.Tensor | None = None): ...

    def decode(self, enc, tgt_in: torch.Tensor) -> torch.Tensor: ...

    def generate(self, src: torch.Tensor, start_id: int, max_new_tokens: int, **decoding) -> torch.Tensor: ...

    def greedy_from_teacher_forcing(self, src, start_id: int, enc, tgt_in, logits) -> torch.Tensor: ...

    def attention(self, src: torch.Tensor, tgt_in: torch.Tensor, lengths=None) -> torch.Tensor: ...


def data_fingerprint(task) -> str:
    """A digest of the first epoch's training batches (their order is seeded, never the global random
    state's): a resumed run checks that it trains on the data its checkpoint was trained on."""
    digest = hashlib.sha256()
    for batch in task.train_batches(0):
        for part in batch if isinstance(batch, tuple | list) else (batch,):
            if isinstance(part, torch.Tensor):
                digest.update(str(tuple(part.shape)).encode())
                digest.update(part.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def held_data_fingerprint(task) -> str:
    """A digest of every tensor the task holds (its attributes, and the dicts, lists and tuples in them),
    the validation split's included: a resumed run checks that it validates on the same data too."""
    digest = hashlib.sha256()
    stack = [(name, value) for name, value in sorted(vars(task).items(), reverse=True)]
    while stack:
        name, value = stack.pop()
        if isinstance(value, torch.Tensor):
            digest.update(f"{name}{tuple(value.shape)}{value.dtype}".encode())
            digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict) and name.count(".") < 3:
            stack += [(f"{name}.{k}", v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]), reverse=True)]
        elif (
            isinstance(value, list | tuple) and name.count(".") < 3 and any(isinstance(v, torch.Tensor) for v in value)
        ):
            stack += [(f"{name}.{i}", v) for i, v in reversed(list(enumerate(value)))]
    return digest.hexdigest()[:32]


def task_from_saved_config(node, where: str, data_roots: tuple[Path, ...] = ()):
    """The task a checkpoint's saved `config.task` describes, built without Hydra: the class from the registry,
    every field checked against its constructor's types (nested `_target_`s are just wrong types). The data
    files it names (the task's DATA_KEYS) are read only inside `data_roots` (default: the folder the command
    runs in), so a checkpoint from elsewhere cannot make the project read, or show, any other file."""
    named = node.get("_target_") if isinstance(node, dict) else None
    cls = by_target(named)
    if cls not in TASKS.values():
        known = ", ".join(target(task) for task in TASKS.values())
        raise CheckpointError(f"{where}: task {str(named)[:60]!r} is not one of {known}")
    declared = {o.name: o for o in options(cls)}
    values = added_task_values({k: v for k, v in node.items() if k != "_target_"}, declared)
    required = [name for name, o in declared.items() if o.required]
    check_fields(values, {name: o.annotation for name, o in declared.items()}, where, required)
    for key, (ok, says) in component_checks(cls).items():  # the caps a config has (num_examples, ...)
        if values.get(key) is not None and not ok(values[key]):
            raise CheckpointError(f"{where}: {key}={str(values[key])[:40]} {says}")
    check_data_paths(cls, values, where, tuple(data_roots) or (Path.cwd(),))
    return cls(**values)


def check_data_paths(cls: type, values: dict, where: str, roots: tuple[Path, ...]) -> None:
    """Every data file or folder a saved config names (cls.DATA_KEYS) lies inside one of `roots` once every link
    is followed; else refused in one line, naming it."""
    inside = [Path(root).resolve() for root in roots]
    for key in cls.DATA_KEYS:
        value = values.get(key)
        for path in [value] if isinstance(value, str) else value or []:
            try:
                full = Path(path).resolve()
            except (OSError, RuntimeError):  # a loop of links, a name too long
                full = None
            if full is None or not any(full.is_relative_to(root) for root in inside):
                shown = ", ".join(str(root) for root in inside)
                raise CheckpointError(
                    f"{where}: {key}={str(path)[:100]} lies outside {shown}: data a checkpoint names is read only "
                    "from the folder a command runs in (run it from the folder that holds the data)"
                )
