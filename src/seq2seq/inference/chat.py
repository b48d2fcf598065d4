"""A conversation with a trained seq2seq model: each message answered with the earlier turns the model was
trained to read before it (task.context_turns), for seq2seq-chat and the explorer's Chat tab."""

from seq2seq.core.errors import DataError


class Chat:
    """A seq2seq model, the decoding options and the conversation so far, checked once before the first
    message. `context`: earlier turns read before each message (None: as many as the model was trained with)."""

    def __init__(self, model, options: dict, context: int | None = None):
        if model.family != "seq2seq":
            raise DataError(f"{model.path}: chat needs a text seq2seq checkpoint (e.g. experiment=chitchat)")
        self.model, self.options = model, options
        model.resolve(options)  # bad options fail now, not at the first message
        trained = model.codec.context_turns
        self.context = trained if context is None else context
        if not 0 <= self.context <= trained:
            raise DataError(
                f"context={self.context}: this model was trained with {trained} earlier turns before each message "
                f"(task.context_turns={trained}); give 0 to {trained}"
            )
        self.history: list[str] = []  # the conversation so far, both sides, oldest first

    def reply(self, message: str) -> str:
        turns = self.history[-self.context :] if self.context else []
        reply = self.model.generate(message, context=turns, **self.options)
        self.history += [message, reply[0] if isinstance(reply, list) else reply]
        return "\t".join(reply) if isinstance(reply, list) else reply

    def reset(self) -> str:
        self.history.clear()
        return "  (the conversation starts over)" if self.context else "  (this model reads each message alone)"
