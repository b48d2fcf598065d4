"""The Chit Chat Challenge corpus as (message, reply) pairs, optionally with earlier turns (`task=chitchat`)."""

from typing import ClassVar

from seq2seq.core.checks import NON_NEGATIVE, POSITIVE
from seq2seq.core.errors import ConfigError
from seq2seq.core.registry import register_task
from seq2seq.data import chitchat
from seq2seq.data.split import seeded_split
from seq2seq.tasks.pairs import PairsTask


@register_task("chitchat")
class ChitchatTask(PairsTask):
    """(message, reply) pairs of the Chit Chat Challenge corpus (see seq2seq.data.chitchat), split
    by conversation."""

    CHECKS: ClassVar[dict] = {"max_conversations": POSITIVE, "context_turns": NON_NEGATIVE}
    EXTRAS = ("chitchat_dataset",)

    def __init__(
        self,
        val_fraction: float = 0.05,  # share of the conversations held out
        max_conversations: int | None = None,  # use only the first N conversations (quick runs)
        context_turns: int = 0,  # earlier turns joined before each message with <sep> (raise max_length too)
        seed: int = 0,  # the split and each epoch's shuffle (the config passes the run's seed)
        **options,  # PairsTask's options
    ):
        if context_turns < 0:
            raise ConfigError(f"task.context_turns={context_turns}: must be 0 (no context) or more")
        self.context_turns = context_turns
        conversations = chitchat.load_conversations(max_conversations)
        train, val = seeded_split(conversations, val_fraction, seed, "conversations")
        self.conversations = {"train": train, "val": val}
        splits = {
            split: chitchat.reply_pairs(convs, context_turns) for split, convs in (("train", train), ("val", val))
        }
        super().__init__(splits, seed=seed, **options)
