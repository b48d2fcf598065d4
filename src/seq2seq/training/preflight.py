"""Checks of the composed training config that run before Hydra creates the run directory: a Hydra
callback (configs/hydra/default.yaml), since Hydra writes the directory, its `.hydra/` record and
train.log before it calls the training function. A refused command leaves nothing behind.

Unknown keys, impossible values, a model of another family than its task, and bf16 where the device
cannot run it are refused here in one line with exit code 2; `train()` runs the same checks again for
callers of the Python function (and each job of a sweep, whose values this callback does not see).
"""

import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from seq2seq.core.errors import ConfigError, Seq2seqError
from seq2seq.core.extras import missing_for


def check(cfg: DictConfig) -> None:
    """Everything about a training config that can be known without data."""
    from seq2seq.core.device import check_precision, select_device
    from seq2seq.tasks import check_fits
    from seq2seq.training.config import validate

    validate(cfg)
    check_fits(cfg.task.get("_target_"), cfg.model.get("_target_"))
    loggers = cfg.get("logger") or {}
    targets = [cfg.task.get("_target_"), *(node.get("_target_") for node in loggers.values() if node is not None)]
    missing = missing_for(targets)
    if missing:
        raise ConfigError(missing)
    check_precision(cfg.trainer.precision, select_device(cfg.trainer.device))


def without_hydra(config: DictConfig) -> DictConfig:
    cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


class Preflight(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            check(without_hydra(config))
        except Seq2seqError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """The sweep's base config is checked (each job is checked again by train())."""
        self.on_run_start(config)
