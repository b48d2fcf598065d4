"""Picking the next token from logits: greedy, temperature, top-k and top-p (nucleus) sampling, and
the logit adjustments every strategy shares (tokens never emitted, repetition penalty)."""

import torch
from torch.nn import functional as F

from seq2seq.core.decoding import GenerationConfig
from seq2seq.core.errors import CheckpointError


def adjust_logits(logits, skip_ids=(), history=None, repetition_penalty=1.0):
    """A float copy of logits (N, V) with skip_ids at -inf and, when repetition_penalty != 1, the logits
    of tokens already in history (N, t) divided by the penalty where positive and multiplied by it where
    negative (the CTRL paper's rule), so a repeated token becomes less likely whatever its sign."""
    logits = logits.float().clone()
    if repetition_penalty != 1.0 and history is not None and history.shape[1]:
        seen = logits.gather(1, history)  # (N, t)
        logits.scatter_(1, history, torch.where(seen > 0, seen / repetition_penalty, seen * repetition_penalty))
    if skip_ids:
        logits[:, list(skip_ids)] = float("-inf")
    return logits


def sample_next(logits, how: GenerationConfig, skip_ids=(), generator=None, history=None):
    """Pick the next token for each row of logits (B, V) -> (B, 1) as `how` says (its strategy greedy or
    sample, its repetition penalty, temperature, top_k and top_p). Words in skip_ids are never picked."""
    logits = adjust_logits(logits, skip_ids, history, how.repetition_penalty)
    if how.strategy == "greedy":
        return logits.argmax(dim=-1, keepdim=True)
    top_k, top_p = how.top_k, how.top_p
    logits = logits / how.temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits[logits < kth] = float("-inf")
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a word when the words ranked above it already hold top_p of the mass (the first is kept).
        drop = cumulative - sorted_logits.softmax(dim=-1) >= top_p
        drop[:, 0] = False  # the likeliest stays, whatever top_p (a top_p below float's smallest number is 0)
        logits.scatter_(1, order, sorted_logits.masked_fill(drop, float("-inf")))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)


@torch.no_grad()
def check_finite(logits: torch.Tensor) -> None:
    """Scores that are NaN or infinite (weights huge enough to overflow, though finite) answer nothing: an
    error, never an empty or arbitrary answer."""
    masked = logits == float("-inf")  # -inf is a token ruled out (a skip list, a finished beam): allowed
    if bool(torch.isnan(logits).any() | torch.isposinf(logits).any() | masked.all(dim=-1).any()):
        raise CheckpointError("the model gives NaN or infinite scores: its weights cannot be used to decode")


def decode_loop(
    model, logits: torch.Tensor, state, max_new_tokens: int, how: GenerationConfig | None = None, skip_ids=(),
    generator=None,
) -> torch.Tensor:  # fmt: skip
    """Greedy or sampled decoding for any model with the decoding protocol (`decode_step(token, state)
    -> (logits, state)`): start from the first step's logits (N, V), pick a token as `how` says, feed it
    back. Without `how`, plain argmax: the greedy decoding validation measures. Returns the ids (N, steps)."""
    out = torch.empty(logits.shape[0], 0, dtype=torch.long, device=logits.device)  # (N, t)
    for t in range(max_new_tokens):
        if how is not None:  # a user's decoding (validation's own, how=None, reports the metrics it gets)
            check_finite(logits)
        if how is None:
            token = logits.argmax(dim=-1, keepdim=True)  # (N, 1)
        else:
            token = sample_next(logits, how, skip_ids, generator, history=out)
        out = torch.cat([out, token], dim=1)
        if t + 1 < max_new_tokens:
            logits, state = model.decode_step(token, state)
    return out
