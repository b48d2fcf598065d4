"""`python -m seq2seq.chat`: talk to a trained chat model (seq2seq.cli.chat)."""

from seq2seq.cli.chat import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
