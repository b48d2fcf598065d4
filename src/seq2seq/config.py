"""Config schemas and checks that run before any training starts.

The schemas are registered with Hydra's ConfigStore and listed first in the defaults of the YAML
files they describe, so a misspelt key (`trainer.max_epoch=3`) or a wrong type
(`trainer.max_epochs=ten`) fails when the config is composed, naming the key. Task and model schemas
are derived from their constructors (seq2seq.schema: one source of defaults); the trainer's are the
dataclasses below. `validate` adds the range checks a type cannot express: the components' CHECKS
and TRAINER_CHECKS.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from seq2seq.checks import NON_NEGATIVE, POSITIVE, SEED, one_of
from seq2seq.decoding import DecodeOptions
from seq2seq.errors import ConfigError, Seq2seqError
from seq2seq.models import MODEL_CLASSES, MODEL_TARGETS
from seq2seq.schema import comments, dataclass_of, options
from seq2seq.tasks import TASK_CLASSES, TASKS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# `${suffix:x}` is '_x', or '' when x is empty: run directory names without a dangling '_'.
OmegaConf.register_new_resolver("suffix", lambda s: f"_{s}" if s else "", replace=True)


@dataclass
class EarlyStoppingConfig:
    patience: int | None = None  # stop after this many full epochs without improvement; null: off
    monitor: str | None = None  # a validation metric (val/loss, val/acc, ...); null: the task's (behind best.pt)
    mode: str | None = None  # min or max; null: the task's for its own metric
    min_delta: float = 0.0  # an improvement must exceed this


@dataclass
class TrainerConfig:
    max_epochs: int = 25  # epochs to train
    max_steps: int | None = None  # stop after this many optimizer steps (quick runs); null: no limit
    grad_clip: float = 5.0  # max gradient norm (clip_grad_norm_)
    resume: str | None = None  # a run directory, a checkpoint, or `latest` (the newest run of this name)
    log_every_n_steps: int = 25  # how often train/loss is written and the progress bar updated
    val_every_n_steps: int | None = None  # also validate every n steps, as val_step/* (quick curves)
    progress: bool = True  # tqdm progress bars
    device: str = "auto"  # auto (CUDA when available, else CPU), cpu or cuda
    precision: str = "fp32"  # fp32, bf16 (autocast: bf16 matrix products), or auto: bf16 on AMX CPUs only
    deterministic: bool = False  # deterministic algorithms (cuDNN, cuBLAS): bit-identical GPU runs and resumes
    threads: int | None = None  # torch threads; null: OMP_NUM_THREADS if set, else every core this process may use
    save_top_k: int = 1  # above 1: also keep the k best epochs as epoch-<N>.pt
    checkpoint_every_minutes: float | None = 10.0  # also save last.pt mid-epoch this often (null: off)
    checkpoint_every_n_steps: int | None = None  # ... or every n optimizer steps
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class PathsConfig:
    output_dir: str = MISSING


@dataclass
class TrainConfig:
    name: str = "run"
    seed: int = 0
    task: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    logger: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


@dataclass
class GenerateConfig(DecodeOptions):
    checkpoint: str = MISSING
    question: str | None = None
    file: str | None = None
    index: int | None = None
    prompt: str | None = None
    device: str = "auto"


@dataclass
class ChatConfig(DecodeOptions):
    checkpoint: str = MISSING
    device: str = "auto"
    context: int | None = None


def register_configs() -> None:
    """Schemas live in the `schema` group; config files pull theirs in with `/schema/...@_here_`, so
    they are not offered as options of the task and model groups."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="generate_schema", node=GenerateConfig)
    cs.store(name="chat_schema", node=ChatConfig)
    for name, cls in TASK_CLASSES.items():
        cs.store(group="schema/task", name=name, node=dataclass_of(cls, f"seq2seq.tasks.{cls.__name__}"))
    for name, cls in MODEL_CLASSES.items():
        cs.store(group="schema/model", name=name, node=dataclass_of(cls, f"seq2seq.models.{cls.__name__}"))


register_configs()

# The trainer's range checks (tasks and models declare theirs beside their constructors: CHECKS).
TRAINER_CHECKS = {
    "trainer.max_epochs": POSITIVE,
    "trainer.max_steps": POSITIVE,
    "trainer.grad_clip": POSITIVE,
    "trainer.log_every_n_steps": POSITIVE,
    "trainer.val_every_n_steps": POSITIVE,
    "trainer.checkpoint_every_minutes": POSITIVE,
    "trainer.checkpoint_every_n_steps": POSITIVE,
    "trainer.early_stopping.patience": POSITIVE,
    "trainer.early_stopping.min_delta": NON_NEGATIVE,
    "trainer.early_stopping.mode": one_of(("min", "max")),
    "trainer.threads": POSITIVE,
    "trainer.save_top_k": POSITIVE,
    "trainer.device": one_of(("auto", "cpu", "cuda")),
    "trainer.precision": one_of(("fp32", "bf16", "auto")),
    "optimizer.lr": POSITIVE,
    "seed": SEED,
}


def component_checks(cls: type) -> dict:
    """A component's CHECKS, its base classes' included (a subclass's own win)."""
    out = {}
    for klass in reversed(cls.__mro__):
        out.update(klass.__dict__.get("CHECKS", {}))
    return out


def components(cfg: DictConfig):
    """(group, class) of the config's task and model, when they are the project's own."""
    for group, table in (("task", TASKS), ("model", MODEL_TARGETS)):
        node = OmegaConf.select(cfg, group, default=None)
        cls = table.get(node.get("_target_")) if isinstance(node, DictConfig) else None
        if cls is not None:
            yield group, cls


def shown(value) -> str:
    """A value as the command line writes it."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def options_help(root: DictConfig) -> str:
    """`--help`: every option of the chosen task, model and trainer with its value in this composition
    (defaults and overrides) and its meaning (the comment beside the constructor parameter or field)."""
    sections = [(group, cls, {o.name: o.comment for o in options(cls)}) for group, cls in components(root)]
    for group, cls in (("trainer", TrainerConfig), ("trainer.early_stopping", EarlyStoppingConfig)):
        notes = comments(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.name != "early_stopping"]
        sections.append((group, cls, {name: notes.get(name, "") for name in names}))
    out = []
    for group, cls, notes in sections:
        out.append(f"{group} ({cls.__module__}.{cls.__name__}):")
        for name, note in notes.items():
            try:
                value = shown(OmegaConf.select(root, f"{group}.{name}", throw_on_missing=True))
            except MissingMandatoryValue:
                value = "???  (required)"
            out.append(f"  {group}.{name}={value}".ljust(44) + f"  {note}".rstrip())
    return "\n".join(out)


OmegaConf.register_new_resolver("options_help", lambda *, _root_: options_help(_root_), replace=True)


def validate(cfg: DictConfig) -> None:
    """Fail before training with the name of the first impossible value."""
    checks = dict(TRAINER_CHECKS)
    for group, cls in components(cfg):
        checks.update({f"{group}.{key}": check for key, check in component_checks(cls).items()})
    for key, (ok, says) in checks.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not ok(value):
            raise ConfigError(f"{key}={value!r}: {says}")
    for key, value in (OmegaConf.select(cfg, "optimizer", default=None) or {}).items():
        if not key.startswith("_") and isinstance(value, str):  # torch's optimizers take numbers only
            raise ConfigError(f"optimizer.{key}={value!r}: must be a number")
    if OmegaConf.select(cfg, "model.bidirectional", default=False) and cfg.model.hidden_size % 2:
        raise ConfigError(f"model.hidden_size={cfg.model.hidden_size}: a bidirectional encoder needs an even size")


def make(node, **kwargs):
    """`instantiate`, with the project's own errors (bad data, impossible options) passed on as they
    are: Hydra wraps whatever a constructor raises, which would bury the message in a traceback."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, Seq2seqError):
            raise e.__cause__ from None
        raise
