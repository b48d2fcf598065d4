"""`python -m seq2seq.evaluate`: a checkpoint's metrics and predictions on a split or a file
(seq2seq.cli.evaluate)."""

from seq2seq.cli.evaluate import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
