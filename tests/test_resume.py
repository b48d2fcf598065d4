"""Resuming a run: exact (bit for bit, after Ctrl-C, kill -9 at chosen points), in its own directory or
forked, refusing what it cannot honour (a changed config, other data, crafted states) and writing nothing
when it refuses; `latest`; runs of earlier versions."""

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
from omegaconf import OmegaConf

from seq2seq.core.errors import CheckpointError
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.loop import TrainingInterrupted, train, train_step

from .helpers import (
    PEAK_MB,
    SECONDS,
    TINY_ADDITION,
    assert_ok,
    assert_same_run,
    compose_train,
    measured,
    points,
    run_module,
    same_weights,
    scalars,
    tiny,
    train_cli,
    tree,
    write_state,
)


def test_max_steps_stops_early_and_resume_continues(make_cfg):
    run = Path(make_cfg().paths.output_dir)
    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=3", "trainer.max_steps=15"))
    saved = ckpt.read(run / "last.pt")["progress"]
    assert (saved["step"], saved["epoch"], saved["batch"]) == (15, 1, 4)  # 11 steps an epoch
    assert [s for s, _ in scalars(run, "val_step/acc")] == [15]  # the end of a max_steps run is a point
    assert [s for s, _ in scalars(run, "val/acc")] == [1]  # val/* holds full epochs

    metrics = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=3", f"trainer.resume={run}"))
    assert metrics["epoch"] == 3.0 and metrics["step"] == 33.0
    steps = [s for s, _ in scalars(run, "train/loss")]
    assert steps == list(range(1, 34))  # continued in the same writer: no gap, no duplicate


def test_a_run_of_0_2_resumes_with_its_own_split_and_batches(make_cfg):
    """Runs made before task.split_seed and task.drop_last existed were split with `seed` and kept the
    last partial batch; resumed today, they go on the same way."""
    run = Path(make_cfg().paths.output_dir)
    old_style = ("task.split_seed=null", "task.drop_last=false")
    train(make_cfg(*TINY_ADDITION, *old_style, "trainer.max_epochs=1"))
    state = torch.load(run / "last.pt", weights_only=True)
    for key in ("split_seed", "drop_last"):
        del state["config"]["task"][key]
    del state["task"]["number_digits"]
    state["task"]["kind"] = "pairs"  # 0.2's name of the fixed-width kind
    for key in ("stop_best", "stale_epochs", "top"):  # 0.2 saved these only where they were used
        del state["progress"][key]
    ckpt.save(state, run / "last.pt")
    metrics = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}"))
    assert metrics["step"] == 24.0  # 360 questions in batches of 32: 12 steps an epoch, the last of 8
    saved = OmegaConf.load(run / "config.yaml").task
    assert saved.split_seed is None and saved.drop_last is False


def test_a_peeky_checkpoint_of_0_2_loads_and_resumes(make_cfg):
    """0.2 named the model PeekySeq2seq (no decoder argument): it loads, and resumes as Seq2seq with
    decoder=peeky, but not as a plain decoder."""
    run = Path(make_cfg().paths.output_dir)
    train(make_cfg(*TINY_ADDITION, "model.decoder=peeky", "trainer.max_epochs=1"))
    for name in ("last.pt", "best.pt"):
        state = torch.load(run / name, weights_only=True)
        del state["model"]["args"]["decoder"], state["config"]["model"]["decoder"]
        state["model"]["name"] = "PeekySeq2seq"
        state["config"]["model"]["_target_"] = "seq2seq.models.PeekySeq2seq"
        ckpt.save(state, run / name)
    model, _ = ckpt.read_model(run)
    assert type(model.decoder).__name__ == "PeekyDecoder"
    with pytest.raises(CheckpointError, match=r"model.decoder: peeky -> plain"):
        train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}"))
    metrics = train(make_cfg(*TINY_ADDITION, "model.decoder=peeky", "trainer.max_epochs=2", f"trainer.resume={run}"))
    assert metrics["epoch"] == 2.0


def test_resume_refuses_a_checkpoint_of_another_model(make_cfg, tmp_path):
    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=tmp_path / "a"))
    cfg = make_cfg(
        *TINY_ADDITION,
        "model.decoder=peeky",
        "model.wordvec_size=8",
        "model.hidden_size=32",
        f"trainer.resume={tmp_path / 'a'}",
        out=tmp_path / "a",
    )
    with pytest.raises(CheckpointError, match=r"resuming cannot change model\.decoder: plain -> peeky"):
        train(cfg)


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

    monkeypatch.setattr("seq2seq.training.loop.train_step", ctrl_c_at_step_20)
    with pytest.raises(TrainingInterrupted, match=r"stopped by SIGINT at step 20.*trainer\.resume="):
        train(make_cfg(*overrides, out=tmp_path / "split"))
    monkeypatch.undo()
    saved = ckpt.read(tmp_path / "split" / "last.pt")
    assert saved["progress"]["batch"] > 0 and saved["carry"] is not None  # really mid-epoch, state kept
    train(make_cfg(*overrides, f"trainer.resume={tmp_path / 'split'}", out=tmp_path / "split"))
    assert_same_run(
        tmp_path / "straight", tmp_path / "split", ["train/loss", "train/ppl", "train/lr", "val/ppl", "test/ppl"]
    )
    assert len({v for _, v in scalars(tmp_path / "straight", "train/lr")}) > 1  # the lr decay was exercised


def test_addition_resumes_bit_identically_with_identical_curves(make_cfg, tmp_path):
    """Stopped mid-epoch (max_steps) or at an epoch's end, then resumed: the same weights, curves and metrics."""
    straight = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=3", out=tmp_path / "straight"))
    for name, stop in (("mid_epoch", "trainer.max_steps=17"), ("epoch_end", "trainer.max_epochs=1")):
        split = tmp_path / name
        train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=3", stop, out=split))
        resumed = train(
            make_cfg(*TINY_ADDITION, "trainer.max_epochs=3", f"trainer.resume={split / 'last.pt'}", out=split)
        )
        assert resumed["val/acc"] == straight["val/acc"] and resumed["val/loss"] == straight["val/loss"]
        assert_same_run(tmp_path / "straight", split, ["train/loss", "val/acc", "val/loss"])


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
    saved = ckpt.read(run / "last.pt")
    assert saved["progress"]["step"] > 0 and saved["progress"]["epoch"] < 200
    assert not list(run.glob("*.tmp"))
    # it resumes where it stopped
    more_epochs = f"trainer.max_epochs={saved['progress']['epoch'] + 1}"
    resumed = run_module(
        "seq2seq.train", *TINY_ADDITION, "task.num_examples=2000", more_epochs, f"trainer.resume={run}", cwd=tmp_path
    )
    assert_ok(resumed)
    assert ckpt.read(run / "last.pt")["progress"]["epoch"] == saved["progress"]["epoch"] + 1


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
    assert ckpt.read(run / "last.pt", "last.pt")["progress"]["epoch"] == 1 and not (run / "best.pt").exists()
    assert_ok(train_cli(run, *lm, f"trainer.resume={run}"))
    assert same_weights(run / "best.pt", straight / "best.pt") and same_weights(run / "last.pt", straight / "last.pt")
    assert points(run) == points(straight)


@pytest.mark.slow
def test_kill_between_last_and_best_is_repaired_on_resume(straight, lm, tmp_path):
    run = tmp_path / "run"
    # the precondition, from the uninterrupted run: epoch 2 improved, so best.pt is written twice
    assert ckpt.read(straight / "best.pt")["progress"]["epoch"] == 2
    # the 2nd time best.pt is due the process dies after writing last.pt
    died = train_cli(run, *lm, crash="between-last-and-best@2")
    assert died.returncode == -signal.SIGKILL
    last, best = ckpt.read(run / "last.pt", "last.pt"), ckpt.read(run / "best.pt")
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
    progress = ckpt.read(run / "last.pt", "last.pt")["progress"]
    assert (progress["epoch"], progress["step"]) == (0, 40)  # mid-epoch: a crash loses minutes, not an epoch
    assert list(run.glob(".last.pt.*.tmp"))  # the torn write's temporary file is there ...
    assert_ok(train_cli(run, *lm, f"trainer.resume={run}"))
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))  # ... and gone after the next start
    assert same_weights(run / "last.pt", straight / "last.pt")  # bit-identical to the uninterrupted run
    assert points(run) == points(straight)


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
    saved = ckpt.read(plain / "last.pt", "last.pt")
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
    assert ckpt.read(run / "last.pt", "last.pt")["progress"]["epoch"] == 2
    fork = tmp_path / "fork"
    best_before = hashlib.sha256((run / "best.pt").read_bytes()).hexdigest()
    train(compose_train(fork, *more, "trainer.max_epochs=3", f"trainer.resume={run / 'best.pt'}"))
    assert ckpt.read(fork / "last.pt", "last.pt")["progress"]["epoch"] == 3
    # The fork's best.pt is of its own epochs (the source's best, however good, stays in the source).
    assert ckpt.read(fork / "best.pt")["progress"]["step"] > ckpt.read(run / "best.pt")["progress"]["step"]
    assert hashlib.sha256((run / "best.pt").read_bytes()).hexdigest() == best_before
    assert ckpt.read(run / "last.pt", "last.pt")["progress"]["epoch"] == 2


@pytest.mark.slow
def test_resume_latest_continues_the_newest_run_of_the_experiment(tmp_path):
    outputs = tmp_path / "outputs" / "peeky_addition"
    for stamp in ("2026-01-01_00-00-00", "2026-01-02_00-00-00"):
        train(compose_train(outputs / stamp, "experiment=peeky_addition", *TINY_ADDITION, "trainer.max_epochs=1"))
        time.sleep(0.01)  # distinct modification times
    more = ["trainer.max_epochs=2", "trainer.resume=latest"]
    resumed = train_cli(tmp_path / "unused", "experiment=peeky_addition", *TINY_ADDITION, *more, cwd=tmp_path)
    assert_ok(resumed)
    epochs = {d.name: ckpt.read(d / "last.pt", "last.pt")["progress"]["epoch"] for d in outputs.iterdir()}
    assert epochs == {"2026-01-01_00-00-00": 1, "2026-01-02_00-00-00": 2}
    assert sorted(p.name for p in outputs.iterdir()) == ["2026-01-01_00-00-00", "2026-01-02_00-00-00"]
    none = train_cli(tmp_path / "unused", "experiment=baseline_addition", *TINY_ADDITION, *more, cwd=tmp_path)
    assert none.returncode == 2 and "no run of baseline_addition with a checkpoint under outputs/" in none.stderr


@pytest.mark.slow
def test_save_top_k_keeps_the_k_best_epochs_across_a_crash(lm, tmp_path):
    three = [*lm, "trainer.max_epochs=3", "trainer.save_top_k=2"]
    straight = tmp_path / "straight"
    train(compose_train(straight, *three))
    top = ckpt.read(straight / "last.pt", "last.pt")["progress"]["top"]  # [val/ppl, epoch], best first
    assert [epoch for _, epoch in top] != [] and len(top) == 2 and top[0][0] <= top[1][0]
    assert sorted(p.name for p in straight.glob("epoch-*.pt")) == sorted(f"epoch-{e}.pt" for _, e in top)
    assert [ckpt.read(straight / f"epoch-{e}.pt")["metrics"]["val/ppl"] for _, e in top] == [v for v, _ in top]
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


def test_resuming_a_finished_run_writes_nothing(tmp_path):
    run = tmp_path / "run"
    first = train(tiny(run, "trainer.max_epochs=1", "logger=[tensorboard,csv]"))

    def files():  # the lock's pid file aside: every command that takes the lock rewrites it
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in run.iterdir() if p.name != ".lock"}

    before = files()
    again = train(tiny(run, "trainer.max_epochs=1", "logger=[tensorboard,csv]", f"trainer.resume={run}"))
    after = files()
    assert after == before and again["best/val/acc"] == first["best/val/acc"]


@pytest.mark.slow
def test_a_finished_or_refused_resume_writes_nothing_and_an_accepted_one_keeps_hydras_record(tmp_path):
    """Hydra's record (.hydra/resumed_<time>/) and log lines of an in-place resume are staged outside the
    run directory until the run's checks pass: a finished run resumed, or a resume refused for its
    config, leaves the directory as it was; a resume that trains adds its record and log lines."""
    run = tmp_path / "run"
    result = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    before = tree(run)
    for extra in (["trainer.max_epochs=1"], ["trainer.max_epochs=2", "model.hidden_size=16"]):
        result = run_module("seq2seq.train", *TINY_ADDITION, *extra, f"trainer.resume={run}", cwd=tmp_path)
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert tree(run) == before, extra
    finished = run_module(
        "seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=1", f"trainer.resume={run}", cwd=run.parent
    )
    assert "the run has finished" in finished.stderr and "resuming" not in finished.stderr  # one story, not two
    log_before = (run / "train.log").read_text()
    result = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    records = list((run / ".hydra").glob("resumed_*/overrides.yaml"))
    assert len(records) == 1 and "trainer.max_epochs=2" in records[0].read_text()
    log = (run / "train.log").read_text()
    assert log.startswith(log_before) and "resuming" in log[len(log_before) :] and "done: best" in log


@pytest.mark.slow
def test_a_best_pt_without_a_progress_record_is_mended_or_refused_in_one_line(tmp_path):
    """best.pt replaced by a checkpoint without its progress (made elsewhere, or crafted): resuming in place
    rewrites it from last.pt when last.pt is the best, and otherwise refuses in one line, before Hydra's
    record of the command joins the run."""
    run = tmp_path / "run"
    train(compose_train(run, *TINY_ADDITION, "trainer.max_epochs=1"))
    for progress in ("missing", [1, 2]):
        state = ckpt.read(run / "best.pt")
        state.pop("progress") if progress == "missing" else state.update(progress=progress)
        ckpt.save({k: v for k, v in state.items() if k not in ("format", "version")}, run / "best.pt")
        result = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=1", f"trainer.resume={run}")
        assert "Traceback" not in result.stderr and "the run has finished" in result.stderr, result.stderr[-2000:]
    before = tree(run)
    mended = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}")
    assert_ok(mended)
    assert "rewriting it from last.pt" in mended.stderr and ckpt.read(run / "best.pt")["progress"]["epoch"] >= 1
    assert tree(run) != before


def test_a_resume_on_other_data_is_refused_and_a_fork_is_warned(tmp_path, caplog):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{a} {b}\t{b} {a}\n" for a in "abcd" for b in "abcd" for _ in range(5)))
    base = ["task=pairs", f"task.train={pairs}", "task.batch_size=8", "model.decoder=attention",
            "model.hidden_size=8", "model.wordvec_size=8", "trainer.device=cpu", "trainer.progress=false"]  # fmt: skip
    run = tmp_path / "run"
    train(compose_train(run, *base, "trainer.max_steps=3"))
    swapped = ["\t".join(line.split("\t")[::-1]) for line in pairs.read_text().splitlines()]
    pairs.write_text("\n".join(swapped) + "\n")  # other pairs of the same vocabulary
    with pytest.raises(CheckpointError, match="the training data is not what this run used"):
        train(compose_train(run, *base, "trainer.max_steps=6", f"trainer.resume={run}"))
    fork = train(compose_train(tmp_path / "fork", *base, "trainer.max_steps=6", f"trainer.resume={run / 'last.pt'}"))
    assert fork["step"] == 6.0 and "forking" in caplog.text


def test_a_resume_on_other_validation_data_is_refused(tmp_path):
    pairs, val = tmp_path / "pairs.tsv", tmp_path / "val.tsv"
    pairs.write_text("".join(f"{a} {b}\t{b} {a}\n" for a in "abcd" for b in "abcd" for _ in range(5)))
    val.write_text("a b\tb a\nc d\td c\n")
    base = ["task=pairs", f"task.train={pairs}", f"task.val={val}", "task.batch_size=8", "model.hidden_size=8",
            "model.wordvec_size=8", "trainer.device=cpu", "trainer.progress=false"]  # fmt: skip
    run = tmp_path / "run"
    train(compose_train(run, *base, "trainer.max_steps=3"))
    val.write_text("a b\tb a\nc d\tc d\n")  # one answer changed: the same vocabulary, other val/acc
    with pytest.raises(CheckpointError, match="the validation data is not what this run used"):
        train(compose_train(run, *base, "trainer.max_steps=6", f"trainer.resume={run}"))


def test_resume_latest_means_the_experiment_exactly(tmp_path):
    from seq2seq.training.launch import latest_run

    outputs = tmp_path / "outputs"
    mine = outputs / "multirun" / "2026-01-01" / "0_rnnlm_ptb_seed-1"
    other = outputs / "multirun" / "2026-01-02" / "0_better_rnnlm_ptb"  # newer, and its name contains mine
    for run in (mine, other):
        run.mkdir(parents=True)
        (run / "last.pt").write_bytes(b"")
    os.utime(mine / "last.pt", (1, 1))
    assert latest_run(["experiment=rnnlm_ptb"], outputs) == mine


def test_changes_that_cannot_alter_the_weights_are_allowed_on_resume(tmp_path):
    from omegaconf import OmegaConf

    from seq2seq.training.start import config_changes

    saved = OmegaConf.to_container(tiny(tmp_path, "optimizer.fused=true"), resolve=True)
    now = tiny(tmp_path, "logger=[tensorboard,csv]", "task.num_samples=3", "optimizer.fused=false")
    assert config_changes(saved, now) == []
    assert config_changes(saved, tiny(tmp_path, "optimizer.lr=0.5")) == ["optimizer.lr: 0.001 -> 0.5"]


@pytest.mark.slow
def test_a_run_whose_path_holds_override_syntax_resumes_in_place(tmp_path):
    """'=', ',', spaces, quotes and backslashes are syntax to Hydra's override parser: such a path forked
    into a new directory, or failed to parse."""
    run = tmp_path / "run=1,2 it's\\x"
    result = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=1", f"hydra.run.dir='{tmp_path}/run'",
                        cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (tmp_path / "run").rename(run)
    result = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.name]  # in place: no other directory
    assert torch.load(run / "last.pt", weights_only=True)["progress"]["epoch"] == 2


@pytest.mark.slow
def test_a_fork_of_a_finished_run_needs_more_to_train(tmp_path):
    """A fork of a finished checkpoint with nothing left to train reported success with a best.pt that
    was never written; it is refused, and the new directory it made is removed."""
    run = tmp_path / "run"
    train(tiny(run, "trainer.max_epochs=1"))
    fork = tmp_path / "fork"
    with pytest.raises(CheckpointError, match=r"the run has finished .*a fork of it needs more to train"):
        train(tiny(fork, "trainer.max_epochs=1", f"trainer.resume={run / 'best.pt'}"))
    result = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=1", f"trainer.resume={run / 'best.pt'}",
                        f"hydra.run.dir={tmp_path / 'cli-fork'}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "a fork of it needs more to train" in result.stderr
    assert not (tmp_path / "cli-fork").exists()
    assert train(tiny(fork, "trainer.max_epochs=2", f"trainer.resume={run / 'best.pt'}"))["epoch"] == 2


def nan_metrics(state: dict) -> None:
    state["metrics"] = {"val/acc": float("nan")}  # a diverged run's metrics: kept, not refused


# A resumable checkpoint's other states, crafted: each is refused with its own message before anything
# is loaded (they ended in tracebacks inside torch, or trained on: a negative learning rate did).
RESUME_STATES = {
    "carry on a task that carries none": (lambda s: s.__setitem__("carry", "x"), "this task carries none"),
    "a learning rate that is text": (
        lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", "a"), "param_groups[0].lr=a is not a number"),
    "a negative learning rate": (
        lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", -5.0), "param_groups[0].lr=-5.0 is negative"),
    "betas missing": (
        lambda s: s["optimizer"]["param_groups"][0].__setitem__("betas", None), "betas is not a list of 2"),
    "a step that is text": (
        lambda s: s["optimizer"]["state"][0].__setitem__("step", "x"), "optimizer state 0.step is not a tensor"),
    "a step count of -1": (
        lambda s: s["optimizer"]["state"][0].__setitem__("step", torch.tensor(-1.0)), "0.step is not a count"),
    "a random generator's state cut short": (
        lambda s: s["progress"].__setitem__("rng", torch.zeros(5, dtype=torch.uint8)), "progress.rng is not"),
    "no random generator's state": (lambda s: s["progress"].pop("rng"), "progress.rng is not"),
    "a CUDA generator's state that is text": (
        lambda s: s["progress"].__setitem__("cuda_rng", "x"), "progress.cuda_rng is not"),
    "a schedule where the run has none": (
        lambda s: s.__setitem__("scheduler", {"x": 1}), "the saved learning-rate schedule is not this run's"),
    "metrics that are text": (lambda s: s.__setitem__("metrics", "x"), "metrics is not a mapping"),
    "a top-k entry without its epoch": (
        lambda s: s["progress"].__setitem__("top", [[1.0]]), "progress.top holds [1.0]"),
    "no config": (lambda s: s.__setitem__("config", "x"), "holds no config to compare"),
    "NaN metrics (accepted)": (nan_metrics, None),
}  # fmt: skip


@pytest.mark.parametrize("case", list(RESUME_STATES))
def test_crafted_resume_states_are_refused_before_loading(tiny_run, tmp_path, case):
    from seq2seq.core.errors import CheckpointError

    change, says = RESUME_STATES[case]
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(tiny_run / "last.pt", weights_only=True)
    state["progress"]["finished"] = False
    change(state)
    write_state(state, run / "last.pt")
    cfg = compose_train(run, *TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}")
    if says is None:
        assert train(cfg)["epoch"] == 2
        return
    with pytest.raises(CheckpointError, match=re.escape(says)):
        train(cfg)
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]  # nothing written


def test_a_language_models_carried_state_must_have_its_shapes(tiny_lm_run, tmp_path):
    """A language model saved mid-epoch carries its LSTM state (h, c): shapes other than this run's
    (num_layers, batch, hidden) are refused; its own shapes resume."""
    from seq2seq.core.errors import CheckpointError

    base = OmegaConf.load(tiny_lm_run / "config.yaml")
    overrides = ["experiment=rnnlm_ptb", f"task.data_dir={base.task.data_dir}", "task.batch_size=2",
                 "task.time_size=4", "task.eval_batch_size=2", "model.wordvec_size=8", "model.hidden_size=8",
                 "trainer.device=cpu", "trainer.progress=false", "trainer.max_epochs=2"]  # fmt: skip
    for carry, says in (
        ((torch.zeros(1, 3, 8), torch.zeros(1, 3, 8)), "carry[0] is (1, 3, 8) torch.float32, this run's (1, 2, 8)"),
        ((torch.zeros(1, 2, 8),), "the carried state is not 2 tensors"),
        ((torch.zeros(1, 2, 8), torch.full((1, 2, 8), float("nan"))), "carry[1] holds NaN"),
        ((torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)), None),
    ):
        run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        run.mkdir()
        state = torch.load(tiny_lm_run / "last.pt", weights_only=True)
        state["progress"].update(finished=False, batch=1)
        state["carry"] = carry
        write_state(state, run / "last.pt")
        cfg = compose_train(run, *overrides, f"trainer.resume={run}")
        if says is None:
            assert train(cfg)["epoch"] == 2
        else:
            with pytest.raises(CheckpointError, match=re.escape(says)):
                train(cfg)


@pytest.mark.slow
def test_a_crafted_resume_state_is_one_line_in_a_real_process(tiny_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(tiny_run / "last.pt", weights_only=True)
    state["progress"]["finished"] = False
    state["optimizer"]["param_groups"][0]["betas"] = "x"
    write_state(state, run / "last.pt")
    args = [*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}"]
    result, peak, seconds = measured("seq2seq.train", *args, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line or line.startswith("error")]
    assert len(errors) == 1 and "param_groups[0].betas is not a list of 2" in errors[0], result.stderr
    assert peak < PEAK_MB and seconds < SECONDS, (peak, seconds)
