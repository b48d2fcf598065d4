"""`python -m seq2seq.plot`: curves of runs or a sweep to a PNG, and a table of their results (seq2seq.cli.plot)."""

from seq2seq.cli.plot import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
