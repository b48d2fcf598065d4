"""The one vocabulary of validation: every value from a config, a command line or a file is checked here.

- Types: `fits(value, annotation)` says whether a plain value is of a constructor's or a field's annotated type
  (int is not bool, a float is finite), `check_fields` checks a mapping read from a file field by field.
- Ranges a type cannot express: a `Check` (ok, what it must be), declared beside each component's constructor
  as `CHECKS = {option: check}` and at the trainer's and the decoding options' fields.
- Rules between options: a `Rule` (keys, ok, what), declared as `RULES = (Rule, ...)`.
- Unknown keys: `unknown_key_message` names the closest valid ones.

All run on a config before anything is built (seq2seq.training.config.validate) and on a checkpoint's or a
shared folder's values before they reach a constructor (seq2seq.training.checkpoint)."""

import difflib
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

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


class Check(NamedTuple):
    ok: Callable[[object], bool]
    says: str  # what a value must be, for the message


class Rule(NamedTuple):
    """A rule between a component's options: `ok(*values of keys)`."""

    keys: tuple[str, ...]
    ok: Callable[..., bool]
    says: str


def _number(v) -> bool:
    """A finite int or float (not a bool): inf and nan are no setting."""
    return fits(v, float)


POSITIVE = Check(lambda v: _number(v) and v > 0, "must be a positive number")
NON_NEGATIVE = Check(lambda v: _number(v) and v >= 0, "must be 0 or more")
FRACTION = Check(lambda v: _number(v) and 0 < v < 1, "out of range: must be between 0 and 1")
DROPOUT = Check(lambda v: _number(v) and 0 <= v < 1, "out of range: must be from 0 to below 1")
SEED = Check(lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32, "must be from 0 to 2**32 - 1")


def at_most(limit: int, what: str) -> Check:
    """A positive integer up to a fixed cap: sizes and counts that a file may declare cost what they say."""
    return Check(lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= limit,
                 f"must be from 1 to {limit:,} ({what})")  # fmt: skip


SIZE = at_most(2**16, "units of a layer")
LAYERS = at_most(64, "stacked layers")
COUNT = at_most(10_000_000, "examples")
DIGITS = at_most(9, "digits of an operand")


def one_of(choices: Sequence[str]) -> Check:
    return Check(lambda v: v in choices, f"must be one of {', '.join(choices)}")


def closest(key: str, valid: Sequence[str]) -> list[str]:
    """At most two valid dotted keys a mistyped one may have meant: by the whole key, or by its last part
    (`+epochs` -> trainer.max_epochs), those of the same group first."""
    leaves: dict[str, list[str]] = {}
    for k in valid:
        leaves.setdefault(k.rsplit(".", 1)[-1], []).append(k)
    near = difflib.get_close_matches(key, valid, n=2, cutoff=0.75)
    near += [
        k for m in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaves), n=2, cutoff=0.7) for k in leaves[m]
    ]
    group = key.rsplit(".", 1)[0] + "." if "." in key else None
    same_group = [k for k in near if group and k.startswith(group)]
    return list(dict.fromkeys(same_group or near))[:2]


def unknown_key_message(key: str, valid: Sequence[str], listing: str) -> str:
    near = closest(key, valid)
    return f"{key}: unknown key; " + (f"did you mean {' or '.join(near)}?" if near else f"{listing} lists every key")


def component_rules(cls: type) -> tuple[Rule, ...]:
    """A component's RULES, its base classes' included."""
    return tuple(rule for klass in reversed(cls.__mro__) for rule in klass.__dict__.get("RULES", ()))


def component_checks(cls: type) -> dict:
    """A component's CHECKS, its base classes' included (a subclass's own win)."""
    out = {}
    for klass in reversed(cls.__mro__):
        out.update(klass.__dict__.get("CHECKS", {}))
    return out
