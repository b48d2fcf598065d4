"""Finding runs and what state each is in, read from the run's status.json (written by the training loop:
seq2seq.training.rundir.write_status) without loading a checkpoint or importing torch."""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from seq2seq.core import compat
from seq2seq.core.errors import CheckpointError, ConfigError
from seq2seq.core.files import read_json
from seq2seq.training.lock import alive, holder

STATUS = "status.json"
STATES = ("running", "finished", "interrupted", "failed")


def recorded_values(run_dir: Path) -> tuple[float | None, float | None]:
    """The best and final value of the monitored metric a run's status.json records (None where absent or not
    a finite number): a run stopped inside its first epoch has no epoch curve to read them from."""
    status = read_status(run_dir)
    return tuple(float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None
                 for v in (status.get("best"), status.get("final")))  # fmt: skip


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


DEBUG = "debug"  # runs of the debug configs go to outputs/debug/ (configs/debug/*.yaml): latest and best skip them
DEPTHS = ("*", "*/*", "*/*/*")  # outputs/<name>/<run>/, outputs/multirun/<time>/<job>/


@dataclass
class Search:
    """The runs up to three folders below `folder` that hold the file `name`, and what was passed over."""

    folder: Path
    name: str
    found: list[Path] = field(default_factory=list)  # the `name` files
    debug: int = 0  # runs under <folder>/debug/ (skipped)
    without: list[Path] = field(default_factory=list)  # runs with only last.pt: stopped before a first best.pt

    @classmethod
    def of(cls, folder: Path, name: str, skip_debug: bool) -> "Search":
        search = cls(Path(folder), name)
        for depth in DEPTHS:
            for path in sorted(Path(folder).glob(f"{depth}/{name}")):
                if not path.is_file():
                    continue
                if skip_debug and path.relative_to(folder).parts[0] == DEBUG:
                    search.debug += 1
                else:
                    search.found.append(path)
            if name != "last.pt":
                search.without += [p.parent for p in Path(folder).glob(f"{depth}/last.pt")
                                   if not (p.parent / name).exists() and not (skip_debug and
                                   p.relative_to(folder).parts[0] == DEBUG)]  # fmt: skip
        return search

    def passed_over(self, what: str) -> str:
        """What the search left out and how to reach it: debug runs, runs without a best.pt."""
        said = []
        if self.debug:
            said.append(f"{self.debug} debug run(s) under {self.folder / DEBUG} skipped (they are searched when named: "
                        f"{pointed(what, self.folder / DEBUG)})")  # fmt: skip
        if self.without:
            said.append(f"{len(self.without)} run(s) stopped before their first {self.name}, e.g. {self.without[0]} "
                        f"(checkpoint={self.without[0] / 'last.pt'} uses its latest state)")  # fmt: skip
        return "; ".join(said)

    def none_found(self, what: str) -> ConfigError:
        searched = f"{self.folder.resolve()} and three folders below it" if self.folder.is_dir() else None
        if searched is None:
            return ConfigError(f"{what}: {self.folder.resolve()} does not exist (train a run first, or run the command "
                               "from the folder that holds outputs/)")  # fmt: skip
        more = self.passed_over(what)
        return ConfigError(f"{what}: no run with a {self.name} in {searched}" + (f"; {more}" if more else ""))


def pointed(what: str, folder: Path) -> str:
    """A `checkpoint=` choice (latest, best:val/acc@..., or a folder) made in `folder` instead."""
    choice = what.split("=", 1)[-1].split("@")[0]
    if re.fullmatch(r"(latest|best)(:[A-Za-z_]+/[A-Za-z0-9_]+)?", choice):
        return f"checkpoint={choice}@{folder}"
    return f"checkpoint={folder}"


def newest_run(folder: Path, name: str, what: str, skip_debug: bool = False) -> tuple[Path, str]:
    """The file `name` of the newest finished run up to three folders below `folder` (an experiment's
    outputs/<name>/<run>/, a sweep's outputs/multirun/<time>/<job>/), else of the newest run holding
    one; and a note for the user saying which run that is, how many it chose from and what it skipped."""
    search = Search.of(folder, name, skip_debug)
    if not search.found:
        raise search.none_found(what)
    done = [p for p in search.found if finished(p.parent)]
    chosen = max(done or search.found, key=lambda p: p.stat().st_mtime)
    kind = "finished run" if done else "run (none has finished)"
    more = search.passed_over(what)
    note = f"{what}: the newest {kind} of {len(search.found)} in {folder} is {chosen.parent}"
    return chosen, note + (f"; {more}" if more else "")


def best_value(run_dir: Path, metric: str | None) -> tuple[str, float] | None:
    """(metric, its best value) of a run: the monitored metric's best from status.json, another metric's from
    the run's TensorBoard curve; None where the run has no such value."""
    from seq2seq.core.metrics import lower_is_better
    from seq2seq.training.events import curves

    status = read_status(run_dir)
    monitor = status.get("monitor") if isinstance(status.get("monitor"), str) else None
    metric = metric or monitor
    if metric is None:
        return None
    best = status.get("best")
    if metric == monitor and isinstance(best, int | float) and not isinstance(best, bool) and math.isfinite(best):
        return metric, float(best)
    values = [v for _, v in curves(run_dir, metric).get(metric, []) if math.isfinite(v)]
    if not values:
        return None
    return metric, (min if lower_is_better(metric) else max)(values)


def best_run(folder: Path, name: str, metric: str | None, what: str) -> tuple[Path, str]:
    """The file `name` of the run with the best value of `metric` (default: the runs' monitored metric, which
    must then be the same for all) up to three folders below `folder`, in the metric's direction (val/loss
    and val/ppl fall, accuracies rise); debug runs are skipped. The note names the run, its value and the
    runner-up."""
    from seq2seq.core.metrics import lower_is_better

    search = Search.of(folder, name, skip_debug=True)
    if not search.found:
        raise search.none_found(what)
    scored = [(value, path) for path in search.found if (value := best_value(path.parent, metric))]
    metrics = sorted({m for (m, _), _ in scored})
    if not scored:
        raise ConfigError(f"{what}: none of the {len(search.found)} runs in {folder} has a recorded "
                          f"{metric or 'monitored metric'}")  # fmt: skip
    if len(metrics) > 1:
        raise ConfigError(f"{what}: the runs in {folder} monitor different metrics ({', '.join(metrics)}): "
                          f"name one, e.g. {pointed(f'checkpoint=best:{metrics[0]}', folder)}")  # fmt: skip
    metric = metrics[0]
    low = lower_is_better(metric)
    ranked = sorted(scored, key=lambda vp: (vp[0][1] if low else -vp[0][1], -vp[1].stat().st_mtime))
    (_, value), chosen = ranked[0]
    note = (f"{what}: the best of {len(scored)} runs in {folder} by {metric} ({'lowest' if low else 'highest'}) is "
            f"{chosen.parent} ({metric} {value:.4f})")  # fmt: skip
    if len(ranked) > 1:
        note += f"; next {ranked[1][1].parent} ({ranked[1][0][1]:.4f})"
    more = search.passed_over(what)
    return chosen, note + (f"; {more}" if more else "")
