"""What a training command asked for, completed before Hydra starts (`Launch.from_command_line`), and handed
to every training job it runs: no state between the command line and the run lives anywhere else.

- `trainer.resume=<run>` continues <run>: Hydra's run directory (train.log, .hydra/) becomes <run>, so
  everything the resumed run writes lands in one directory, and Hydra's record of this command goes to
  .hydra/resumed_<time>/ beside the original one. Until the run's checks pass, that record and the log wait in
  a staging folder (`staged`): a refused or finished resume writes nothing into the run directory.
  `trainer.resume=latest` means the newest run of the same experiment (`latest_run`). An explicit
  hydra.run.dir forks instead.
- A run directory named on the command line is locked before Hydra writes into it (`locks`): a second run
  refused there writes nothing; the run keeps the lock.
- The run directories named that existed before the command, and what they held (`existing`): a refused run
  removes from them only what it wrote there.
"""

import logging
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from seq2seq.core.errors import CheckpointError, ConfigError
from seq2seq.training import distributed, lock, rundir
from seq2seq.training.start import check_target, config_changes

log = logging.getLogger(__name__)


SWEEP_BATCH = 10  # jobs of a sweep composed and checked together by Hydra before they run


@dataclass
class Launch:
    args: list[str] = field(default_factory=list)  # the overrides Hydra gets, resuming in place's added
    staged: Path | None = None  # where Hydra's record and log of an in-place resume wait for the checks
    existing: dict[str, frozenset[str]] = field(default_factory=dict)  # run directories named that existed, and
    # what each held before this command
    locks: dict[str, lock.RunLock] = field(default_factory=dict)  # run directories locked before Hydra wrote

    @classmethod
    def from_command_line(cls, args: list[str]) -> "Launch":
        """The command line's overrides completed (resuming in place), the run directory it names checked and
        locked, before Hydra writes anything."""
        launch = cls(list(args))
        try:
            launch.resume_in_place()
            launch.batch_sweep()
            launch.check_run_dir()
        except BaseException:
            launch.close()
            raise
        named = [a.split("=", 1)[1].strip("\"'") for a in launch.args if a.startswith(("hydra.run.dir=",
                 "hydra.sweep.dir="))]  # fmt: skip
        launch.existing = {str(Path(v).resolve()): frozenset(p.name for p in Path(v).iterdir()) for v in named
                           if Path(v).is_dir()}  # fmt: skip
        return launch

    @property
    def multirun(self) -> bool:
        return bool({"-m", "--multirun"} & set(self.args))

    def resume_in_place(self) -> None:
        value = next((a.split("=", 1)[1] for a in self.args if a.startswith("trainer.resume=")), None)
        if value in (None, "", "null") or self.multirun:
            return
        value = value.strip("\"'")  # quoted for Hydra or not: the same path
        if value != "latest" and not Path(value).exists():
            raise ConfigError(f"trainer.resume={value}: no such run directory or checkpoint file")
        if value == "latest":
            value = str(latest_run(self.args))
        self.args = [f"trainer.resume={quoted(value)}" if a.startswith("trainer.resume=") else a for a in self.args]
        if any(a.startswith("hydra.run.dir=") for a in self.args):
            return
        path = Path(value)
        run = path if path.is_dir() else path.parent
        self.staged = Path(tempfile.mkdtemp(prefix="seq2seq-resume-"))
        self.args += [f"hydra.run.dir={quoted(run)}", f"hydra.output_subdir={quoted(self.staged / 'record')}",
                      f"hydra.job_logging.handlers.file.filename={quoted(self.staged / 'train.log')}"]  # fmt: skip

    def batch_sweep(self) -> None:
        """Hydra's basic sweeper composes the config of every job of a batch before the batch starts, and one
        batch is the whole sweep unless capped: `seed=range(0,100000)` would compose for hours before its first
        job. Batches of SWEEP_BATCH jobs, unless the user chose a batch size or another sweeper (whose config
        has no such key)."""
        chosen = ("hydra.sweeper.", "hydra/sweeper=", "hparams_search=", "+hparams_search=")
        if self.multirun and not any(a.lstrip("+~").startswith(chosen) for a in self.args):
            self.args.append(f"hydra.sweeper.max_batch_size={SWEEP_BATCH}")

    def check_run_dir(self) -> None:
        """A run directory named on the command line that is in use, or that holds a run this command does
        not resume, is refused before Hydra writes its log and .hydra/ record into it (train() checks the
        same again, under the lock it keeps)."""
        value = next((a.split("=", 1)[1] for a in self.args if a.startswith("hydra.run.dir=")), None)
        if value is None or self.multirun or not distributed.is_main_process():
            return
        run_dir = Path(value.strip("\"'"))
        rundir.check_writable(run_dir)
        if run_dir.is_dir():
            self.lock(run_dir)
        if not any(a.startswith("trainer.resume=") and a.split("=", 1)[1] not in ("", "null") for a in self.args):
            check_target("fresh", None, run_dir)

    def lock(self, run_dir: Path) -> lock.RunLock:
        """The lock of a run directory for this command: taken once and kept."""
        key = str(run_dir.resolve())
        if key not in self.locks or self.locks[key].fd is None:
            self.locks[key] = lock.RunLock(run_dir)
        return self.locks[key]

    def adopt_staged(self, run_dir: Path) -> None:
        """The checks passed: the staged Hydra record becomes .hydra/resumed_<time>/ and the staged log lines
        join train.log, which the log's file handler writes to from here on. Neither is reached through a
        link."""
        staged = self.staged
        if staged is None or not staged.is_dir():
            return
        rundir.check_no_links(run_dir)
        if (staged / "record").is_dir():
            (run_dir / ".hydra").mkdir(exist_ok=True)
            record = run_dir / ".hydra" / f"resumed_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
            while record.exists() or record.is_symlink():  # two resumes in one second, or a planted name
                record = record.with_name(record.name + "_")
            shutil.copytree(staged / "record", record, symlinks=True)
        staged_log = str(staged / "train.log")
        for handler in {h for name in (None, "seq2seq.summary") for h in logging.getLogger(name).handlers}:
            if isinstance(handler, logging.FileHandler) and handler.baseFilename == staged_log:
                handler.flush()
                fd = os.open(run_dir / "train.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
                with open(staged_log, "rb") as lines:
                    os.write(fd, lines.read())
                handler.setStream(os.fdopen(fd, "a", encoding="utf-8")).close()
                handler.baseFilename = str((run_dir / "train.log").absolute())
        self.discard_staged()

    def discard_staged(self) -> None:
        if self.staged is not None:
            shutil.rmtree(self.staged, ignore_errors=True)
        self.staged = None

    def close(self) -> None:
        """The command ends: a staged record left (a refused resume) goes, the locks are released."""
        self.discard_staged()
        for held in self.locks.values():
            held.release()
        self.locks.clear()

    def __getstate__(self) -> dict:  # a sweep's jobs (joblib pickles them) hold no lock of this process
        return {**self.__dict__, "locks": {}}


def quoted(path) -> str:
    """A path as one quoted override value: '=', ',' and spaces are not syntax there, a quote is escaped."""
    # Hydra reads a backslash as an escape only before a quote (or the closing one): double those.
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), str(path))
    return f"'{escaped}'"


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
