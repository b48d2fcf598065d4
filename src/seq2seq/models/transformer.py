"""A Transformer encoder-decoder (Vaswani et al., 2017) for the sequence tasks, beside the chapter's LSTMs:
`model=transformer` (experiment=transformer_addition). It speaks the same protocol as seq2seq.models.Seq2seq
(`encoder`, `decode`, `generate`, `beam_search`, `greedy_from_teacher_forcing`, `attention`), so every task,
decoding strategy and command takes it unchanged.

Shapes: B batch, S source length, T target length, D d_model, K heads, V vocabulary. Pre-norm layers (a
LayerNorm before each sub-layer, one after the stack), sinusoidal positions added to embeddings scaled by
sqrt(D), padding masked in the encoder and in cross-attention, a causal mask in the decoder.

Generation keeps a key/value cache: the decoding state is the encoder's output and, per decoder layer, the
self-attention's keys and values of the tokens decoded so far (B, K, t, D/K) and the cross-attention's of
the source (computed once), so each step runs one new position through the decoder.
"""

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from seq2seq.core.checks import DROPOUT, SIZE, Rule
from seq2seq.core.decoding import GenerationConfig
from seq2seq.core.registry import register_model
from seq2seq.models.beam import beam_search
from seq2seq.models.export import OnnxExport, OnnxGraph
from seq2seq.models.sampling import decode_loop
from seq2seq.models.seq2seq import Encoded, greedy_reusing, padding_mask

HEADS_DIVIDE = Rule(
    ("d_model", "num_heads"), lambda d, k: k > 0 and d % k == 0, "d_model must be a multiple of num_heads"
)
LAYERS = Rule(("num_layers",), lambda n: 1 <= n <= 24, "num_layers must be from 1 to 24")


def positions(start: int, length: int, d_model: int, device) -> torch.Tensor:
    """Sinusoidal position encodings (length, D) of positions start .. start + length - 1."""
    position = torch.arange(start, start + length, device=device, dtype=torch.float32)[:, None]  # (L, 1)
    rate = torch.exp(torch.arange(0, d_model, 2, device=device) * (-math.log(10_000.0) / d_model))  # (ceil(D/2),)
    angle = position * rate  # (L, ceil(D/2))
    # sin at even dimensions, cos at odd ones, interleaved by stacking (an ONNX graph has no strided writes)
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).flatten(1)[:, :d_model]  # (L, D)


class Attention(nn.Module):
    """Multi-head attention whose keys and values can be cached: self-attention appends the new positions'
    to the cache; cross-attention computes the source's once."""

    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = num_heads, dropout
        self.query, self.key_value, self.out = (nn.Linear(d_model, d_model), nn.Linear(d_model, 2 * d_model),
                                                nn.Linear(d_model, d_model))  # fmt: skip

    def split(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        return x.view(B, L, self.heads, D // self.heads).transpose(1, 2)  # (B, K, L, D/K)

    def split_keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values (B, K, S, D/K) of a source (B, S, D)."""
        k, v = self.key_value(source).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(self, x, source=None, cache=None, mask=None, with_weights=False):
        """x (B, T, D) queries; source (B, S, D) for cross-attention (None: self-attention over x and the
        cache); mask broadcastable to (B, K, T, keys), True where a query may look -> (B, T, D), the new
        cache (keys, values), and the weights (B, K, T, keys) when asked."""
        q = self.split(self.query(x))  # (B, K, T, D/K)
        if source is None or cache is None:
            k, v = self.split_keys_values(x if source is None else source)
            if source is None and cache is not None:  # self-attention: earlier positions' keys and values first
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        else:
            k, v = cache  # cross-attention: the source's, computed at the first step
        weights = None
        if with_weights:  # (for heatmaps) the same attention, its weights kept
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, K, T, keys)
            weights = scores.masked_fill(~mask, float("-inf")).softmax(-1) if mask is not None else scores.softmax(-1)
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout * self.training)
        B, _, T, _ = out.shape
        return self.out(out.transpose(1, 2).reshape(B, T, -1)), (k, v), weights


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn, self.cross_attn = Attention(d_model, num_heads, dropout), Attention(d_model, num_heads, dropout)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.ReLU(), nn.Dropout(dropout),
                                          nn.Linear(dim_feedforward, d_model))  # fmt: skip
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, memory, memory_mask, causal, cache=(None, None), with_weights=False):
        """x (B, T, D) -> (B, T, D), the layer's caches (self, cross), its cross-attention weights (or None)."""
        a, own, _ = self.self_attn(self.norms[0](x), cache=cache[0], mask=causal)
        x = x + self.drop(a)
        c, cross, weights = self.cross_attn(self.norms[1](x), memory, cache[1], memory_mask, with_weights)
        x = x + self.drop(c)
        return x + self.drop(self.feed_forward(self.norms[2](x))), (own, cross), weights


class TransformerEncoder(nn.Module):
    """Token ids (B, S) with lengths (B,) -> Encoded: every position's output, their mean over real tokens
    (the summary), and the padding mask."""

    def __init__(self, embed: nn.Embedding, d_model, num_heads, num_layers, dim_feedforward, dropout):
        super().__init__()
        self.embed, self.scale, self.drop = embed, math.sqrt(d_model), nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout, batch_first=True,
                                           norm_first=True)  # fmt: skip
        self.layers = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor | None = None) -> Encoded:
        S = src.shape[1]
        mask = padding_mask(lengths, S) if lengths is not None and bool((lengths < S).any()) else None  # (B, S)
        x = self.drop(self.embed(src) * self.scale + positions(0, S, self.embed.embedding_dim, src.device))
        states = self.layers(x, src_key_padding_mask=None if mask is None else ~mask)  # (B, S, D)
        if mask is None:
            return Encoded(states, states.mean(dim=1), None)
        states = states * mask[..., None]  # zeros at padding, as the recurrent encoder's
        return Encoded(states, states.sum(dim=1) / lengths[:, None].clamp(min=1), mask)


@register_model("transformer")
class Transformer(nn.Module):
    """Transformer encoder-decoder: `model=transformer` with any sequence task (addition, dates, pairs,
    chitchat, programs). Source and target share one embedding (their vocabulary is one)."""

    family = "seq2seq"
    has_attention = True
    CHECKS: ClassVar[dict] = {"d_model": SIZE, "num_heads": SIZE, "dim_feedforward": SIZE, "dropout": DROPOUT}
    RULES: ClassVar[tuple] = (HEADS_DIVIDE, LAYERS)

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,  # the width of every layer
        num_heads: int = 4,  # attention heads (d_model must be a multiple)
        num_layers: int = 2,  # layers of the encoder, and of the decoder
        dim_feedforward: int = 256,  # the hidden width of each layer's feed-forward block
        dropout: float = 0.1,  # in attention, after each sub-layer and on the embeddings
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)  # x sqrt(D) below: unit scale, as the positions'
        self.encoder = TransformerEncoder(self.embed, d_model, num_heads, num_layers, dim_feedforward, dropout)
        self.layers = nn.ModuleList(DecoderLayer(d_model, num_heads, dim_feedforward, dropout)
                                    for _ in range(num_layers))  # fmt: skip
        self.norm, self.drop = nn.LayerNorm(d_model), nn.Dropout(dropout)
        self.out = nn.Linear(d_model, vocab_size)
        self.scale = math.sqrt(d_model)

    def run_decoder(self, tokens, enc: Encoded, caches=None, with_weights=False):
        """tokens (B, T) after `past` decoded positions (the caches' length) -> logits (B, T, V), the caches,
        and each layer's cross-attention weights (B, K, T, S) when asked."""
        past = 0 if caches is None else caches[0][0][0].shape[2]
        T = tokens.shape[1]
        x = self.drop(self.embed(tokens) * self.scale + positions(past, T, self.embed.embedding_dim, tokens.device))
        keys = torch.arange(past + T, device=tokens.device)
        causal = keys[None, :] <= (past + torch.arange(T, device=tokens.device))[:, None]  # (T, past + T)
        memory_mask = None if enc.mask is None else enc.mask[:, None, None, :]  # (B, 1, 1, S)
        new, weights = [], []
        for i, layer in enumerate(self.layers):
            x, cache, w = layer(x, enc.states, memory_mask, causal, (None, None) if caches is None else caches[i],
                                with_weights)  # fmt: skip
            new.append(cache)
            weights.append(w)
        return self.out(self.norm(x)), new, weights

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: src (B, S), tgt_in (B, T) -> logits (B, T, V)."""
        return self.decode(self.encoder(src, lengths), tgt_in)

    def decode(self, enc: Encoded, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.run_decoder(tgt_in, enc)[0]

    @property
    def attention_heads(self) -> tuple[int, int]:
        """(decoder layers, heads) of the cross-attention `attention` shows."""
        return len(self.layers), self.layers[0].cross_attn.heads

    @torch.no_grad()
    def attention(self, src, tgt_in, lengths=None, layer: int = -1, head: int | None = None) -> torch.Tensor:
        """Cross-attention weights (B, T, S) with teacher forcing: of decoder layer `layer` (the last by
        default), one head or their mean."""
        _, _, weights = self.run_decoder(tgt_in, self.encoder(src, lengths), with_weights=True)
        chosen = weights[layer]  # (B, K, T, S)
        return chosen.mean(dim=1) if head is None else chosen[:, head]

    # The decoding protocol (seq2seq.models.sampling, seq2seq.models.beam): the state is (Encoded, caches).
    def start_decoding(self, source, start_id: int, lengths=None):
        enc = source if isinstance(source, Encoded) else self.encoder(source, lengths)
        token = torch.full((enc.states.shape[0], 1), start_id, dtype=torch.long, device=enc.states.device)
        return self.decode_step(token, (enc, None))

    def decode_step(self, token: torch.Tensor, state):
        enc, caches = state
        logits, caches, _ = self.run_decoder(token, enc, caches)
        return logits[:, -1], (enc, caches)

    @staticmethod
    def select_state(state, rows: torch.Tensor):
        enc, caches = state
        return enc.rows(rows), [tuple(tuple(t[rows] for t in kv) for kv in layer) for layer in caches]

    @torch.no_grad()
    def generate(self, source, start_id: int, max_new_tokens: int, lengths=None,
                 how: GenerationConfig | None = None, skip_ids=(), generator=None) -> torch.Tensor:  # fmt: skip
        """Decode a batch: source (B, S) or its Encoded -> ids (B, max_new_tokens) (argmax without `how`)."""
        logits, state = self.start_decoding(source, start_id, lengths)
        return decode_loop(self, logits, state, max_new_tokens, how, skip_ids, generator)

    @torch.no_grad()
    def greedy_from_teacher_forcing(self, src, start_id: int, enc: Encoded, tgt_in, logits) -> torch.Tensor:
        return greedy_reusing(self, start_id, enc, tgt_in, logits)

    def beam_search(self, src, start_id: int, max_new_tokens: int, how: GenerationConfig, lengths=None,
                    skip_ids=(), eos_id: int | None = None):  # fmt: skip
        logits, state = self.start_decoding(src, start_id, lengths)
        return beam_search(self, logits, state, max_new_tokens, how, skip_ids, eos_id)

    def onnx_export(self, width: int) -> OnnxExport:
        """The graphs of a fixed-width model (questions of `width` tokens, no padding mask) for serving without
        PyTorch (seq2seq.models.export). The encoder gives the memory, every decoder layer's cross-attention
        keys and values of the source (computed once), and an empty cache; a step feeds one token and the
        cache, every layer's self-attention keys and values (each stacked over layers: (L, B, K, t, D/K)),
        and gives the cache one position longer."""
        src, token = torch.zeros(2, width, dtype=torch.long), torch.zeros(2, 1, dtype=torch.long)
        names = ["source_keys", "source_values", "keys", "values"]
        example = EncoderGraph(self)(src)
        axes = {
            "src": {0: "B"},
            "token": {0: "B"},
            "logits": {0: "B"},
            "source_keys": {1: "B"},
            "source_values": {1: "B"},
        }
        axes |= {name: {1: "B", 3: "t"} for name in ("keys", "values", "keys_out", "values_out")}
        encoder = OnnxGraph("encoder.onnx", EncoderGraph(self), (src,), ["src"], names, axes)
        step = OnnxGraph("decoder_step.onnx", StepGraph(self), (token, *example), ["token", *names],
                         ["logits", "keys_out", "values_out"], axes)  # fmt: skip
        signature = {"encoder": encoder.file, "step": step.file, "memory": names[:2], "state": names[2:],
                     "initial": "encoder"}  # fmt: skip
        return OnnxExport([encoder, step], signature)


def stacked(caches) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer (keys, values) caches -> keys and values of every layer, (L, B, K, t, D/K) each."""
    return torch.stack([k for k, _ in caches]), torch.stack([v for _, v in caches])


def unstacked(keys: torch.Tensor, values: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(keys[i], values[i]) for i in range(keys.shape[0])]


class EncoderGraph(nn.Module):
    """The encoder as an ONNX graph: src (B, S) -> each decoder layer's cross-attention keys and values of the
    source (L, B, K, S, D/K), and the empty self-attention cache (L, B, K, 0, D/K)."""

    def __init__(self, model: Transformer):
        super().__init__()
        self.model = model

    def forward(self, src):
        fast = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # its fused layer has no ONNX form; the same sums unfused
        try:
            states = self.model.encoder(src).states  # (B, S, D)
        finally:
            torch.backends.mha.set_fastpath_enabled(fast)
        source = stacked([layer.cross_attn.split_keys_values(states) for layer in self.model.layers])
        empty = source[0][:, :, :, :0]  # (L, B, K, 0, D/K)
        return *source, empty, empty


class StepGraph(nn.Module):
    """One decoder step as an ONNX graph: token (B, 1), the source's keys and values, the cache -> logits
    (B, V), the cache."""

    def __init__(self, model: Transformer):
        super().__init__()
        self.model = model

    def forward(self, token, source_keys, source_values, keys, values):
        caches = list(zip(unstacked(keys, values), unstacked(source_keys, source_values), strict=True))
        # The layers read the source through its cached keys and values only: any tensor stands for it.
        enc = Encoded(source_keys, source_keys, None)
        logits, caches, _ = self.model.run_decoder(token, enc, caches)
        return logits[:, -1], *stacked([own for own, _ in caches])
