"""`python -m seq2seq.chat`: talk to a trained chat model (seq2seq.cli.chat)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.chat"})

if __name__ == "__main__":
    command("chat")
