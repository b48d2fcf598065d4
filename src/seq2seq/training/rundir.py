"""The run directory's policy: one writer (the lock), which checkpoints it holds and when they are
written (last, best, top-k), what a crash between writes leaves and how it is mended, and the logs
(TensorBoard events, metrics.csv) cut back to the checkpoint a run resumes from. The checkpoint file
format itself is seq2seq.training.checkpoint.

Layout of a run directory:
    config.yaml              the resolved config
    train.log, .hydra/       the log and Hydra's record (.hydra/resumed_<time>/ for each in-place resume)
    last.pt                  the latest state (resume from it); its progress lists the top-k files
    best.pt                  the state of the best epoch so far (the task's monitored metric)
    epoch-<N>.pt, .topk.json trainer.save_top_k > 1: the k best epochs, and the record of those this run wrote
    events.out.tfevents.*    TensorBoard curves (metrics.csv with logger=csv)
    .lock                    held by the one process writing there; the kernel drops it when that process
                             dies, so a crashed run's lock never blocks the next one
"""

import contextlib
import csv
import fcntl
import fnmatch
import io
import json
import logging
import math
import os
import re
import shutil
import stat
import struct
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from seq2seq.core.errors import CheckpointError, ConfigError, NonFiniteLossError
from seq2seq.training import checkpoint as ckpt

log = logging.getLogger(__name__)

LOCK = ".lock"
# Temporary checkpoint files: `.<name>.<random>.tmp` (seq2seq.training.checkpoint.save); `*.pt.tmp` of older versions.
TMP_PATTERNS = (".*.pt.*.tmp", "last.pt.tmp", "best.pt.tmp", ".config.yaml.*.tmp", ".topk.*.tmp", ".lock.*.tmp")
STEP_TAGS = ("train/loss", "val_step/")  # TensorBoard tags (or prefixes) indexed by optimizer step; all others by epoch


class RunLock:
    """An exclusive lock on a run directory for the life of a run (or until release). The lock is taken
    on the directory itself, so deleting or replacing the `.lock` file (which only tells the holder's
    pid, for the message) cannot let a second run in."""

    def __init__(self, run_dir: Path, note: bool = True):
        self.run_dir, self.noted = run_dir, note
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise ConfigError(f"cannot write to the run directory {run_dir}: {e.strerror}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise ConfigError(
                f"{run_dir} is in use by another run (pid {holder(run_dir)}): each run needs its own directory "
                "(leave hydra.run.dir out, or give another one)"
            ) from None
        if note:
            note_holder(run_dir)

    def release(self) -> None:
        if self.fd is not None:
            if self.noted and holder(self.run_dir) == str(os.getpid()):  # a finished run leaves no pid behind
                (self.run_dir / LOCK).unlink(missing_ok=True)
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def holder(run_dir: Path) -> str:
    """The pid the `.lock` file names (a regular file only: never a FIFO or a link)."""
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return "unknown"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "unknown"
        return os.read(fd, 32).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)


def note_holder(run_dir: Path) -> None:
    """Write this process's pid into `.lock`, replacing whatever is there (a planted link or FIFO too)."""
    with contextlib.suppress(OSError):
        tmp = run_dir / f".lock.{os.getpid()}.tmp"
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, run_dir / LOCK)


_held: dict[str, RunLock] = {}  # locks this process took before Hydra started, by directory


def hold(run_dir: Path) -> RunLock:
    """The lock of a run directory for this process: taken once and kept, so that the command line can
    take it before Hydra writes its record there (a refused second run writes nothing) and the run keeps it."""
    key = str(run_dir.resolve())
    if key not in _held or _held[key].fd is None:
        _held[key] = RunLock(run_dir)
    return _held[key]


def check_free(run_dir: Path) -> None:
    """Refuse a run directory that another run holds, before anything (Hydra's own files) is written
    there; an existing directory stays locked for this command from here on."""
    if run_dir.is_dir():
        hold(run_dir)


def remove_leftovers(run_dir: Path) -> None:
    """Delete temporary files of interrupted checkpoint writes (links are removed, never followed)."""
    for pattern in TMP_PATTERNS:
        for path in run_dir.glob(pattern):
            log.info("removing %s, left by an interrupted write", path.name)
            path.unlink(missing_ok=True)


# The event files this project's TensorBoard writer makes (torch's SummaryWriter and compact_events):
# events.out.tfevents.<creation time>.<host>.<pid>.<n> or .compacted; no other file is read or deleted.
EVENT_FILE = re.compile(r"events\.out\.tfevents\.\d{10}\.[^/]+")


def event_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.iterdir() if EVENT_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink())


def read_events(path: Path):
    """The events of a TensorBoard file, or None when it cannot be read whole. Records are framed as
    <length: u64> <masked crc32c of length: u32> <data> <crc: u32>; a crash mid-write leaves a last
    record cut short (its length intact), which is dropped; a length whose checksum fails, or data that
    is not an event, means the file is damaged, and it is kept, never rewritten."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    data, events, at = path.read_bytes(), [], 0
    while len(data) - at >= 12:
        header = data[at : at + 8]
        if masked_crc32c(header) != struct.unpack("<I", data[at + 8 : at + 12])[0]:
            return None
        (length,) = struct.unpack("<Q", header)
        if at + 16 + length > len(data):
            break  # the record a crash cut short
        try:
            events.append(Event.FromString(data[at + 12 : at + 12 + length]))
        except Exception:
            return None
        at += 16 + length
    return events


def keep_event(event, step: int, epoch: int) -> bool:
    """Whether an event written before a crash belongs to the state a resumed run continues from: step
    tags up to the checkpoint's step, epoch tags up to its completed epochs. The hparams summary and
    file headers are written anew."""
    if not event.HasField("summary"):
        return False
    tags = [v.tag for v in event.summary.value]
    if any(t.startswith(("_hparams_", "hparam/")) for t in tags):
        return False
    limit = step if any(t.startswith(STEP_TAGS) for t in tags) else epoch
    return event.step <= limit


def compact_events(run_dir: Path, step: int, epoch: int) -> None:
    """Rewrite a run's TensorBoard events as one file holding each (tag, step) once, up to where the
    resumed checkpoint stands: a crashed run may have logged past its checkpoint, and runs resumed
    before wrote their own files. The new file is complete before the old ones are deleted."""
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    files, loaded = [], {}
    for path in event_files(run_dir):
        events = read_events(path)
        if events is None:  # history that cannot be parsed is set aside under a name TensorBoard skips
            aside = path.with_name(path.name.replace("tfevents", "unreadable", 1))
            while aside.exists() or aside.is_symlink():
                aside = aside.with_name(aside.name + "_")
            log.warning(
                "%s cannot be read whole: kept aside as %s, its points left out of TensorBoard", path, aside.name
            )
            os.replace(path, aside)
        else:
            files.append(path)
            loaded[path] = events
    if not files:
        return
    seen, kept = set(), []
    for path in reversed(files):  # newest first: a step logged again after a resume wins
        for event in loaded[path]:
            key = (tuple(v.tag for v in event.summary.value), event.step)
            if keep_event(event, step, epoch) and key not in seen:
                seen.add(key)
                kept.append(event)
    kept.sort(key=lambda e: (e.step, e.wall_time))
    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=".events."))
    try:
        writer = EventFileWriter(str(staging), filename_suffix=".compacted")
        for event in kept:
            writer.add_event(event)
        writer.close()
        (new,) = staging.iterdir()
        # TensorBoard reads a directory's files in name order and drops points that go back in step,
        # so the compacted file must sort before any file written after it: one second before the
        # oldest file it replaces (event file names start with their creation time).
        stamps = [p.name.split(".")[3] for p in files]
        first = min((int(s) for s in stamps if s.isdigit()), default=int(time.time()))
        os.replace(new, run_dir / f"events.out.tfevents.{first - 1:010d}.compacted")
        for path in files:
            path.unlink()
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    log.info("TensorBoard events: %d kept up to step %d / epoch %d", len(kept), step, epoch)


def trim_csv(path: Path, fields, step: int, epoch: int) -> None:
    """Drop the rows of metrics.csv (logger=csv) that a crashed run wrote past the checkpoint it resumes
    from, as compact_events does for TensorBoard: a row's step is the optimizer step for STEP_TAGS, the
    epoch for the others; unreadable rows go too."""

    def before(row: dict) -> bool:
        try:
            return int(row["step"]) <= (step if row["tag"].startswith(STEP_TAGS) else epoch)
        except (AttributeError, KeyError, TypeError, ValueError):
            return False

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.DictReader(f))
    kept = [row for row in rows if before(row)]
    if len(kept) < len(rows):
        log.info("%s: %d rows past the checkpoint or unreadable dropped", path.name, len(rows) - len(kept))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept)
    write_file(path, text.getvalue())


def finished(run_dir: Path) -> bool:
    """A run that reached its end: its train.log ends with the summary line (`done: best ...`)."""
    path = run_dir / "train.log"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO, a device or a folder is no run's log
        os.close(fd)
        return False
    with os.fdopen(fd, "rb") as f:
        f.seek(max(0, os.fstat(fd).st_size - 4096))
        return b" - done: best " in f.read()


def newest_run(folder: Path, name: str, what: str) -> tuple[Path, str]:
    """The file `name` of the newest finished run up to three folders below `folder` (an experiment's
    outputs/<name>/<run>/, a sweep's outputs/multirun/<time>/<job>/), else of the newest run holding
    one; and a note for the user saying which run that is."""
    found = [p for depth in ("*", "*/*", "*/*/*") for p in folder.glob(f"{depth}/{name}") if p.is_file()]
    if not found:
        raise ConfigError(f"{what}: no run with a {name} in {folder} or below it")
    done = [p for p in found if finished(p.parent)]
    chosen = max(done or found, key=lambda p: p.stat().st_mtime)
    kind = "finished run" if done else "run (none has finished)"
    return chosen, f"{what}: the newest {kind} of {len(found)} is {chosen.parent}"


# What a run directory holds before training starts: Hydra's record and log, and the lock.
BEFORE_TRAINING = {".hydra", "train.log", LOCK}


def remove_unstarted(run_dir: Path) -> bool:
    """Remove a run directory that this command created and that holds nothing but what is written
    before training starts (a run refused for its data leaves no directory behind). Anything else in
    it, a checkpoint or an event file, keeps it whole."""
    try:
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return False
    if not names <= BEFORE_TRAINING or (run_dir / ".hydra").is_symlink():
        return False
    for name in names:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    run_dir.rmdir()
    with contextlib.suppress(OSError):  # outputs/<name>/, when this run was its only one
        run_dir.parent.rmdir()
    return True


# The epoch-<N>.pt files (trainer.save_top_k) this run wrote, recorded before each is written: cleaning
# deletes only these, never a user's copy or link of the same name.
TOP_RECORD = ".topk.json"
TOP_FILE = re.compile(r"epoch-(\d+)\.pt")  # top_name's


def top_name(epoch: int) -> str:
    """The file of a top-k epoch (trainer.save_top_k): epoch-<N>.pt, N counted from 1."""
    return f"epoch-{epoch}.pt"


def written_top(run_dir: Path) -> set[str]:
    path = run_dir / TOP_RECORD
    try:
        if path.is_symlink():
            return set()
        names = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str) and TOP_FILE.fullmatch(n)} if isinstance(names, list) else set()


def record_top(run_dir: Path, names: set[str]) -> None:
    write_file(run_dir / TOP_RECORD, json.dumps(sorted(names)))


def check_top_free(run_dir: Path, first: int, last: int) -> None:
    """trainer.save_top_k writes epoch-<N>.pt for the epochs still to train (first..last): a file of
    such a name that this run did not write (a user's copy, a link) is refused, never written over."""
    ours = written_top(run_dir)
    epochs = {p.name: TOP_FILE.fullmatch(p.name) for p in run_dir.glob("epoch-*.pt") if p.name not in ours}
    theirs = sorted(
        (name for name, m in epochs.items() if m and first <= int(m.group(1)) <= last),
        key=lambda name: int(epochs[name].group(1)),
    )
    if theirs:
        raise ConfigError(
            f"{run_dir / theirs[0]} was not written by this run, and trainer.save_top_k would write over it: "
            "move it out of the run directory"
        )


def delete_top(run_dir: Path, names) -> None:
    """Delete top-k files this run wrote (links are never followed nor removed)."""
    for name in names:
        path = run_dir / name
        if not path.is_symlink():
            path.unlink(missing_ok=True)


# The names the project (and Hydra, for it) writes in a run directory: none may be a symbolic link.
WRITTEN = ("config.yaml", "train.log", "metrics.csv", ".hydra", "last.pt", "best.pt", TOP_RECORD, LOCK)


def check_no_links(run_dir: Path) -> None:
    """Nothing a run writes (WRITTEN, and anything inside .hydra/, Hydra's record) is a symbolic link."""
    links = [name for name in WRITTEN if (run_dir / name).is_symlink()]
    if not links and (run_dir / ".hydra").is_dir():
        for folder, dirs, files in os.walk(run_dir / ".hydra"):  # links to folders are listed, not entered
            links += [str(Path(folder, n).relative_to(run_dir)) for n in dirs + files if Path(folder, n).is_symlink()]
    if links:
        raise ConfigError(f"{run_dir / links[0]} is a symbolic link: a run writes its own files, never through a link")


def foreign_files(run_dir: Path) -> list[str]:
    """What a directory holds besides what is written there before training starts (a new run's) and the
    temporary files of an interrupted checkpoint write (removed, never followed, at the start)."""
    try:
        names = [p.name for p in run_dir.iterdir() if p.name not in BEFORE_TRAINING]
    except OSError:
        return []
    return sorted(n for n in names if not any(fnmatch.fnmatch(n, pattern) for pattern in TMP_PATTERNS))


def check_writable(run_dir: Path) -> None:
    """A run directory given on the command line must be one this process can make and write to."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"hydra.run.dir={run_dir}: not a directory")
    existing = next((p for p in (run_dir, *run_dir.absolute().parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"hydra.run.dir={run_dir}: cannot write there ({existing} is not a writable directory)")


def write_file(path: Path, content) -> None:
    """Write a file whole, through a temporary file of a unique name (created exclusively, so a link
    planted there is never followed) and a rename: a crash or a full disk never leaves half of it, and
    a link planted at `path` is replaced, never followed. content: text, bytes, or a function that
    writes the file at the path it is given."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if not callable(content):
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
        if callable(content):
            content(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_file(path, text)


# --- checkpoints in the run directory ---------------------------------------------------------------


def commit(state: dict, run_dir: Path, best: bool, top: str | None = None, drop: tuple[str, ...] = ()) -> None:
    """One checkpoint event: the epoch's `top` file when it enters the save_top_k best, last.pt (whose
    progress lists the top files), best.pt when this state is the best, then the top files that fell
    out are deleted. A crash between the writes leaves best.pt behind last.pt's record of the best
    step, which `repair_best` mends, or top files that last.pt does not list, which `prune_top` deletes."""
    if top:
        record_top(run_dir, written_top(run_dir) | {top})  # recorded before it exists
        ckpt.save(state, run_dir / top)
    ckpt.save(state, run_dir / "last.pt")
    if best:
        ckpt.crash_point("between-last-and-best")
        ckpt.save(state, run_dir / "best.pt")
    if drop:
        delete_top(run_dir, drop)
        record_top(run_dir, written_top(run_dir) - set(drop))


def prune_top(run_dir: Path, progress: dict) -> None:
    """Delete the epoch-<N>.pt files this run wrote (TOP_RECORD) that progress["top"] does not
    list (left by a crash between writes); a file of that name the run did not write is never touched."""
    kept = {top_name(epoch) for _, epoch in progress.get("top", [])}
    written = written_top(run_dir)
    if written - kept:
        delete_top(run_dir, written - kept)
        record_top(run_dir, written & kept)


def repair_best(run_dir: Path, progress: dict) -> None:
    """Make best.pt the checkpoint of progress["best_step"]. Only the last write can have been lost, and
    then the best is last.pt itself, so best.pt becomes a copy of it."""
    step = progress.get("best_step")
    best = run_dir / "best.pt"
    if step is None:
        return
    if best.is_file():
        progress = ckpt.load(best).get("progress")  # a best.pt made elsewhere may hold none
        if isinstance(progress, dict) and progress.get("step") == step:
            return
    last = ckpt.load(run_dir / "last.pt", "last.pt")
    if last["progress"].get("step") != step:
        raise CheckpointError(f"{best}: not the best checkpoint (step {step}) and last.pt cannot replace it")
    log.warning("best.pt is behind the recorded best (step %d): rewriting it from last.pt", step)
    ckpt.save({k: v for k, v in last.items() if k not in ("format", "version")}, best)


def find(path: str | Path, name: str = "best.pt", outputs: Path = Path("outputs")) -> tuple[Path, str | None]:
    """The checkpoint a user means by `checkpoint=`: a file; a run directory (its `name`); a folder of
    runs, such as an experiment's outputs/<name>/ (its newest finished run's); `latest` (the newest
    finished run under ./outputs); or a shared model's folder, local or `hf://<user>/<repo>` (returned
    as the folder: seq2seq.inference.pretrained reads it). The note says which run was chosen, when one was."""
    if str(path) == "latest":
        return newest_run(outputs, name, "checkpoint=latest")
    if str(path).startswith("hf://"):  # a shared model on the Hugging Face Hub (seq2seq.inference.pretrained)
        from seq2seq.inference import pretrained

        return pretrained.from_hub(str(path)), None
    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():  # a shared model's folder
        return path, None
    if path.is_dir() and not (path / name).exists():
        return newest_run(path, name, f"checkpoint={path}")
    return ckpt.resolve(path, name), None


class Checkpoints:
    """Writes a run's checkpoint events (rank 0 only) and knows the last one that was written, so a
    refusal can say which checkpoint is kept. Nothing non-finite is ever saved."""

    def __init__(self, cfg, setup, run_dir: Path, writer, saved_step: int | None):
        self.cfg, self.setup, self.run_dir, self.writer = cfg, setup, run_dir, writer
        self.config, self.task_state = OmegaConf.to_container(cfg, resolve=True), setup.task.state_dict()
        self.saved_step = saved_step  # step of the last.pt on disk, or None
        self.last_time = time.monotonic()

    def kept(self) -> str:
        if self.saved_step is None:
            return "no checkpoint was written (none held a finite state)"
        return f"the last good checkpoint is kept: {self.run_dir / 'last.pt'} (step {self.saved_step})"

    def mark_finished(self) -> None:
        """Record in last.pt that the run ended and wrote its final splits. Read back from disk: the model
        now holds best.pt's weights (the final splits are evaluated on them), last.pt must keep its own."""
        path = self.run_dir / "last.pt"
        if self.setup.ctx.is_main and path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            state["progress"]["finished"] = True
            ckpt.save(state, path)

    def due(self, step: int) -> bool:
        """A mid-epoch checkpoint is due (trainer.checkpoint_every_minutes / _n_steps)."""
        every_n, minutes = self.cfg.trainer.checkpoint_every_n_steps, self.cfg.trainer.checkpoint_every_minutes
        return bool(every_n and step % every_n == 0) or bool(
            minutes and time.monotonic() - self.last_time >= 60 * minutes
        )

    def commit(self, state, carry, metrics: dict, best: bool = False, top=None, drop=()) -> None:
        """Save the run's `state` (a RunState) with the model, optimizer, schedule and `carry`: last.pt,
        best.pt when `best`, the epoch's top-k file `top`, and the top-k files `drop` deleted."""
        setup = self.setup
        weights = (f"parameter {n}" for n, p in setup.model.named_parameters() if not torch.isfinite(p).all())
        values = (k for k, v in metrics.items() if not math.isfinite(v))
        bad = next(weights, None) or next(values, None)
        if bad:
            where = f"step {state.step} (epoch {state.epoch + 1})"
            raise NonFiniteLossError(f"{bad} is not finite at {where}: not saved; {self.kept()}")
        if setup.ctx.is_main:
            self.writer.flush()  # every event up to this checkpoint is on disk before it
            saved = ckpt.training_state(
                model_spec=setup.model_spec,
                model=setup.model,
                task=self.task_state,
                config=self.config,
                optimizer=setup.optimizer,
                schedule=setup.schedule,
                progress=state.as_dict(),
                carry=carry,
                metrics=metrics,
            )
            commit(saved, self.run_dir, best, top, drop)
        self.saved_step, self.last_time = state.step, time.monotonic()
