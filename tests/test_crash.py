"""Crash consistency of run directories, with real processes: kill -9 at chosen points (the
SEQ2SEQ_CRASH_AT hook of seq2seq.checkpoint sends SIGKILL to the process itself), two runs at once, a
planted symlink, a file-size limit while saving, and resumes that change the config."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from seq2seq import checkpoint as ckpt
from seq2seq.errors import CheckpointError
from seq2seq.train import NonFiniteLossError, train

from .helpers import TINY_ADDITION, assert_ok, compose_train


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> list[str]:
    """A language model on a tiny, learnable PTB-like corpus, 105 steps an epoch, a mid-epoch checkpoint
    every 40 steps. At SGD's lr 1 its val/ppl falls by half from epoch 1 to 2 (5.1 -> 2.5 on an AVX2-only
    AMD EPYC), far beyond any CPU's rounding, so best.pt is rewritten at epoch 2; at the chapter's lr 20
    the curve bounced, and whether epoch 2 improved depended on the CPU."""
    data = tmp_path_factory.mktemp("ptb")
    words = ["the", "cat", "sat", "on", "a", "mat", "while", "dogs", "ran", "to", "park", "and", "birds", "sang"]
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 300), ("valid", 40), ("test", 40)):
        starts = torch.randint(len(words), (n,), generator=g).tolist()
        lines = [" " + " ".join(words[(s + k) % len(words)] for k in range(6)) + " " for s in starts]
        (data / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    sizes = ["task.batch_size=4", "task.time_size=5", "task.eval_batch_size=2", "model.wordvec_size=16"]
    return ["experiment=rnnlm_ptb", f"task.data_dir={data}", *sizes, "model.hidden_size=16", "optimizer.lr=1",
            "trainer.max_epochs=2",
            "trainer.progress=false", "trainer.checkpoint_every_n_steps=40", "trainer.device=cpu"]  # fmt: skip


def train_cli(run: Path, *args: str, crash: str | None = None, limit_kb: int | None = None, cwd=None):
    """`python -m seq2seq.train` in a fresh process writing into `run` (unless args name hydra.run.dir)."""
    env = {**os.environ, ckpt.CRASH_ENV: crash} if crash else None
    cmd = [sys.executable, "-m", "seq2seq.train", *args]
    if not any(a.startswith(("hydra.run.dir=", "trainer.resume=")) for a in args):
        cmd.append(f"hydra.run.dir={run}")
    if limit_kb:  # a full disk for the files this process writes: writes past the limit fail with EFBIG
        cmd = ["bash", "-c", f'ulimit -f {limit_kb}; exec "$@"', "bash", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd or run.parent)


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model_state"]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def points(run: Path) -> dict[str, list[int]]:
    """Every scalar tag's steps, reading the directory as TensorBoard does (all event files together)."""
    mux = EventMultiplexer({"run": str(run)}, size_guidance={"scalars": 0})
    mux.Reload()
    acc = mux.GetAccumulator("run")
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def straight(tmp_path_factory, lm):
    """The uninterrupted run every crashed-and-resumed run must end equal to."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert_ok(train_cli(run, *lm))
    return run


@pytest.mark.slow
def test_kill_before_the_first_best_is_repaired_on_resume(straight, lm, tmp_path):
    run = tmp_path / "run"
    # the first best.pt is due at the end of epoch 1 on every run: the process dies after writing last.pt
    died = train_cli(run, *lm, crash="between-last-and-best@1")
    assert died.returncode == -signal.SIGKILL
    assert ckpt.load(run / "last.pt", "last.pt")["progress"]["epoch"] == 1 and not (run / "best.pt").exists()
    assert_ok(train_cli(run, *lm, f"trainer.resume={run}"))
    assert same_weights(run / "best.pt", straight / "best.pt") and same_weights(run / "last.pt", straight / "last.pt")
    assert points(run) == points(straight)


@pytest.mark.slow
def test_kill_between_last_and_best_is_repaired_on_resume(straight, lm, tmp_path):
    run = tmp_path / "run"
    # the precondition, from the uninterrupted run: epoch 2 improved, so best.pt is written twice
    assert ckpt.load(straight / "best.pt")["progress"]["epoch"] == 2
    # the 2nd time best.pt is due the process dies after writing last.pt
    died = train_cli(run, *lm, crash="between-last-and-best@2")
    assert died.returncode == -signal.SIGKILL
    last, best = ckpt.load(run / "last.pt", "last.pt"), ckpt.load(run / "best.pt")
    assert last["progress"]["best_step"] == last["progress"]["step"] != best["progress"]["step"]  # stale best.pt
    assert_ok(train_cli(run, *lm, f"trainer.resume={run}"))
    assert same_weights(run / "best.pt", straight / "best.pt") and same_weights(run / "last.pt", straight / "last.pt")
    assert points(run) == points(straight)  # one point per step and per epoch, as if never killed


@pytest.mark.slow
def test_kill_mid_epoch_loses_only_the_steps_since_the_last_checkpoint(straight, lm, tmp_path):
    run = tmp_path / "run"
    # a checkpoint every 40 steps: the 2nd save (step 80, mid-epoch 1) dies between its write and its rename
    died = train_cli(run, *lm, crash="before-rename-last.pt@2")
    assert died.returncode == -signal.SIGKILL
    progress = ckpt.load(run / "last.pt", "last.pt")["progress"]
    assert (progress["epoch"], progress["step"]) == (0, 40)  # mid-epoch: a crash loses minutes, not an epoch
    assert list(run.glob(".last.pt.*.tmp"))  # the torn write's temporary file is there ...
    assert_ok(train_cli(run, *lm, f"trainer.resume={run}"))
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))  # ... and gone after the next start
    assert same_weights(run / "last.pt", straight / "last.pt")  # bit-identical to the uninterrupted run
    assert points(run) == points(straight)


@pytest.mark.slow
def test_non_finite_weights_are_never_saved(tmp_path):
    one = train_cli(tmp_path / "one", *TINY_ADDITION, "optimizer.lr=1e39", "trainer.max_steps=1")
    assert one.returncode == 1 and "Traceback" not in one.stderr
    assert "is not finite at step 1 (epoch 1): not saved; no checkpoint was written" in one.stderr
    assert not list((tmp_path / "one").glob("*.pt"))
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written") as error:
        train(compose_train(tmp_path / "two", *TINY_ADDITION, "optimizer.lr=1e39", "trainer.max_epochs=2"))
    assert "last good checkpoint" not in str(error.value) and not list((tmp_path / "two").glob("*.pt"))


@pytest.mark.slow
def test_two_runs_in_one_directory(tmp_path):
    run = tmp_path / "run"
    long = [*TINY_ADDITION, "task.num_examples=4000", "trainer.max_epochs=500"]  # runs until stopped below
    first = subprocess.Popen(
        [sys.executable, "-m", "seq2seq.train", *long, f"hydra.run.dir={run}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.time() + 60
    while not (run / "last.pt").exists():  # the lock is held from the start; wait for a checkpoint too
        assert time.time() < deadline and first.poll() is None, "the first run never wrote a checkpoint"
        time.sleep(0.05)
    record = (run / ".hydra" / "overrides.yaml").read_text()
    second = train_cli(run, *TINY_ADDITION, "seed=1")
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"is in use by another run (pid {first.pid})" in second.stderr
    assert (run / ".hydra" / "overrides.yaml").read_text() == record  # refused before Hydra wrote anything
    first.send_signal(signal.SIGTERM)  # stops at the next step with a checkpoint
    _, err = first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM, err
    assert ckpt.load(run / "last.pt", "last.pt")["config"]["seed"] == 0
    # a new run into the stopped run's directory is refused too: it would overwrite its checkpoints
    again = train_cli(run, *TINY_ADDITION)
    assert again.returncode == 2 and "already holds a run" in again.stderr
    assert (run / ".hydra" / "overrides.yaml").read_text() == record


def test_planted_symlinks_are_not_followed(tmp_path):
    run, victim = tmp_path / "run", tmp_path / "victim.txt"
    victim.write_text("precious")
    run.mkdir()
    (run / "last.pt.tmp").symlink_to(victim)  # the old fixed temporary name
    (run / ".last.pt.abc.tmp").symlink_to(victim)
    train(compose_train(run, *TINY_ADDITION, "trainer.max_epochs=1"))
    assert victim.read_text() == "precious"
    assert (run / "last.pt").is_file() and not (run / "last.pt").is_symlink()
    assert not (run / "last.pt.tmp").is_symlink() and not (run / ".last.pt.abc.tmp").is_symlink()


@pytest.mark.slow
def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path):
    run = tmp_path / "run"
    model = ["model.hidden_size=256"]  # a checkpoint of a few MB, larger than the limit below
    train(compose_train(run, *TINY_ADDITION, *model, "trainer.max_epochs=1"))
    before = hashlib.sha256((run / "last.pt").read_bytes()).hexdigest()
    full = train_cli(run, *TINY_ADDITION, *model, "trainer.max_epochs=2", f"trainer.resume={run}", limit_kb=1024)
    assert full.returncode == 1 and "Traceback" not in full.stderr
    assert "could not write" in full.stderr and "the previous last.pt is unchanged" in full.stderr
    assert hashlib.sha256((run / "last.pt").read_bytes()).hexdigest() == before
    assert not list(run.glob(".*.tmp"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    train(compose_train(run, *TINY_ADDITION, "trainer.max_epochs=2", "scheduler=onecycle"))
    return run


REFUSED = [
    (["seed=1"], "seed: 0 -> 1"),
    (["task.num_examples=600"], "task.num_examples: 400 -> 600"),
    (["task.batch_size=64"], "task.batch_size: 32 -> 64"),
    (["optimizer.lr=0.5"], "optimizer.lr: 0.001 -> 0.5"),
    (["optimizer=sgd"], "optimizer._target_: torch.optim.Adam -> torch.optim.SGD"),
    (["scheduler=plateau"], "scheduler._target_: torch.optim.lr_scheduler.OneCycleLR -> "),
    (["trainer.max_epochs=4"], "trainer.max_epochs cannot change on a one-cycle run"),
]


@pytest.mark.slow
def test_resume_refuses_what_it_cannot_honour(finished):
    before = hashlib.sha256((finished / "last.pt").read_bytes()).hexdigest()
    base = [*TINY_ADDITION, "trainer.max_epochs=2", "scheduler=onecycle", f"trainer.resume={finished}"]
    for change, message in REFUSED:
        with pytest.raises(CheckpointError, match=re.escape(message)):
            train(compose_train(finished, *base, *change))
    both = train_cli(finished, *base, "seed=1", "optimizer.lr=0.5")  # a real process: every change listed
    assert both.returncode == 1 and "Traceback" not in both.stderr
    assert "resuming cannot change optimizer.lr: 0.001 -> 0.5; seed: 0 -> 1" in both.stderr
    assert hashlib.sha256((finished / "last.pt").read_bytes()).hexdigest() == before
    # what may change is applied and recorded: here one more epoch on a schedule without a fixed length
    plain = finished.parent / "plain"
    train(compose_train(plain, *TINY_ADDITION, "trainer.max_epochs=1"))
    train(compose_train(plain, *TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={plain}"))
    saved = ckpt.load(plain / "last.pt", "last.pt")
    assert saved["progress"]["epoch"] == 2 and saved["config"]["trainer"]["max_epochs"] == 2


@pytest.mark.slow
def test_resume_writes_into_the_runs_own_directory_and_best_pt_only_forks(tmp_path):
    outputs = tmp_path / "outputs"
    run = outputs / "run"
    assert_ok(train_cli(run, *TINY_ADDITION, "trainer.max_epochs=1", "trainer.progress=false", cwd=tmp_path))
    more = [*TINY_ADDITION, "trainer.max_epochs=2", "trainer.progress=false"]
    refused = train_cli(run, *more, f"trainer.resume={run / 'best.pt'}", cwd=tmp_path)
    assert refused.returncode == 1 and "would overwrite this run's later last.pt" in refused.stderr
    assert_ok(train_cli(run, *more, f"trainer.resume={run}", cwd=tmp_path))
    assert sorted(p.name for p in outputs.iterdir()) == ["run"]  # no second directory
    assert "epoch 2" in (run / "train.log").read_text() and list((run / ".hydra").glob("resumed_*/overrides.yaml"))
    assert (run / "config.yaml").read_text().count(f"output_dir: {run}") == 1
    assert ckpt.load(run / "last.pt", "last.pt")["progress"]["epoch"] == 2
    fork = tmp_path / "fork"
    best_before = hashlib.sha256((run / "best.pt").read_bytes()).hexdigest()
    train(compose_train(fork, *more, "trainer.max_epochs=3", f"trainer.resume={run / 'best.pt'}"))
    assert ckpt.load(fork / "last.pt", "last.pt")["progress"]["epoch"] == 3
    assert hashlib.sha256((run / "best.pt").read_bytes()).hexdigest() == best_before
    assert ckpt.load(run / "last.pt", "last.pt")["progress"]["epoch"] == 2


@pytest.mark.slow
def test_resume_latest_continues_the_newest_run_of_the_experiment(tmp_path):
    outputs = tmp_path / "outputs" / "peeky_addition"
    for stamp in ("2026-01-01_00-00-00", "2026-01-02_00-00-00"):
        train(compose_train(outputs / stamp, "experiment=peeky_addition", *TINY_ADDITION, "trainer.max_epochs=1"))
        time.sleep(0.01)  # distinct modification times
    more = ["trainer.max_epochs=2", "trainer.resume=latest"]
    resumed = train_cli(tmp_path / "unused", "experiment=peeky_addition", *TINY_ADDITION, *more, cwd=tmp_path)
    assert_ok(resumed)
    epochs = {d.name: ckpt.load(d / "last.pt", "last.pt")["progress"]["epoch"] for d in outputs.iterdir()}
    assert epochs == {"2026-01-01_00-00-00": 1, "2026-01-02_00-00-00": 2}
    assert sorted(p.name for p in outputs.iterdir()) == ["2026-01-01_00-00-00", "2026-01-02_00-00-00"]
    none = train_cli(tmp_path / "unused", "experiment=baseline_addition", *TINY_ADDITION, *more, cwd=tmp_path)
    assert none.returncode == 2 and "no run of baseline_addition with a checkpoint under outputs/" in none.stderr


@pytest.mark.slow
def test_save_top_k_keeps_the_k_best_epochs_across_a_crash(lm, tmp_path):
    three = [*lm, "trainer.max_epochs=3", "trainer.save_top_k=2"]
    straight = tmp_path / "straight"
    train(compose_train(straight, *three))
    top = ckpt.load(straight / "last.pt", "last.pt")["progress"]["top"]  # [val/ppl, epoch], best first
    assert [epoch for _, epoch in top] != [] and len(top) == 2 and top[0][0] <= top[1][0]
    assert sorted(p.name for p in straight.glob("epoch-*.pt")) == sorted(f"epoch-{e}.pt" for _, e in top)
    assert [ckpt.load(straight / f"epoch-{e}.pt")["metrics"]["val/ppl"] for _, e in top] == [v for v, _ in top]
    assert same_weights(straight / f"epoch-{top[0][1]}.pt", straight / "best.pt")
    # The 10th last.pt write is the end of epoch 3 (105 steps an epoch, a checkpoint at every 40th step
    # and at each epoch's end): killed after epoch-3.pt was written, before last.pt recorded it
    run = tmp_path / "run"
    died = train_cli(run, *three, crash="before-rename-last.pt@10")
    assert died.returncode == -signal.SIGKILL
    assert (run / "epoch-3.pt").exists() or 3 not in [e for _, e in top]  # written unless not in the top
    # a resume with nothing left to train only tidies up: the file last.pt does not list goes
    train(compose_train(run, *three, "trainer.max_epochs=2", f"trainer.resume={run}"))
    assert sorted(p.name for p in run.glob("epoch-*.pt")) == ["epoch-1.pt", "epoch-2.pt"]
    assert_ok(train_cli(run, *three, f"trainer.resume={run}"))
    assert sorted(p.name for p in run.glob("epoch-*.pt")) == sorted(p.name for p in straight.glob("epoch-*.pt"))
    for name in [p.name for p in straight.glob("epoch-*.pt")] + ["best.pt"]:
        assert same_weights(run / name, straight / name), name
