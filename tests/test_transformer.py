"""The Transformer encoder-decoder (seq2seq/models/transformer.py) through the project's machinery: training
and exact resume, every decoding strategy with its key/value cache checked against decoding without one,
cross-attention by layer and head, the Python API, sharing, evaluation and bad options."""

from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq.core.errors import ConfigError
from seq2seq.models import Transformer
from seq2seq.train import train

from .helpers import assert_same_run, compose_train

SMALL = ["experiment=transformer_addition", "task.num_examples=400", "task.max_digits=2", "task.batch_size=32",
         "model.d_model=32", "model.dim_feedforward=64", "trainer.device=cpu", "trainer.progress=false"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("transformer") / "run"
    train(compose_train(out, *SMALL, "trainer.max_epochs=2"))
    return out


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


def test_it_trains_resumes_exactly_and_decodes_every_way(run, tmp_path):
    split = tmp_path / "split"
    train(compose_train(split, *SMALL, "trainer.max_epochs=2", "trainer.max_steps=13"))
    train(compose_train(split, *SMALL, "trainer.max_epochs=2", f"trainer.resume={split / 'last.pt'}"))
    assert_same_run(run, split, ["train/loss", "val/acc", "val/loss"])
    model = seq2seq.load(run, device="cpu")
    assert type(model.module).__name__ == "Transformer"
    greedy = model.generate(["16+75", "3+4"])
    assert len(greedy) == 2 and all(isinstance(a, str) for a in greedy)
    beams = model.generate("16+75", strategy="beam", beam_size=3, n_best=3)
    assert isinstance(beams, list) and len(beams) == 3
    samples = model.generate("16+75", strategy="sample", num_samples=4, seed=1, top_k=3)
    assert len(samples) == 4 and samples == model.generate("16+75", strategy="sample", num_samples=4, seed=1, top_k=3)


def test_it_is_shared_evaluated_and_refused_like_the_others(run, tmp_path):
    from seq2seq.inference import pretrained, serving
    from seq2seq.inference.evaluate import evaluate

    folder = pretrained.save(run / "best.pt", tmp_path / "shared")
    questions = ["16+75", "9+9", "42+0"]
    assert seq2seq.load(folder, device="cpu").generate(questions) == seq2seq.load(run, device="cpu").generate(questions)
    result = evaluate(run / "best.pt", device="cpu")
    assert set(result.metrics) == {"val/loss", "val/acc", "val/char_acc"} and len(result.rows) == 40
    with pytest.raises(ConfigError, match="format=onnx: a Transformer declares no ONNX graphs"):
        serving.export(run / "best.pt", tmp_path / "onnx")
    for bad, says in [("model.num_heads=5", "d_model must be a multiple of num_heads"),
                      ("model.dropout=1.5", "from 0 to below 1"), ("model.num_layers=0", "from 1 to 24")]:  # fmt: skip
        with pytest.raises(ConfigError, match=says):
            train(compose_train(tmp_path / bad, *SMALL, bad))


def test_the_language_model_caches_trains_resumes_and_is_shared(tmp_path):
    from seq2seq.inference import pretrained
    from seq2seq.inference.evaluate import evaluate
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
    train(compose_train(tmp_path / "split", *sizes, "trainer.max_steps=30"))
    train(compose_train(tmp_path / "split", *sizes, f"trainer.resume={tmp_path / 'split' / 'last.pt'}"))
    assert_same_run(tmp_path / "run", tmp_path / "split", ["train/loss", "val/ppl"])
    folder = pretrained.save(tmp_path / "run" / "best.pt", tmp_path / "shared")
    options = {"strategy": "sample", "seed": 3, "max_new_tokens": 8, "skip": []}
    assert seq2seq.load(folder, device="cpu").generate("a b", **options) == seq2seq.load(
        tmp_path / "run", device="cpu").generate("a b", **options)  # fmt: skip
    beams = seq2seq.load(tmp_path / "run", device="cpu").generate("a", strategy="beam", n_best=2, max_new_tokens=5)
    assert len(beams) == 2
    import os

    here = os.getcwd()
    os.chdir(tmp_path)  # the saved config's data is read from the folder the command runs in
    try:
        result = evaluate(tmp_path / "run", split="test", device="cpu")
    finally:
        os.chdir(here)
    assert result.metrics["test/ppl"] == pytest.approx(metrics["test/ppl"], rel=1e-6) and len(result.rows) == 30
