"""Short generated programs and what they print (`task=programs`): the seq2seq "learning to execute" task."""

from typing import ClassVar

from seq2seq.core.checks import COUNT, POSITIVE
from seq2seq.core.registry import register_task
from seq2seq.data import programs
from seq2seq.data.split import seeded_split
from seq2seq.tasks.pairs import PairsTask


@register_task("programs")
class ProgramsTask(PairsTask):
    """Short programs (source) and what they print (target), generated and evaluated by
    seq2seq.data.programs; character-level by default."""

    CHECKS: ClassVar[dict] = {"num_examples": COUNT, "length": POSITIVE, "nesting": POSITIVE, "statements": POSITIVE}

    def __init__(
        self,
        num_examples: int = 20_000,  # distinct programs, generated with the seed
        length: int = 2,  # digits of every literal: 1..length
        nesting: int = 2,  # depth of expressions (1: a literal or a variable)
        statements: int = 3,  # statements before the final print: 1..statements
        val_fraction: float = 0.1,  # share of the programs held out
        tokenize: str = "char",  # programs are read character by character
        max_length: int = 150,  # longer programs are left out and counted
        seed: int = 0,  # generates the programs, splits and shuffles (the config passes the run's seed)
        **options,  # PairsTask's options
    ):
        pairs = programs.generate_programs(num_examples, length, nesting, statements, seed)
        train, val = seeded_split(pairs, val_fraction, seed, "programs")
        options = {"tokenize": tokenize, "max_length": max_length, **options}
        super().__init__({"train": train, "val": val}, seed=seed, **options)
