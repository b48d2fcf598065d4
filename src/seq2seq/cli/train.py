"""`python -m seq2seq.train` (seq2seq-train): the command line around `seq2seq.training.loop.train`, Hydra
wiring only: the checks before Hydra writes anything, resuming in place, and one-line errors."""

import logging
import sys
from pathlib import Path

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from seq2seq.cli import common as cli
from seq2seq.core import compat
from seq2seq.core.errors import ConfigError, Seq2seqError, TrainingInterrupted
from seq2seq.core.extras import missing_plugin
from seq2seq.training import distributed, rundir, start
from seq2seq.training.config import check as config_check
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


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
        distributed.shutdown()
    except TrainingInterrupted as e:
        log.warning("%s", e)
        sys.exit(128 + e.signum)
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM while the first was being honoured, or one before training
        run_dir = Path(cfg.paths.output_dir)
        if (run_dir / "last.pt").is_file():
            log.warning("stopped at once by a signal: %s holds the last checkpoint written", run_dir / "last.pt")
        else:
            log.warning("stopped by a signal before any checkpoint was written")
            remove_if_made_here(run_dir)
        sys.exit(130)
    except Seq2seqError as e:
        log.error("%s", e)
        remove_if_made_here(Path(cfg.paths.output_dir))
        sys.exit(1)
    # The value a sweeper optimises: the best value of the task's monitored metric.
    return next((v for k, v in metrics.items() if k.startswith("best/")), None)


# Run directories named on the command line (hydra.run.dir, or a resumed run's) that existed before this
# command: a refused run never removes them.
EXISTING_RUN_DIRS: set[str] = set()


def remove_if_made_here(run_dir: Path) -> None:
    """A run that stopped before training leaves no empty folder behind, when this command made it."""
    if str(run_dir.resolve()) not in EXISTING_RUN_DIRS:
        rundir.remove_unstarted(run_dir)


def main() -> None:
    """`python -m seq2seq.train` and `seq2seq-train`."""
    sys.argv[1:], notes = compat.translate_model_choice(sys.argv[1:])
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    cli.check_args(
        "seq2seq.train", sys.argv[1:], lambda word: "choose with group=option (experiment=peeky_addition) and set "
        "key=value (trainer.max_epochs=3); --help lists both", config_name="train",
    )  # fmt: skip
    try:
        message = missing_plugin(sys.argv[1:])
        if message:
            raise ConfigError(message)
        sys.argv[1:] = start.resume_in_place(sys.argv[1:])
        start.early_checks(sys.argv[1:])
        cli.check_overrides(sys.argv[1:])
        for arg in sys.argv[1:]:
            key, _, value = arg.partition("=")
            if key in ("hydra.run.dir", "hydra.sweep.dir") and Path(value.strip("\"'")).exists():
                EXISTING_RUN_DIRS.add(str(Path(value.strip("\"'")).resolve()))
    except Seq2seqError as e:
        start.discard_staged()
        cli.fail(e)
    try:
        hydra_main()
    finally:
        start.discard_staged()  # a refused resume leaves nothing behind


if __name__ == "__main__":
    main()
