"""Seeded randomness the tasks share: the train/validation split of the pair tasks, and each epoch's shuffle."""

import torch

from seq2seq.core.errors import DataError


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that shuffles an epoch: it depends only on (seed, epoch), so a resumed run replays
    the same order."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def seeded_split(items: list, val_fraction: float, seed: int, what: str = "examples") -> tuple[list, list]:
    """Shuffle with the seed; the first val_fraction of the shuffle is validation, the rest training."""
    n_val = int(len(items) * val_fraction)
    if not 0 < n_val < len(items):
        raise DataError(f"val_fraction={val_fraction} leaves no train or no validation {what} of {len(items)}")
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    return [items[i] for i in order[n_val:]], [items[i] for i in order[:n_val]]
