"""Finding runs: the newest finished run of a folder (what `checkpoint=<folder>` and `latest` mean), and what
state a run is in."""

import os
import stat
from pathlib import Path

from seq2seq.core.errors import ConfigError


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
