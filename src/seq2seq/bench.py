"""`python -m seq2seq.bench`: time the training loop and evaluation of every experiment (seq2seq.cli.bench)."""

from seq2seq.cli.bench import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
