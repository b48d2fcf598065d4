"""`python -m seq2seq.train experiment=peeky_addition`: train a model (seq2seq.cli.train); `train(cfg) -> metrics`
is the same loop as a plain function (seq2seq.training.loop)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.train", "train": "seq2seq.training.loop"})

if __name__ == "__main__":
    command("train")
