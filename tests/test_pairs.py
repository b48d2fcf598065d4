"""Variable-length pairs: TSV loading, vocabulary, padding that never leaks into the model, bucketing,
metrics, the attention mask and the TensorBoard heatmap."""

import math
import random

import pytest
import sacrebleu
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.nn import functional as F

from seq2seq.core.errors import ConfigError, DataError
from seq2seq.data.text import SPECIALS, build_vocab, load_tsv, tokenize
from seq2seq.models.seq2seq import DECODERS, Seq2seq
from seq2seq.tasks import PairsTask, TsvTask
from seq2seq.training.loop import train

from .helpers import compose_train, write_reverse_tsv

TINY_PAIRS = ["model.wordvec_size=16", "model.hidden_size=32", "trainer.progress=false", "task.num_samples=2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ab\tba\nno tab here\n", r":2: expected source<TAB>target, found no tab"),
        (b"ab\tba\na\tb\tc\n", r":2: expected source<TAB>target, found 2 tabs"),
        (b"ab\tba\n\tba\n", r":2: empty source"),
        (b"ab\tba\ncd\t  \n", r":2: empty target"),
        (b"ab\tba\ncd\tdc\n\xff\xfe\tx\n", r":3: not UTF-8 text"),
        (b"\n\n", r"no pairs"),
    ],
)
def test_tsv_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        load_tsv(path)
    assert str(path) in str(e.value)


def test_tsv_reads_pairs_and_skips_blank_lines(tmp_path):
    path = tmp_path / "ok.tsv"
    path.write_bytes(b"hello world\tbonjour\r\n\nhi\tsalut\n")
    assert load_tsv(path) == [("hello world", "bonjour"), ("hi", "salut")]
    with pytest.raises(DataError, match="no such file"):
        load_tsv(tmp_path / "missing.tsv")


def test_tokenizers_and_vocabulary():
    assert tokenize("Ab c", "char") == ["A", "b", " ", "c"]
    assert tokenize("I'm fine, you?", "word", lowercase=True) == ["i'm", "fine,", "you?"]
    assert tokenize("I'm fine, you?", "wordpunct", lowercase=True) == ["i'm", "fine", ",", "you", "?"]
    vocab = build_vocab([["b", "a", "a"], ["c", "a", "b"]], min_freq=2)
    assert vocab.itos == [*SPECIALS, "a", "b"]  # specials first, then by frequency; "c" too rare
    assert build_vocab([["b", "a", "a"], ["c", "a", "b"]], max_size=5).itos == [*SPECIALS, "a"]


def test_too_long_pairs_are_counted_and_reported_never_cut(caplog):
    splits = {"train": [("a b", "c"), ("a b c d", "x"), ("a", "b c d e f")], "val": [("a", "b"), ("a a a a", "b")]}
    task = PairsTask(splits, tokenize="word", max_length=3)
    assert task.dropped == {"train": 2, "val": 1}
    assert "train: left out 2 of 3 pairs" in caplog.text and "val: left out 1 of 2" in caplog.text
    assert all(len(s) <= 3 and len(t) <= 3 for s, t in task.tokenized["train"])


def test_reverse_flips_real_tokens_and_keeps_padding_at_the_end():
    splits = {"train": [("a b c", "x"), ("d", "y")], "val": [("a", "x")]}
    task = PairsTask(splits, reverse=True)
    src, lengths, _ = task.batch("train", [0, 1])
    itos = task.codec.vocab.itos
    assert [itos[i] for i in src[0].tolist()] == ["c", "b", "a"]
    assert [itos[i] for i in src[1].tolist()] == ["d", "<pad>", "<pad>"] and lengths.tolist() == [3, 1]


def padded_pair(vocab_size=13, seed=0):
    """A short source alone (1, 3) and inside a batch padded to 7 next to a longer source."""
    g = torch.Generator().manual_seed(seed)
    short = torch.randint(4, vocab_size, (1, 3), generator=g)
    long = torch.randint(4, vocab_size, (1, 7), generator=g)
    batch = torch.cat([long, F.pad(short, (0, 4), value=0)])  # (2, 7), row 1 padded with <pad> = 0
    return short, batch, torch.tensor([7, 3])


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_invariance(decoder, bidirectional):
    """A sequence's encoding, loss and prediction are the same alone and inside a padded batch."""
    torch.manual_seed(0)
    model = Seq2seq(13, 8, 16, bidirectional=bidirectional, decoder=decoder).eval()
    short, batch, lengths = padded_pair()
    tgt = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 9, 2, 0]])  # <bos> ... <eos>, row 1 padded
    alone = model.encoder(short, torch.tensor([3]))
    inside = model.encoder(batch, lengths)
    torch.testing.assert_close(alone.summary[0], inside.summary[1])
    torch.testing.assert_close(alone.states[0], inside.states[1, :3])
    assert inside.mask[1].tolist() == [True] * 3 + [False] * 4
    loss_alone = F.cross_entropy(model(short, tgt[1:, :3], torch.tensor([3]))[0], tgt[1, 1:4])
    loss_inside = F.cross_entropy(model(batch, tgt[:, :-1], lengths)[1], tgt[1, 1:], ignore_index=0)
    torch.testing.assert_close(loss_alone, loss_inside)
    torch.testing.assert_close(
        model.generate(short, 1, 6, lengths=torch.tensor([3]))[0], model.generate(batch, 1, 6, lengths=lengths)[1]
    )


def test_attention_weights_sum_to_one_and_are_zero_on_padding():
    torch.manual_seed(0)
    model = Seq2seq(13, 8, 16, decoder="attention").eval()
    _, batch, lengths = padded_pair()
    weights = model.attention(batch, torch.randint(13, (2, 5)), lengths)  # (2, 5, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5))
    assert (weights[1, :, 3:] == 0).all() and (weights[1, :, :3] > 0).all()


def test_bucketing_covers_every_pair_once_with_less_padding():
    rng = random.Random(0)
    pairs = [(" ".join("a" * rng.randint(1, 30)), "b") for _ in range(2000)]
    bucketed = PairsTask({"train": pairs, "val": pairs[:10]}, batch_size=20, bucket=True)
    plain = PairsTask({"train": pairs, "val": pairs[:10]}, batch_size=20, bucket=False)

    def padding(task):
        batches = task.train_batches(epoch=0)
        assert sum(len(b[1]) for b in batches) == 2000
        return sum(int((b[1].max() - b[1]).sum()) for b in batches)

    assert padding(bucketed) < padding(plain) / 5
    first, again = bucketed.train_batches(0), bucketed.train_batches(0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))  # seeded by (seed, epoch)
    assert not torch.equal(first[0][0], bucketed.train_batches(1)[0][0])


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    """A word-level attention model trained on the reversal pairs; returns (run dir, metrics)."""
    tmp = tmp_path_factory.mktemp("pairs")
    tsv = write_reverse_tsv(tmp / "reverse.tsv", words=True)
    overrides = ["task=pairs", f"task.train={tsv}", "task.batch_size=32", "trainer.max_epochs=8", "optimizer.lr=0.01"]
    model = ["model.decoder=attention", "model.bidirectional=true", "model.hidden_size=64"]
    cfg = compose_train(tmp / "run", *TINY_PAIRS, *overrides, *model)
    return tmp / "run", train(cfg), tsv


@pytest.mark.slow
def test_pairs_task_learns_and_its_metrics_agree_with_a_recount(reverse_run):
    from seq2seq.training import checkpoint as ckpt

    run, metrics, tsv = reverse_run
    assert metrics["val/acc"] > 0.8, metrics
    model, saved = ckpt.read_model(run / "last.pt")
    task = TsvTask(str(tsv), tokenize="word", seed=0)
    codec = task.codec
    assert codec.state_dict() == saved["task"]
    sources = [" ".join(s) for s, _ in task.tokenized["val"]]
    targets = [t for _, t in task.tokenized["val"]]
    x, lengths = codec.encode(sources)
    outputs = [codec.tokens(row) for row in model.generate(x, codec.start_id, codec.steps, lengths=lengths).tolist()]
    recount = {
        "val/acc": sum(o == t for o, t in zip(outputs, targets, strict=True)) / len(targets),
        "val/bleu": sacrebleu.corpus_bleu([" ".join(o) for o in outputs], [[" ".join(t) for t in targets]]).score,
    }
    final, _ = task.evaluate(model, "val")
    assert final["val/acc"] == pytest.approx(recount["val/acc"])
    assert final["val/bleu"] == pytest.approx(recount["val/bleu"])
    assert final["val/ppl"] == pytest.approx(math.exp(final["val/loss"]))


def test_attention_heatmap_is_logged_to_tensorboard(reverse_run):
    run, _, _ = reverse_run
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert "val/attention" in events.Tags()["images"]
    assert len(events.Images("val/attention")) == 8  # one per epoch


@pytest.mark.slow
def test_generate_answers_pair_questions_with_beam_search(reverse_run):
    from .helpers import assert_ok, run_module

    run, _, _ = reverse_run
    args = [f"checkpoint={run}", "file=-", "strategy=beam", "beam_size=3"]
    result = run_module("seq2seq.generate", *args, stdin="a b c\nf e\n")
    assert_ok(result)
    lines = result.stdout.strip().split("\n")
    assert [line.split("\t")[0] for line in lines] == ["a b c", "f e"]
    too_long = run_module("seq2seq.generate", f"checkpoint={run}", "question=" + " a" * 51)
    assert too_long.returncode == 2 and "at most 50" in too_long.stderr


def test_bad_pair_options_fail_before_training(make_cfg, tmp_path):
    tsv = write_reverse_tsv(tmp_path / "r.tsv", n=50)
    with pytest.raises(ConfigError, match=r"task\.tokenize"):
        train(make_cfg("task=pairs", f"task.train={tsv}", "task.tokenize=bytes"))
    with pytest.raises(ConfigError, match=r"task\.max_length"):
        train(make_cfg("task=pairs", f"task.train={tsv}", "task.max_length=0"))
    with pytest.raises(ConfigError, match="val/bleu needs word tokens"):
        train(make_cfg("task=pairs", f"task.train={tsv}", "task.tokenize=char", "task.monitor=val/bleu"))
    with pytest.raises(DataError, match=r"r.tsv:1"):
        (tmp_path / "r.tsv").write_text("no tab\n")
        train(make_cfg("task=pairs", f"task.train={tsv}"))


@pytest.mark.slow
def test_max_new_tokens_bounds_the_answer(reverse_run):
    from .helpers import assert_ok, run_module

    run, _, _ = reverse_run
    result = run_module("seq2seq.generate", f"checkpoint={run}", "question=a b c d e f", "max_new_tokens=2")
    assert_ok(result)
    assert len(result.stdout.split()) <= 2
    bad = run_module("seq2seq.generate", f"checkpoint={run}", "question=a b", "max_new_tokens=0")
    assert bad.returncode == 2 and "max_new_tokens=0: must be from 1" in bad.stderr


@pytest.mark.slow
def test_attention_heatmap_png_of_chosen_validation_examples(reverse_run, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    run, _, _ = reverse_run
    script = Path(__file__).resolve().parents[1] / "scripts" / "attention_heatmap.py"
    out = tmp_path / "att.png"
    cmd = [sys.executable, str(script), str(run / "best.pt"), "--val-index", "0", "4", "--out", str(out)]
    # data a checkpoint names is read from the folder a command runs in: here, the one holding the .tsv files
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=run.parent)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([*cmd[:3], "--val-index", "100000"], capture_output=True, text=True, cwd=run.parent)
    assert bad.returncode == 1 and "validation set has examples 0.." in bad.stderr
