"""The seeded train/validation split shared by the pair tasks."""

import torch

from seq2seq.errors import DataError


def seeded_split(items: list, val_fraction: float, seed: int, what: str = "examples") -> tuple[list, list]:
    """Shuffle with the seed; the first val_fraction of the shuffle is validation, the rest training."""
    n_val = int(len(items) * val_fraction)
    if not 0 < n_val < len(items):
        raise DataError(f"val_fraction={val_fraction} leaves no train or no validation {what} of {len(items)}")
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    return [items[i] for i in order[n_val:]], [items[i] for i in order[:n_val]]
