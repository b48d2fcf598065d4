"""The recurrent cells a model may be built of (`model.cell`): PyTorch's own nn.LSTM, nn.GRU and nn.RNN (tanh),
and the state each carries between steps, always a tuple of (layers * directions, B, H) tensors: an LSTM's
(h, c), a GRU's or a plain RNN's (h,). Models store the cell under its own name (`lstm`, `gru`, `rnn`), so an
LSTM's weights keep the names every checkpoint of the chapter's models has.

Shapes: B batch, T time steps, H hidden size.
"""

import torch
from torch import nn

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def make(cell: str, input_size: int, hidden_size: int, **options) -> nn.RNNBase:
    """A cell's layers, batch first (options: num_layers, dropout, bidirectional)."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    return CELLS[cell](input_size, hidden_size, batch_first=True, **options)


def state_names(rnn: nn.RNNBase) -> tuple[str, ...]:
    """The names of a cell's state tensors (an ONNX graph's inputs and outputs): h and c, or h."""
    return ("h", "c") if isinstance(rnn, nn.LSTM) else ("h",)


def run(rnn: nn.RNNBase, x, state: tuple | None = None):
    """x (B, T, D) or a PackedSequence, and the state as a tuple (None: zeros) -> outputs, the state as a tuple."""
    if isinstance(rnn, nn.LSTM):
        out, (h, c) = rnn(x, state)
        return out, (h, c)
    out, h = rnn(x, None if state is None else state[0])
    return out, (h,)


def initial(rnn: nn.RNNBase, h0: torch.Tensor) -> tuple:
    """The state that starts from hidden state h0 (layers, B, H): an LSTM's memory cell at zero."""
    return (h0, torch.zeros_like(h0)) if isinstance(rnn, nn.LSTM) else (h0,)


def rows(state: tuple, index: torch.Tensor) -> tuple:
    """The rows `index` (a 1-D tensor of row numbers) of every tensor of a state (batch is dimension 1)."""
    return tuple(t[:, index] for t in state)


def detach(state: tuple | None) -> tuple | None:
    """The state cut from the previous window's graph (truncated backpropagation through time)."""
    return None if state is None else tuple(t.detach() for t in state)


def state_shapes(rnn: nn.RNNBase, batch: int) -> list[tuple[int, ...]]:
    """The shapes of the state of `batch` rows: one (layers * directions, batch, H) per tensor."""
    directions = 2 if rnn.bidirectional else 1
    return [(rnn.num_layers * directions, batch, rnn.hidden_size)] * len(state_names(rnn))
