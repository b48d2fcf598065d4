"""The runs under the explorer's root: found, described for the runs table, their `val/` curves read,
and every path a page asks for checked to lie under the root.

A training run is a folder holding `config.yaml` beside `train.log` or a checkpoint (outputs/<name>/<run>/,
outputs/multirun/<time>/<job>/); a shared model is a folder holding `config.json` beside
`model.safetensors` (seq2seq.export). Nothing here loads a checkpoint or builds a model: the table is read
from the files' plain values (seq2seq.core.files) and TensorBoard records (seq2seq.training.read_events).
"""

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from seq2seq.core.errors import CheckpointError, DataError
from seq2seq.core.files import read_json, read_yaml
from seq2seq.core.metrics import lower_is_better
from seq2seq.core.registry import by_target
from seq2seq.tasks import TASKS
from seq2seq.training.events import curves as scalars
from seq2seq.training.events import event_files
from seq2seq.training.runs import recorded_values
from seq2seq.training.runs import state as run_state

log = logging.getLogger(__name__)

MAX_DEPTH = 4  # folders below the root searched for runs (outputs/multirun/<time>/<job> is 3)
MAX_RUNS = 1000  # runs listed; a root holding more is cut, newest first
MAX_FOLDERS = 20_000  # folders looked into when searching (root=/ must not walk the whole disk)


@dataclass
class Run:
    """One row of the runs table."""

    id: str  # the folder relative to the root, with '/': what the page shows and sends back
    path: Path
    kind: str  # its task state's kind (seq2seq.tasks.codec): fixed_width | token_pairs | captions | lm | unknown
    experiment: str = ""
    overrides: str = ""
    seed: int | None = None
    metric: str = ""
    best: float | None = None
    final: float | None = None
    status: str = ""  # finished | running | interrupted | failed | shared | unreadable
    date: str = ""
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict, repr=False)
    signature: tuple = ()  # the files it was read from, with sizes and times: unchanged, it is not read again
    family: str = "unknown"  # seq2seq | captioner | lm (seq2seq.core.registry.FAMILIES)

    def row(self) -> list:
        """The row of COLUMNS."""
        shown = (lambda v: "" if v is None else round(v, 4)) if self.metric else (lambda v: "")
        seed = "" if self.seed is None else self.seed
        return [self.id, self.experiment, self.metric, shown(self.best), shown(self.final), self.status, seed,
                self.date, self.overrides]  # fmt: skip


COLUMNS = ["run", "experiment", "metric", "best", "final", "status", "seed", "date", "overrides"]


def is_run(path: Path) -> bool:
    has = set(os.listdir(path))
    training = "config.yaml" in has and bool(has & {"train.log", "last.pt", "best.pt"})
    return training or {"config.json", "model.safetensors"} <= has


def find(root: Path) -> list[Path]:
    """The run folders under root, up to MAX_DEPTH below it; links are never followed, hidden folders
    (`.hydra`) never searched, and a run's own folders are not searched for more runs."""
    found, level, visited = [], [root], 0
    for _ in range(MAX_DEPTH):
        below = []
        for folder in level[: MAX_FOLDERS - visited]:
            visited += 1
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                path = Path(entry.path)
                try:
                    (found if is_run(path) else below).append(path)
                except OSError:
                    continue
        level = below
    return found


def started(path: Path) -> float:
    """When a run began: its config's modification time (written before training), else the folder's."""
    for name in ("config.yaml", "config.json"):
        try:
            return (path / name).lstat().st_mtime
        except OSError:
            continue
    return path.lstat().st_mtime


def confined(root: Path, path: Path) -> Path:
    """`path`, a file of a run, read only when it lies under the root once every link is followed: a
    config.yaml or a .hydra/ linking out of the root is no file of the root's runs (CheckpointError)."""
    try:
        inside = path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a loop of links
        inside = False
    if not inside:
        raise CheckpointError(f"{path}: lies outside {root} once its links are followed")
    return path


def status(path: Path) -> str:
    """finished, running, interrupted or failed (seq2seq.training.runs.state)."""
    return run_state(path)


def overrides(root: Path, path: Path) -> str:
    try:
        words = read_yaml(confined(root, path / ".hydra" / "overrides.yaml"), "Hydra's record of the command line")
    except CheckpointError:
        return ""
    return " ".join(str(w) for w in words) if isinstance(words, list) else ""


def signature(path: Path) -> tuple:
    """Names, sizes and modification times of the files a run's row is read from."""
    names = ["config.yaml", "config.json", "train.log", *(f.name for f in event_files(path))]
    stats = []
    for name in names:
        try:
            st = (path / name).lstat()
            stats.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    return tuple(stats)


def describe(root: Path, path: Path, known: Run | None = None) -> Run:
    """A run's row, read from its files (`known`: its row of an earlier scan, kept when they have not
    changed, its status read again); what cannot be read is left empty."""
    seen = signature(path)
    if known is not None and known.signature == seen:
        if known.status != "shared":
            known.status = status(path)
        return known
    run = Run(path.relative_to(root).as_posix(), path, "unknown", signature=seen)
    run.date = time.strftime("%Y-%m-%d %H:%M", time.localtime(started(path)))
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return describe_shared(root, run)
    try:
        config = read_yaml(confined(root, path / "config.yaml"), "a run's config")
    except CheckpointError:
        config = None
    if isinstance(config, dict):
        task = config.get("task") if isinstance(config.get("task"), dict) else {}
        target = task.get("_target_")
        task_class = by_target(target)  # the registry's, by name: nothing is imported
        if task_class is not None:
            run.kind, run.family = task_class.CODEC.kind, task_class.family
        run.experiment = str(config.get("name", ""))
        run.seed = config.get("seed") if isinstance(config.get("seed"), int) else None
        monitor = task.get("monitor")
        run.metric = monitor if isinstance(monitor, str) else getattr(task_class, "monitor", "")
    run.overrides = overrides(root, path)
    run.status = status(path)
    run.curves = scalars(path)
    values = [v for _, v in run.curves.get(run.metric, []) if math.isfinite(v)]
    if values:
        run.best = (min if lower_is_better(run.metric) else max)(values)
        run.final = run.curves[run.metric][-1][1]
    else:  # no epoch curve (a max_steps run stopped inside its first epoch): its status.json's values
        run.best, run.final = recorded_values(path)
    return run


def describe_shared(root: Path, run: Run) -> Run:
    """A shared model's folder: what its config.json says of where it came from."""
    run.status = "shared"
    try:
        config = read_json(confined(root, run.path / "config.json"), "a shared model's config")
    except CheckpointError:
        return run
    config = config if isinstance(config, dict) else {}
    source = config.get("source") if isinstance(config.get("source"), dict) else {}
    kind = config["task"].get("kind") if isinstance(config.get("task"), dict) else None
    tasks = [cls for cls in TASKS.values() if cls.CODEC.kind == kind]  # the tasks that save such a state
    if tasks:
        run.kind, run.family = kind, tasks[0].family
    run.experiment = str(source.get("experiment", ""))
    words = source.get("overrides") if isinstance(source.get("overrides"), list) else []
    run.overrides = " ".join(w for w in words if isinstance(w, str))
    run.seed = source.get("seed") if isinstance(source.get("seed"), int) else None
    metrics = source.get("metrics") if isinstance(source.get("metrics"), dict) else {}
    run.metric = tasks[0].monitor if tasks else ""
    value = metrics.get(run.metric)
    finite = isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e300
    run.best = run.final = float(value) if finite else None
    return run


class Runs:
    """The runs under a root folder, read again on every `scan` (a run may have ended meanwhile)."""

    def __init__(self, root: str | Path):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"root={root}: not a folder of runs (give the folder `python -m seq2seq.train` writes to)")
        self.root = root.resolve()
        self.runs: dict[str, Run] = {}

    def scan(self) -> list[Run]:
        found = sorted(find(self.root), key=started, reverse=True)[:MAX_RUNS]
        known = self.runs
        self.runs = {}
        for path in found:
            key = path.relative_to(self.root).as_posix()
            try:
                run = describe(self.root, path, known.get(key))
            except Exception as e:  # a run's files that nothing here foresaw: listed as such, the others shown
                log.warning("explorer: %s: %s: %s", path, type(e).__name__, str(e)[:200])
                run = Run(key, path, "unknown", status="unreadable")
            self.runs[run.id] = run
        return list(self.runs.values())

    def path(self, value: str) -> Path:
        """The folder or file `value` names, relative to the root (or absolute), refused unless it lies
        under the root once every link is followed: no `..`, no absolute path elsewhere, no link out."""
        if not isinstance(value, str) or not value.strip():
            raise DataError("choose a run")
        if len(value) > 4096 or "\0" in value:
            raise DataError("not a path")
        given = Path(value.strip())
        if ".." in given.parts:
            raise DataError(f"{value[:200]}: '..' is not allowed; runs are opened under {self.root} only")
        try:
            full = (given if given.is_absolute() else self.root / given).resolve()
            exists = full.exists()
        except (OSError, RuntimeError) as e:  # a name too long, a loop of links
            raise DataError(f"{value[:200]}: not a path to open ({getattr(e, 'strerror', None) or e})") from None
        if not full.is_relative_to(self.root):
            raise DataError(f"{value[:200]}: outside {self.root}; the explorer opens runs under its root only")
        if not exists:
            raise DataError(f"{value[:200]}: no such run under {self.root}")
        return full

    def get(self, value: str) -> Run:
        """The run `value` names (a row of the table, or a path under the root)."""
        path = self.path(value)
        key = path.relative_to(self.root).as_posix()
        if key not in self.runs:
            if not path.is_dir() or not is_run(path):
                raise DataError(f"{value[:200]}: not a run folder (config.yaml with a checkpoint, or a shared model)")
            self.runs[key] = describe(self.root, path)
        return self.runs[key]
