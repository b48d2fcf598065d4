"""How a run starts, decided in one place (see the README's "Resuming and interrupting runs").

A run starts in one of three ways, chosen once from the config and the checkpoint `trainer.resume`
names (`plan`), then carried out (`restore`, `prepare`):

    fresh    a new run in a new or empty directory
    resume   the run continues in its own directory from its last.pt (the command line's
             trainer.resume=<run> makes Hydra's run directory that run: seq2seq.training.launch)
    fork     a new run in a new, empty directory, from any checkpoint of another run

A new run never writes over another run's checkpoints. What a resumed run may change is declared at
the config's fields (seq2seq.training.config.RESUMABLE); everything else is checked before anything is written.
What the command line completes before Hydra starts (resuming in place, locking a named run directory) is
seq2seq.training.launch.
"""

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seq2seq.core import compat, files
from seq2seq.core.errors import CheckpointError, ConfigError
from seq2seq.tasks.base import data_fingerprint, held_data_fingerprint
from seq2seq.training import checkpoint as ckpt
from seq2seq.training import checkpoints, distributed, hparams, rundir
from seq2seq.training import precision as precisions
from seq2seq.training.build import Setup, autocast, build, open_loggers
from seq2seq.training.config import DATA_PATHS, RESUMABLE, RESUMABLE_GROUPS
from seq2seq.training.reporting import metric_columns
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
    saved = ckpt.read(source, "last.pt")
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
        return RunState(data=fingerprints[0], held_data=fingerprints[1], run=secrets.token_hex(8)), None, {}
    check_resumable(plan.saved, setup, setup.task.state_dict(), plan.source)
    saved, carry, metrics = ckpt.restore(plan.saved, setup.model, setup.optimizer, setup.schedule, setup.device)
    state = RunState.from_saved(saved, str(plan.source))
    if plan.kind == "fork":  # a new run: its best.pt and top-k files are of the epochs it trains (the source's stay)
        state.top, state.best, state.best_partial, state.best_step = [], None, False, None
        state.run = secrets.token_hex(8)
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


def prepare(plan: Plan, cfg: DictConfig, state: RunState, adopt_staged=lambda run_dir: None) -> None:
    """Once every check passed (rank 0): leftovers of a crash are removed and, resuming in place, best.pt and the
    top-k files mended; Hydra's staged record of the command joins the run directory (`adopt_staged`, the
    launch's); the resolved config is written."""
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


@dataclass
class Run:
    """One run in progress: its config, what it is made of, where it stands and where it writes."""

    cfg: DictConfig
    setup: Setup
    state: RunState
    writer: object  # seq2seq.training.loggers.Loggers
    checkpoints: checkpoints.Checkpoints
    amp: object  # the autocast context of trainer.precision
    carry: object = None  # state carried between batches (the language model's LSTM state)
    metrics: dict = field(default_factory=dict)  # the latest validation metrics


def begin(cfg: DictConfig, run_dir: Path, adopt_staged) -> Run | dict:
    """The run `cfg` starts (fresh, resumed in place or forked), every check passed and its directory
    prepared; or, for a finished run resumed, its metrics (nothing to train, nothing written)."""
    how = plan(cfg, run_dir)  # checked before anything is built
    setup = build(cfg)
    ctx = setup.ctx
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 reports for everyone
    state, carry, metrics = restore(how, cfg, setup)
    if how.kind != "fresh" and state.finished and state.done(cfg.trainer):
        log.info("%s: the run has finished (epoch %d, step %d); raise trainer.max_epochs or trainer.max_steps "
                 "to train on", how.source, state.epoch, state.step)  # fmt: skip
        return {**metrics, f"best/{setup.task.monitor}": state.best, "epoch": state.epoch, "step": state.step}
    state.finished = False
    saved = state.precision or (compat.old_auto_precision(setup.device.type) if how.kind != "fresh" else None)
    precision = precisions.choose(cfg.trainer.precision, setup, saved) if ctx.is_main else None
    state.precision = precision = distributed.broadcast(precision, ctx)  # every rank computes alike
    if ctx.is_main:
        prepare(how, cfg, state, adopt_staged)
    writer = open_loggers(cfg, run_dir, (state.step, state.epoch) if how.in_place else None, ctx)
    writer.start(hparams.columns(cfg, hparams.command_line_overrides()), metric_columns(setup.task))
    saver = checkpoints.Checkpoints(cfg, setup, run_dir, writer, state.step if how.in_place else None)
    return Run(cfg, setup, state, writer, saver, autocast(setup.device, precision), carry, metrics)
