"""Finding runs and what state each is in, read from the run's status.json (written by the training loop:
seq2seq.training.rundir.write_status) without loading a checkpoint or importing torch."""

from pathlib import Path

from seq2seq.core import compat
from seq2seq.core.errors import CheckpointError, ConfigError
from seq2seq.core.files import read_json
from seq2seq.training.lock import alive, holder

STATUS = "status.json"
STATES = ("running", "finished", "interrupted", "failed")


def read_status(run_dir: Path) -> dict:
    """A run's status.json as plain values ({} when it has none or it cannot be read)."""
    path = Path(run_dir) / STATUS
    if not path.is_file() or path.is_symlink():
        return {}
    try:
        status = read_json(path, "run status")
    except CheckpointError:
        return {}
    return status if isinstance(status, dict) else {}


def state(run_dir: Path) -> str:
    """finished, running, interrupted (stopped by a signal, kill -9 or a crash: `trainer.resume=` continues
    it) or failed (stopped by an error). A status left at running by a process that no longer holds the run's
    lock was killed: interrupted."""
    recorded = read_status(run_dir).get("state")
    if recorded not in STATES:
        return compat.state_from_log(Path(run_dir) / "train.log", alive(holder(Path(run_dir))))
    if recorded == "running" and not alive(holder(Path(run_dir))):
        return "interrupted"
    return recorded


def finished(run_dir: Path) -> bool:
    return state(run_dir) == "finished"


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
