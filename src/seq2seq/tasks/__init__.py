"""Tasks own the data of an experiment and the task-specific parts of the shared loop.

The loop in `seq2seq.train` only calls the interface below, so a new task is a new class and a
new `configs/task/*.yaml`, never a branch in the loop:

- `vocab_size`, `monitor` (metric that picks `best.pt`), `mode` ("max" or "min")
- `to(device)`: move the task's tensors to the training device once
- `train_batches(epoch)`: the epoch's batches, in an order fixed by the seed and the epoch
- `training_step(model, batch, carry) -> (loss, carry)`: `carry` is state kept between the
  batches of an epoch (the language model's LSTM state); None at the start of an epoch
- `train_metrics(mean_loss)`: extra per-epoch training scalars (e.g. `train/ppl`)
- `evaluate(model, split) -> (metrics, text)`: metrics named `<split>/<name>`, text to log or None
- `figures(model) -> {name: matplotlib Figure}`: images for TensorBoard after each epoch (may be empty)
- `final_splits`: splits evaluated once with the best checkpoint when training ends
- `state_dict()`: what generation needs to rebuild the task's vocabulary and input handling
  (for Encoder-Decoder tasks, see `seq2seq.tasks.codec`)
"""

import dataclasses

from seq2seq import config as schemas
from seq2seq.errors import CheckpointError
from seq2seq.tasks.addition import AdditionTask
from seq2seq.tasks.captions import CaptionsTask
from seq2seq.tasks.language_model import LanguageModelTask
from seq2seq.tasks.pairs import ChitchatTask, PairsTask, ProgramsTask, TsvTask
from seq2seq.typecheck import check_fields

__all__ = ["AdditionTask", "CaptionsTask", "ChitchatTask", "LanguageModelTask", "PairsTask", "ProgramsTask", "TsvTask"]

# The task classes by the `_target_` their config schema declares. Rebuilding a task from a
# checkpoint's saved config looks the name up here (a string comparison) and passes the checked fields
# to the class: a checkpoint can never make the project import or call anything else.
TASKS = {
    schema._target_: (schema, cls)
    for schema, cls in (
        (schemas.AdditionTaskConfig, AdditionTask),
        (schemas.LanguageModelTaskConfig, LanguageModelTask),
        (schemas.TsvTaskConfig, TsvTask),
        (schemas.ChitchatTaskConfig, ChitchatTask),
        (schemas.ProgramsTaskConfig, ProgramsTask),
        (schemas.CaptionsTaskConfig, CaptionsTask),
    )
}


def task_from_saved_config(node, where: str):
    """The task a checkpoint's saved `config.task` describes, built without Hydra: the class from TASKS,
    every field checked against the schema's type (nested `_target_`s are just wrong types)."""
    target = node.get("_target_") if isinstance(node, dict) else None
    if target not in TASKS:
        raise CheckpointError(f"{where}: task {str(target)[:60]!r} is not one of {', '.join(TASKS)}")
    schema, cls = TASKS[target]
    declared = [f for f in dataclasses.fields(schema) if f.name != "_target_"]
    required = [f.name for f in declared if f.default is schemas.MISSING and f.default_factory is dataclasses.MISSING]
    values = {k: v for k, v in node.items() if k != "_target_"}
    for key, legacy in schemas.ADDED_KEYS.items():  # a checkpoint of an earlier version: its old behaviour
        name = key.removeprefix("task.")
        if name not in values and name in {f.name for f in declared}:
            values[name] = legacy
    check_fields(values, {f.name: f.type for f in declared}, where, required)
    return cls(**values)
