"""How a run starts, decided in one place (see the README's "Resuming and interrupting runs").

A run starts in one of three ways, chosen once from the config and the checkpoint `trainer.resume`
names (`plan`), then carried out (`restore`, `prepare`):

    fresh    a new run in a new or empty directory
    resume   the run continues in its own directory from its last.pt (the command line's
             trainer.resume=<run> makes Hydra's run directory that run: `resume_in_place`)
    fork     a new run in a new, empty directory, from any checkpoint of another run

A new run never writes over another run's checkpoints. What a resumed run may change is declared at
the config's fields (seq2seq.training.config.RESUMABLE); everything else is checked before anything is written.
"""

import logging
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from seq2seq.core import compat, files
from seq2seq.core.errors import CheckpointError, ConfigError
from seq2seq.tasks.base import data_fingerprint, held_data_fingerprint
from seq2seq.training import checkpoint as ckpt
from seq2seq.training import checkpoints, distributed, lock, rundir
from seq2seq.training.config import DATA_PATHS, RESUMABLE, RESUMABLE_GROUPS
from seq2seq.training.state import RunState

log = logging.getLogger(__name__)


def flatten(node, prefix: str = "") -> dict:
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    out = {}
    for key, value in node.items():
        out.update(
            flatten(value, f"{prefix}{key}.") if isinstance(value, dict) and value else {f"{prefix}{key}": value}
        )
    return out


def config_changes(saved, now: DictConfig) -> list[str]:
    """What a resumed run's config changes that resuming cannot honour, as 'key: saved -> now'."""
    if not isinstance(saved, dict):
        return ["the checkpoint holds no config to compare with"]
    old, new = flatten(saved), flatten(OmegaConf.to_container(now, resolve=True))
    keys = sorted(k for k in set(old) | set(new) if old.get(k, "<unset>") != new.get(k, "<unset>"))
    keys = [k for k in keys if k not in RESUMABLE and k.split(".")[0] not in RESUMABLE_GROUPS]
    return [f"{k}: {old.get(k, '<unset>')} -> {new.get(k, '<unset>')}" for k in keys]


def check_resumable(checkpoint: dict, setup, task_state: dict, path) -> None:
    """Refuse a checkpoint that was made for another model, task, vocabulary or schedule."""
    if checkpoint["model"] != setup.model_spec:
        raise CheckpointError(f"{path}: made for model {checkpoint['model']}, but the config builds {setup.model_spec}")
    saved = checkpoint["task"]
    # A field added since (compat.OPTIONAL_FIELDS) that an older checkpoint lacks is not a difference.
    now = {k: v for k, v in task_state.items() if k in saved or k not in compat.OPTIONAL_FIELDS}
    if saved != now:
        diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        raise CheckpointError(f"{path}: made for another task or vocabulary (differs in: {', '.join(diff)})")
    for key in ("optimizer", "progress"):
        if key not in checkpoint:
            raise CheckpointError(f"{path}: has no {key} state to resume from")
    ckpt.check_optimizer_state(checkpoint["optimizer"], setup.optimizer, str(path))
    ckpt.check_schedule_state(checkpoint.get("scheduler"), setup.schedule, str(path))
    ckpt.check_rng_state(checkpoint["progress"], str(path))
    carries = getattr(setup.task, "carry_shapes", None)  # tasks that carry state between batches say its shapes
    ckpt.check_carry(checkpoint.get("carry"), carries(setup.model) if carries else None, str(path))
    ckpt.check_metrics(checkpoint.get("metrics", {}), str(path))
    total = setup.schedule.total_steps  # a one-cycle schedule is built for a length
    saved_total = (checkpoint.get("scheduler") or {}).get("total_steps")
    if total is not None and saved_total != total:
        raise CheckpointError(
            f"{path}: its one-cycle schedule spans {saved_total} steps, this config's {total}: "
            "trainer.max_epochs cannot change on a one-cycle run (start a new run instead)"
        )


@dataclass(frozen=True)
class Plan:
    """How this run starts (see the module's docstring), with the checkpoint it starts from."""

    kind: str  # "fresh", "resume" (in place) or "fork"
    run_dir: Path
    source: Path | None = None  # the checkpoint file resumed or forked from
    saved: dict | None = None  # that checkpoint, read and checked

    @property
    def in_place(self) -> bool:
        return self.kind == "resume"


def plan(cfg: DictConfig, run_dir: Path) -> Plan:
    """Decide how the run starts, and refuse what it cannot do: a directory that is not its own, a
    checkpoint that is not a resumable one, a config that changes what resuming cannot."""
    source = ckpt.resolve(cfg.trainer.resume, "last.pt") if cfg.trainer.resume else None
    kind = "fresh" if source is None else "resume" if source.parent.resolve() == run_dir.resolve() else "fork"
    check_target(kind, source, run_dir)
    if source is None:
        return Plan(kind, run_dir)
    saved = ckpt.load(source, "last.pt")
    if not isinstance(saved.get("config"), dict):
        raise CheckpointError(f"{source}: holds no config to compare this run's with, so it cannot be resumed")
    compat.keep_old_behaviour(saved.get("config"), cfg)
    changes = config_changes(saved.get("config"), cfg)
    if changes:
        raise CheckpointError(f"{source}: resuming cannot change " + "; ".join(changes))
    return Plan(kind, run_dir, source, saved)


def check_target(kind: str, source: Path | None, run_dir: Path) -> None:
    """A run resumes in its own directory from its last.pt, or forks into a new, empty directory; a new
    run never writes over another run's checkpoints, nor into a directory holding anything else; nothing
    the project writes is reached through a symbolic link."""
    rundir.check_no_links(run_dir)
    if kind == "fresh":
        if (run_dir / "last.pt").exists():
            raise CheckpointError(
                f"{run_dir} already holds a run (last.pt): continue it with trainer.resume={run_dir}, "
                "or leave hydra.run.dir out to start a new run in a new directory"
            )
        others = rundir.foreign_files(run_dir)
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise CheckpointError(
                f"{run_dir} already holds {shown}: a new run needs a directory of its own (leave hydra.run.dir "
                "out, or give an empty or new one)"
            )
    elif kind == "resume":
        if source.name != "last.pt":
            raise CheckpointError(
                f"{source}: resuming from {source.name} would overwrite this run's later last.pt; "
                f"continue the run with trainer.resume={run_dir}, or fork it: add hydra.run.dir=<a new directory>"
            )
    elif (run_dir / "last.pt").exists():
        raise CheckpointError(f"{run_dir} already holds a run (last.pt): fork {source} into a new directory")


def restore(plan: Plan, cfg: DictConfig, setup) -> tuple[RunState, object, dict]:
    """The state the run starts from, the state carried between batches and the last metrics: a new
    state, or the checkpoint's, checked against what this config builds and the data it reads."""
    fingerprints = data_fingerprint(setup.task), held_data_fingerprint(setup.task)
    if plan.kind == "fresh":
        return RunState(data=fingerprints[0], held_data=fingerprints[1]), None, {}
    check_resumable(plan.saved, setup, setup.task.state_dict(), plan.source)
    saved, carry, metrics = ckpt.restore(plan.saved, setup.model, setup.optimizer, setup.schedule, setup.device)
    state = RunState.from_saved(saved, str(plan.source))
    if plan.kind == "fork":  # a new run: its best.pt and top-k files are of the epochs it trains (the source's stay)
        state.top, state.best, state.best_partial, state.best_step = [], None, False, None
    if not (state.finished and state.done(cfg.trainer)):  # a finished run says so instead (train.fit)
        log.info("resuming %s at epoch %d, step %d", plan.source, state.epoch + 1, state.step)
    check_same_data(plan, cfg, state, fingerprints)
    if plan.kind == "fork" and state.done(cfg.trainer):  # a fork would hold no checkpoint of its own
        raise CheckpointError(
            f"{plan.source}: the run has finished (epoch {state.epoch}, step {state.step}): a fork of it "
            "needs more to train: raise trainer.max_epochs or trainer.max_steps"
        )
    return state, carry, metrics


DATA_KEYS = (*DATA_PATHS, "task.num_examples", "seed")  # named when the data changed


def check_same_data(plan: Plan, cfg: DictConfig, state: RunState, fingerprints: tuple[str, str]) -> None:
    """A run resumes on the data it trained and validated on: other data (a file changed or cut) is
    refused in place, and allowed, with a warning, when forking into a new directory. Checkpoints of
    earlier versions hold no fingerprint (or none of the validation data)."""
    saved = {"training": state.data, "validation": state.held_data}
    changed = [what for what, now in zip(saved, fingerprints, strict=True) if saved[what] not in (None, now)]
    state.data, state.held_data = fingerprints
    if not changed:
        return
    where = ", ".join(f"{k}={OmegaConf.select(cfg, k)}" for k in DATA_KEYS if OmegaConf.select(cfg, k) is not None)
    if plan.in_place:
        raise CheckpointError(
            f"{plan.source}: the {changed[0]} data is not what this run used ({where}): resuming would change "
            f"the experiment; fork it into a new run instead: add hydra.run.dir=<a new directory>"
        )
    log.warning("forking %s onto other %s data (%s)", plan.source, changed[0], where)


def prepare(plan: Plan, cfg: DictConfig, state: RunState) -> None:
    """Once every check passed (rank 0): Hydra's staged record joins the run directory; leftovers of a
    crash are removed and, resuming in place, best.pt and the top-k files mended; the resolved config
    is written."""
    run_dir = plan.run_dir
    if plan.in_place and cfg.trainer.save_top_k > 1:  # epoch-<N>.pt files still to come
        checkpoints.check_top_free(run_dir, state.epoch + 1, cfg.trainer.max_epochs)
    try:
        rundir.remove_leftovers(run_dir)
        if plan.in_place:  # what a crash between writes left: a stale best.pt, top-k files last.pt does not list
            checkpoints.repair_best(run_dir, state.as_dict())
            checkpoints.prune_top(run_dir, state.as_dict())
        adopt_staged(run_dir)  # after the repairs: a refused one leaves no record of this command
        files.write_file(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    except OSError as e:  # a full disk, a read-only directory: the checkpoints stay as they are
        raise ConfigError(f"cannot write to the run directory {run_dir}: {e.strerror or e}") from None


def latest_run(args: list[str], outputs: Path = Path("outputs")) -> Path:
    """The newest run directory (by its last.pt) of the experiment these overrides name, under
    outputs/<name>/ or a sweep's outputs/multirun/<time>/<job>_<name>[_<overrides>]/ (the name exactly:
    `rnnlm_ptb` is not `better_rnnlm_ptb`); among them, the newest whose saved config this command
    would resume (no change it cannot honour), else the newest. Says which it took."""
    from hydra import compose, initialize_config_dir

    from seq2seq.training.config import CONFIG_DIR

    overrides = [a for a in args if not a.startswith(("hydra.", "trainer.resume=", "-"))]
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
    except Exception as e:  # Hydra's own errors for a bad override: shown in one line
        raise ConfigError(f"trainer.resume=latest: {str(e).strip().splitlines()[0]}") from None
    name = cfg.name
    job = re.compile(rf"\d+_{re.escape(name)}(_.*)?")
    found = [*(outputs / name).glob("*/last.pt")]
    found += [p for p in (outputs / "multirun").glob("*/*/last.pt") if job.fullmatch(p.parent.name)
              and saved_name(p.parent / "config.yaml") in (name, None)]  # fmt: skip
    if not found:
        raise CheckpointError(f"trainer.resume=latest: no run of {name} with a checkpoint under {outputs}/")
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    fitting = [p for p in found if not saved_config_changes(p.parent / "config.yaml", cfg)]
    chosen = (fitting or found)[0].parent
    log.info("trainer.resume=latest: %s (the newest of %d runs of %s%s)", chosen, len(found), name,
             "" if fitting else "; none has this command's config")  # fmt: skip
    print(f"note: trainer.resume=latest is {chosen}", file=sys.stderr)
    return chosen


def saved_name(path: Path) -> str | None:
    """The experiment name a run's config.yaml records (None when it cannot be read)."""
    try:
        name = OmegaConf.load(path).get("name")
    except Exception:
        return None
    return name if isinstance(name, str) else None


def saved_config_changes(path: Path, cfg: DictConfig) -> list[str]:
    """The changes resuming a run with this config.yaml could not honour (any, when it cannot be read)."""
    try:
        saved = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception:
        return ["unreadable"]
    with open_dict(cfg):
        now = OmegaConf.merge(cfg, {"paths": {"output_dir": saved.get("paths", {}).get("output_dir")}})
    return config_changes(saved, now)


def resume_in_place(args: list[str]) -> list[str]:
    """`trainer.resume=<run>` continues <run>: Hydra's run directory (train.log, .hydra/) becomes <run>,
    so everything the resumed run writes lands in one directory, and Hydra's record of this command
    goes to .hydra/resumed_<time>/ beside the original one. An explicit hydra.run.dir forks instead.
    `trainer.resume=latest` means the newest run of the same experiment (see latest_run)."""
    value = next((a.split("=", 1)[1] for a in args if a.startswith("trainer.resume=")), None)
    if value in (None, "", "null") or {"-m", "--multirun"} & set(args):
        return args
    value = value.strip("\"'")  # quoted for Hydra or not: the same path
    if value != "latest" and not Path(value).exists():
        raise ConfigError(f"trainer.resume={value}: no such run directory or checkpoint file")
    args = [f"trainer.resume={quoted(value)}" if a.startswith("trainer.resume=") else a for a in args]
    if value == "latest":
        run = latest_run(args)
        args = [f"trainer.resume={quoted(run)}" if a.startswith("trainer.resume=") else a for a in args]
        value = str(run)
    if any(a.startswith("hydra.run.dir=") for a in args):
        return args
    path = Path(value.strip("\"'"))
    run = path if path.is_dir() else path.parent
    global STAGED
    STAGED = Path(tempfile.mkdtemp(prefix="seq2seq-resume-"))
    return [*args, f"hydra.run.dir={quoted(run)}", f"hydra.output_subdir={quoted(STAGED / 'record')}",
            f"hydra.job_logging.handlers.file.filename={quoted(STAGED / 'train.log')}"]  # fmt: skip


def quoted(path) -> str:
    """A path as one quoted override value: '=', ',' and spaces are not syntax there, a quote is escaped."""
    # Hydra reads a backslash as an escape only before a quote (or the closing one): double those.
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), str(path))
    return f"'{escaped}'"


# Where Hydra writes its record (.hydra/) and log of an in-place resume until the run's checks pass:
# a refused or finished resume writes nothing into the run directory (see adopt_staged).
STAGED: Path | None = None


def adopt_staged(run_dir: Path) -> None:
    """The checks passed: the staged Hydra record becomes .hydra/resumed_<time>/ and the staged log lines
    join train.log, which the log's file handler writes to from here on. Neither is reached through a
    link."""
    if STAGED is None or not STAGED.is_dir():
        return
    rundir.check_no_links(run_dir)
    if (STAGED / "record").is_dir():
        (run_dir / ".hydra").mkdir(exist_ok=True)
        record = run_dir / ".hydra" / f"resumed_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        while record.exists() or record.is_symlink():  # two resumes in one second, or a planted name
            record = record.with_name(record.name + "_")
        shutil.copytree(STAGED / "record", record, symlinks=True)
    staged_log = str(STAGED / "train.log")
    for handler in {h for name in (None, "seq2seq.summary") for h in logging.getLogger(name).handlers}:
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == staged_log:
            handler.flush()
            fd = os.open(run_dir / "train.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            with open(staged_log, "rb") as lines:
                os.write(fd, lines.read())
            handler.setStream(os.fdopen(fd, "a", encoding="utf-8")).close()
            handler.baseFilename = str((run_dir / "train.log").absolute())
    discard_staged()


def discard_staged() -> None:
    global STAGED
    if STAGED is not None:
        shutil.rmtree(STAGED, ignore_errors=True)
    STAGED = None


def early_checks(args: list[str]) -> None:
    """A run directory named on the command line that is in use, or that holds a run this command does
    not resume, is refused before Hydra writes its log and .hydra/ record into it (train() checks the
    same again, under the lock)."""
    value = next((a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")), None)
    if value is None or {"-m", "--multirun"} & set(args) or not distributed.is_main_process():
        return
    run_dir = Path(value.strip("\"'"))
    rundir.check_writable(run_dir)
    lock.check_free(run_dir)
    if not any(a.startswith("trainer.resume=") and a.split("=", 1)[1] not in ("", "null") for a in args):
        check_target("fresh", None, run_dir)
