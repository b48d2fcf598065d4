"""Batched beam search for the Encoder-Decoder models (any decoder with the `Decoder` interface).

Shapes: B questions, K beam size, S source length, H hidden size, V vocabulary, L max length.
Beams of all questions decode together as one batch of B*K rows.
"""

import torch
from torch.nn import functional as F


def reorder_state(state, rows: torch.Tensor):
    """Keep the LSTM state (h, c) of the given rows (state tensors are (layers, B*K, H))."""
    return tuple(s.index_select(1, rows) for s in state)


@torch.no_grad()
def beam_search(
    model,
    src: torch.Tensor,
    start_id: int,
    max_length: int,
    beam_size: int = 5,
    n_best: int = 1,
    eos_id: int | None = None,
    length_penalty: float = 0.0,
    lengths: torch.Tensor | None = None,
    skip_ids: tuple[int, ...] | list[int] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the n_best sequences per question (B, n_best, L) and their scores (B, n_best): summed
    log-probabilities divided by length ** length_penalty. A beam that emits eos_id is finished: it keeps
    its score and is padded with eos_id. Without eos_id every sequence has max_length tokens.
    `lengths` (B,): the real length of each padded source row. Tokens in skip_ids are never chosen."""
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"need 1 <= n_best <= beam_size, got n_best={n_best}, beam_size={beam_size}")
    B, K = src.shape[0], beam_size
    enc = model.encoder(src, lengths).repeat_interleave(K)  # states (B*K, S, H)
    state = model.decoder.init_state(enc)
    scores = torch.full((B, K), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # all beams start identical: let only one of them expand at the first step
    tokens = torch.full((B, K, 0), start_id, dtype=torch.long, device=src.device)  # (B, K, t)
    last = torch.full((B * K, 1), start_id, dtype=torch.long, device=src.device)  # (B*K, 1)
    finished = torch.zeros(B, K, dtype=torch.bool, device=src.device)
    lengths = torch.zeros(B, K, device=src.device)
    for _ in range(max_length):
        logits, state = model.decoder(last, enc, state)  # (B*K, 1, V)
        logp = F.log_softmax(logits[:, -1].float(), dim=-1).view(B, K, -1)  # (B, K, V)
        V = logp.shape[-1]
        if skip_ids:
            logp[..., list(skip_ids)] = float("-inf")
        if eos_id is not None:  # a finished beam can only repeat eos, at no cost
            logp = torch.where(finished[..., None], torch.full_like(logp, float("-inf")), logp)
            logp[..., eos_id] = torch.where(finished, 0.0, logp[..., eos_id])
        candidates = (scores[..., None] + logp).view(B, K * V)  # (B, K*V)
        scores, index = candidates.topk(K, dim=-1)  # (B, K)
        beam, token = index // V, index % V  # which beam each survivor extends, with which token
        tokens = torch.cat([tokens.gather(1, beam[..., None].expand(-1, -1, tokens.shape[2])), token[..., None]], 2)
        lengths = lengths.gather(1, beam) + (~finished.gather(1, beam)).float()
        finished = finished.gather(1, beam) | (token == eos_id if eos_id is not None else False)
        rows = (beam + torch.arange(B, device=src.device)[:, None] * K).flatten()  # (B*K,)
        state = reorder_state(state, rows)
        last = token.view(B * K, 1)
    normalized = scores / lengths.clamp(min=1) ** length_penalty
    best, order = normalized.topk(n_best, dim=-1)  # (B, n_best)
    return tokens.gather(1, order[..., None].expand(-1, -1, tokens.shape[2])), best
