"""`python -m seq2seq.evaluate`: a checkpoint's metrics and predictions on a split or a file
(seq2seq.cli.evaluate)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.evaluate"})

if __name__ == "__main__":
    command("evaluate")
