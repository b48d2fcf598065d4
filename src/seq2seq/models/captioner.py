"""Image captioning (section 4.3 of the chapter): a small CNN in place of the LSTM encoder, feeding
the project's decoders unchanged.

Shapes: B batch, C channels, H hidden size, (GH, GW) the feature grid, S = GH * GW grid cells.
"""

from typing import ClassVar

import torch
from torch import nn

from seq2seq.core.checks import POSITIVE
from seq2seq.core.registry import register_model
from seq2seq.models.seq2seq import DECODERS, Encoded, Seq2seq


class CNNEncoder(nn.Module):
    """Two 3x3 conv layers and a pooling to a fixed (GH, GW) grid, so any image size works. The
    summary h that starts (and, Peeky, feeds) the decoder is a projection of the whole grid, so it
    keeps the digits' order. With grid_states, each grid cell projected to H is one 'source position'
    for attention; without (decoders that only read h), the states are h alone, and no parameter
    goes unused (DistributedDataParallel requires that)."""

    def __init__(
        self, hidden_size: int, channels: int = 32, grid_height: int = 3, grid_width: int = 12, grid_states: bool = True
    ):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d((grid_height, grid_width)),
        )
        self.summary = nn.Linear(2 * channels * grid_height * grid_width, hidden_size)
        self.cell = nn.Linear(2 * channels, hidden_size) if grid_states else None

    def forward(self, images: torch.Tensor, lengths: torch.Tensor | None = None) -> Encoded:
        """images (B, 1, height, width); lengths is not used (no image is padded)."""
        grid = self.features(images)  # (B, 2C, GH, GW)
        summary = torch.tanh(self.summary(grid.flatten(1)))  # (B, H)
        if self.cell is None:
            return Encoded(summary[:, None], summary, None)  # states (B, 1, H)
        states = torch.tanh(self.cell(grid.flatten(2).transpose(1, 2)))  # (B, S, H)
        return Encoded(states, summary, None)


@register_model("image_captioner")
class ImageCaptioner(Seq2seq):
    """CNNEncoder + one of the seq2seq decoders (`decoder`: plain, peeky or attention). Training,
    greedy decoding and beam search are Seq2seq's, with images (B, 1, height, width) as the source."""

    family = "captioner"
    CHECKS: ClassVar[dict] = {"channels": POSITIVE, "grid_height": POSITIVE, "grid_width": POSITIVE}

    def __init__(
        self,
        vocab_size: int,
        wordvec_size: int = 16,  # word embedding size of the decoder
        hidden_size: int = 128,  # the decoder's units, and the size of the image summary h
        decoder: str = "peeky",  # plain | peeky | attention (over the CNN's grid cells)
        channels: int = 32,  # channels of the first conv layer (the second has twice as many)
        grid_height: int = 3,  # the feature grid the CNN pools to
        grid_width: int = 12,
        init: str = "chapter",  # the decoder's initialisation; the CNN keeps PyTorch's
        cell: str = "lstm",  # the decoder's recurrent cell: lstm | gru | rnn
    ):
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        # The CNN keeps PyTorch's ReLU-friendly default initialisation; `init` applies to the decoder.
        cnn = CNNEncoder(hidden_size, channels, grid_height, grid_width, grid_states=decoder == "attention")
        super().__init__(vocab_size, wordvec_size, hidden_size, decoder, init, cell=cell, encoder=cnn)
