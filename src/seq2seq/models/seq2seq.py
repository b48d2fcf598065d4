"""Encoder-Decoder models of the reference chapter (sections 2.3 and 3.2) and the attention decoder
its next chapter introduces.

Shapes: B batch, S source length, T target length, D wordvec size, H hidden size, V vocabulary.
The encoder returns all its hidden states `enc` (B, S, H); h = enc[:, -1] is the summary that the
plain and Peeky decoders use.
"""

import torch
from torch import nn

from seq2seq.models.beam import beam_search
from seq2seq.models.init import chapter_init_, check_init


class Encoder(nn.Module):
    """Embedding + LSTM. Passes on its hidden states only: the memory cell stays private."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = nn.LSTM(wordvec_size, hidden_size, batch_first=True)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        enc, _ = self.lstm(self.embed(src))  # (B, S, H)
        return enc


class Decoder(nn.Module):
    """Embedding + LSTM started from the encoder's h (cell zero) + Linear to the vocabulary."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = nn.LSTM(wordvec_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)

    def init_state(self, enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h0 = enc[:, -1].unsqueeze(0)  # (1, B, H)
        return h0, torch.zeros_like(h0)

    def forward(self, tokens, enc, state):
        """tokens (B, T), encoder states enc (B, S, H) -> logits (B, T, V) and the new LSTM state."""
        out, state = self.lstm(self.embed(tokens), state)  # (B, T, H)
        return self.out(out), state  # (B, T, V)


class PeekyDecoder(Decoder):
    """Decoder that also 'peeks' at h: h is concatenated to the LSTM input and to the Linear input
    at every time step, so the encoder's summary reaches every step, not only the first."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__(vocab_size, wordvec_size, hidden_size)
        self.lstm = nn.LSTM(wordvec_size + hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size + hidden_size, vocab_size)

    def forward(self, tokens, enc, state):
        B, T = tokens.shape
        peek = enc[:, -1:].expand(B, T, enc.shape[-1])  # (B, T, H), a view: no copy
        x = torch.cat([self.embed(tokens), peek], dim=-1)  # (B, T, D + H)
        out, state = self.lstm(x, state)  # (B, T, H)
        return self.out(torch.cat([out, peek], dim=-1)), state  # (B, T, V)


class AttentionDecoder(Decoder):
    """Decoder with dot-product attention: at each step the LSTM output scores every encoder state,
    the softmax of the scores weights them into a context vector, and [output; context] feeds the
    Linear layer."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__(vocab_size, wordvec_size, hidden_size)
        self.out = nn.Linear(hidden_size + hidden_size, vocab_size)

    def attend(self, out: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, T, S) of decoder outputs (B, T, H) over encoder states (B, S, H)."""
        return torch.bmm(out, enc.transpose(1, 2)).softmax(dim=-1)

    def forward(self, tokens, enc, state):
        out, state = self.lstm(self.embed(tokens), state)  # (B, T, H)
        context = torch.bmm(self.attend(out, enc), enc)  # (B, T, H)
        return self.out(torch.cat([out, context], dim=-1)), state  # (B, T, V)


class Seq2seq(nn.Module):
    """Encoder + Decoder joined by the encoder's hidden states.

    init: "chapter" (the reference code's initialisation, see chapter_init_) or "pytorch" (defaults).
    """

    decoder_class: type[Decoder] = Decoder

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, init: str = "chapter"):
        super().__init__()
        self.encoder = Encoder(vocab_size, wordvec_size, hidden_size)
        self.decoder = self.decoder_class(vocab_size, wordvec_size, hidden_size)
        check_init(init)
        if init == "chapter":
            chapter_init_(self)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src (B, S), decoder input tgt_in (B, T) -> logits (B, T, V)."""
        return self.decode(self.encoder(src), tgt_in)

    def decode(self, enc: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing from encoder states enc (B, S, H) -> logits (B, T, V)."""
        logits, _ = self.decoder(tgt_in, enc, self.decoder.init_state(enc))
        return logits

    @torch.no_grad()
    def generate(self, src: torch.Tensor, start_id: int, length: int, enc: torch.Tensor | None = None):
        """Greedy (argmax) decoding of a whole batch at once: src (B, S) -> token ids (B, length).
        `enc`, the encoder states of src, saves encoding twice when the caller already has them."""
        enc = self.encoder(src) if enc is None else enc  # (B, S, H)
        state = self.decoder.init_state(enc)
        token = torch.full((src.shape[0], 1), start_id, dtype=torch.long, device=src.device)  # (B, 1)
        out = []
        for _ in range(length):
            logits, state = self.decoder(token, enc, state)  # (B, 1, V)
            token = logits.argmax(dim=-1)  # (B, 1)
            out.append(token)
        return torch.cat(out, dim=1)  # (B, length)

    def beam_search(self, src: torch.Tensor, start_id: int, length: int, **options):
        """Beam search decoding (see seq2seq.models.beam): (B, n_best, length) ids and their scores."""
        return beam_search(self, src, start_id, length, **options)


class PeekySeq2seq(Seq2seq):
    """Seq2seq with the Peeky decoder (section 3.2)."""

    decoder_class = PeekyDecoder


class AttentionSeq2seq(Seq2seq):
    """Seq2seq with the attention decoder (the chapter's announced successor)."""

    decoder_class = AttentionDecoder

    @torch.no_grad()
    def attention(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, T, S) with teacher forcing: which source position each step reads."""
        enc = self.encoder(src)  # (B, S, H)
        out, _ = self.decoder.lstm(self.decoder.embed(tgt_in), self.decoder.init_state(enc))  # (B, T, H)
        return self.decoder.attend(out, enc)
