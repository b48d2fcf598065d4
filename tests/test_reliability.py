"""Issue 4: exact resume, interruption, determinism, bad config input."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ConfigKeyError, ValidationError
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seq2seq import checkpoint as ckpt
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.train import TrainingInterrupted, train, train_step

from .helpers import TINY_ADDITION, assert_ok, run_module


def curve(run: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.fixture
def tiny_ptb(tmp_path):
    """Random sentences over 15 words; validation and test differ from training, so the model overfits
    and the plateau scheduler decays the learning rate."""
    words = ["the", "cat", "sat", "on", "a", "mat", "while", "dogs", "ran", "to", "the", "park", "and", "birds", "sang"]
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 60), ("valid", 20), ("test", 20)):
        lines = [
            " " + " ".join(words[i] for i in torch.randint(len(words), (8,), generator=g).tolist()) + " \n"
            for _ in range(n)
        ]
        (tmp_path / f"ptb.{split}.txt").write_text("".join(lines))
    return tmp_path


def lm_overrides(data_dir):
    return [
        "experiment=rnnlm_ptb",
        f"task.data_dir={data_dir}",
        "task.batch_size=4",
        "task.time_size=8",
        "task.eval_batch_size=2",
        "model.wordvec_size=16",
        "model.hidden_size=16",
        "trainer.progress=false",
        "trainer.log_every_n_steps=3",
        "trainer.device=cpu",
        "scheduler=plateau",
        "optimizer.lr=5.0",
        "model.dropout=0.3",
        "model.num_layers=2",
    ]


def assert_same_run(a: Path, b: Path, tags: list[str]) -> None:
    sa, sb = ckpt.load(a / "last.pt"), ckpt.load(b / "last.pt")
    for k, v in sa["model_state"].items():
        assert torch.equal(v, sb["model_state"][k]), k
    assert sa["optimizer"]["param_groups"][0]["lr"] == sb["optimizer"]["param_groups"][0]["lr"]
    for tag in tags:
        assert curve(a, tag) == curve(b, tag), tag


def test_language_model_resumes_bit_identically_after_ctrl_c_mid_epoch(make_cfg, tiny_ptb, tmp_path, monkeypatch):
    """Ctrl-C mid-epoch (carried LSTM state, dropout RNG, plateau lr decay), then resumed."""
    overrides = [*lm_overrides(tiny_ptb), "trainer.max_epochs=6"]
    train(make_cfg(*overrides, out=tmp_path / "straight"))

    calls = 0

    def ctrl_c_at_step_20(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 20:
            os.kill(os.getpid(), signal.SIGINT)  # the real handler turns it into a stop request
        return train_step(*args, **kwargs)

    monkeypatch.setattr("seq2seq.train.train_step", ctrl_c_at_step_20)
    with pytest.raises(TrainingInterrupted, match=r"stopped by SIGINT at step 20.*trainer\.resume="):
        train(make_cfg(*overrides, out=tmp_path / "split"))
    monkeypatch.undo()
    saved = ckpt.load(tmp_path / "split" / "last.pt")
    assert saved["progress"]["batch"] > 0 and saved["carry"] is not None  # really mid-epoch, state kept
    train(make_cfg(*overrides, f"trainer.resume={tmp_path / 'split'}", out=tmp_path / "split"))
    assert_same_run(
        tmp_path / "straight", tmp_path / "split", ["train/loss", "train/ppl", "train/lr", "val/ppl", "test/ppl"]
    )
    assert len({v for _, v in curve(tmp_path / "straight", "train/lr")}) > 1  # the lr decay was exercised


def test_addition_resumes_bit_identically_with_identical_curves(make_cfg, tmp_path):
    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=3", out=tmp_path / "straight"))
    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=3", "trainer.max_steps=17", out=tmp_path / "split"))
    split = tmp_path / "split"
    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=3", f"trainer.resume={split / 'last.pt'}", out=split))
    assert_same_run(tmp_path / "straight", tmp_path / "split", ["train/loss", "val/acc", "val/loss"])


def test_same_seed_same_metrics_other_seed_other_run(make_cfg, tmp_path):
    a = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=tmp_path / "a"))
    b = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=tmp_path / "b"))
    c = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", "seed=1", out=tmp_path / "c"))
    assert {k: v for k, v in a.items() if k != "val/time"} == {k: v for k, v in b.items() if k != "val/time"}
    assert a["val/loss"] != c["val/loss"]
    assert ckpt.load(tmp_path / "c" / "last.pt")["config"]["seed"] == 1


@pytest.mark.parametrize(
    ("override", "error", "names"),
    [
        ("trainer.max_epoch=3", ConfigCompositionException, "max_epoch"),
        ("trainer.max_epochs=ten", ConfigCompositionException, "max_epochs"),
        ("model.hiden_size=3", ConfigCompositionException, "hiden_size"),
        ("task.reverse=maybe", ConfigCompositionException, "reverse"),
        ("experiment=peeky_adition", MissingConfigException, "peeky_adition"),
        ("model=peeky", MissingConfigException, "peeky"),
    ],
)
def test_bad_overrides_fail_at_composition_naming_the_key(make_cfg, override, error, names):
    with pytest.raises((error, ConfigKeyError, ValidationError)) as err:
        make_cfg(override)
    text = str(err.value) + str(err.value.__cause__)
    assert names in text


@pytest.mark.parametrize(
    "override",
    [
        "task.batch_size=0",
        "model.hidden_size=-4",
        "trainer.max_epochs=0",
        "optimizer.lr=-1",
        "task.val_fraction=1.5",
        "trainer.grad_clip=0",
        "model.init=xavier",
    ],
)
def test_impossible_values_fail_before_training(make_cfg, override, tmp_path):
    cfg = make_cfg(*TINY_ADDITION, override, out=tmp_path / "run")
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_cli_config_errors_are_one_clear_message(tmp_path):
    result = run_module("seq2seq.train", "task.batch_size=0", cwd=tmp_path)
    assert result.returncode == 2
    assert "task.batch_size=0: must be a positive number" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_with_a_resumable_checkpoint(tmp_path, sig):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "seq2seq.train",
        *TINY_ADDITION,
        "task.num_examples=2000",
        "trainer.max_epochs=200",
        f"hydra.run.dir={run}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    deadline = time.time() + 60
    while not (run / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (run / "last.pt").exists(), "training never wrote a checkpoint"
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out
    assert "trainer.resume=" in out, out
    saved = ckpt.load(run / "last.pt")
    assert saved["progress"]["step"] > 0 and saved["progress"]["epoch"] < 200
    assert not list(run.glob("*.tmp"))
    # it resumes where it stopped
    more_epochs = f"trainer.max_epochs={saved['progress']['epoch'] + 1}"
    resumed = run_module(
        "seq2seq.train", *TINY_ADDITION, "task.num_examples=2000", more_epochs, f"trainer.resume={run}", cwd=tmp_path
    )
    assert_ok(resumed)
    assert ckpt.load(run / "last.pt")["progress"]["epoch"] == saved["progress"]["epoch"] + 1


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(make_cfg, tmp_path, monkeypatch):
    from seq2seq.tasks import AdditionTask
    from seq2seq.train import NonFiniteLossError

    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=tmp_path / "run"))
    good = ckpt.load(tmp_path / "run" / "last.pt")
    original = AdditionTask.training_step

    def exploding(self, model, batch, carry=None):
        loss, carry = original(self, model, batch, carry)
        return loss * float("nan"), carry

    monkeypatch.setattr(AdditionTask, "training_step", exploding)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 12 \(epoch 2\)"):
        train(
            make_cfg(*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={tmp_path / 'run'}", out=tmp_path / "run")
        )
    kept = ckpt.load(tmp_path / "run" / "last.pt")
    for key in ("rng", "cuda_rng"):  # tensors (cuda_rng: None without CUDA)
        a, b = kept["progress"].pop(key), good["progress"].pop(key)
        assert (a is None and b is None) or a.equal(b), key
    assert kept["progress"] == good["progress"]


def test_resume_refuses_another_task_or_vocabulary_and_junk_files(make_cfg, tmp_path):
    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=tmp_path / "a"))
    a = tmp_path / "a"
    with pytest.raises(CheckpointError, match=r"resuming cannot change task.reverse: False -> True"):
        train(make_cfg(*TINY_ADDITION, "task.reverse=true", f"trainer.resume={a}", out=a))
    with pytest.raises(CheckpointError, match=r"task.max_digits: 2 -> 3"):
        train(make_cfg(*TINY_ADDITION, "task.max_digits=3", f"trainer.resume={a}", out=a))
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(make_cfg(*TINY_ADDITION, f"trainer.resume={tmp_path / 'junk.pt'}"))
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        train(make_cfg(*TINY_ADDITION, f"trainer.resume={tmp_path / 'nowhere'}"))


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt.save({"model": {}, "model_state": {"w": torch.ones(3)}, "task": {}}, tmp_path / "last.pt")

    def torn_write(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", torn_write)
    with pytest.raises(
        CheckpointError, match=r"could not write .*No space left on device; the previous last\.pt is unchanged"
    ):
        ckpt.save({"model": {}, "model_state": {"w": torch.zeros(3)}, "task": {}}, tmp_path / "last.pt")
    monkeypatch.undo()
    assert torch.equal(torch.load(tmp_path / "last.pt", weights_only=True)["model_state"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


@pytest.mark.slow
def test_different_seeds_in_a_multirun_give_different_runs(tmp_path):
    args = ["-m", "seed=0,1", *TINY_ADDITION, "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}"]
    assert_ok(run_module("seq2seq.train", *args, cwd=tmp_path))
    a, b = (ckpt.load(p / "last.pt") for p in sorted(p for p in tmp_path.iterdir() if p.is_dir()))
    assert (a["config"]["seed"], b["config"]["seed"]) == (0, 1)
    assert not torch.equal(a["model_state"]["encoder.embed.weight"], b["model_state"]["encoder.embed.weight"])
    assert a["metrics"]["val/loss"] != b["metrics"]["val/loss"]
