"""A run directory loses nothing the project did not write, and a resume knows its data: top-k cleaning
spares a user's files, a fresh run refuses a directory holding other things, nothing is written
through a planted link, the lock survives its file being deleted, a finished run resumed writes
nothing, other data is refused in place, `latest` means the experiment's exact name."""

import os
from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq import rundir
from seq2seq.errors import CheckpointError, ConfigError, DataError
from seq2seq.train import train

from .helpers import TINY_ADDITION, compose_train, run_module, scalars


def tiny(run: Path, *overrides: str):
    return compose_train(run, *TINY_ADDITION, *overrides)


def test_top_k_cleaning_spares_files_the_run_did_not_write(tmp_path):
    run = tmp_path / "run"
    train(tiny(run, "trainer.max_epochs=2", "trainer.save_top_k=2"))
    own = sorted(p.name for p in run.glob("epoch-*.pt"))
    assert own and rundir.written_top(run) == set(own)
    (run / "epoch-9.pt").write_text("a user's copy")
    (tmp_path / "elsewhere.pt").write_text("linked")
    (run / "epoch-8.pt").symlink_to(tmp_path / "elsewhere.pt")
    train(tiny(run, "trainer.max_epochs=4", "trainer.save_top_k=2", f"trainer.resume={run}"))
    assert (run / "epoch-9.pt").read_text() == "a user's copy"
    assert (run / "epoch-8.pt").is_symlink() and (tmp_path / "elsewhere.pt").read_text() == "linked"
    assert len(rundir.written_top(run)) == 2 and all((run / n).is_file() for n in rundir.written_top(run))
    (run / "epoch-6.pt").write_text("a user's file, named like an epoch still to come")
    with pytest.raises(ConfigError, match=r"epoch-6\.pt was not written by this run"):
        train(tiny(run, "trainer.max_epochs=6", "trainer.save_top_k=3", f"trainer.resume={run}"))
    assert (run / "epoch-6.pt").read_text().startswith("a user's file")


def test_a_new_run_refuses_a_directory_holding_other_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.pt", "epoch-1.pt", "config.yaml"):
        (run / name).write_text(name)
    with pytest.raises(CheckpointError, match=r"already holds best\.pt, config\.yaml, epoch-1\.pt: a new run"):
        train(tiny(run, "trainer.max_steps=2"))
    assert all((run / n).read_text() == n for n in ("best.pt", "epoch-1.pt", "config.yaml"))
    result = run_module("seq2seq.train", *TINY_ADDITION, f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 2 and "already holds best.pt" in result.stderr and "Traceback" not in result.stderr
    assert not (run / ".hydra").exists()  # refused before Hydra wrote its record


@pytest.mark.parametrize("name", ["config.yaml", "train.log", "metrics.csv"])
def test_nothing_is_written_through_a_planted_link(tmp_path, name):
    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (run / name).symlink_to(target)
    with pytest.raises(ConfigError, match=f"{name} is a symbolic link"):
        train(tiny(run, "trainer.max_steps=2"))
    assert target.read_text() == "keep me"


def test_the_lock_holds_when_its_file_is_deleted_or_replaced(tmp_path):
    run = tmp_path / "run"
    lock = rundir.RunLock(run)
    try:
        assert (run / ".lock").read_text().strip() == str(os.getpid())
        (run / ".lock").unlink()  # deleting the file does not free the directory
        with pytest.raises(ConfigError, match="is in use by another run"):
            rundir.RunLock(run)
        os.mkfifo(run / ".lock")  # nor does a FIFO in its place hang or break the message
        with pytest.raises(ConfigError, match=r"in use by another run \(pid unknown\)"):
            rundir.RunLock(run)
    finally:
        lock.release()
    again = rundir.RunLock(run)  # free again; the FIFO was replaced by a plain file
    assert (run / ".lock").is_file() and not (run / ".lock").is_fifo()
    again.release()
    assert not (run / ".lock").exists()  # a released lock leaves no pid behind


def test_resuming_a_finished_run_writes_nothing(tmp_path):
    run = tmp_path / "run"
    first = train(tiny(run, "trainer.max_epochs=1", "logger=[tensorboard,csv]"))

    def files():  # the lock's pid file aside: every command that takes the lock rewrites it
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in run.iterdir() if p.name != ".lock"}

    before = files()
    again = train(tiny(run, "trainer.max_epochs=1", "logger=[tensorboard,csv]", f"trainer.resume={run}"))
    after = files()
    assert after == before and again["best/val/acc"] == first["best/val/acc"]


def tree(run: Path) -> dict:
    """Every path under a run directory with its size and modification time (the lock's pid file aside)."""
    return {str(p.relative_to(run)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in run.rglob("*")
            if p.name != ".lock"}  # fmt: skip


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
    assert (
        "the run has finished"
        in run_module(
            "seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=1", f"trainer.resume={run}", cwd=tmp_path
        ).stderr
    )
    log_before = (run / "train.log").read_text()
    result = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    records = list((run / ".hydra").glob("resumed_*/overrides.yaml"))
    assert len(records) == 1 and "trainer.max_epochs=2" in records[0].read_text()
    log = (run / "train.log").read_text()
    assert log.startswith(log_before) and "resuming" in log[len(log_before) :] and "done: best" in log


def test_a_link_inside_hydras_record_is_refused(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (run / ".hydra" / "config.yaml").symlink_to(target)
    with pytest.raises(ConfigError, match=r"\.hydra/config\.yaml is a symbolic link"):
        train(tiny(run, "trainer.max_steps=2"))
    result = run_module("seq2seq.train", *TINY_ADDITION, f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 2 and ".hydra/config.yaml is a symbolic link" in result.stderr
    assert target.read_text() == "keep me"


def test_event_compaction_touches_only_the_runs_own_readable_event_files(tmp_path):
    """On resume, TensorBoard's files are compacted into one: a user's file whose name merely contains
    'tfevents', a link named like an event file, and a damaged event file are never read through or
    deleted; the damaged one is kept aside under a name TensorBoard skips."""
    run = tmp_path / "run"
    train(tiny(run, "trainer.max_epochs=1"))
    (run / "my_tfevents_notes.txt").write_text("notes")
    (tmp_path / "elsewhere").write_bytes(b"not events")
    (run / "events.out.tfevents.1234567890.link").symlink_to(tmp_path / "elsewhere")
    damaged = b"\x07" * 64
    (run / "events.out.tfevents.1000000000.host.1.0").write_bytes(damaged)
    train(tiny(run, "trainer.max_epochs=2", f"trainer.resume={run}"))
    assert (run / "my_tfevents_notes.txt").read_text() == "notes"
    assert (run / "events.out.tfevents.1234567890.link").is_symlink()
    assert (tmp_path / "elsewhere").read_bytes() == b"not events"
    assert (run / "events.out.unreadable.1000000000.host.1.0").read_bytes() == damaged
    assert [step for step, _ in scalars(run, "val/acc")] == [1, 2]


def test_an_event_file_cut_short_by_a_crash_keeps_its_whole_records(tmp_path):
    run = tmp_path / "run"
    train(tiny(run, "trainer.max_epochs=1"))
    (path,) = rundir.event_files(run)
    whole = rundir.read_events(path)
    path.write_bytes(path.read_bytes()[:-5])  # the last record cut short
    assert [e.step for e in rundir.read_events(path)] == [e.step for e in whole[:-1]]
    path.write_bytes(b"\x00" * 12 + path.read_bytes())  # a length whose checksum fails: damaged
    assert rundir.read_events(path) is None


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
    from seq2seq.resume import latest_run

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

    from seq2seq.resume import config_changes

    saved = OmegaConf.to_container(tiny(tmp_path, "optimizer.fused=true"), resolve=True)
    now = tiny(tmp_path, "logger=[tensorboard,csv]", "task.num_samples=3", "optimizer.fused=false")
    assert config_changes(saved, now) == []
    assert config_changes(saved, tiny(tmp_path, "optimizer.lr=0.5")) == ["optimizer.lr: 0.001 -> 0.5"]


def test_a_run_directory_that_is_a_file_or_unwritable_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_module("seq2seq.train", *TINY_ADDITION, f"hydra.run.dir={tmp_path / 'file'}", cwd=tmp_path)
    assert (
        result.returncode == 2 and result.stderr.strip() == f"error: hydra.run.dir={tmp_path / 'file'}: not a directory"
    )


def test_api_and_file_misuse_is_one_clear_error(tmp_path):
    run = tmp_path / "run"
    train(tiny(run, "trainer.max_epochs=1"))
    with pytest.raises(ConfigError, match="device='tpu': not a device"):
        seq2seq.load(run, device="tpu")
    model = seq2seq.load(run, device="cpu")
    with pytest.raises(DataError, match="skip leaves none of the model's"):
        model.generate("1+2", skip=list(model.vocab.itos))
    state = torch.load(run / "best.pt", weights_only=True)
    state["task"]["vocab"][1] = state["task"]["vocab"][0]
    torch.save(state, tmp_path / "twice.pt")
    with pytest.raises(CheckpointError, match="the vocabulary lists a token twice"):
        seq2seq.load(tmp_path / "twice.pt")
    state = torch.load(run / "best.pt", weights_only=True)
    deep = {}
    node = deep
    for _ in range(400):
        node["x"] = {}
        node = node["x"]
    state["config"]["task"]["extra"] = deep
    torch.save(state, tmp_path / "deep.pt")
    with pytest.raises(CheckpointError, match="nested more than 32 levels deep"):
        seq2seq.load(tmp_path / "deep.pt")


def test_a_png_declaring_gigapixels_is_refused_before_decoding(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    from seq2seq.data.digit_images import load_png

    Image.new("1", (10_000, 10_000)).save(tmp_path / "bomb.png")  # a small file: one bit a pixel, compressed
    assert (tmp_path / "bomb.png").stat().st_size < 1_000_000
    with pytest.raises(DataError, match="10000 x 10000 pixels; this reads images of at most"):
        load_png(tmp_path / "bomb.png", 12, 42)
    Image.new("1", (20_000, 20_000)).save(tmp_path / "huge.png")  # beyond PIL's own bound: its error, one line
    with pytest.raises(DataError, match=r"huge\.png: not a readable image .*decompression bomb"):
        load_png(tmp_path / "huge.png", 12, 42)


def test_progress_counts_and_settings_read_from_files_are_bounded(tmp_path):
    from seq2seq.config import validate
    from seq2seq.progress import Progress

    for field, value in (("epoch", -3), ("step", 10**18), ("batch", -1)):
        with pytest.raises(CheckpointError, match=rf"progress\.{field}=.* is not a count of this run"):
            Progress.from_saved({field: value}, "last.pt")
    assert Progress.from_saved({"epoch": 3, "step": 30}, "last.pt").step == 30
    with pytest.raises(ConfigError, match=r"optimizer\.lr=inf: must be a positive number"):
        validate(tiny(tmp_path, "optimizer.lr=inf"))
    with pytest.raises(ConfigError, match=r"task\.max_digits=10000000: must be from 1 to 9"):
        validate(tiny(tmp_path, "task.max_digits=10000000"))


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
