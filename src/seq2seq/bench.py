"""`python -m seq2seq.bench`: time the training loop and evaluation of every experiment (seq2seq.cli.bench)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.bench"})

if __name__ == "__main__":
    command("bench")
