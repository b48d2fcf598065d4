"""Config schemas and checks that run before any training starts.

The schemas are registered with Hydra's ConfigStore and listed first in the defaults of the YAML
files they describe, so a misspelt key (`trainer.max_epoch=3`) or a wrong type
(`trainer.max_epochs=ten`) fails when the config is composed, naming the key. Task and model schemas
are derived from their constructors (seq2seq.core.options: one source of defaults); the trainer's are the
dataclasses below. `validate` adds the range checks a type cannot express: the components' CHECKS
and the trainer's (declared at its fields).
"""

import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from seq2seq.core import decoding
from seq2seq.core.checks import (
    NON_NEGATIVE,
    POSITIVE,
    SEED,
    Check,
    component_checks,
    component_rules,
    one_of,
    unknown_key_message,
)
from seq2seq.core.errors import ConfigError, Seq2seqError
from seq2seq.core.extras import missing_for
from seq2seq.core.options import dataclass_of, options
from seq2seq.core.registry import FAMILIES, by_target, models_of, target
from seq2seq.core.threads import MAX_PER_CORE, max_threads, usable_cores
from seq2seq.models import MODELS
from seq2seq.tasks import TASKS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

# `${suffix:x}` is '_x', or '' when x is empty: run directory names without a dangling '_'.
OmegaConf.register_new_resolver("suffix", lambda s: f"_{s}" if s else "", replace=True)


# A run's name is a folder of outputs/: one plain name, never a path (`../x` would write elsewhere).
NAME = Check(lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}", v) is not None,
             "must be a plain name (letters, digits, _ . + -, at most 100), not a path")  # fmt: skip

# More threads than this only thrash (and libgomp fails to create 100,000 of them).
THREADS = Check(
    lambda v: POSITIVE.ok(v) and v <= max_threads(),
    f"must be from 1 to {max_threads()} ({MAX_PER_CORE} x the {usable_cores()} cores this process may use)",
)


def option(default, check: Check | None = None, *, resumable: bool, hparam: bool = True, names_run: bool = True,
           help: str = ""):  # fmt: skip
    """A trainer option, with what is true of it declared once, here (the lists below are derived):
    check      its range, beyond its type (config.validate)
    resumable  a resumed run may change it: it alters neither the data, the model nor the optimisation
    hparam     a column of TensorBoard's HPARAMS tab when the command line sets it (seq2seq.training.hparams)
    names_run  the run directory's name shows it when the command line sets it (hydra/default.yaml)
    help       what it means (--help and the docs' options reference)"""
    facts = {"check": check, "resumable": resumable, "hparam": hparam, "names_run": names_run, "help": help}
    return field(default=default, metadata=facts)


@dataclass
class EarlyStoppingConfig:
    patience: int | None = option(
        None, POSITIVE, resumable=True, help="stop after this many full epochs without improvement; null: off"
    )
    monitor: str | None = option(
        None, resumable=False, help="a validation metric (val/loss, val/acc, ...); null: the task's (behind best.pt)"
    )
    mode: str | None = option(
        None, one_of(("min", "max")), resumable=False, help="min or max; null: the task's for its own metric"
    )
    min_delta: float = option(0.0, NON_NEGATIVE, resumable=True, help="an improvement must exceed this")


@dataclass
class TrainerConfig:
    max_epochs: int = option(25, POSITIVE, resumable=True, help="epochs to train")
    max_steps: int | None = option(
        None, POSITIVE, resumable=True, help="stop after this many optimizer steps (quick runs); null: no limit"
    )
    grad_clip: float = option(5.0, POSITIVE, resumable=False, help="max gradient norm (clip_grad_norm_)")
    resume: str | None = option(
        None,
        resumable=True,
        hparam=False,
        names_run=False,
        help="a run directory, a checkpoint, or `latest` (the newest run of this name)",
    )
    log_every_n_steps: int = option(
        25, POSITIVE, resumable=True, hparam=False, help="how often train/loss is written and the progress bar updated"
    )
    val_every_n_steps: int | None = option(
        None, POSITIVE, resumable=True, hparam=False, help="also validate every n steps, as val_step/* (quick curves)"
    )
    progress: bool = option(True, resumable=True, hparam=False, names_run=False, help="tqdm progress bars")
    device: str = option(
        "auto",
        one_of(("auto", "cpu", "cuda")),
        resumable=True,
        hparam=False,
        help="auto (CUDA when available, else CPU), cpu or cuda",
    )
    # Not resumable: bf16 changes the arithmetic, and a resumed run continues the one it resumes.
    precision: str = option(
        "fp32",
        one_of(("fp32", "bf16", "auto")),
        resumable=False,
        help="fp32; bf16 (CPUs with AVX512-BF16 or AMX-BF16, GPUs); auto: bf16 where a short probe of this model "
        "measures it faster within the accuracy guard (cached per machine)",
    )
    deterministic: bool = option(
        False,
        resumable=True,
        help="deterministic algorithms (cuDNN, cuBLAS) and one thread count for the whole run: bit-identical runs "
        "and resumes",
    )
    threads: int | None = option(
        None,
        THREADS,
        resumable=True,
        hparam=False,
        help="torch threads; null: the cores other work leaves free, measured again while training "
        "(OMP_NUM_THREADS, when set, as given)",
    )
    save_top_k: int = option(1, POSITIVE, resumable=True, help="above 1: also keep the k best epochs as epoch-<N>.pt")
    checkpoint_every_minutes: float | None = option(
        10.0, POSITIVE, resumable=True, hparam=False, help="also save last.pt mid-epoch this often (null: off)"
    )
    checkpoint_every_n_steps: int | None = option(
        None, POSITIVE, resumable=True, hparam=False, help="... or every n optimizer steps"
    )
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class PathsConfig:
    output_dir: str = option(MISSING, resumable=True, hparam=False)


@dataclass
class TrainConfig:
    name: str = option("run", NAME, resumable=True, help="names the run directory: outputs/<name>/<time>_<overrides>")
    seed: int = option(0, SEED, resumable=False)
    task: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    logger: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


def facts(cls: type = TrainConfig, prefix: str = "") -> dict[str, dict]:
    """{dotted key: its option's facts} of every option of the schema, nested dataclasses included."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
            out.update(facts(f.default_factory, f"{prefix}{f.name}."))
        elif "resumable" in f.metadata:
            out[f"{prefix}{f.name}"] = dict(f.metadata)
    return out


# Keys outside these schemas with the same facts: the tasks' options are their constructors' parameters
# (seq2seq.core.options), whose classes declare which name data files (DATA_KEYS: in no run name, no hparam
# column) and which only shape the report (REPORT_OPTIONS: validation samples printed, heatmaps: may change on
# resume); the optimizer's and the loggers' are their libraries'.
DATA_PATHS = tuple(sorted({f"task.{key}" for cls in TASKS.values() for key in cls.DATA_KEYS}))
RESUMABLE_ELSEWHERE = (
    *sorted({f"task.{key}" for cls in TASKS.values() for key in cls.REPORT_OPTIONS}),
    "optimizer.fused",  # the same update in one kernel (Adam, SGD)
)
RESUMABLE_GROUPS = ("logger",)  # where the curves go: any logger may be added or removed on resume

# Derived from the facts above, for their readers.
FACTS = facts()
RESUMABLE = (*(k for k, f in FACTS.items() if f["resumable"]), *RESUMABLE_ELSEWHERE)  # start.config_changes
NOT_HPARAMS = ("paths.", "hydra.", "logger", *DATA_PATHS, *(k for k, f in FACTS.items() if not f["hparam"]))
NOT_IN_RUN_NAME = (
    "experiment",
    "hparams_search",
    "logger",
    *DATA_PATHS,
    *(k for k, f in FACTS.items() if not f["names_run"]),
)
CHECKS = {k: f["check"] for k, f in FACTS.items() if f["check"] is not None}  # validate
CHECKS["optimizer.lr"] = POSITIVE


def register_configs() -> None:
    """Schemas live in the `schema` group; config files pull theirs in with `/schema/...@_here_`, so
    they are not offered as options of the task and model groups."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, table in (("task", TASKS), ("model", MODELS)):
        for name, cls in table.items():
            cs.store(group=f"schema/{group}", name=name, node=dataclass_of(cls, target(cls)))


register_configs()


def components(cfg: DictConfig):
    """(group, class) of the config's task and model, when they are the project's own."""
    for group in ("task", "model"):
        node = OmegaConf.select(cfg, group, default=None)
        cls = by_target(node.get("_target_")) if isinstance(node, DictConfig) else None
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
        sections.append((group, cls, {f.name: f.metadata["help"] for f in dataclasses.fields(cls) if f.metadata}))
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


def dataclass_keys(cls: type, prefix: str) -> list[str]:
    """Every dotted key of a schema dataclass, nested dataclasses included."""
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            out += dataclass_keys(f.default_factory, f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


# Constructor parameters the project passes at the call site (seq2seq.training.build, seq2seq.training.schedule): never
# config keys.
PASSED_AT_CALL_SITE = {"optimizer": {"params"}, "scheduler": {"optimizer", "total_steps", "mode"}}
PASSED_AT_CALL_SITE["logger"] = {"run_dir", "resume_at"}


def target_keys(node, group: str) -> list[str] | None:
    """The keys a `_target_` node may hold: `_target_`, `_partial_` and the parameters of the target (the
    project's own task and model classes from their tables, optimizers, schedulers and loggers from
    their signatures). None when the target cannot be read (instantiate reports that later)."""
    named = node.get("_target_") if isinstance(node, DictConfig) else None
    if not isinstance(named, str):
        return None
    cls = by_target(named)
    if cls is not None:
        names = [o.name for o in options(cls)]
    else:
        try:
            params = inspect.signature(get_class(named)).parameters.values()
        except Exception:
            return None
        if any(p.kind == p.VAR_KEYWORD for p in params):
            return None  # takes anything
        passed = PASSED_AT_CALL_SITE.get(group.split(".")[0], set())
        names = [p.name for p in params if p.name not in passed]
    return [f"{group}.{name}" for name in ("_target_", "_partial_", *names)]


def unknown_keys(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """The keys of the composed config that nothing reads (`+trainer.epochs=3` would otherwise train
    max_epochs epochs without a word), and the valid ones."""
    valid = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("trainer", "paths")]
    valid += dataclass_keys(TrainerConfig, "trainer.") + dataclass_keys(PathsConfig, "paths.")
    groups = {"task": cfg.get("task"), "model": cfg.get("model"), "optimizer": cfg.get("optimizer")}
    groups["scheduler"] = cfg.get("scheduler")
    loggers = cfg.get("logger")
    if isinstance(loggers, DictConfig):
        groups.update({f"logger.{name}": loggers.get(name) for name in loggers})
    checked = {}
    for group, node in groups.items():
        keys = target_keys(node, group)
        if keys is not None:
            valid += keys
            checked[group] = node
    given = []
    for key in cfg:
        node = cfg._get_node(key)
        if key in ("trainer", "paths") and isinstance(node, DictConfig):
            given += [f"{key}.{k}" for k in node if k != "early_stopping"]
            stopping = node._get_node("early_stopping") if key == "trainer" else None
            given += [f"trainer.early_stopping.{k}" for k in stopping or ()] if isinstance(stopping, DictConfig) else []
        elif key in checked:
            given += [f"{key}.{k}" for k in node]
        elif key == "logger" and isinstance(node, DictConfig):
            given += [f"logger.{name}.{k}" for name in node if f"logger.{name}" in checked for k in node[name]]
        elif key not in groups and key != "hydra":
            given.append(key)
    return [key for key in given if key not in valid], valid


def check_keys(cfg: DictConfig) -> None:
    """Refuse, naming it and the closest valid keys, the first key of the config that nothing reads."""
    unknown, valid = unknown_keys(cfg)
    if unknown:
        raise ConfigError(unknown_key_message(unknown[0], valid, "python -m seq2seq.train --help"))


def validate(cfg: DictConfig) -> None:
    """Fail before training with the name of the first unknown key or impossible value."""
    check_keys(cfg)
    checks = dict(CHECKS)
    for group, cls in components(cfg):
        checks.update({f"{group}.{key}": check for key, check in component_checks(cls).items()})
    for key, (ok, says) in checks.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not ok(value):
            raise ConfigError(f"{key}={value!r}: {says}")
    for key, value in (OmegaConf.select(cfg, "optimizer", default=None) or {}).items():
        if not key.startswith("_") and isinstance(value, str):  # torch's optimizers take numbers only
            raise ConfigError(f"optimizer.{key}={value!r}: must be a number")
    for group, cls in components(cfg):
        for keys, ok, says in component_rules(cls):
            values = [OmegaConf.select(cfg, f"{group}.{key}", default=None) for key in keys]
            if None not in values and not ok(*values):
                raise ConfigError(f"{group}.{keys[0]}={values[0]!r}: {says}")


def check_family(cfg: DictConfig) -> None:
    """A model must be of its task's family, refused in one line before any data loads (the model configs
    of the right family named). Classes outside the registry are not checked."""
    task = by_target(OmegaConf.select(cfg, "task._target_", default=None))
    model = by_target(OmegaConf.select(cfg, "model._target_", default=None))
    if task is None or model is None or task.family == model.family:
        return
    choices = [f"model={o}" for cls in models_of(task.family) for o in group_options("model", cls.config_name)]
    raise ConfigError(
        f"model {model.__name__} is {FAMILIES[model.family].words}, but task {task.__name__} trains "
        f"{FAMILIES[task.family].words}: use {' or '.join(choices)}"
    )


def check_extras(cfg: DictConfig) -> None:
    """The optional packages the config's task and loggers declare (their EXTRAS), installed, else the extra
    that installs them named in one line."""
    needs = []
    task = by_target(OmegaConf.select(cfg, "task._target_", default=None))
    if task is not None:
        needs.append((task.EXTRAS, f"task={task.config_name}"))
    for name, node in (cfg.get("logger") or {}).items():
        named = node.get("_target_") if isinstance(node, DictConfig) else None
        if isinstance(named, str) and named.startswith("seq2seq."):
            needs.append((getattr(get_class(named), "EXTRAS", ()), f"logger={name}"))
    missing = missing_for(needs)
    if missing:
        raise ConfigError(missing)


def check(cfg: DictConfig) -> None:
    """Everything about a training config that can be known without data: keys, values, the model's family,
    the extras it needs, and bf16 where the device cannot run it."""
    from seq2seq.core.device import check_precision, select_device

    validate(cfg)
    check_family(cfg)
    check_extras(cfg)
    check_precision(cfg.trainer.precision, select_device(cfg.trainer.device))


def make(node, **kwargs):
    """`instantiate`, with the project's own errors (bad data, impossible options) passed on as they
    are: Hydra wraps whatever a constructor raises, which would bury the message in a traceback."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, Seq2seqError):
            raise e.__cause__ from None
        raise


def group_options(group: str, schema: str) -> list[str]:
    """The options of a config group (configs/<group>/*.yaml) built on a schema (`/schema/<group>/<schema>`)."""
    mark = f"/schema/{group}/{schema}@"
    return sorted(f.stem for f in (CONFIG_DIR / group).glob("*.yaml") if mark in f.read_text())


def options_reference() -> str:
    """Every option of the trainer, the tasks, the models and the decoders, as Markdown tables: the docs'
    reference, generated from the same constructors and schemas as --help."""

    def table(rows) -> list[str]:
        out = ["| key | default | meaning |", "| --- | --- | --- |"]
        cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
        return out + [f"| `{key}` | `{cell(shown(default))}` | {cell(note)} |" for key, default, note in rows]

    out = ["### Trainer", ""]
    for prefix, cls in (("trainer", TrainerConfig), ("trainer.early_stopping", EarlyStoppingConfig)):
        fields = [f for f in dataclasses.fields(cls) if f.metadata]
        resumable = {True: " (may change on resume)", False: ""}
        rows = (
            (f"{prefix}.{f.name}", f.default, f.metadata["help"] + resumable[f.metadata["resumable"]]) for f in fields
        )
        out += [*table(rows), ""]
    for group, classes in (("task", TASKS), ("model", MODELS)):
        out += [f"### {group.capitalize()}s", ""]
        for name, cls in classes.items():
            choices = ", ".join(f"`{group}={o}`" for o in group_options(group, name))
            out += [f"#### {cls.__name__}", "", f"`seq2seq.{group}s.{cls.__name__}`; config: {choices}", ""]
            required = "(required)"
            out += table((f"{group}.{o.name}", required if o.required else o.default, o.comment) for o in options(cls))
            out += [""]
    out += ["### Decoding options", "", "Shared by `seq2seq.generate`, `seq2seq.chat` and `TrainedModel.generate`.", ""]
    rows = []
    for name, f in decoding.OPTIONS.items():  # declared at the fields (seq2seq.core.decoding)
        seq2seq, lm = f.metadata["default"], f.metadata["lm"]
        both = f"{decoding.shown(lm)} (language models), {decoding.shown(seq2seq)} (seq2seq)"
        shown_default = decoding.shown(seq2seq) if seq2seq == lm else both
        where = f"strategy={f.metadata['strategy']}: " if f.metadata["strategy"] else ""
        rows.append((name, shown_default, where + f.metadata["help"]))
    out += table(rows)
    return "\n".join(out) + "\n"
