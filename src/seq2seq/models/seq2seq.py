"""Encoder-Decoder models of the reference chapter (sections 2.3 and 3.2) and the attention decoder
its next chapter introduces.

Shapes: B batch, S source length, T target length, D wordvec size, H hidden size, V vocabulary.
Sources are right-padded; `lengths` (B,) counts each row's real tokens. The encoder packs padded
batches, so padding never reaches its LSTM, and returns an `Encoded`: all states, the summary h of
each row's last real token (what the plain and Peeky decoders use), and the mask attention needs.
"""

from typing import ClassVar, NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.core.checks import SIZE, Rule, one_of
from seq2seq.core.decoding import GenerationConfig
from seq2seq.core.registry import register_model
from seq2seq.models import recurrent
from seq2seq.models.beam import beam_search
from seq2seq.models.export import OnnxExport, OnnxGraph
from seq2seq.models.init import INITS, chapter_init_, check_init
from seq2seq.models.sampling import decode_loop


class Encoded(NamedTuple):
    states: torch.Tensor  # (B, S, H) every source position's state; zeros at padding
    summary: torch.Tensor  # (B, H) the state after each row's last real token
    mask: torch.Tensor | None  # (B, S) True at real tokens; None when no row is padded

    def repeat_interleave(self, k: int) -> "Encoded":
        """Each row k times in a row: the layout of beam search's B*K rows."""
        return Encoded(*(None if t is None else t.repeat_interleave(k, dim=0) for t in self))

    def rows(self, index: torch.Tensor) -> "Encoded":
        """The rows `index` (a 1-D tensor of row numbers) of every field."""
        return Encoded(*(None if t is None else t[index] for t in self))


def padding_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B,) lengths -> (B, width) mask, True at the first lengths[b] positions of row b."""
    return torch.arange(width, device=lengths.device) < lengths[:, None]


EVEN_WHEN_BIDIRECTIONAL = Rule(
    ("hidden_size", "bidirectional"), lambda size, both: not both or size % 2 == 0,
    "a bidirectional encoder needs an even hidden_size (half per direction)",
)  # fmt: skip


class Recurrent(nn.Module):
    """A module built around one recurrent cell (`cell`: lstm, gru or rnn), stored under the cell's name and
    reached as `layers`."""

    def add_rnn(self, cell: str, input_size: int, hidden_size: int, **options) -> None:
        self.cell = cell
        self.add_module(cell, recurrent.make(cell, input_size, hidden_size, **options))

    @property
    def layers(self) -> nn.RNNBase:
        return getattr(self, self.cell)  # the cell's layers, stored under its name (lstm, gru, rnn)


class Encoder(Recurrent):
    """Embedding + a recurrent cell. Passes on its hidden states only: an LSTM's memory cell stays private.

    bidirectional: each direction has hidden_size // 2 units and the states of both are concatenated,
    so decoders see hidden_size either way; the summary joins the forward direction's state after
    the last token with the backward direction's state after the first.
    """

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, bidirectional: bool = False,
                 cell: str = "lstm"):  # fmt: skip
        super().__init__()
        if not EVEN_WHEN_BIDIRECTIONAL.ok(hidden_size, bidirectional):
            raise ValueError(f"{EVEN_WHEN_BIDIRECTIONAL.says}, got {hidden_size}")
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        units = hidden_size // 2 if bidirectional else hidden_size
        self.add_rnn(cell, wordvec_size, units, bidirectional=bidirectional)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor | None = None) -> Encoded:
        x = self.embed(src)  # (B, S, D)
        if lengths is None:  # fixed width (the chapter's format): every position is real
            states, (h, *_) = recurrent.run(self.layers, x)  # (B, S, H)
            mask = None
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            states, (h, *_) = recurrent.run(
                self.layers, packed
            )  # h: (directions, B, H / directions), at each row's end
            states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])  # (B, S, H)
            mask = padding_mask(lengths, src.shape[1])
        summary = torch.cat([h[-2], h[-1]], dim=-1) if self.layers.bidirectional else h[-1]  # (B, H)
        return Encoded(states, summary, mask)


class Decoder(Recurrent):
    """Embedding + a recurrent cell started from the encoder's summary h (an LSTM's memory cell at zero) +
    Linear to the vocabulary. The state is the cell's, as a tuple (seq2seq.models.recurrent)."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, cell: str = "lstm"):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.add_rnn(cell, wordvec_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)

    def init_state(self, enc: Encoded) -> tuple:
        return recurrent.initial(self.layers, enc.summary.unsqueeze(0))  # h0 (1, B, H)

    def forward(self, tokens: torch.Tensor, enc: Encoded, state):
        """tokens (B, T) and the encoder's output -> logits (B, T, V) and the new state."""
        out, state = recurrent.run(self.layers, self.embed(tokens), state)  # (B, T, H)
        return self.out(out), state  # (B, T, V)


# The decoders below replace layers of the plain one: built after it, as they always were, so that a seed
# draws the same initial weights (constructors draw random numbers) and runs of every version compare bit for bit.


class PeekyDecoder(Decoder):
    """Decoder that also 'peeks' at h: h is concatenated to the cell's input and to the Linear input
    at every time step, so the encoder's summary reaches every step, not only the first."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, cell: str = "lstm"):
        super().__init__(vocab_size, wordvec_size, hidden_size, cell)
        self.add_rnn(cell, wordvec_size + hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size + hidden_size, vocab_size)

    def forward(self, tokens, enc: Encoded, state):
        B, T = tokens.shape
        peek = enc.summary[:, None].expand(B, T, enc.summary.shape[-1])  # (B, T, H), a view: no copy
        x = torch.cat([self.embed(tokens), peek], dim=-1)  # (B, T, D + H)
        out, state = recurrent.run(self.layers, x, state)  # (B, T, H)
        return self.out(torch.cat([out, peek], dim=-1)), state  # (B, T, V)


class AttentionDecoder(Decoder):
    """Decoder with dot-product attention: at each step the cell's output scores every real encoder
    state, the softmax of the scores weights them into a context vector, and [output; context] feeds
    the Linear layer. Padding gets weight exactly 0."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, cell: str = "lstm"):
        super().__init__(vocab_size, wordvec_size, hidden_size, cell)
        self.out = nn.Linear(hidden_size + hidden_size, vocab_size)

    def attend(self, out: torch.Tensor, enc: Encoded) -> torch.Tensor:
        """Attention weights (B, T, S) of decoder outputs (B, T, H) over the encoder's states."""
        scores = torch.bmm(out, enc.states.transpose(1, 2))  # (B, T, S)
        if enc.mask is not None:
            scores = scores.masked_fill(~enc.mask[:, None, :], float("-inf"))
        return scores.softmax(dim=-1)

    def forward(self, tokens, enc: Encoded, state, with_weights: bool = False):
        """As Decoder.forward; with_weights also returns the attention weights (B, T, S)."""
        out, state = recurrent.run(self.layers, self.embed(tokens), state)  # (B, T, H)
        weights = self.attend(out, enc)  # (B, T, S)
        context = torch.bmm(weights, enc.states)  # (B, T, H)
        logits = self.out(torch.cat([out, context], dim=-1))  # (B, T, V)
        return (logits, state, weights) if with_weights else (logits, state)


DECODERS = {"plain": Decoder, "peeky": PeekyDecoder, "attention": AttentionDecoder}


def greedy_reusing(model, start_id: int, enc: Encoded, tgt_in: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Greedy outputs (B, T) from a teacher-forced pass (tgt_in (B, T), its logits (B, T, V)): the argmax where
    it stays on the teacher's path, the rows that leave it decoded again by `model.generate`."""
    pred = logits.argmax(dim=-1)  # (B, T)
    strays = (pred[:, :-1] != tgt_in[:, 1:]).any(dim=1) | (tgt_in[:, 0] != start_id)  # (B,)
    index = strays.nonzero().squeeze(1)  # rows whose greedy inputs leave the teacher's path
    if len(index):
        pred[index] = model.generate(enc.rows(index), start_id, tgt_in.shape[1])
    return pred


@register_model("seq2seq")
class Seq2seq(nn.Module):
    """Encoder + Decoder joined by the encoder's hidden states.

    decoder: "plain" (section 2.3), "peeky" (section 3.2) or "attention" (the chapter's successor).
    cell: the recurrent cell of the encoder and the decoder: "lstm" (the chapter's), "gru" or "rnn".
    init: "chapter" (the reference code's initialisation, see chapter_init_) or "pytorch" (defaults).
    bidirectional: read the source in both directions (see Encoder).
    encoder: a module in place of the recurrent encoder, returning an `Encoded` (ImageCaptioner's CNN); it
        keeps its own initialisation. Not a config value: checkpoints rebuild it through their class.
    """

    family = "seq2seq"  # what tasks and generation may expect of it (see seq2seq.tasks.base)
    CHECKS: ClassVar[dict] = {
        "wordvec_size": SIZE,
        "hidden_size": SIZE,
        "decoder": one_of(tuple(DECODERS)),
        "cell": one_of(tuple(recurrent.CELLS)),
        "init": one_of(INITS),
    }
    RULES: ClassVar[tuple] = (EVEN_WHEN_BIDIRECTIONAL,)

    def __init__(
        self,
        vocab_size: int,
        wordvec_size: int = 16,  # embedding size of the encoder and the decoder
        hidden_size: int = 128,  # units of the recurrent cell (a bidirectional encoder: half per direction)
        decoder: str = "plain",  # plain (section 2.3) | peeky: h feeds every step (3.2) | attention
        init: str = "chapter",  # the reference code's N(0, 1/fan_in) weights; "pytorch" for PyTorch's defaults
        bidirectional: bool = False,  # the encoder reads the source both ways (hidden_size must be even)
        cell: str = "lstm",  # lstm | gru | rnn (tanh): PyTorch's nn.LSTM, nn.GRU, nn.RNN in encoder and decoder
        encoder: nn.Module | None = None,
    ):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        check_init(init)
        if encoder is None:
            encoder = Encoder(vocab_size, wordvec_size, hidden_size, bidirectional, cell)
            own_encoder = True
        else:
            own_encoder = False
        self.encoder = encoder
        self.decoder = DECODERS[decoder](vocab_size, wordvec_size, hidden_size, cell)
        if init == "chapter":
            chapter_init_(self if own_encoder else self.decoder)

    @property
    def has_attention(self) -> bool:
        """Whether `attention()` gives weights over the source (for heatmaps)."""
        return isinstance(self.decoder, AttentionDecoder)

    @property
    def attention_heads(self) -> tuple[int, int]:
        """(layers, heads) of the attention `attention` shows: the attention decoder's is one of each."""
        return (1, 1)

    @torch.no_grad()
    def attention(self, src: torch.Tensor, tgt_in: torch.Tensor, lengths: torch.Tensor | None = None,
                  layer: int = -1, head: int | None = None) -> torch.Tensor:  # fmt: skip
        """Attention weights (B, T, S) with teacher forcing: which source position each step reads (`layer`
        and `head` as the Transformer's: its only layer and head are 0 or -1)."""
        if not self.has_attention:
            raise TypeError(f"a Seq2seq with the {type(self.decoder).__name__} has no attention weights")
        if layer not in (0, -1) or head not in (None, 0, -1):
            raise ValueError("the attention decoder has one attention layer of one head")
        enc = self.encoder(src, lengths)
        _, _, weights = self.decoder(tgt_in, enc, self.decoder.init_state(enc), with_weights=True)
        return weights

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: src (B, S) with lengths (B,), decoder input tgt_in (B, T) -> logits (B, T, V)."""
        return self.decode(self.encoder(src, lengths), tgt_in)

    def decode(self, enc: Encoded, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing from the encoder's output -> logits (B, T, V)."""
        logits, _ = self.decoder(tgt_in, enc, self.decoder.init_state(enc))
        return logits

    # The decoding protocol (see seq2seq.models.beam): the state is (encoder output, the cell's state tuple).
    def start_decoding(self, source, start_id: int, lengths=None):
        """Encode `source` (B, S), or take it encoded (an `Encoded`), and run the decoder's first step on the
        start symbol -> logits (B, V), state."""
        enc = source if isinstance(source, Encoded) else self.encoder(source, lengths)
        token = torch.full((enc.summary.shape[0], 1), start_id, dtype=torch.long, device=enc.summary.device)
        return self.decode_step(token, (enc, self.decoder.init_state(enc)))

    def decode_step(self, token: torch.Tensor, state):
        """token (N, 1) -> logits (N, V) of the next token, and the new state."""
        enc, cell_state = state
        logits, cell_state = self.decoder(token, enc, cell_state)  # (N, 1, V)
        return logits[:, -1], (enc, cell_state)

    @staticmethod
    def select_state(state, rows: torch.Tensor):
        enc, cell_state = state
        return enc.rows(rows), recurrent.rows(cell_state, rows)

    @torch.no_grad()
    def generate(
        self,
        source,
        start_id: int,
        max_new_tokens: int,
        lengths: torch.Tensor | None = None,
        how: GenerationConfig | None = None,
        skip_ids=(),
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Decode a whole batch at once: source (B, S), or its `Encoded` when the caller has it already ->
        token ids (B, max_new_tokens), greedy or sampled as `how` (resolved decoding options,
        seq2seq.core.decoding) says; without it, argmax (validation's)."""
        logits, state = self.start_decoding(source, start_id, lengths)
        return decode_loop(self, logits, state, max_new_tokens, how, skip_ids, generator)

    @torch.no_grad()
    def greedy_from_teacher_forcing(
        self, src: torch.Tensor, start_id: int, enc: Encoded, tgt_in: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor:
        """Greedy decoding (B, T) that reuses a teacher-forced pass: tgt_in (B, T) and its logits (B, T, V).

        Greedy decoding feeds back its own argmax where teacher forcing feeds tgt_in. In a row whose
        argmax equals the next teacher-forced input at every step, both read the same inputs, so the
        argmax of the teacher-forced logits already is that row's greedy output. Only the other rows
        are decoded again, which makes validating a well-trained model almost free of decoding.
        """
        return greedy_reusing(self, start_id, enc, tgt_in, logits)

    def beam_search(
        self, src: torch.Tensor, start_id: int, max_new_tokens: int, how: GenerationConfig, lengths=None,
        skip_ids=(), eos_id: int | None = None,
    ):  # fmt: skip
        """Beam search decoding (see seq2seq.models.beam): (B, n_best, max_new_tokens) ids and their scores."""
        logits, state = self.start_decoding(src, start_id, lengths)
        return beam_search(self, logits, state, max_new_tokens, how, skip_ids, eos_id)

    def onnx_export(self, width: int) -> OnnxExport:
        """The graphs of a fixed-width model (questions of `width` tokens) for serving without PyTorch
        (seq2seq.models.export): the encoder gives the memory each step reads and the decoder's first state;
        a step feeds one token."""
        names = recurrent.state_names(self.decoder.layers)
        outs = [f"{n}_out" for n in names]
        src, token = torch.zeros(2, width, dtype=torch.long), torch.zeros(2, 1, dtype=torch.long)
        enc = self.encoder(src)
        axes = {name: {0: "B"} for name in ("src", "token", "states", "summary", "logits")}
        axes |= {name: {1: "B"} for name in (*names, *outs)}  # a state is (layers, B, H)
        encoder = OnnxGraph("encoder.onnx", EncoderGraph(self), (src,), ["src"], ["states", "summary", *names], axes)
        inputs = (token, enc.states, enc.summary, *self.decoder.init_state(enc))
        step = OnnxGraph("decoder_step.onnx", DecoderStepGraph(self), inputs, ["token", "states", "summary", *names],
                         ["logits", *outs], axes)  # fmt: skip
        signature = {"encoder": encoder.file, "step": step.file, "memory": ["states", "summary"],
                     "state": list(names), "initial": "encoder"}  # fmt: skip
        return OnnxExport([encoder, step], signature)


class EncoderGraph(nn.Module):
    """An Encoder-Decoder's encoder as an ONNX graph: src -> states, summary and the decoder's first state."""

    def __init__(self, model: Seq2seq):
        super().__init__()
        self.model = model

    def forward(self, src):
        enc = self.model.encoder(src)
        return enc.states, enc.summary, *self.model.decoder.init_state(enc)


class DecoderStepGraph(nn.Module):
    """One decoder step as an ONNX graph: token, the memory, the state -> logits of the next token, the state."""

    def __init__(self, model: Seq2seq):
        super().__init__()
        self.model = model

    def forward(self, token, states, summary, *state):
        logits, state = self.model.decoder(token, Encoded(states, summary, None), tuple(state))
        return logits[:, -1], *state
