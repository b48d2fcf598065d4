"""A run directory's layout, and what may be in it: nothing the project writes is reached through a link, a new
run starts only in an empty (or new) directory, a refused run leaves nothing behind, and the temporary files
of an interrupted write are removed at the next start.

Layout of a run directory:
    config.yaml              the resolved config
    status.json              where the run stands (running, finished, interrupted, failed), its monitored
                             metric's best and final values: read without loading a checkpoint
    train.log, .hydra/       the log and Hydra's record (.hydra/resumed_<time>/ for each in-place resume)
    last.pt, best.pt         the latest state and the best epoch's (seq2seq.training.checkpoints)
    epoch-<N>.pt, .topk.json trainer.save_top_k > 1: the k best epochs, and the record of those this run wrote
    events.out.tfevents.*    TensorBoard curves (metrics.csv with logger=csv; seq2seq.training.events)
    .lock                    held by the one process writing there (seq2seq.training.lock)
"""

import contextlib
import fnmatch
import json
import logging
import os
import shutil
import time
from pathlib import Path

from seq2seq.core import compat
from seq2seq.core.errors import ConfigError
from seq2seq.core.files import write_file
from seq2seq.training.checkpoints import TOP_RECORD
from seq2seq.training.events import RECORD as EVENTS_RECORD
from seq2seq.training.lock import LOCK
from seq2seq.training.runs import STATUS

log = logging.getLogger(__name__)

# Temporary files: `.<name>.<random>.tmp` (seq2seq.core.files.write_file), and those of earlier versions.
TMP_PATTERNS = (
    ".*.pt.*.tmp",
    ".config.yaml.*.tmp",
    ".topk.*.tmp",
    ".lock.*.tmp",
    ".status.json.*.tmp",
    ".events.json.*.tmp",
    *compat.OLD_TMP_PATTERNS,
)


def remove_leftovers(run_dir: Path) -> None:
    """Delete temporary files of interrupted checkpoint writes (links are removed, never followed)."""
    for pattern in TMP_PATTERNS:
        for path in run_dir.glob(pattern):
            log.info("removing %s, left by an interrupted write", path.name)
            path.unlink(missing_ok=True)


# What a run directory holds before training starts: Hydra's record and log, and the lock.
BEFORE_TRAINING = {".hydra", "train.log", LOCK}


def remove_unstarted(run_dir: Path, existed: frozenset[str] | None = None) -> bool:
    """What a refused run wrote before training started (Hydra's record and log, the lock's pid) goes: a
    directory this command created (`existed` None) is removed whole when it holds nothing else; in a directory
    that existed, only the names of BEFORE_TRAINING it did not hold before (`existed`) are removed. Anything
    else, a checkpoint or an event file, keeps the directory as it is."""
    try:
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return False
    if not names <= BEFORE_TRAINING | (existed or set()) or (run_dir / ".hydra").is_symlink():
        return False
    for name in names - (existed or set()):
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    if existed is not None:
        return True
    run_dir.rmdir()
    with contextlib.suppress(OSError):  # outputs/<name>/, when this run was its only one
        run_dir.parent.rmdir()
    return True


# The names the project (and Hydra, for it) writes in a run directory: none may be a symbolic link.
WRITTEN = (
    "config.yaml",
    STATUS,
    "train.log",
    "metrics.csv",
    ".hydra",
    "last.pt",
    "best.pt",
    TOP_RECORD,
    LOCK,
    EVENTS_RECORD,
)


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


def write_status(run_dir: Path, state: str, **facts) -> None:
    """status.json: where the run stands (running, finished, interrupted, failed) and the facts a reader needs
    without a checkpoint (its monitored metric, best and final values, epoch, step), written whole."""
    status = {"state": state, **facts, "updated": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_file(run_dir / STATUS, json.dumps(status, indent=1, allow_nan=False) + "\n")
