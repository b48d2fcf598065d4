"""Talk to a trained seq2seq model: `python -m seq2seq.chat checkpoint=<run>` (or `seq2seq-chat`).

Each line read from standard input is a message; the reply is printed on its own line. At a
terminal it shows a prompt; piped input (`echo hi | python -m seq2seq.chat ...`) gets one reply per
line and nothing else, so the loop can be scripted and tested. Decoding options: seq2seq.decoding,
shared with seq2seq.generate and the Python API.
"""

import sys

import hydra
from omegaconf import DictConfig

from seq2seq import cli, decoding
from seq2seq.errors import DataError, Seq2seqError
from seq2seq.tasks.codec import ImageCodec


class Chat:
    """A checkpoint's model and the decoding options, checked once before the first message."""

    def __init__(self, cfg: DictConfig):
        self.model = cli.load(cfg)
        if self.model.family != "seq2seq" or isinstance(self.model.codec, ImageCodec):
            raise DataError(f"{cfg.checkpoint}: chat needs a text seq2seq checkpoint (e.g. experiment=chitchat)")
        self.options = cli.decode_options(cfg)
        decoding.resolve(self.options, "seq2seq")  # bad options fail now, not at the first message

    def reply(self, message: str) -> str:
        reply = self.model.generate(message, **self.options)
        return "\t".join(reply) if isinstance(reply, list) else reply


def converse(chat: Chat, lines, interactive: bool) -> None:
    """Answer each non-empty line; a message the model cannot take gets an error on stderr, and the
    conversation goes on."""
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = lines.readline()
        if not line:
            break
        message = line.strip()
        if not message:
            continue
        try:
            reply = chat.reply(message)
        except DataError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            continue
        print(f"bot> {reply}" if interactive else reply, flush=True)


@hydra.main(version_base="1.3", config_path="configs", config_name="chat")
def hydra_main(cfg: DictConfig) -> None:
    try:
        chat = Chat(cfg)
    except Seq2seqError as e:
        cli.fail(e)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {chat.model.path} ({chat.options['strategy'] or 'greedy'}); Ctrl-D to quit")
    converse(chat, sys.stdin, interactive)


main = cli.with_legacy_options(hydra_main)

if __name__ == "__main__":
    main()
