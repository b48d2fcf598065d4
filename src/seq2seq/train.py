"""`python -m seq2seq.train experiment=peeky_addition`: train a model (seq2seq.cli.train); `train(cfg) -> metrics`
is the same loop as a plain function (seq2seq.training.loop)."""

from seq2seq.cli.train import main
from seq2seq.training.loop import train

__all__ = ["main", "train"]

if __name__ == "__main__":
    main()
