"""`python -m seq2seq.generate`: answer questions, continue prompts or caption images with a trained model
(seq2seq.cli.generate)."""

from seq2seq.cli.generate import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
