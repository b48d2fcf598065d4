"""Config schemas and checks that run before any training starts.

The dataclasses below are registered with Hydra's ConfigStore and listed first in the defaults of
the YAML files they describe, so a misspelt key (`trainer.max_epoch=3`) or a wrong type
(`trainer.max_epochs=ten`) fails when the config is composed, naming the key. `validate` adds the
range checks a type cannot express (positive sizes, fractions in (0, 1)).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig, OmegaConf

from seq2seq.data.text import TOKENIZERS
from seq2seq.decoding import DecodeOptions
from seq2seq.errors import ConfigError, Seq2seqError
from seq2seq.models.init import INITS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# `${suffix:x}` is '_x', or '' when x is empty: run directory names without a dangling '_'.
OmegaConf.register_new_resolver("suffix", lambda s: f"_{s}" if s else "", replace=True)


@dataclass
class EarlyStoppingConfig:
    patience: int | None = None
    monitor: str | None = None
    mode: str | None = None
    min_delta: float = 0.0


@dataclass
class TrainerConfig:
    max_epochs: int = 25
    max_steps: int | None = None
    grad_clip: float = 5.0
    resume: str | None = None
    log_every_n_steps: int = 25
    val_every_n_steps: int | None = None
    progress: bool = True
    device: str = "auto"
    precision: str = "fp32"
    deterministic: bool = False
    threads: int | None = None
    save_top_k: int = 1
    checkpoint_every_minutes: float | None = 10.0
    checkpoint_every_n_steps: int | None = None
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
class AdditionTaskConfig:
    _target_: str = "seq2seq.tasks.AdditionTask"
    path: str | None = None
    num_examples: int = 50_000
    max_digits: int = 3
    reverse: bool = False
    val_fraction: float = 0.1
    batch_size: int = 128
    num_samples: int = 10
    num_heatmaps: int = 2
    split_seed: int | None = 1984
    drop_last: bool = True
    eval_limit: int | None = None
    seed: int = 0


# Keys added after seq2seq 0.2, with the value that reproduces a run made before they existed: resuming
# such a run, or rebuilding its task from a checkpoint, keeps the data it was trained on.
ADDED_KEYS = {"task.split_seed": None, "task.drop_last": False}


@dataclass
class PairOptions:
    """Options every variable-length pair task shares (seq2seq.tasks.PairsTask)."""

    tokenize: str = "word"
    lowercase: bool = False
    min_freq: int = 1
    max_vocab: int | None = None
    max_length: int = 50
    reverse: bool = False
    batch_size: int = 64
    eval_batch_size: int = 512
    bucket: bool = True
    num_samples: int = 5
    num_heatmaps: int = 2
    monitor: str = "val/acc"
    eval_limit: int | None = None
    seed: int = 0


@dataclass
class TsvTaskConfig(PairOptions):
    _target_: str = "seq2seq.tasks.TsvTask"
    train: Any = MISSING  # a path or a list of paths
    val: Any = None
    val_fraction: float = 0.1


@dataclass
class ChitchatTaskConfig(PairOptions):
    _target_: str = "seq2seq.tasks.ChitchatTask"
    val_fraction: float = 0.05
    max_conversations: int | None = None
    context_turns: int = 0


@dataclass
class ProgramsTaskConfig(PairOptions):
    _target_: str = "seq2seq.tasks.ProgramsTask"
    tokenize: str = "char"
    max_length: int = 150
    num_examples: int = 20_000
    length: int = 2
    nesting: int = 2
    statements: int = 3
    val_fraction: float = 0.1


@dataclass
class CaptionsTaskConfig:
    _target_: str = "seq2seq.tasks.CaptionsTask"
    num_train: int = 20_000
    num_val: int = 2_000
    max_digits: int = 4
    val_fraction: float = 0.2
    max_length: int = 4
    batch_size: int = 128
    eval_batch_size: int = 512
    num_samples: int = 5
    num_heatmaps: int = 4
    monitor: str = "val/acc"
    eval_limit: int | None = None
    seed: int = 0


@dataclass
class LanguageModelTaskConfig:
    _target_: str = "seq2seq.tasks.LanguageModelTask"
    data_dir: str = MISSING
    batch_size: int = 20
    time_size: int = 35
    eval_batch_size: int = 10
    download: bool = True
    eval_limit: int | None = None
    seed: int = 0


@dataclass
class Seq2seqConfig:
    _target_: str = "seq2seq.models.Seq2seq"
    wordvec_size: int = 16
    hidden_size: int = 128
    decoder: str = "plain"
    init: str = "chapter"
    bidirectional: bool = False


@dataclass
class ImageCaptionerConfig:
    _target_: str = "seq2seq.models.ImageCaptioner"
    wordvec_size: int = 16
    hidden_size: int = 128
    decoder: str = "peeky"
    channels: int = 32
    grid_height: int = 3
    grid_width: int = 12
    init: str = "chapter"


@dataclass
class RnnlmConfig:
    _target_: str = "seq2seq.models.Rnnlm"
    wordvec_size: int = 100
    hidden_size: int = 100
    num_layers: int = 1
    dropout: float = 0.0
    tie_weights: bool = False
    init: str = "chapter"


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
    cs.store(group="schema/task", name="addition", node=AdditionTaskConfig)
    cs.store(group="schema/task", name="language_model", node=LanguageModelTaskConfig)
    cs.store(group="schema/task", name="tsv", node=TsvTaskConfig)
    cs.store(group="schema/task", name="chitchat", node=ChitchatTaskConfig)
    cs.store(group="schema/task", name="programs", node=ProgramsTaskConfig)
    cs.store(group="schema/task", name="captions", node=CaptionsTaskConfig)
    cs.store(group="schema/model", name="image_captioner", node=ImageCaptionerConfig)
    cs.store(group="schema/model", name="seq2seq", node=Seq2seqConfig)
    cs.store(group="schema/model", name="rnnlm", node=RnnlmConfig)


register_configs()

# Keys that must hold positive numbers when present (None means "not set" where the schema allows it).
POSITIVE = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.grad_clip",
    "trainer.log_every_n_steps",
    "trainer.val_every_n_steps",
    "trainer.checkpoint_every_minutes",
    "trainer.checkpoint_every_n_steps",
    "trainer.early_stopping.patience",
    "trainer.threads",
    "trainer.save_top_k",
    "task.batch_size",
    "task.eval_limit",
    "task.time_size",
    "task.eval_batch_size",
    "task.num_examples",
    "task.max_digits",
    "task.max_length",
    "task.min_freq",
    "task.max_vocab",
    "task.max_conversations",
    "task.length",
    "task.nesting",
    "task.statements",
    "task.num_train",
    "task.num_val",
    "model.channels",
    "model.grid_height",
    "model.grid_width",
    "model.wordvec_size",
    "model.hidden_size",
    "model.num_layers",
    "optimizer.lr",
)


# Keys that take one of a few names.
CHOICES = {
    "trainer.device": ("auto", "cpu", "cuda"),
    "trainer.precision": ("fp32", "bf16"),
    "trainer.early_stopping.mode": ("min", "max"),
    "model.init": INITS,
    "task.tokenize": TOKENIZERS,
    "model.decoder": ("plain", "peeky", "attention"),
}


def validate(cfg: DictConfig) -> None:
    """Fail before training with the name of the first impossible value."""
    for key in POSITIVE:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{key}={value!r}: must be a positive number")
    checks = {
        "task.val_fraction": lambda v: 0 < v < 1,
        "model.dropout": lambda v: 0 <= v < 1,
        "trainer.early_stopping.min_delta": lambda v: v >= 0,
    }
    for key, ok in checks.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not ok(value):
            raise ConfigError(f"{key}={value!r}: out of range")
    for key in ("seed", "task.seed", "task.split_seed"):
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not 0 <= value < 2**32:
            raise ConfigError(f"{key}={value}: must be from 0 to 2**32 - 1")
    for key, value in (OmegaConf.select(cfg, "optimizer", default=None) or {}).items():
        if not key.startswith("_") and isinstance(value, str):  # torch's optimizers take numbers only
            raise ConfigError(f"optimizer.{key}={value!r}: must be a number")
    if OmegaConf.select(cfg, "model.bidirectional", default=False) and cfg.model.hidden_size % 2:
        raise ConfigError(f"model.hidden_size={cfg.model.hidden_size}: a bidirectional encoder needs an even size")
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value not in allowed:
            raise ConfigError(f"{key}={value!r}: must be one of {', '.join(allowed)}")


def make(node, **kwargs):
    """`instantiate`, with the project's own errors (bad data, impossible options) passed on as they
    are: Hydra wraps whatever a constructor raises, which would bury the message in a traceback."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, Seq2seqError):
            raise e.__cause__ from None
        raise
