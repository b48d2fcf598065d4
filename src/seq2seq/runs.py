"""`python -m seq2seq.runs`: the runs of a folder or a sweep as a table (seq2seq.cli.runs)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.runs"})

if __name__ == "__main__":
    command("runs")
