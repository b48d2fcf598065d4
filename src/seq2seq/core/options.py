"""One source of defaults: a component's constructor. Its signature gives each config option's name,
type and default; the comment on the parameter's line documents it (`--help` shows it); the class's
CHECKS hold the range checks a type cannot express. Config schemas (seq2seq.training.config) and the checks of
configs saved in checkpoints (seq2seq.tasks.task_from_saved_config) are derived from here.

    def __init__(
        self,
        batch_size: int = 128,  # questions per batch
        ...
        **options,  # the base class's options (config keys too, minus the class's FIXED_OPTIONS)
    )
"""

import dataclasses
import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

# Parameters filled at the call site, never by a config: sizes the data decides, data itself.
CALL_SITE = ("self", "vocab_size", "splits")


@dataclass
class Option:
    name: str
    annotation: object
    default: object  # inspect.Parameter.empty when required
    comment: str

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def comments(obj) -> dict[str, str]:
    """{name: the comment on its line} of a function's parameters or a dataclass's fields, read from
    the source: a line `name: type = default,  # comment`."""
    try:
        lines = inspect.getsource(obj).splitlines()
    except (OSError, TypeError):
        return {}
    found = (re.match(r"\s+(\w+):[^#]*#\s*(.*)$", line) for line in lines)
    return {m.group(1): m.group(2).strip() for m in found if m}


def is_module(annotation) -> bool:
    import torch

    return any(
        isinstance(t, type) and issubclass(t, torch.nn.Module) for t in (annotation, *typing.get_args(annotation))
    )


def options(cls: type) -> list[Option]:
    """The config options of a component class: its constructor's parameters, then (when it takes
    **options) its base class's, less the call-site ones, modules passed in, and cls.FIXED_OPTIONS."""
    out: dict[str, Option] = {}
    fixed = set(getattr(cls, "FIXED_OPTIONS", ()))
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        notes = comments(init)
        params = inspect.signature(init).parameters.values()
        for p in params:
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in CALL_SITE or p.name in fixed:
                continue
            if p.name not in out and not is_module(p.annotation):
                out[p.name] = Option(p.name, p.annotation, p.default, notes.get(p.name, ""))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break  # the base class's options are not passed on
    return list(out.values())


def config_type(annotation):
    """The annotation as OmegaConf types it: str | list[str] (a path or several) is Any."""
    args = typing.get_args(annotation)
    if any(typing.get_origin(a) is list for a in args) and len([a for a in args if a is not type(None)]) > 1:
        return Any
    return annotation


def dataclass_of(cls: type, target: str) -> type:
    """The config schema of a component: `_target_`, then a field per option with its default."""
    fields = [("_target_", str, dataclasses.field(default=target))]
    for o in options(cls):
        default = MISSING if o.required else o.default
        fields.append((o.name, config_type(o.annotation), dataclasses.field(default=default)))
    return dataclasses.make_dataclass(f"{cls.__name__}Config", fields)
