"""One writer per run directory: a lock on the directory itself, held for the life of a run. The kernel drops
it when its process dies, so a crashed run's lock never blocks the next one; `.lock` only tells the holder's
pid, for the message."""

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from seq2seq.core.errors import ConfigError

LOCK = ".lock"


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
