"""Range checks a type cannot express (types: seq2seq.core.typecheck), declared beside each component's
constructor as `CHECKS = {option: check}`, and rules between options as `RULES = (Rule, ...)`; the
trainer's and the decoding options' are declared at their fields. All run on the config before anything
is built (seq2seq.training.config.validate)."""

import difflib
from collections.abc import Callable, Sequence
from typing import NamedTuple

from seq2seq.core.typecheck import fits


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
