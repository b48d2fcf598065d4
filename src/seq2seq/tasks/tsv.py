"""Pairs from TSV files: any (source, target) data a user brings (`task=pairs`)."""

from seq2seq.core.registry import register_task
from seq2seq.data import text
from seq2seq.data.split import seeded_split
from seq2seq.tasks.pairs import PairsTask


@register_task("tsv")
class TsvTask(PairsTask):
    """Pairs from TSV files (`source<TAB>target` per line): `train` files, and `val` files or a seeded
    val_fraction of the training pairs."""

    DATA_KEYS = ("train", "val")

    def __init__(
        self,
        train: str | list[str],  # a TSV file, or a list of them: [a.tsv, b.tsv]
        val: str | list[str] | None = None,  # validation file(s); null: a seeded val_fraction of the train pairs
        val_fraction: float = 0.1,  # share of the training pairs held out when val is null
        seed: int = 0,  # the split and each epoch's shuffle (the config passes the run's seed)
        **options,  # PairsTask's options
    ):
        train_pairs = [pair for path in as_list(train) for pair in text.load_tsv(path)]
        if val:
            val_pairs = [pair for path in as_list(val) for pair in text.load_tsv(path)]
        else:
            train_pairs, val_pairs = seeded_split(train_pairs, val_fraction, seed, "pairs")
        super().__init__({"train": train_pairs, "val": val_pairs}, seed=seed, **options)


def as_list(paths) -> list[str]:
    return [paths] if isinstance(paths, str) else list(paths)
