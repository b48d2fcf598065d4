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


def alive(pid: str) -> bool:
    """Whether the pid a `.lock` names is a live process (not this process group's 0, not a huge number)."""
    if not pid.isdigit() or not 0 < len(pid) <= 10 or int(pid) == 0:
        return False
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, OverflowError):
        return False
