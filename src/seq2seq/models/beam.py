"""Batched beam search for every model with the decoding protocol: Encoder-Decoders (any decoder) and
language models.

The protocol: `decode_step(token (N, 1), state) -> (logits (N, V), state)` and
`select_state(state, rows) -> state` (the rows `rows` of every tensor in the state).
Shapes: B inputs, K beam size, V vocabulary, L max length. All beams decode together as B*K rows.
"""

import torch
from torch.nn import functional as F

from seq2seq.core.decoding import GenerationConfig
from seq2seq.models.sampling import adjust_logits, check_finite


@torch.no_grad()
def beam_search(
    model,
    logits: torch.Tensor,
    state,
    max_new_tokens: int,
    how: GenerationConfig,
    skip_ids: tuple[int, ...] | list[int] = (),
    eos_id: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start from the first step's logits (B, V) and decoder state; return the how.n_best sequences per
    input (B, n_best, L) of a search of how.beam_size beams, and their scores (B, n_best): summed
    log-probabilities divided by length ** how.length_penalty. A beam that emits eos_id is finished: it
    keeps its score and is padded with eos_id. Without eos_id every sequence has max_new_tokens tokens.
    Tokens in skip_ids are never chosen."""
    beam_size, n_best = how.beam_size, how.n_best
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"need 1 <= n_best <= beam_size, got n_best={n_best}, beam_size={beam_size}")
    B, K, device = logits.shape[0], beam_size, logits.device
    expand = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,) each input K times in a row
    logits, state = logits[expand], model.select_state(state, expand)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: let only one of them expand at the first step
    tokens = torch.zeros((B, K, 0), dtype=torch.long, device=device)  # (B, K, t)
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B, K, device=device)
    for t in range(max_new_tokens):
        check_finite(logits)
        history = tokens.view(B * K, -1)
        logp = F.log_softmax(adjust_logits(logits, skip_ids, history, how.repetition_penalty), dim=-1).view(B, K, -1)
        V = logp.shape[-1]
        if eos_id is not None:  # a finished beam can only repeat eos, at no cost
            logp = torch.where(finished[..., None], torch.full_like(logp, float("-inf")), logp)
            logp[..., eos_id] = torch.where(finished, 0.0, logp[..., eos_id])
        candidates = (scores[..., None] + logp).view(B, K * V)  # (B, K*V)
        scores, index = candidates.topk(K, dim=-1)  # (B, K)
        beam, token = index // V, index % V  # which beam each survivor extends, with which token
        tokens = torch.cat([tokens.gather(1, beam[..., None].expand(-1, -1, tokens.shape[2])), token[..., None]], 2)
        lengths = lengths.gather(1, beam) + (~finished.gather(1, beam)).float()
        finished = finished.gather(1, beam) | (token == eos_id if eos_id is not None else False)
        if t + 1 < max_new_tokens:
            rows = (beam + torch.arange(B, device=device)[:, None] * K).flatten()  # (B*K,)
            logits, state = model.decode_step(token.view(B * K, 1), model.select_state(state, rows))
    normalized = scores / lengths.clamp(min=1) ** how.length_penalty
    best, order = normalized.topk(n_best, dim=-1)  # (B, n_best)
    return tokens.gather(1, order[..., None].expand(-1, -1, tokens.shape[2])), best
