"""Talk to a trained seq2seq model: `python -m seq2seq.chat checkpoint=<run>` (or `seq2seq-chat`).

Each line read from standard input is a message; the reply is printed on its own line. At a
terminal it shows a prompt; piped input (`echo hi | python -m seq2seq.chat ...`) gets one reply per
line and nothing else, so the loop can be scripted and tested. Decoding options: seq2seq.core.decoding,
shared with seq2seq.generate and the Python API.
"""

import io
import sys

from omegaconf import DictConfig

from seq2seq.cli import common as cli
from seq2seq.core.errors import DataError, Seq2seqError
from seq2seq.inference.chat import Chat

COMMANDS = {
    "/quit": "end the conversation (also /exit, exit, quit, Ctrl-D or Ctrl-C)",
    "/reset": "start over: forget the earlier turns (a model trained with context reads them)",
    "/help": "this list",
}
QUIT = ("/quit", "/exit", "exit", "quit")


def chat_from_config(cfg: DictConfig) -> Chat:
    cli.check_keys(cfg, cli.ChatConfig, "seq2seq.chat")
    return Chat(cli.open_model(cfg), cli.decode_options(cfg), cfg.context)


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
        if interactive and message == "/reset":
            print(chat.reset())
            continue
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


def run_command(cfg: DictConfig) -> None:
    try:
        chat = chat_from_config(cfg)
    except Seq2seqError as e:
        cli.fail(e)
    interactive = sys.stdin.isatty()
    if interactive:
        how = chat.model.resolve(chat.options).strategy + (
            f", reading {chat.context} earlier turns" if chat.context else ""
        )
        print(f"chatting with {chat.model.path} ({how}); /help lists the commands")
    try:
        # Piped messages are UTF-8, decoded strictly whatever the locale (Python's C locale would turn
        # bad bytes into lone surrogates and the model would answer them).
        lines = sys.stdin if interactive else io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="strict")
        converse(chat, lines, interactive)
    except UnicodeDecodeError as e:  # messages are read as UTF-8 text
        cli.fail(f"standard input is not UTF-8 text ({e.reason} at byte {e.start} of a read)")
    except KeyboardInterrupt:  # Ctrl-C: leave quietly, not with a traceback
        print()
        sys.exit(130)


main = cli.command_line("seq2seq.chat", cli.ChatConfig, "checkpoint=outputs/chitchat", input_key=None)(run_command)

if __name__ == "__main__":
    main()
