"""Tasks own the data of an experiment and the task-specific parts of the shared loop: the interface
is `seq2seq.tasks.base.Task`. A new task is a class (its own file here) registered in TASKS below
with its config schema (seq2seq.config), and a `configs/task/<name>.yaml`."""

import dataclasses

from seq2seq import config as schemas
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models import MODELS
from seq2seq.tasks.addition import AdditionTask
from seq2seq.tasks.base import Task
from seq2seq.tasks.captions import CaptionsTask
from seq2seq.tasks.language_model import LanguageModelTask
from seq2seq.tasks.pairs import ChitchatTask, PairsTask, ProgramsTask, TsvTask
from seq2seq.typecheck import check_fields

__all__ = [
    "AdditionTask",
    "CaptionsTask",
    "ChitchatTask",
    "LanguageModelTask",
    "PairsTask",
    "ProgramsTask",
    "Task",
    "TsvTask",
]

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


# Each family in words, and the model configs that build it: the message of a mismatch.
FAMILY_NAMES = {"seq2seq": "an Encoder-Decoder", "captioner": "an image captioner", "lm": "a language model"}
FAMILY_MODELS = {"seq2seq": "model=seq2seq", "captioner": "model=image_captioner", "lm": "model=rnnlm or better_rnnlm"}


def check_fits(task_target: str, model_target: str) -> None:
    """A model must be of its task's family (seq2seq.tasks.base), refused in one line before any data
    loads. Classes outside the project's tables are not checked."""
    task = TASKS.get(task_target, (None, None))[1]
    model = MODELS.get(str(model_target).removeprefix("seq2seq.models."))
    if task is None or model is None or task.family == model.family:
        return
    raise ConfigError(
        f"model {model.__name__} is {FAMILY_NAMES[model.family]}, but task {task.__name__} trains "
        f"{FAMILY_NAMES[task.family]}: use {FAMILY_MODELS[task.family]}"
    )
