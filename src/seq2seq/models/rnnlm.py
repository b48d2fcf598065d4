"""Recurrent language models: the chapter's Rnnlm and, through its options, BetterRnnlm, of any cell.

Shapes: B batch (parallel rows of the token stream), T time steps, D wordvec, H hidden, L layers, V vocabulary.
"""

from typing import ClassVar

import torch
from torch import nn

from seq2seq.core.checks import DROPOUT, LAYERS, SIZE, one_of
from seq2seq.core.registry import register_model
from seq2seq.models import recurrent
from seq2seq.models.export import OnnxExport, OnnxGraph
from seq2seq.models.init import INITS, chapter_init_, check_init
from seq2seq.models.lm import LanguageModel
from seq2seq.models.loss import linear_cross_entropy


@register_model("rnnlm")
class Rnnlm(LanguageModel):
    """Embedding + a recurrent cell (num_layers; the chapter's LSTM, or a GRU or plain RNN) + Linear.

    BetterRnnlm of the chapter is this class with two 650-unit layers, dropout 0.5 after the
    embedding, between the layers and before the output, and the output layer tied to the embedding.
    init: "chapter" (the reference code's initialisation) or "pytorch" (PyTorch's defaults).
    """

    CHECKS: ClassVar[dict] = {
        "wordvec_size": SIZE,
        "hidden_size": SIZE,
        "num_layers": LAYERS,
        "dropout": DROPOUT,
        "cell": one_of(tuple(recurrent.CELLS)),
        "init": one_of(INITS),
    }

    def __init__(
        self,
        vocab_size: int,
        wordvec_size: int = 100,  # embedding size
        hidden_size: int = 100,  # units of the recurrent cell per layer
        num_layers: int = 1,  # stacked layers of the cell
        dropout: float = 0.0,  # after the embedding, between the layers and before the output
        tie_weights: bool = False,  # the output layer shares the embedding's weights (wordvec_size == hidden_size)
        init: str = "chapter",  # the reference code's N(0, 1/fan_in) weights; "pytorch" for PyTorch's defaults
        cell: str = "lstm",  # lstm | gru | rnn (tanh): PyTorch's nn.LSTM, nn.GRU, nn.RNN
    ):
        super().__init__()
        if tie_weights and wordvec_size != hidden_size:
            raise ValueError(f"tie_weights needs wordvec_size == hidden_size, got {wordvec_size} and {hidden_size}")
        self.drop = nn.Dropout(dropout)
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.cell = cell  # stored under its name: an LSTM's weights keep the chapter's names (lstm.*)
        self.add_module(cell, recurrent.make(cell, wordvec_size, hidden_size, num_layers=num_layers,
                                             dropout=dropout if num_layers > 1 else 0.0))  # fmt: skip
        self.out = nn.Linear(hidden_size, vocab_size)
        check_init(init)
        if init == "chapter":
            chapter_init_(self)
        if tie_weights:  # one matrix is both embedding and output layer, as in the chapter
            self.out.weight = self.embed.weight

    @property
    def layers(self) -> nn.RNNBase:
        return getattr(self, self.cell)  # the cell's layers, stored under its name (lstm, gru, rnn)

    def forward(self, tokens: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """tokens (B, T), the cell's state (a tuple, seq2seq.models.recurrent) or None -> logits (B, T, V), new
        state. With targets (B, T), the mean cross-entropy loss instead of the logits (see seq2seq.models.loss:
        faster on a CPU)."""
        x = self.drop(self.embed(tokens))  # (B, T, D)
        out, state = recurrent.run(self.layers, x, state)  # (B, T, H)
        out = self.drop(out)
        if targets is None:
            return self.out(out), state  # (B, T, V)
        return linear_cross_entropy(out.flatten(0, 1), self.out.weight, self.out.bias, targets.flatten()), state

    def carry_shapes(self, rows: int) -> list[tuple[int, ...]]:
        """The state carried between training windows of `rows` rows: each (L, rows, H)."""
        return recurrent.state_shapes(self.layers, rows)

    @staticmethod
    def select_state(state, rows: torch.Tensor):
        return recurrent.rows(state, rows)  # (L, N, H) each

    def onnx_export(self) -> OnnxExport:
        """The graph of a step for serving without PyTorch (seq2seq.models.export): tokens (B, T) and the state
        -> logits (B, T, V) and the state; the first state is zeros."""
        names = recurrent.state_names(self.layers)
        shapes = self.carry_shapes(2)
        tokens, state = torch.zeros(2, 3, dtype=torch.long), tuple(torch.zeros(shape) for shape in shapes)
        axes = {"tokens": {0: "B", 1: "T"}, "logits": {0: "B", 1: "T"}}
        axes |= {name: {1: "B"} for name in (*names, *(f"{n}_out" for n in names))}
        step = OnnxGraph("step.onnx", StepGraph(self), (tokens, *state), ["tokens", *names],
                         ["logits", *(f"{n}_out" for n in names)], axes)  # fmt: skip
        initial = {name: [shape[0], "B", shape[2]] for name, shape in zip(names, shapes, strict=True)}
        return OnnxExport([step], {"encoder": None, "step": step.file, "memory": [], "state": list(names),
                                   "initial": initial})  # fmt: skip


class StepGraph(nn.Module):
    """A language model's step as an ONNX graph: tokens, the state -> logits, the state."""

    def __init__(self, model: Rnnlm):
        super().__init__()
        self.model = model

    def forward(self, tokens, *state):
        logits, state = self.model(tokens, tuple(state))
        return logits, *state
