"""LSTM language models: the chapter's Rnnlm and, through its options, BetterRnnlm.

Shapes: B batch (parallel rows of the token stream), T time steps, D wordvec, H hidden, V vocabulary.
"""

from typing import ClassVar

import torch
from torch import nn

from seq2seq.core.checks import DROPOUT, LAYERS, SIZE, one_of
from seq2seq.core.decoding import GenerationConfig
from seq2seq.core.registry import register_model
from seq2seq.models.beam import beam_search
from seq2seq.models.init import INITS, chapter_init_, check_init
from seq2seq.models.loss import linear_cross_entropy
from seq2seq.models.sampling import decode_loop


@register_model("rnnlm")
class Rnnlm(nn.Module):
    """Embedding + LSTM (num_layers) + Linear.

    BetterRnnlm of the chapter is this class with two 650-unit layers, dropout 0.5 after the
    embedding, between the layers and before the output, and the output layer tied to the embedding.
    init: "chapter" (the reference code's initialisation) or "pytorch" (PyTorch's defaults).
    """

    family = "lm"
    has_attention = False
    CHECKS: ClassVar[dict] = {
        "wordvec_size": SIZE,
        "hidden_size": SIZE,
        "num_layers": LAYERS,
        "dropout": DROPOUT,
        "init": one_of(INITS),
    }

    def __init__(
        self,
        vocab_size: int,
        wordvec_size: int = 100,  # embedding size
        hidden_size: int = 100,  # LSTM units per layer
        num_layers: int = 1,  # stacked LSTM layers
        dropout: float = 0.0,  # after the embedding, between the layers and before the output
        tie_weights: bool = False,  # the output layer shares the embedding's weights (wordvec_size == hidden_size)
        init: str = "chapter",  # the reference code's N(0, 1/fan_in) weights; "pytorch" for PyTorch's defaults
    ):
        super().__init__()
        if tie_weights and wordvec_size != hidden_size:
            raise ValueError(f"tie_weights needs wordvec_size == hidden_size, got {wordvec_size} and {hidden_size}")
        self.drop = nn.Dropout(dropout)
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = nn.LSTM(
            wordvec_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out = nn.Linear(hidden_size, vocab_size)
        check_init(init)
        if init == "chapter":
            chapter_init_(self)
        if tie_weights:  # one matrix is both embedding and output layer, as in the chapter
            self.out.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """tokens (B, T), LSTM state or None -> logits (B, T, V), new state. With targets (B, T), the
        mean cross-entropy loss instead of the logits (see seq2seq.models.loss: faster on a CPU)."""
        x = self.drop(self.embed(tokens))  # (B, T, D)
        out, state = self.lstm(x, state)  # (B, T, H)
        out = self.drop(out)
        if targets is None:
            return self.out(out), state  # (B, T, V)
        return linear_cross_entropy(out.flatten(0, 1), self.out.weight, self.out.bias, targets.flatten()), state

    # The decoding protocol (see seq2seq.models.beam): the state is the LSTM's (h, c).
    def start_decoding(self, prompt: torch.Tensor, num_rows: int = 1):
        """Feed prompt (P,) through the model in num_rows identical rows -> logits (N, V) of the next
        word, and the LSTM state."""
        if prompt.numel() == 0:
            raise ValueError("generate needs a prompt of at least one word")
        tokens = prompt.view(1, -1).expand(num_rows, -1)  # (N, P)
        logits, state = self(tokens)
        return logits[:, -1], state

    def decode_step(self, token: torch.Tensor, state):
        logits, state = self(token, state)  # (N, 1, V)
        return logits[:, -1], state

    @staticmethod
    def select_state(state, rows: torch.Tensor):
        return tuple(s[:, rows] for s in state)  # (layers, N, H) each

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        max_new_tokens: int,
        how: GenerationConfig | None = None,
        skip_ids: list[int] | tuple[int, ...] = (),
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Feed `prompt` (P,) through the model, then pick `max_new_tokens` more words as `how` (resolved
        decoding options, seq2seq.core.decoding) says, for each of its num_samples independent samples
        (sample), or once (greedy; argmax without `how`). Returns the new ids only: (samples, max_new_tokens)."""
        samples = how.num_samples if how is not None and how.strategy == "sample" else 1
        logits, state = self.start_decoding(prompt, samples)
        return decode_loop(self, logits, state, max_new_tokens, how, skip_ids, generator)

    def beam_search(self, prompt: torch.Tensor, max_new_tokens: int, how: GenerationConfig, skip_ids=()):
        """The likeliest continuations of prompt (P,) by beam search (see seq2seq.models.beam): ids
        (1, n_best, max_new_tokens) and their scores (1, n_best)."""
        logits, state = self.start_decoding(prompt)
        return beam_search(self, logits, state, max_new_tokens, how, skip_ids)
