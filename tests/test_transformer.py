"""What is the Transformers' own (seq2seq/models/transformer.py, transformer_lm.py): the key/value cache
decodes as the whole prefix does, cross-attention by layer and head gives padding nothing, the language model
learns from windows read on their own, bad options. Every feature of the project for every family (training,
resume, decoding, sharing, ONNX, evaluation, the explorer, sweeps, torchrun, chat): tests/test_families.py."""

import pytest
import torch

from seq2seq.core.errors import ConfigError
from seq2seq.models import Transformer
from seq2seq.train import train

from .helpers import compose_train

SMALL = ["experiment=transformer_addition", "task.num_examples=400", "task.max_digits=2", "task.batch_size=32",
         "model.d_model=32", "model.dim_feedforward=64", "trainer.device=cpu", "trainer.progress=false"]  # fmt: skip


def test_the_cache_decodes_as_the_whole_prefix_does():
    """Greedy decoding with the key/value cache equals feeding the whole prefix again at every step."""
    torch.manual_seed(0)
    model = Transformer(13, d_model=32, num_heads=4, num_layers=2, dim_feedforward=64).eval()
    src, lengths = torch.randint(0, 13, (5, 7)), torch.tensor([7, 5, 7, 3, 6])
    cached = model.generate(src, 1, 6, lengths)  # (5, 6)
    enc = model.encoder(src, lengths)
    tokens = torch.full((5, 1), 1)
    for _ in range(6):
        logits = model.decode(enc, tokens)  # (5, t, V): no cache
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(cached, tokens[:, 1:])
    weights = model.attention(src, tokens[:, :-1], lengths, layer=0, head=2)  # (B, T, S)
    assert weights.shape == (5, 6, 7) and torch.allclose(weights.sum(-1), torch.ones(5, 6))
    assert float(weights[3, :, 3:].abs().max()) == 0.0  # padding gets no attention
    assert model.attention(src, tokens[:, :-1], lengths).shape == (5, 6, 7)  # the last layer, heads averaged


def test_bad_options_are_refused_in_one_line(tmp_path):
    for bad, says in [("model.num_heads=5", "d_model must be a multiple of num_heads"),
                      ("model.dropout=1.5", "from 0 to below 1"), ("model.num_layers=0", "from 1 to 24")]:  # fmt: skip
        with pytest.raises(ConfigError, match=says):
            train(compose_train(tmp_path / bad, "experiment=transformer_addition", "debug=tiny", bad))


def test_the_language_model_caches_and_learns_a_cycle_from_short_windows(tmp_path):
    from seq2seq.models import TransformerLM

    torch.manual_seed(0)
    lm = TransformerLM(20, d_model=16, num_heads=2, num_layers=2, dim_feedforward=32).eval()
    prompt = torch.tensor([3, 5, 7])
    cached = lm.generate(prompt, 6)  # (1, 6): greedy with the key/value cache
    tokens = prompt[None]
    for _ in range(6):  # the whole sequence again at every step, no cache
        tokens = torch.cat([tokens, lm(tokens)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(cached, tokens[:, 3:])
    data = tmp_path / "ptb"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_text(" a b c d e f \n" * 30)
    sizes = ["experiment=transformer_ptb", f"task.data_dir={data}", "task.batch_size=2", "task.time_size=4",
             "task.eval_batch_size=2", "model.d_model=16", "model.dim_feedforward=32", "trainer.device=cpu",
             "trainer.progress=false", "trainer.max_epochs=2"]  # fmt: skip
    metrics = train(compose_train(tmp_path / "run", *sizes))
    assert metrics["test/ppl"] < 6  # six words a cycle, learnt from windows of four
