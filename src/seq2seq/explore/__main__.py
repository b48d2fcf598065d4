"""`python -m seq2seq.explore`: the explorer's command line (seq2seq.cli.explore)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.explore"})

if __name__ == "__main__":
    command("explore")
