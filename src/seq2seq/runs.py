"""`python -m seq2seq.runs`: the runs of a folder or a sweep as a table (seq2seq.cli.runs)."""

from seq2seq.cli.runs import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
