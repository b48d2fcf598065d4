"""A Transformer language model (decoder-only, as GPT) for Penn Treebank, beside the chapter's Rnnlm:
`model=transformer_lm` (experiment=transformer_ptb).

Shapes: B batch (parallel rows of the token stream), T time steps, D d_model, K heads, V vocabulary.
Pre-norm layers of causal self-attention and a feed-forward block, sinusoidal positions, the output layer
tied to the embedding. Training and evaluation read each window of `task.time_size` words on its own: no
state is carried between windows (an LSTM's carried state has no counterpart here without relative
positions), so each word sees at most the window's earlier words. Generation keeps a key/value cache: the
state is each layer's keys and values of the words read so far (B, K, t, D/K).
"""

import math
from typing import ClassVar

import torch
from torch import nn

from seq2seq.core.checks import DROPOUT, SIZE
from seq2seq.core.registry import register_model
from seq2seq.models.export import OnnxExport, OnnxGraph
from seq2seq.models.lm import LanguageModel
from seq2seq.models.loss import linear_cross_entropy
from seq2seq.models.transformer import HEADS_DIVIDE, LAYERS, Attention, positions, stacked, unstacked


class Block(nn.Module):
    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.attn = Attention(d_model, num_heads, dropout)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(dim_feedforward, d_model))  # fmt: skip
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(2))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, causal, cache=None):
        """x (B, T, D) -> (B, T, D) and the layer's keys and values, earlier positions' included."""
        a, cache, _ = self.attn(self.norms[0](x), cache=cache, mask=causal)
        x = x + self.drop(a)
        return x + self.drop(self.feed_forward(self.norms[1](x))), cache


@register_model("transformer_lm")
class TransformerLM(LanguageModel):
    """Embedding + positions, num_layers causal self-attention blocks, a LayerNorm and the output layer (the
    embedding's weights)."""

    CHECKS: ClassVar[dict] = {"d_model": SIZE, "num_heads": SIZE, "dim_feedforward": SIZE, "dropout": DROPOUT}
    RULES: ClassVar[tuple] = (HEADS_DIVIDE, LAYERS)

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,  # the width of every layer and of the word embedding
        num_heads: int = 4,  # attention heads (d_model must be a multiple)
        num_layers: int = 2,  # stacked blocks
        dim_feedforward: int = 512,  # the hidden width of each block's feed-forward layer
        dropout: float = 0.1,  # on the embeddings, in attention and after each block's parts
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)  # x sqrt(D) below: unit scale, as the positions'
        self.blocks = nn.ModuleList(Block(d_model, num_heads, dim_feedforward, dropout) for _ in range(num_layers))
        self.norm, self.drop = nn.LayerNorm(d_model), nn.Dropout(dropout)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        self.scale = math.sqrt(d_model)

    def forward(self, tokens: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """tokens (B, T) after the cached positions of `state` (None: none) -> logits (B, T, V) and the cache;
        with targets (B, T), the mean cross-entropy and no state (windows are read on their own)."""
        past = 0 if state is None else state[0][0].shape[2]
        T, device = tokens.shape[1], tokens.device
        x = self.drop(self.embed(tokens) * self.scale + positions(past, T, self.embed.embedding_dim, device))
        causal = torch.arange(past + T, device=device)[None, :] <= (past + torch.arange(T, device=device))[:, None]
        caches = []
        for i, block in enumerate(self.blocks):
            x, cache = block(x, causal, None if state is None else state[i])
            caches.append(cache)
        out = self.norm(x)  # (B, T, D)
        if targets is None:
            return out @ self.embed.weight.T + self.out_bias, caches  # (B, T, V)
        return linear_cross_entropy(out.flatten(0, 1), self.embed.weight, self.out_bias, targets.flatten()), None

    def carry_shapes(self, rows: int) -> list[tuple[int, ...]]:
        return []  # nothing is carried between training windows

    def between_windows(self, state):
        return None  # each window is read on its own, as in training: no cache beyond the window's words

    @staticmethod
    def select_state(state, rows: torch.Tensor):
        return [tuple(t[rows] for t in layer) for layer in state]

    def onnx_export(self) -> OnnxExport:
        """The graph of a step for serving without PyTorch (seq2seq.models.export): tokens (B, T) and the cache,
        every block's keys and values stacked (L, B, K, t, D/K) -> logits (B, T, V) and the cache t + T long;
        the first cache is empty (t = 0)."""
        heads = self.blocks[0].attn.heads
        shape = [len(self.blocks), "B", heads, 0, self.embed.embedding_dim // heads]
        tokens = torch.zeros(2, 3, dtype=torch.long)
        empty = torch.zeros([2 if d == "B" else d for d in shape])
        axes = {"tokens": {0: "B", 1: "T"}, "logits": {0: "B", 1: "T"}}
        axes |= {name: {1: "B", 3: "t"} for name in ("keys", "values", "keys_out", "values_out")}
        step = OnnxGraph("step.onnx", StepGraph(self), (tokens, empty, empty), ["tokens", "keys", "values"],
                         ["logits", "keys_out", "values_out"], axes)  # fmt: skip
        return OnnxExport([step], {"encoder": None, "step": step.file, "memory": [], "state": ["keys", "values"],
                                   "initial": {"keys": shape, "values": shape}})  # fmt: skip


class StepGraph(nn.Module):
    """A step as an ONNX graph: tokens, the cache -> logits, the cache."""

    def __init__(self, model: TransformerLM):
        super().__init__()
        self.model = model

    def forward(self, tokens, keys, values):
        logits, caches = self.model(tokens, unstacked(keys, values))
        return logits, *stacked(caches)
