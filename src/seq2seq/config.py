"""Config helpers: where the config tree lives and checks that run before any training starts."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seq2seq.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

# `${suffix:x}` is '_x', or '' when x is empty: run directory names without a dangling '_'.
OmegaConf.register_new_resolver("suffix", lambda s: f"_{s}" if s else "", replace=True)

# Keys that must hold positive numbers when present (None means "not set" where allowed).
POSITIVE = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.grad_clip",
    "trainer.log_every_n_steps",
    "task.batch_size",
    "task.time_size",
    "task.eval_batch_size",
    "task.num_examples",
    "task.max_digits",
    "model.wordvec_size",
    "model.hidden_size",
    "model.num_layers",
    "optimizer.lr",
)


def validate(cfg: DictConfig) -> None:
    """Fail before training with the name of the first impossible value."""
    for key in POSITIVE:
        node, *rest = key.split(".")
        section = cfg.get(node)
        if section is None or rest[0] not in section:
            continue
        value = section[rest[0]]
        if value is None and key in ("trainer.max_steps",):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{key}={value!r}: must be a positive number")
    fraction = cfg.task.get("val_fraction")
    if fraction is not None and not 0 < fraction < 1:
        raise ConfigError(f"task.val_fraction={fraction!r}: must be between 0 and 1")
    dropout = cfg.model.get("dropout")
    if dropout is not None and not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout={dropout!r}: must be in [0, 1)")
