"""Tasks own the data of an experiment and the task-specific parts of the shared loop (the interface is
seq2seq.tasks.base.Task): one class a file, registered where it is defined (`@register_task`,
seq2seq.core.registry), and a `configs/task/<name>.yaml`; its config schema is derived from its constructor
(seq2seq.core.options). Importing this package imports every module in it, so the registry holds every task,
and exposes each registered class here by name: a config's `_target_: seq2seq.tasks.<Class>` builds it.
Imports: seq2seq.core, data, models.
"""

import importlib
import pkgutil

from seq2seq.core.registry import TASKS
from seq2seq.tasks.base import Task, task_from_saved_config
from seq2seq.tasks.pairs import PairsTask

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

globals().update({cls.__name__: cls for cls in TASKS.values()})
__all__ = ["TASKS", "PairsTask", "Task", "task_from_saved_config", *(cls.__name__ for cls in TASKS.values())]
