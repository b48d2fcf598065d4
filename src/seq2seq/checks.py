"""Range checks a type cannot express, declared beside each component's constructor as
`CHECKS = {option: check}` and run on the config before anything is built (seq2seq.config.validate)."""

from collections.abc import Callable, Sequence
from typing import NamedTuple


class Check(NamedTuple):
    ok: Callable[[object], bool]
    says: str  # what a value must be, for the message


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


POSITIVE = Check(lambda v: _number(v) and v > 0, "must be a positive number")
NON_NEGATIVE = Check(lambda v: _number(v) and v >= 0, "must be 0 or more")
FRACTION = Check(lambda v: _number(v) and 0 < v < 1, "out of range: must be between 0 and 1")
DROPOUT = Check(lambda v: _number(v) and 0 <= v < 1, "out of range: must be from 0 to below 1")
SEED = Check(lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32, "must be from 0 to 2**32 - 1")


def one_of(choices: Sequence[str]) -> Check:
    return Check(lambda v: v in choices, f"must be one of {', '.join(choices)}")
