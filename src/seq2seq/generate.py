"""`python -m seq2seq.generate`: answer questions, continue prompts or caption images with a trained model
(seq2seq.cli.generate)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.generate"})

if __name__ == "__main__":
    command("generate")
