"""A run directory loses nothing the project did not write, and a resume knows its data: top-k cleaning
spares a user's files, a fresh run refuses a directory holding other things, nothing is written
through a planted link, the lock survives its file being deleted, a finished run resumed writes
nothing, other data is refused in place, `latest` means the experiment's exact name."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import seq2seq
from seq2seq.core.errors import CheckpointError, ConfigError, DataError
from seq2seq.training import checkpoint as ckpt
from seq2seq.training import checkpoints, events, lock
from seq2seq.training.loop import NonFiniteLossError, train

from .helpers import TINY_ADDITION, compose_train, run_module, tiny, train_cli


def test_top_k_cleaning_spares_files_the_run_did_not_write(tmp_path):
    run = tmp_path / "run"
    train(tiny(run, "trainer.max_epochs=2", "trainer.save_top_k=2"))
    own = sorted(p.name for p in run.glob("epoch-*.pt"))
    assert own and checkpoints.written_top(run) == set(own)
    (run / "epoch-9.pt").write_text("a user's copy")
    (tmp_path / "elsewhere.pt").write_text("linked")
    (run / "epoch-8.pt").symlink_to(tmp_path / "elsewhere.pt")
    train(tiny(run, "trainer.max_epochs=4", "trainer.save_top_k=2", f"trainer.resume={run}"))
    assert (run / "epoch-9.pt").read_text() == "a user's copy"
    assert (run / "epoch-8.pt").is_symlink() and (tmp_path / "elsewhere.pt").read_text() == "linked"
    assert len(checkpoints.written_top(run)) == 2 and all((run / n).is_file() for n in checkpoints.written_top(run))
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
    held = lock.RunLock(run)
    try:
        assert (run / ".lock").read_text().strip() == str(os.getpid())
        (run / ".lock").unlink()  # deleting the file does not free the directory
        with pytest.raises(ConfigError, match="is in use by another run"):
            lock.RunLock(run)
        os.mkfifo(run / ".lock")  # nor does a FIFO in its place hang or break the message
        with pytest.raises(ConfigError, match=r"in use by another run \(pid unknown\)"):
            lock.RunLock(run)
    finally:
        held.release()
    again = lock.RunLock(run)  # free again; the FIFO was replaced by a plain file
    assert (run / ".lock").is_file() and not (run / ".lock").is_fifo()
    again.release()
    assert not (run / ".lock").exists()  # a released lock leaves no pid behind


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
    """On resume, the run's own TensorBoard files (those its record lists) are compacted into one: a user's
    file whose name merely contains 'tfevents', a link named like an event file and another writer's event
    file are never read, renamed or deleted; an own file whose data fails its checksum is kept aside under a
    name TensorBoard skips, never deleted."""
    run = tmp_path / "run"
    train(tiny(run, "trainer.max_epochs=1"))
    (own,) = events.event_files(run)
    assert json.loads((run / events.RECORD).read_text()) == [own.name]
    (run / "my_tfevents_notes.txt").write_text("notes")
    (tmp_path / "elsewhere").write_bytes(b"not events")
    (run / "events.out.tfevents.1234567890.link").symlink_to(tmp_path / "elsewhere")
    foreign = run / "events.out.tfevents.1000000000.host.1.0"
    foreign.write_bytes(b"\x07" * 64)  # another writer's (damaged) file
    data = bytearray(own.read_bytes())
    data[-6] ^= 0xFF  # a byte of the last record's data: its length checks, its data does not
    own.write_bytes(bytes(data))
    damaged = own.read_bytes()
    train(tiny(run, "trainer.max_epochs=2", f"trainer.resume={run}"))
    assert (run / "my_tfevents_notes.txt").read_text() == "notes"
    assert (run / "events.out.tfevents.1234567890.link").is_symlink()
    assert (tmp_path / "elsewhere").read_bytes() == b"not events" and foreign.read_bytes() == b"\x07" * 64
    aside = own.with_name(own.name.replace("tfevents", "unreadable", 1))
    assert aside.read_bytes() == damaged and not own.exists()
    recorded = json.loads((run / events.RECORD).read_text())
    assert foreign.name not in recorded and all((run / n).is_file() for n in recorded)


def test_an_event_file_cut_short_by_a_crash_keeps_its_whole_records(tmp_path):
    run = tmp_path / "run"
    train(tiny(run, "trainer.max_epochs=1"))
    (path,) = events.event_files(run)
    whole = events.read_events(path)
    path.write_bytes(path.read_bytes()[:-5])  # the last record cut short
    assert [e.step for e in events.read_events(path)] == [e.step for e in whole[:-1]]
    path.write_bytes(b"\x00" * 12 + path.read_bytes())  # a length whose checksum fails: damaged
    assert events.read_events(path) is None


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
    from seq2seq.training.config import validate
    from seq2seq.training.state import RunState

    for field, value in (("epoch", -3), ("step", 10**18), ("batch", -1)):
        with pytest.raises(CheckpointError, match=rf"progress\.{field}=.* is not a count of this run"):
            RunState.from_saved({field: value}, "last.pt")
    assert RunState.from_saved({"epoch": 3, "step": 30}, "last.pt").step == 30
    with pytest.raises(ConfigError, match=r"optimizer\.lr=inf: must be a positive number"):
        validate(tiny(tmp_path, "optimizer.lr=inf"))
    with pytest.raises(ConfigError, match=r"task\.max_digits=10000000: must be from 1 to 9"):
        validate(tiny(tmp_path, "task.max_digits=10000000"))


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
    assert ckpt.read(run / "last.pt", "last.pt")["config"]["seed"] == 0
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
