"""Checks of plain values read from files (checkpoints) against the types of the code that will use
them: a checkpoint carries data, and nothing in it reaches a constructor before it passes here."""

import math
import types
import typing
from typing import Any

from seq2seq.core.errors import CheckpointError

# A path or a list of paths: what the schemas type as Any (OmegaConf has no str-or-list type).
PATHS = str | list[str] | None


def type_name(annotation) -> str:
    if typing.get_origin(annotation) is list:  # list[str], not list
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def fits(value, annotation) -> bool:
    """Whether value is a plain value of the annotated type (int is not bool; a float is finite)."""
    if annotation is Any:
        annotation = PATHS
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(fits(v, item) for v in value)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    if annotation is dict:  # a mapping whose own keys the caller checks
        return isinstance(value, dict)
    return False


def check_fields(values, fields: dict[str, object], where: str, required: typing.Iterable[str] = ()) -> None:
    """values must be a dict whose keys are among `fields` ({name: annotation}), each of its type, with
    every name in `required` present. Raises CheckpointError naming the first key at fault."""
    if not isinstance(values, dict):
        raise CheckpointError(f"{where}: expected a mapping, found {type(values).__name__}")
    unknown = sorted(str(k) for k in values if k not in fields)
    if unknown:
        raise CheckpointError(f"{where}: unknown {'key' if len(unknown) == 1 else 'keys'} {', '.join(unknown)}")
    missing = [k for k in required if k not in values]
    if missing:
        raise CheckpointError(f"{where}: missing {', '.join(missing)}")
    for key, value in values.items():
        if not fits(value, fields[key]):
            shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
            raise CheckpointError(f"{where}: {key}={shown} is not of type {type_name(fields[key])}")
