"""A run directory with one writer: the lock, leftovers of crashed writes, and TensorBoard events
made consistent with the checkpoint a run resumes from.

Layout of a run directory: config.yaml, train.log, .hydra/, last.pt, best.pt, events.out.tfevents.*,
and `.lock` (held by the one process writing there; the kernel drops it when that process dies, so a
crashed run's lock never blocks the next one).
"""

import contextlib
import fcntl
import fnmatch
import json
import logging
import os
import re
import shutil
import stat
import struct
import tempfile
import time
from pathlib import Path

from seq2seq.errors import ConfigError

log = logging.getLogger(__name__)

LOCK = ".lock"
# Temporary checkpoint files: `.<name>.<random>.tmp` (seq2seq.checkpoint.save); `*.pt.tmp` of older versions.
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
TOP_FILE = re.compile(r"epoch-(\d+)\.pt")  # progress.top_name


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
