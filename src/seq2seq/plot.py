"""`python -m seq2seq.plot`: curves of runs or a sweep to a PNG, and a table of their results (seq2seq.cli.plot)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.plot"})

if __name__ == "__main__":
    command("plot")
