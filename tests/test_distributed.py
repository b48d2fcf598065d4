"""Data-parallel training with torchrun on CPU (gloo): 2 processes vs 1 with the same global batch."""

from pathlib import Path

import pytest
import torch

from seq2seq.training import checkpoint as ckpt
from seq2seq.training.loop import train

from .helpers import TINY_ADDITION, assert_ok, run_module, write_reverse_tsv

ADDITION = [*TINY_ADDITION, "optimizer.lr=0.01", "trainer.max_epochs=3"]
# Tolerance: the two runs average the same gradients in a different order (float rounding only).
RTOL = 1e-3


def torchrun(tmp_path: Path, run_dir: Path, *overrides: str) -> None:
    args = ["--standalone", "--nproc_per_node=2", "-m", "seq2seq.train", *overrides, f"hydra.run.dir={run_dir}"]
    assert_ok(run_module("torch.distributed.run", *args, cwd=tmp_path))


@pytest.mark.slow
def test_two_processes_match_one_on_addition(make_cfg, tmp_path):
    one = train(make_cfg(*ADDITION, out=tmp_path / "one"))
    torchrun(tmp_path, tmp_path / "two", *ADDITION)
    two = ckpt.read(tmp_path / "two" / "last.pt")
    assert two["metrics"]["val/loss"] == pytest.approx(one["val/loss"], rel=RTOL)
    assert two["metrics"]["val/char_acc"] == pytest.approx(one["val/char_acc"], abs=0.01)
    assert one["val/loss"] < 2.0  # it learnt something, so the comparison means something
    # only rank 0 wrote events: every event file comes from one process
    pids = {p.name.split(".")[-2] for p in (tmp_path / "two").glob("events.out.tfevents.*")}
    assert len(pids) == 1


@pytest.mark.slow
def test_two_processes_match_one_on_a_language_model_and_resume(make_cfg, tmp_path):
    for split, n in (("train", 120), ("valid", 30), ("test", 30)):
        g = torch.Generator().manual_seed(len(split))
        lines = [
            " " + " ".join(f"w{i}" for i in torch.randint(12, (8,), generator=g).tolist()) + " \n" for _ in range(n)
        ]
        (tmp_path / f"ptb.{split}.txt").write_text("".join(lines))
    lm = [
        "experiment=rnnlm_ptb",
        f"task.data_dir={tmp_path}",
        "task.batch_size=4",
        "task.time_size=8",
        "model.wordvec_size=16",
        "model.hidden_size=16",
        "optimizer.lr=5",
        "trainer.progress=false",
        "trainer.device=cpu",
    ]
    one = train(make_cfg(*lm, "trainer.max_epochs=2", out=tmp_path / "one"))
    torchrun(tmp_path, tmp_path / "two", *lm, "trainer.max_epochs=1")
    torchrun(tmp_path, tmp_path / "two", *lm, "trainer.max_epochs=2", f"trainer.resume={tmp_path / 'two'}")
    two = ckpt.read(tmp_path / "two" / "last.pt")
    assert two["progress"]["epoch"] == 2
    assert two["metrics"]["val/ppl"] == pytest.approx(one["val/ppl"], rel=RTOL)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["pairs", "captions"])
def test_pair_tasks_train_under_torchrun(make_cfg, tmp_path, task):
    """Padded batches shard with their lengths (pairs) or without any (captions: lengths are None).
    Each process averages the loss over its own target tokens, so the step is close to, not equal
    to, the one-process step: bucketing keeps the shards' lengths alike."""
    if task == "pairs":
        tsv = write_reverse_tsv(tmp_path / "r.tsv", n=600)
        overrides = ["task=pairs", f"task.train={tsv}", "task.tokenize=char", "model.decoder=attention"]
    else:
        overrides = ["experiment=captions", "task.num_train=600", "task.num_val=100", "model.channels=8"]
    overrides += ["model.hidden_size=32", "optimizer.lr=0.01", "trainer.max_epochs=2", "trainer.progress=false"]
    overrides += ["trainer.device=cpu"]  # gloo on the CPU: a 1-GPU machine has no GPU for a second process
    one = train(make_cfg(*overrides, out=tmp_path / "one"))
    torchrun(tmp_path, tmp_path / "two", *overrides)
    two = ckpt.read(tmp_path / "two" / "last.pt")
    assert two["progress"]["epoch"] == 2
    assert two["metrics"]["val/loss"] == pytest.approx(one["val/loss"], rel=0.05)
