"""Weight initialisation schemes selectable by `model.init`."""

from torch import nn

INITS = ("chapter", "pytorch")


def chapter_init_(module: nn.Module) -> None:
    """The reference code's initialisation: embeddings N(0, 0.01^2), every weight matrix
    N(0, 1/fan_in), biases zero. (PyTorch's LSTM default is U(-1/sqrt(H), 1/sqrt(H)) for all.)"""
    for name, p in module.named_parameters():
        if "bias" in name:
            nn.init.zeros_(p)
        elif "embed" in name:
            nn.init.normal_(p, std=0.01)
        else:
            nn.init.normal_(p, std=p.shape[1] ** -0.5)


def check_init(init: str) -> None:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
