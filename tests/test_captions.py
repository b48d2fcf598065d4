"""Digit-image captioning: composition, the CNN encoder with every decoder, overfitting, and
captioning a PNG end to end."""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.nn import functional as F

from seq2seq.data.digit_images import HEIGHT, WORDS, canvas_width, compose, load_png, save_png
from seq2seq.models import ImageCaptioner
from seq2seq.tasks import CaptionsTask
from seq2seq.tasks.codec import codec_from_state
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.loop import train

from .helpers import assert_ok, compose_train, run_module


def test_composition_shapes_and_caption_alignment():
    """Digit i is drawn as a block of ink value (i + 1) / 10, so reading the canvas left to right
    must give the caption's digits in order."""
    images = torch.stack([torch.full((8, 8), (i + 1) / 10) for i in range(10)])
    canvases, captions = compose(images, list(range(10)), list(range(10)), num=50, max_digits=4, seed=0)
    assert canvases.shape == (50, 1, HEIGHT, canvas_width(4))
    for canvas, caption in zip(canvases, captions, strict=True):
        columns = canvas[0].amax(dim=0)  # (W,) the ink of each column
        seen = []
        for value in columns.tolist():
            digit = round(value * 10) - 1
            if value > 0 and (not seen or seen[-1] != digit):
                seen.append(digit)
        words = caption.split()
        assert 1 <= len(words) <= 4
        # Adjacent equal digits touch when the gap is 0, so compare with repeats collapsed.
        collapsed = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]
        assert [WORDS[d] for d in seen] == collapsed


def test_validation_digits_are_unseen_in_training():
    task = CaptionsTask(num_train=40, num_val=20, seed=0)
    train_ids, val_ids = (task.source_images[split] for split in ("train", "val"))
    assert not set(train_ids) & set(val_ids) and sorted(train_ids + val_ids) == list(range(1797))
    assert len(val_ids) == int(1797 * 0.2)
    assert CaptionsTask(num_train=40, num_val=20, seed=1).source_images["val"] != val_ids


@pytest.mark.parametrize("decoder", ["plain", "peeky", "attention"])
def test_cnn_encoder_output_fits_every_decoder(decoder):
    model = ImageCaptioner(14, 8, 32, decoder=decoder, grid_height=3, grid_width=12)
    images = torch.rand(5, 1, HEIGHT, canvas_width(4))
    enc = model.encoder(images)
    cells = 36 if decoder == "attention" else 1  # the grid for attention, else h alone
    assert enc.states.shape == (5, cells, 32) and enc.summary.shape == (5, 32) and enc.mask is None
    loss = model(images, torch.randint(14, (5, 6))).square().mean()  # logits (5, 6, 14)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())  # none unused: DDP needs that
    assert model.generate(images, 1, 5).shape == (5, 5)
    assert model.encoder(torch.rand(2, 1, 20, 70)).states.shape == (2, cells, 32)  # any image size


@pytest.mark.slow
def test_tiny_overfit_reaches_every_caption():
    torch.manual_seed(0)
    from seq2seq.data.digit_images import load_digit_images

    images, labels = load_digit_images()
    canvases, captions = compose(images, labels, list(range(40)), num=8, max_digits=3, seed=0)
    vocab = ["<pad>", "<bos>", "<eos>", *WORDS]
    rows = [[1, *(vocab.index(w) for w in c.split()), 2] for c in captions]
    tgt = torch.zeros(8, 5, dtype=torch.long)
    for i, r in enumerate(rows):
        tgt[i, : len(r)] = torch.tensor(r)
    model = ImageCaptioner(len(vocab), 16, 64, decoder="peeky")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        loss = F.cross_entropy(model(canvases, tgt[:, :-1]).flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    pred = model.eval().generate(canvases, 1, 4)
    for ids, caption in zip(pred.tolist(), captions, strict=True):
        words = [vocab[i] for i in ids[: ids.index(2)]] if 2 in ids else [vocab[i] for i in ids]
        assert " ".join(words) == caption


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("captions")
    overrides = ["experiment=captions", "task.num_train=600", "task.num_val=50", "trainer.progress=false"]
    cfg = compose_train(out / "run", *overrides, "model.hidden_size=32", "model.channels=8", "trainer.max_epochs=2")
    return out / "run", train(cfg), out


def test_captions_run_logs_word_metrics_and_images(caption_run):
    run, metrics, _ = caption_run
    assert {"val/acc", "val/token_acc", "val/loss"} <= set(metrics)
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert len(events.Images("val/captions")) == 2


@pytest.mark.slow
def test_caption_a_saved_png_end_to_end(caption_run):
    run, _, tmp = caption_run
    model, saved = ckpt.read_model(run / "best.pt")
    from seq2seq.tasks import CaptionsTask

    task = CaptionsTask(num_train=600, num_val=50, seed=0)
    png = tmp / "val3.png"
    save_png(task.images["val"][3], png)  # enlarged 4x: the codec scales it back
    result = run_module("seq2seq.generate", f"checkpoint={run}", f"question={png}")
    assert_ok(result)
    codec = codec_from_state(saved["task"])
    image = load_png(png, HEIGHT, canvas_width(4))[None]
    assert torch.allclose(image, task.images["val"][3:4], atol=1 / 255)
    expected = codec.decode(model.generate(image, codec.start_id, codec.steps)[0].tolist())
    assert result.stdout.rstrip("\n") == expected
    by_index = run_module("seq2seq.generate", f"checkpoint={run}", "index=3")
    assert_ok(by_index)
    assert by_index.stdout.rstrip("\n").split("\t") == [expected, " ".join(task.tokenized["val"][3][1])]
    (tmp / "junk.png").write_text("not an image")
    bad = run_module("seq2seq.generate", f"checkpoint={run}", f"question={tmp / 'junk.png'}")
    assert bad.returncode == 2 and "junk.png: not a readable image" in bad.stderr
