"""(message, reply) pairs from the Chit Chat Challenge corpus, which the PyPI package
`chitchat-dataset` ships inside the package (no download).

Preprocessing: a message is the text of one speaker's turn (consecutive utterances of the same
speaker joined by a space); each pair is a turn and the turn that answers it. Conversations, not
pairs, are split between train and validation, so no conversation is seen in both. Lower-casing,
tokenisation (`wordpunct`) and the length limit are the pair task's options (see configs/task/chitchat.yaml).
"""

import itertools

from seq2seq.core.extras import require


def load_conversations(max_conversations: int | None = None) -> list[list[str]]:
    chitchat_dataset = require("chitchat_dataset", "task=chitchat")
    conversations = [[m.strip() for m in conv] for conv in chitchat_dataset.ConversationDataset()]
    return conversations[:max_conversations] if max_conversations else conversations


def reply_pairs(conversations: list[list[str]], context_turns: int = 0) -> list[tuple[str | tuple[str, ...], str]]:
    """Every (turn, next turn) of every conversation; pairs with an empty side are skipped. With
    context_turns=k the source is a tuple: up to k turns before the message, then the message."""
    if context_turns == 0:
        return [(a, b) for conv in conversations for a, b in itertools.pairwise(conv) if a and b]
    return [
        (tuple(conv[max(0, i - context_turns) : i + 1]), conv[i + 1])
        for conv in conversations
        for i in range(len(conv) - 1)
        if conv[i] and conv[i + 1]
    ]
