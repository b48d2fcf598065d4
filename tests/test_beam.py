import math

import pytest
import torch
from torch import nn

from seq2seq.core import decoding
from seq2seq.core.decoding import GenerationConfig
from seq2seq.models.seq2seq import DECODERS, Seq2seq


class TableDecoder(nn.Module):
    """A decoder whose next-token distribution depends only on the previous token (a fixed table)."""

    def __init__(self, log_probs: torch.Tensor):
        super().__init__()
        self.table = log_probs  # (V, V): row = previous token

    def init_state(self, enc):
        h = torch.zeros(1, enc.summary.shape[0], 1)
        return h, h

    def forward(self, tokens, enc, state):
        return self.table[tokens], state  # (B, T, V)


def beam(**options) -> GenerationConfig:
    return decoding.resolve({"strategy": "beam", **options}, "seq2seq")


def table_model(rows: list[list[float]]) -> Seq2seq:
    model = Seq2seq(vocab_size=len(rows), wordvec_size=2, hidden_size=2)
    model.decoder = TableDecoder(torch.tensor(rows).log())
    return model


def test_beam_of_one_is_greedy():
    torch.manual_seed(0)
    for decoder in DECODERS:
        model = Seq2seq(13, 8, 16, decoder=decoder).eval()
        src = torch.randint(13, (6, 7))
        tokens, _ = model.beam_search(src, start_id=0, max_new_tokens=4, how=beam(beam_size=1))
        assert torch.equal(tokens[:, 0], model.generate(src, 0, 4))


def test_beam_finds_a_sequence_greedy_misses():
    # From the start (0): 1 (p=.6) or 2 (p=.4). After 1 every token is equally likely (.25);
    # after 2, token 3 is certain. Greedy takes 1 then scores .6 * .25 = .15; the best is 0->2->3: .4.
    model = table_model([[0.0, 0.6, 0.4, 0.0], [0.25] * 4, [0.0, 0.0, 0.0, 1.0], [0.25] * 4])
    src = torch.zeros(1, 3, dtype=torch.long)
    greedy = model.generate(src, start_id=0, max_new_tokens=2)
    tokens, scores = model.beam_search(src, start_id=0, max_new_tokens=2, how=beam(beam_size=2, length_penalty=0.0))
    assert greedy.tolist() == [[1, 0]]
    assert tokens[0, 0].tolist() == [2, 3]
    assert scores[0, 0].item() == pytest.approx(math.log(0.4))


def test_n_best_is_sorted_and_eos_ends_a_beam():
    # 3 is eos. From 0: eos (p=.5) or 1 (p=.5); after 1 the sequence continues with 2 (p=.9).
    model = table_model([[0.0, 0.5, 0.0, 0.5], [0.0, 0.0, 0.9, 0.1], [0.0, 0.0, 0.5, 0.5], [0.25] * 4])
    src = torch.zeros(1, 3, dtype=torch.long)
    tokens, scores = model.beam_search(src, 0, 3, beam(beam_size=3, n_best=3, length_penalty=0.0), eos_id=3)
    assert (scores[0, :-1] >= scores[0, 1:]).all()
    assert tokens[0, 0].tolist() == [3, 3, 3]  # eos at once, then padding with eos: score log .5
    assert scores[0, 0].item() == pytest.approx(math.log(0.5))
    # a length penalty of 1 ranks by mean log-probability per token: longer sequences can win
    long_tokens, _ = model.beam_search(src, 0, 3, beam(beam_size=3, length_penalty=1.0), eos_id=3)
    assert long_tokens[0, 0].tolist() != [3, 3, 3]


def test_bad_n_best():
    with pytest.raises(ValueError, match="n_best"):
        how = beam(beam_size=2).replace(n_best=3)  # past resolve's own check
        Seq2seq(5, 2, 2).beam_search(torch.zeros(1, 2, dtype=torch.long), 0, 2, how)
