"""Picking the next token from logits: greedy, temperature, top-k and top-p (nucleus) sampling."""

import torch
from torch.nn import functional as F


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, greedy=False, skip_ids=(), generator=None):
    """Pick the next token for each row of logits (B, V) -> (B, 1). Words in skip_ids are never picked."""
    logits = logits.float().clone()
    if skip_ids:
        logits[:, list(skip_ids)] = float("-inf")
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
