import pytest
import torch
from torch.nn import functional as F

from seq2seq.models.rnnlm import Rnnlm
from seq2seq.models.seq2seq import DECODERS, Decoder, Encoded, PeekyDecoder, Seq2seq

V, D, H, B, S, T = 13, 8, 16, 4, 7, 4


def test_seq2seq_shapes():
    for decoder in DECODERS:
        model = Seq2seq(V, D, H, decoder=decoder)
        src, tgt = torch.randint(V, (B, S)), torch.randint(V, (B, T))
        enc = model.encoder(src)
        assert enc.states.shape == (B, S, H) and enc.summary.shape == (B, H) and enc.mask is None
        assert model(src, tgt).shape == (B, T, V)
        assert model.generate(src, start_id=0, max_new_tokens=T).shape == (B, T)


def test_peeky_decoder_feeds_h_to_every_step():
    """With the LSTM state fixed, h only matters to a plain Decoder through its initial state, but
    changes every step's output of a PeekyDecoder."""
    torch.manual_seed(0)
    tokens = torch.randint(V, (B, T))
    zero_state = (torch.zeros(1, B, H), torch.zeros(1, B, H))
    h1, h2 = (Encoded(torch.randn(B, S, H), torch.randn(B, H), None) for _ in range(2))
    plain, peeky = Decoder(V, D, H), PeekyDecoder(V, D, H)
    assert torch.equal(plain(tokens, h1, zero_state)[0], plain(tokens, h2, zero_state)[0])
    diff = (peeky(tokens, h1, zero_state)[0] - peeky(tokens, h2, zero_state)[0]).abs().amax(dim=(0, 2))
    assert (diff > 1e-4).all(), diff  # every time step sees h


def test_peeky_parameter_shapes_follow_the_chapter():
    peeky = PeekyDecoder(V, D, H)
    assert peeky.lstm.weight_ih_l0.shape == (4 * H, D + H)
    assert peeky.out.weight.shape == (V, H + H)


def test_greedy_decoding_of_a_trained_tiny_model():
    """Learn to copy 3-symbol strings; greedy generation must then reproduce them."""
    torch.manual_seed(0)
    vocab, start = 6, 5
    src = torch.randint(5, (64, 3))
    tgt = torch.cat([torch.full((64, 1), start), src], dim=1)  # `_abc`
    model = Seq2seq(vocab, 8, 32, decoder="peeky")
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        loss = F.cross_entropy(model(src, tgt[:, :-1]).flatten(0, 1), tgt[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(model.generate(src, start, 3), src)


def test_generate_batched_equals_one_at_a_time():
    torch.manual_seed(0)
    model = Seq2seq(V, D, H).eval()
    src = torch.randint(V, (6, S))
    batched = model.generate(src, 0, T)
    single = torch.cat([model.generate(src[i : i + 1], 0, T) for i in range(6)])
    assert torch.equal(batched, single)


def test_rnnlm_shapes_and_state():
    model = Rnnlm(V, 10, 10, num_layers=2, dropout=0.5, tie_weights=True)
    assert model.out.weight is model.embed.weight
    logits, (h, c) = model(torch.randint(V, (B, T)))
    assert logits.shape == (B, T, V) and h.shape == (2, B, 10) and c.shape == (2, B, 10)


def test_attention_weights_are_a_distribution_over_source_positions():
    torch.manual_seed(0)
    model = Seq2seq(V, D, H, decoder="attention")
    src, tgt = torch.randint(V, (B, S)), torch.randint(V, (B, T))
    weights = model.attention(src, tgt)
    assert weights.shape == (B, T, S)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(B, T))
    assert (weights >= 0).all()


def test_attention_reads_every_source_position():
    """Changing only the first source token changes the attention decoder's first output through the
    context vector, even with the LSTM's initial state held fixed."""
    torch.manual_seed(0)
    model = Seq2seq(V, D, H, decoder="attention")
    src = torch.randint(V, (1, S))
    other = src.clone()
    other[0, 0] = (src[0, 0] + 1) % V
    tokens = torch.zeros(1, 1, dtype=torch.long)
    state = (torch.zeros(1, 1, H), torch.zeros(1, 1, H))
    a, _ = model.decoder(tokens, model.encoder(src), state)
    b, _ = model.decoder(tokens, model.encoder(other), state)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_greedy_from_teacher_forcing_equals_greedy_decoding(decoder):
    """Rows whose teacher-forced inputs are the model's own greedy path reuse that pass; only the
    others are decoded again, and either way the answer is what `generate` gives."""
    torch.manual_seed(0)
    n = 64
    model = Seq2seq(V, D, H, decoder=decoder).eval()
    src = torch.randint(V, (n, S))
    greedy = model.generate(src, 0, T)
    tgt_in = torch.cat([torch.zeros(n, 1, dtype=torch.long), greedy[:, :-1]], dim=1)  # the greedy path...
    tgt_in[n // 2 :, 1:] = torch.randint(V, (n // 2, T - 1))  # ...in the first half of the rows only
    tgt_in[-1, 0] = 1  # a row that does not even start at the start token
    strays = (tgt_in[:, 1:] != greedy[:, :-1]).any(dim=1) | (tgt_in[:, 0] != 0)
    enc = model.encoder(src)
    decoded = []
    plain_generate = model.generate
    # the rows decoded again: generate gets their encoder output (an Encoded), not the source again
    model.generate = lambda enc, *a, **k: decoded.append(len(enc.summary)) or plain_generate(enc, *a, **k)
    fast = model.greedy_from_teacher_forcing(src, 0, enc, tgt_in, model.decode(enc, tgt_in))
    assert torch.equal(fast, greedy)
    assert decoded == [int(strays.sum())] and 0 < decoded[0] <= n // 2 + 1, decoded
