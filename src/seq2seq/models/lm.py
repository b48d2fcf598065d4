"""What every language model shares: the decoding protocol (seq2seq.models.beam) and generation built on one
method, `forward(tokens (B, T), state, targets=None) -> (logits (B, T, V) or the mean loss, state)`. A language
model family subclasses `LanguageModel` and writes `forward`, `select_state` (the rows of its state) and
`carry_shapes` (the state training carries between windows; none: override `between_windows` too), nothing
else of generation.
"""

import torch
from torch import nn

from seq2seq.core.decoding import GenerationConfig
from seq2seq.models.beam import beam_search
from seq2seq.models.sampling import decode_loop


class LanguageModel(nn.Module):
    family = "lm"  # trains on task=ptb (seq2seq.tasks.language_model) and decodes with the LM defaults
    has_attention = False

    def between_windows(self, state):
        """The state the next window of a stream starts from, given the one this window ended with: all of it
        for a recurrent model; None for a model that reads each window on its own (as it was trained)."""
        return state

    def start_decoding(self, prompt: torch.Tensor, num_rows: int = 1):
        """Feed prompt (P,) through the model in num_rows identical rows -> logits (N, V) of the next
        word, and the state."""
        if prompt.numel() == 0:
            raise ValueError("generate needs a prompt of at least one word")
        tokens = prompt.view(1, -1).expand(num_rows, -1)  # (N, P)
        logits, state = self(tokens)
        return logits[:, -1], state

    def decode_step(self, token: torch.Tensor, state):
        logits, state = self(token, state)  # (N, 1, V)
        return logits[:, -1], state

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
