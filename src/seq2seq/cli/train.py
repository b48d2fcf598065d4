"""`python -m seq2seq.train` (seq2seq-train): the command line around `seq2seq.training.loop.train`, Hydra
wiring only: the checks before Hydra writes anything, resuming in place, and one-line errors."""

import logging
import resource
import sys
from pathlib import Path

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from seq2seq.cli import common as cli
from seq2seq.core import compat
from seq2seq.core.errors import ConfigError, DataError, Seq2seqError, TrainingInterrupted
from seq2seq.core.extras import missing_plugin
from seq2seq.training import distributed, rundir
from seq2seq.training.config import check as config_check
from seq2seq.training.launch import Launch
from seq2seq.training.loop import train

log = logging.getLogger(__name__)


def without_hydra(config: DictConfig) -> DictConfig:
    cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


class Preflight(Callback):
    """The composed config checked before Hydra creates the run directory (configs/hydra/default.yaml names
    this callback): Hydra writes the directory, its `.hydra/` record and train.log before it calls the
    training function, so a refused command leaves nothing behind. Refusals are one line, exit code 2;
    `train()` checks again, for callers of the Python function and each job of a sweep."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            config_check(without_hydra(config))
        except Seq2seqError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """The sweep's base config is checked (each job is checked again by train())."""
        self.on_run_start(config)


class TrainJob:
    """What Hydra runs, for the run and for each job of a sweep: `train(cfg)` with this command's launch, its
    errors as one line and an exit code. Returns the value a sweeper optimises: the best value of the task's
    monitored metric. (A class, not a closure, so a launcher can pickle it with its launch.)"""

    def __init__(self, launch: Launch):
        self.launch = launch

    def __call__(self, cfg: DictConfig) -> float | None:
        run_dir = Path(cfg.paths.output_dir)
        try:
            metrics = train(cfg, self.launch)
            distributed.shutdown()
        except TrainingInterrupted as e:
            log.warning("%s", e)
            sys.exit(128 + e.signum)
        except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM while the first was honoured, or one before training
            if (run_dir / "last.pt").is_file():
                log.warning("stopped at once by a signal: %s holds the last checkpoint written", run_dir / "last.pt")
            else:
                log.warning("stopped by a signal before any checkpoint was written")
                self.remove_if_made_here(run_dir)
            sys.exit(130)
        except (ConfigError, DataError) as e:  # a user's mistake (a refused resume, data that does not fit)
            self.remove_if_made_here(run_dir)
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except Seq2seqError as e:  # training failed (a checkpoint unreadable, the loss not finite, the disk)
            log.error("%s", e)
            self.remove_if_made_here(run_dir)
            sys.exit(1)
        return next((v for k, v in metrics.items() if k.startswith("best/")), None)

    def remove_if_made_here(self, run_dir: Path) -> None:
        """A run that stopped before training leaves nothing behind it wrote: no folder it made, no record or
        log in a folder that was there."""
        rundir.remove_unstarted(run_dir, self.launch.existing.get(str(run_dir.resolve())))


MIN_FILE_SIZE = 1 << 20  # a run's config record, log and tiny checkpoints


def small_file_limit() -> str | None:
    """The refusal of a file size limit (`ulimit -f`) too small for a run's first files, else None: Hydra's own
    write of its record would end in a traceback. (Checkpoints larger than the limit are refused as they come.)"""
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and limit < MIN_FILE_SIZE:
        return (
            f"files may be at most {limit:,} bytes here (ulimit -f): a run writes more (its record, log, checkpoints)"
        )
    return None


def main() -> None:
    """`python -m seq2seq.train` and `seq2seq-train`: the command line checked and completed (seq2seq.training
    .launch) before Hydra writes anything, then handed to Hydra, which reads it from sys.argv."""
    logging.raiseExceptions = False  # a log line that cannot be written (ulimit -f) is lost, not a traceback
    args, notes = compat.translate_model_choice(sys.argv[1:])
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    cli.check_args(
        "seq2seq.train", args, lambda word: "choose with group=option (experiment=peeky_addition) and set "
        "key=value (trainer.max_epochs=3); --help lists both", config_name="train",
    )  # fmt: skip
    if {"--cfg", "-c"} & set(args):  # the composed config, printed here (Hydra's cannot resolve the run's paths)
        try:
            print(cli.render_config(args), end="")
        except Exception as e:
            cli.fail(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        return
    try:
        message = missing_plugin(args) or small_file_limit()
        if message:
            raise ConfigError(message)
        launch = Launch.from_command_line(args)
    except Seq2seqError as e:
        cli.fail(e)
    try:
        cli.check_overrides(launch.args)
        app = hydra.main(version_base="1.3", config_path="../configs", config_name="train")(TrainJob(launch))
        sys.argv[1:] = launch.args  # Hydra's one way in
        app()
    except Seq2seqError as e:
        cli.fail(e)
    finally:
        launch.close()  # a refused resume leaves nothing behind


if __name__ == "__main__":
    main()
