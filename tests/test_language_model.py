import math
import urllib.error

import pytest
import torch

from seq2seq.core import decoding
from seq2seq.core.errors import DataError
from seq2seq.data import ptb
from seq2seq.models import Rnnlm
from seq2seq.models.recurrent import detach as repackage_hidden
from seq2seq.models.sampling import sample_next
from seq2seq.tasks import LanguageModelTask
from seq2seq.tasks.language_model import batchify, windows
from seq2seq.training.loop import train


@pytest.fixture
def ptb_data(ptb_dir):
    return ptb.load_ptb(ptb_dir, download_missing=False)


def test_vocabulary_and_token_counts_match_the_shared_readme(ptb_data):
    vocab, streams = ptb_data
    assert len(vocab) == 10_000
    assert {k: len(v) for k, v in streams.items()} == {"train": 929_589, "valid": 73_760, "test": 82_430}
    # ids in order of first appearance: the first line is ' aer banknote berlitz ... '
    assert vocab.itos[:3] == ["aer", "banknote", "berlitz"]
    assert streams["train"].count(vocab.stoi["<eos>"]) == 42_068  # one per line of ptb.train.txt


def test_shared_files_match_the_loader_checksums(ptb_dir):
    import hashlib

    for split, digest in ptb.SHA256.items():
        assert hashlib.sha256((ptb_dir / f"ptb.{split}.txt").read_bytes()).hexdigest() == digest


def test_missing_files_offline_say_where_to_put_them(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"ptb.train.txt: no such file.*task.data_dir"):
        ptb.load_ptb(tmp_path, download_missing=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(ptb.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"downloading it from .* failed .*copy ptb.train.txt"):
        ptb.load_ptb(tmp_path)


def test_download_verifies_the_checksum(tmp_path, monkeypatch):
    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b" not the real file \n"

    monkeypatch.setattr(ptb.urllib.request, "urlopen", lambda *a, **k: Response())
    with pytest.raises(DataError, match="checksum mismatch"):
        ptb.download("train", tmp_path)
    assert not (tmp_path / "ptb.train.txt").exists()


def test_malformed_ptb_files(tmp_path):
    for split in ptb.SPLITS:
        (tmp_path / f"ptb.{split}.txt").write_text(" a b \n b a \n")
    (tmp_path / "ptb.test.txt").write_text("")
    with pytest.raises(DataError, match=r"ptb.test.txt: empty file"):
        ptb.load_ptb(tmp_path, download_missing=False)
    (tmp_path / "ptb.test.txt").write_text(" a c \n")
    with pytest.raises(DataError, match=r"ptb.test.txt:1: 'c' is not in the training vocabulary"):
        ptb.load_ptb(tmp_path, download_missing=False)
    (tmp_path / "ptb.test.txt").write_bytes(b" a \n b \xff \n")
    with pytest.raises(DataError, match=r"ptb.test.txt:2: not UTF-8"):
        ptb.load_ptb(tmp_path, download_missing=False)


def test_batching_layout_rows_continue_where_they_left_off():
    data = batchify(list(range(26)), batch_size=3)  # 2 leftover tokens dropped
    assert data.tolist() == [list(range(0, 8)), list(range(8, 16)), list(range(16, 24))]
    wins = windows(data, time_size=3)
    assert [x.shape[1] for x, _ in wins] == [3, 3, 1]
    x0, y0 = wins[0]
    x1, _ = wins[1]
    assert torch.equal(y0, x0 + 1)  # target is the next word
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # row i continues where its last window stopped


def test_state_is_carried_and_detached():
    model = Rnnlm(10, 4, 4)
    task = LanguageModelTask.__new__(LanguageModelTask)  # only training_step is used here
    x = torch.randint(10, (2, 5))
    loss, state = task.training_step(model, (x, x), None)
    loss.backward()
    assert state[0].requires_grad
    detached = repackage_hidden(state)
    assert not detached[0].requires_grad and torch.equal(detached[0], state[0])
    loss2, _ = task.training_step(model, (x, x), state)  # carried state: no backward into window 1
    loss2.backward()


def test_uniform_model_has_perplexity_equal_to_vocabulary_size(ptb_dir):
    task = LanguageModelTask(str(ptb_dir), download=False)
    model = Rnnlm(task.vocab_size, 8, 8)
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
    metrics, _ = task.evaluate(model, "test")
    assert metrics["test/ppl"] == pytest.approx(10_000, rel=1e-4)


def test_tiny_language_model_overfits_a_tiny_corpus(tmp_path, make_cfg):
    sentence = " the cat sat on the mat \n"
    for split in ptb.SPLITS:
        (tmp_path / f"ptb.{split}.txt").write_text(sentence * 40)
    cfg = make_cfg(
        "task=ptb",
        "model=rnnlm",
        "optimizer=adam",
        "optimizer.lr=0.01",
        f"task.data_dir={tmp_path}",
        "task.batch_size=4",
        "task.time_size=10",
        "task.eval_batch_size=2",
        "model.wordvec_size=16",
        "model.hidden_size=32",
        "trainer.max_epochs=15",
        "trainer.progress=false",
    )
    metrics = train(cfg)
    assert metrics["test/ppl"] < 1.5  # the corpus is deterministic after the first word
    assert metrics["best/val/ppl"] == pytest.approx(metrics["val/ppl"], rel=0.5)


def test_sampling_respects_skip_list_top_k_and_seed():
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]]).repeat(2000, 1)
    sample = decoding.resolve({"strategy": "sample"}, "lm")
    picked = sample_next(logits, sample, skip_ids=[0, 1], generator=torch.Generator().manual_seed(0))
    assert not set(picked.flatten().tolist()) & {0, 1}
    top2 = sample_next(logits, sample.replace(top_k=2), generator=torch.Generator().manual_seed(0))
    assert set(top2.flatten().tolist()) == {0, 1}
    top_p = sample_next(logits, sample.replace(top_p=0.5), generator=torch.Generator().manual_seed(0))
    assert set(top_p.flatten().tolist()) == {0}  # word 0 alone holds 64% of the mass
    assert sample_next(logits[:1], sample.replace(strategy="greedy"), skip_ids=[0]).item() == 1
    a = sample_next(logits, sample, generator=torch.Generator().manual_seed(1))
    b = sample_next(logits, sample, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_prompt_warm_up_changes_the_state():
    torch.manual_seed(0)
    model = Rnnlm(20, 8, 8).eval()
    how = decoding.resolve({"strategy": "sample"}, "lm")
    gen = [model.generate(torch.tensor(p), 5, how, generator=torch.Generator().manual_seed(0)) for p in ([3], [7, 3])]
    # Same last word, same sampling seed: only the prompt's earlier word differs.
    _, s1 = model(torch.tensor([[3]]))
    _, s2 = model(torch.tensor([[7, 3]]))
    assert not torch.allclose(s1[0], s2[0])
    assert gen[0].shape == gen[1].shape == (1, 5)


def test_perplexity_is_exp_of_the_mean_loss(ptb_dir):
    task = LanguageModelTask(str(ptb_dir), download=False)
    torch.manual_seed(0)
    metrics, _ = task.evaluate(Rnnlm(task.vocab_size, 8, 8), "val")
    assert metrics["val/ppl"] == pytest.approx(math.exp(metrics["val/loss"]))
