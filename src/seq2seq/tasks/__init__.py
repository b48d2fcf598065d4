"""Tasks own the data of an experiment and the task-specific parts of the shared loop: the interface
is `seq2seq.tasks.base.Task`. A new task is a class in its own file here, listed in TASKS below, and a
`configs/task/<name>.yaml`; its config schema is derived from its constructor (seq2seq.core.options)."""

from seq2seq.core.checks import check_fields, component_checks
from seq2seq.core.compat import added_task_values
from seq2seq.core.errors import CheckpointError, ConfigError
from seq2seq.core.options import options
from seq2seq.models import MODEL_TARGETS
from seq2seq.tasks.addition import AdditionTask
from seq2seq.tasks.base import Task
from seq2seq.tasks.captions import CaptionsTask
from seq2seq.tasks.chitchat import ChitchatTask
from seq2seq.tasks.language_model import LanguageModelTask
from seq2seq.tasks.pairs import PairsTask
from seq2seq.tasks.programs import ProgramsTask
from seq2seq.tasks.tsv import TsvTask

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

# The task classes by the `_target_` of their configs. Rebuilding a task from a checkpoint's saved
# config looks the name up here (a string comparison) and passes the checked fields to the class: a
# checkpoint can never make the project import or call anything else.
TASK_CLASSES = {  # by the name of their config schema (seq2seq.training.config)
    "addition": AdditionTask,
    "language_model": LanguageModelTask,
    "tsv": TsvTask,
    "chitchat": ChitchatTask,
    "programs": ProgramsTask,
    "captions": CaptionsTask,
}
TASKS = {f"seq2seq.tasks.{cls.__name__}": cls for cls in TASK_CLASSES.values()}


def task_from_saved_config(node, where: str):
    """The task a checkpoint's saved `config.task` describes, built without Hydra: the class from TASKS,
    every field checked against its constructor's types (nested `_target_`s are just wrong types)."""
    target = node.get("_target_") if isinstance(node, dict) else None
    if target not in TASKS:
        raise CheckpointError(f"{where}: task {str(target)[:60]!r} is not one of {', '.join(TASKS)}")
    cls = TASKS[target]
    declared = {o.name: o for o in options(cls)}
    values = added_task_values({k: v for k, v in node.items() if k != "_target_"}, declared)
    required = [name for name, o in declared.items() if o.required]
    check_fields(values, {name: o.annotation for name, o in declared.items()}, where, required)
    for key, (ok, says) in component_checks(cls).items():  # the caps a config has (num_examples, ...)
        if values.get(key) is not None and not ok(values[key]):
            raise CheckpointError(f"{where}: {key}={str(values[key])[:40]} {says}")
    return cls(**values)


# Each family in words, and the model configs that build it: the message of a mismatch.
FAMILY_NAMES = {"seq2seq": "an Encoder-Decoder", "captioner": "an image captioner", "lm": "a language model"}
FAMILY_MODELS = {"seq2seq": "model=seq2seq", "captioner": "model=image_captioner", "lm": "model=rnnlm or better_rnnlm"}


def check_fits(task_target: str, model_target: str) -> None:
    """A model must be of its task's family (seq2seq.tasks.base), refused in one line before any data
    loads. Classes outside the project's tables are not checked."""
    task = TASKS.get(task_target)
    model = MODEL_TARGETS.get(model_target)
    if task is None or model is None or task.family == model.family:
        return
    raise ConfigError(
        f"model {model.__name__} is {FAMILY_NAMES[model.family]}, but task {task.__name__} trains "
        f"{FAMILY_NAMES[task.family]}: use {FAMILY_MODELS[task.family]}"
    )
