"""Picking the next token from logits: greedy, temperature, top-k and top-p (nucleus) sampling, and
the logit adjustments every strategy shares (tokens never emitted, repetition penalty)."""

import torch
from torch.nn import functional as F


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


def sample_next(
    logits,
    temperature=1.0,
    top_k=None,
    top_p=None,
    greedy=False,
    skip_ids=(),
    generator=None,
    history=None,
    repetition_penalty=1.0,
):
    """Pick the next token for each row of logits (B, V) -> (B, 1). Words in skip_ids are never picked."""
    logits = adjust_logits(logits, skip_ids, history, repetition_penalty)
    if greedy:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits[logits < kth] = float("-inf")
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a word when the words ranked above it already hold top_p of the mass (the first is kept).
        drop = cumulative - sorted_logits.softmax(dim=-1) >= top_p
        logits.scatter_(1, order, sorted_logits.masked_fill(drop, float("-inf")))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)


@torch.no_grad()
def decode_loop(model, logits: torch.Tensor, state, steps: int, **sampling) -> torch.Tensor:
    """Greedy or sampled decoding for any model with the decoding protocol (`decode_step(token, state)
    -> (logits, state)`): start from the first step's logits (N, V), pick a token, feed it back.
    No sampling options means argmax. Returns the picked ids (N, steps)."""
    out = torch.empty(logits.shape[0], 0, dtype=torch.long, device=logits.device)  # (N, t)
    for t in range(steps):
        token = sample_next(logits, history=out, **sampling) if sampling else logits.argmax(dim=-1, keepdim=True)
        out = torch.cat([out, token], dim=1)
        if t + 1 < steps:
            logits, state = model.decode_step(token, state)
    return out
