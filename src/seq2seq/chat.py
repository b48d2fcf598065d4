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


COMMANDS = {
    "/quit": "end the conversation (also /exit, exit, quit, Ctrl-D or Ctrl-C)",
    "/reset": "start over (this model answers each message on its own: there is no context to clear)",
    "/help": "this list",
}
QUIT = ("/quit", "/exit", "exit", "quit")


def converse(chat: Chat, lines, interactive: bool) -> None:
    """Answer each non-empty line; a message the model cannot take gets an error on stderr, and the
    conversation goes on. At a terminal the prompt has line editing and history (readline), and the
    commands of COMMANDS; piped lines are all messages."""
    if interactive:
        import readline  # noqa: F401  (importing it gives input() line editing and history)
    while True:
        try:
            line = input("you> ") if interactive else lines.readline()
        except EOFError:  # Ctrl-D at the prompt
            print()
            break
        if not interactive and not line:
            break
        message = line.strip()
        if not message:
            continue
        if interactive and message.lower() in QUIT:
            break
        if interactive and message in COMMANDS:
            for command, meaning in COMMANDS.items() if message == "/help" else [(message, COMMANDS[message])]:
                print(f"  {command:<7} {meaning}")
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
        if cli.free_text is not None:
            raise DataError("chat reads its messages from standard input, not after --")
        chat = Chat(cfg)
    except Seq2seqError as e:
        cli.fail(e)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {chat.model.path} ({chat.options['strategy'] or 'greedy'}); /help lists the commands")
    try:
        converse(chat, sys.stdin, interactive)
    except KeyboardInterrupt:  # Ctrl-C: leave quietly, not with a traceback
        print()
        sys.exit(130)


main = cli.with_legacy_options(hydra_main)

if __name__ == "__main__":
    main()
