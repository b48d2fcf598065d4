"""Checkpoints: plain dicts of tensors and Python values, loaded with `weights_only=True`.

Layout (what `save` writes and `load` checks), format version 2:
    format, version       mark a file as this project's checkpoint
    model                 {"name": a registered model's class name, "args": constructor arguments}
    model_state           the model's state_dict
    task                  the task's state_dict: vocabulary and input handling, for generation
    config                the run's fully resolved config (a record: never instantiated from)
    optimizer, scheduler  their state_dicts, for resuming
    progress              {"epoch", "batch", "step", "best", "rng", ...}: where training stands
    carry                 state carried between batches (the language model's LSTM state) or None
    metrics               the latest validation metrics

Nothing read from a checkpoint is imported or instantiated by name: the model class comes from the
registry (seq2seq.core.registry, by name), its arguments are checked against the constructor's types and the weights'
shapes, and the task state against the fields its codec takes. Version 1 files (the model named by
`_target_: seq2seq.models.X`) load through the same table (seq2seq.core.compat).

Where checkpoints are written in a run directory, and which (last, best, top-k), is the run
directory's policy: seq2seq.training.rundir.
"""

import contextlib
import inspect
import logging
import math
import os
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from seq2seq.core import compat
from seq2seq.core.checks import check_fields, component_checks
from seq2seq.core.errors import CheckpointError
from seq2seq.core.files import MAX_NESTING, crash_point, nesting_beyond
from seq2seq.core.options import is_module
from seq2seq.core.registry import CODECS, model_by_class_name, state_kinds
from seq2seq.models import MODELS  # every model registered
from seq2seq.tasks.codec import codec_from_state  # (and every task, with its codec)

log = logging.getLogger(__name__)

FORMAT = "seq2seq-checkpoint"
VERSION = 2


def save(checkpoint: dict, path: str | Path) -> None:
    """Write atomically and durably: into a temporary file created exclusively beside `path` (a unique
    name, never through a planted link), synced, then renamed over `path`. A crash or a full disk
    leaves the previous file in place, never a torn one; a failed write removes its temporary file."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise CheckpointError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **checkpoint}, f)
            f.flush()
            os.fsync(f.fileno())
        crash_point(f"before-rename-{path.name}")
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
    except (OSError, RuntimeError) as e:  # torch reports a full disk as RuntimeError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        kept = f"the previous {path.name} is unchanged" if path.exists() else f"no {path.name} was written"
        raise CheckpointError(f"could not write {path} (disk full?): {first[:160]}; {kept}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def training_state(setup, task: dict, config: dict, progress: dict, carry, metrics: dict) -> dict:
    """A resumable checkpoint (the layout of this module's docstring): the model's spec and weights, the
    optimizer and schedule of `setup` (seq2seq.training.build.Setup), the task state, the resolved config,
    where training stands (`progress`, with the random generators' states), the state carried between
    batches and the last validation metrics."""
    model, optimizer, schedule = setup.model, setup.optimizer, setup.schedule
    rng = {"rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}
    return {
        "model": setup.model_spec,
        "model_state": model.state_dict(),
        "task": task,
        "config": config,
        "optimizer": optimizer.state_dict(),
        "scheduler": schedule.state_dict(),
        "progress": {**progress, **rng},
        "carry": carry,
        "metrics": metrics,
    }


# The dtypes a checkpoint's tensors may have (weights, optimizer state, random generators' states, data).
DTYPES = (
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
)


def check_tensor(name: str, value, where: str) -> None:
    """A tensor read from a file holds its own values: dense, on the CPU, contiguous (no expanded or
    strided view of a smaller storage, which would make a few bytes stand for gigabytes once copied),
    real-valued and, when floating point, finite."""
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{where}: {name} is not a tensor")
    if value.dtype not in DTYPES:
        raise CheckpointError(f"{where}: {name} is of type {value.dtype}, not one a model or optimizer here holds")
    if value.layout is not torch.strided or value.is_meta or value.device.type != "cpu" or value.is_quantized:
        raise CheckpointError(f"{where}: {name} is not a dense CPU tensor ({value.layout}, {value.device})")
    if not value.is_contiguous():
        raise CheckpointError(
            f"{where}: {name} is an expanded or strided view (shape {tuple(value.shape)}, stride {value.stride()}), "
            "not values of its own"
        )
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise CheckpointError(f"{where}: {name} holds NaN or infinite values")


def state_difference(saved, now, path: str) -> str | None:
    """Where a state read from a file (an optimizer's settings, a schedule's state) departs from the one
    this run builds, or None: the same keys and lengths, the same kinds of value and the same words;
    numbers may differ in value (a schedule moves the learning rate) but not be NaN or astronomic."""
    stack = [(saved, now, path)]
    while stack:
        old, new, where = stack.pop()
        if isinstance(new, dict):
            if not isinstance(old, dict) or set(map(str, old)) != set(map(str, new)):
                return f"{where} holds {sorted(map(str, old))[:8] if isinstance(old, dict) else type(old).__name__}"
            stack += [(old[k], new[k], f"{where}.{k}") for k in new]
        elif isinstance(new, list | tuple):
            if not isinstance(old, list | tuple) or len(old) != len(new):
                return f"{where} is not a list of {len(new)}"
            stack += [(o, n, f"{where}[{i}]") for i, (o, n) in enumerate(zip(old, new, strict=True))]
        elif isinstance(new, bool) or new is None:
            if not (isinstance(old, bool) or old is None):  # flags such as foreach=None|bool
                return f"{where}={str(old)[:30]} is not a flag"
        elif isinstance(new, int | float):
            number = isinstance(old, int | float) and not isinstance(old, bool)
            if not number or math.isnan(old) or (math.isfinite(old) and abs(old) > 1e12):  # inf: a plateau's start
                return f"{where}={str(old)[:30]} is not a number of this state"
        elif isinstance(new, str) and old != new:
            return f"{where}={str(old)[:30]!r}, this run's {new[:30]!r}"
        elif isinstance(new, torch.Tensor) and not (
            isinstance(old, torch.Tensor) and old.shape == new.shape and old.dtype == new.dtype
        ):
            return f"{where} is not a {new.dtype} tensor of shape {tuple(new.shape)}"
    return None


# Optimizer settings that say how the step runs, not what it computes: this run's config decides them
# (optimizer.fused may change on resume), never the saved state.
HOW_TO_STEP = ("fused", "foreach", "capturable", "differentiable")


def check_optimizer_state(saved, optimizer: torch.optim.Optimizer, where: str) -> None:
    """A saved optimizer state must fit the optimizer it is loaded into, before it is: as many groups
    and parameters, the same settings (non-negative numbers), and each parameter's state tensors (Adam's
    exp_avg, exp_avg_sq, ...) of that parameter's shape and dtype, `step` a single count. A mismatch
    crashed the fused Adam (a segfault)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("param_groups"), list):
        raise CheckpointError(f"{where}: optimizer state has no param_groups")
    groups, state = saved["param_groups"], saved.get("state", {})
    now = optimizer.param_groups
    sizes = [len(g.get("params", ())) if isinstance(g, dict) else -1 for g in groups]
    if sizes != [len(g["params"]) for g in now]:
        raise CheckpointError(f"{where}: optimizer state holds groups of {sizes} parameters, this model's optimizer "
                              f"{[len(g['params']) for g in now]}")  # fmt: skip
    for i, (old, new) in enumerate(zip(groups, now, strict=True)):
        settings = {k: v for k, v in new.items() if k != "params"}
        differs = state_difference({k: v for k, v in old.items() if k != "params"}, settings, f"param_groups[{i}]")
        negative = [k for k, v in old.items() if isinstance(v, float | int) and not isinstance(v, bool)
                    and not 0 <= v < math.inf]  # fmt: skip
        if differs or negative:
            why = differs or f"param_groups[{i}].{negative[0]}={old[negative[0]]} is negative or infinite"
            raise CheckpointError(f"{where}: optimizer state does not fit this run's optimizer ({why})")
    params = [p for g in now for p in g["params"]]
    ids = [i for g in groups for i in g["params"]]
    if not isinstance(state, dict) or not set(state) <= set(ids) or len(set(ids)) != len(params):
        raise CheckpointError(f"{where}: optimizer state does not index this model's parameters")
    by_id = dict(zip(ids, params, strict=True))
    for i, entry in state.items():
        if not isinstance(entry, dict):
            raise CheckpointError(f"{where}: optimizer state of parameter {i} is not a mapping")
        param = by_id[i]
        for key, value in entry.items():
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{where}: optimizer state {i}.{str(key)[:30]} is not a tensor")
            check_tensor(f"optimizer state {i}.{key}", value, where)
            if key == "step":
                if value.numel() != 1 or not 0 <= float(value) <= 1e12:
                    raise CheckpointError(f"{where}: optimizer state {i}.step is not a count of steps")
            elif value.shape != param.shape or value.dtype != param.dtype:
                raise CheckpointError(
                    f"{where}: optimizer state {i}.{key} is {tuple(value.shape)} {value.dtype}, its parameter "
                    f"{tuple(param.shape)} {param.dtype}"
                )


def check_schedule_state(saved, schedule, where: str) -> None:
    """A saved learning-rate schedule must be the state of the schedule this run builds (none, one-cycle
    or plateau), with numbers where it has numbers."""
    now = schedule.state_dict()
    if now is None or saved is None:
        if saved is not now:
            raise CheckpointError(f"{where}: the saved learning-rate schedule is not this run's (scheduler)")
        return
    differs = state_difference(saved, now, "scheduler")
    if differs:
        raise CheckpointError(f"{where}: the saved learning-rate schedule does not fit this run's ({differs})")


def check_rng_state(progress, where: str) -> None:
    """The random generators' saved states: the CPU one a uint8 tensor of the size torch uses, the CUDA
    one (optional) a small uint8 tensor."""
    rng = progress.get("rng") if isinstance(progress, dict) else None
    size = torch.get_rng_state().shape
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or rng.shape != size:
        raise CheckpointError(f"{where}: progress.rng is not a random generator's state (uint8 of {size[0]})")
    check_tensor("progress.rng", rng, where)
    cuda = progress.get("cuda_rng")
    if cuda is not None and not (
        isinstance(cuda, torch.Tensor) and cuda.dtype == torch.uint8 and cuda.dim() == 1 and cuda.numel() <= 1 << 16
    ):
        raise CheckpointError(f"{where}: progress.cuda_rng is not a random generator's state")


def check_carry(carry, shapes: list[tuple[int, ...]] | None, where: str) -> None:
    """The state carried between batches (the language model's LSTM state, saved mid-epoch) must be what
    the task carries: None for tasks that carry nothing, else float tensors of exactly `shapes`."""
    if carry is None:
        return
    if shapes is None:
        raise CheckpointError(f"{where}: carries state between batches, but this task carries none")
    if not isinstance(carry, list | tuple) or len(carry) != len(shapes):
        raise CheckpointError(f"{where}: the carried state is not {len(shapes)} tensors")
    for i, (value, shape) in enumerate(zip(carry, shapes, strict=True)):
        check_tensor(f"carry[{i}]", value, where)
        if tuple(value.shape) != tuple(shape) or value.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise CheckpointError(f"{where}: carry[{i}] is {tuple(value.shape)} {value.dtype}, this run's {shape}")


def check_metrics(metrics, where: str) -> None:
    if not isinstance(metrics, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) for k, v in metrics.items()
    ):
        raise CheckpointError(f"{where}: metrics is not a mapping of metric names to numbers")


def restore(state: dict, model: nn.Module, optimizer, schedule, device: torch.device) -> tuple[dict, object, dict]:
    """Load a checkpoint made by training_state into the model, optimizer and schedule, and set the
    random generators; returns its progress (without the generators), carry (on `device`) and metrics."""
    model.load_state_dict(state["model_state"])
    how = [{k: g[k] for k in HOW_TO_STEP if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state["optimizer"])
    for group, settings in zip(optimizer.param_groups, how, strict=True):
        group.update(settings)
    schedule.load_state_dict(state.get("scheduler"))
    progress = dict(state["progress"])
    torch.set_rng_state(progress.pop("rng"))
    cuda_rng = progress.pop("cuda_rng", None)
    if cuda_rng is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda_rng)
    carry = state.get("carry")
    if carry is not None:  # checkpoints load on the CPU
        carry = tuple(c.to(device) for c in carry)
    return progress, carry, state.get("metrics", {})


def resolve(path: str | Path, name: str = "best.pt") -> Path:
    """A run directory means its `name` (best.pt to use a model, last.pt to resume)."""
    path = Path(path)
    return path / name if path.is_dir() else path


def model_spec(model: nn.Module, args: dict) -> dict:
    """The saved description of a model: its table name and constructor arguments (defaults filled in)."""
    name = type(model).__name__
    if model_by_class_name(name) is not type(model):
        raise CheckpointError(f"{name} is not a registered model (@register_model), so no checkpoint could rebuild it")
    check_model_spec({"name": name, "args": args}, "model")
    return current_spec({"name": name, "args": dict(args)})


def constructor_params(cls: type) -> list[inspect.Parameter]:
    """cls.__init__'s parameters that a checkpoint may set: without self, and without modules passed in
    by a subclass (Seq2seq's `encoder`), which no file can hold."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p for p in params if not is_module(p.annotation)]


def constructor_fields(cls: type) -> tuple[dict, list[str]]:
    """{argument: annotation} of cls.__init__, and the arguments without a default."""
    params = constructor_params(cls)
    return {p.name: p.annotation for p in params}, [p.name for p in params if p.default is inspect.Parameter.empty]


def current_spec(spec):
    """A spec in today's terms: a model renamed since (PeekySeq2seq -> Seq2seq with decoder="peeky") under
    its new name, and every constructor argument the spec leaves out at its default, so that specs of
    the same model compare equal whichever version wrote them. Anything malformed is left for
    check_model_spec to refuse."""
    if not (isinstance(spec, dict) and isinstance(spec.get("name"), str) and isinstance(spec.get("args"), dict)):
        return spec
    name, args = compat.current_model(spec["name"], spec["args"])
    cls = model_by_class_name(name)
    if cls is not None:
        defaults = {p.name: p.default for p in constructor_params(cls) if p.default is not inspect.Parameter.empty}
        args = {**defaults, **args}
    return {**spec, "name": name, "args": args}


def check_model_spec(spec, where: str) -> tuple[type, dict]:
    """The class and arguments of a saved model spec, checked: a registered model's name, arguments of the
    constructor's types, integers positive."""
    check_fields(spec, {"name": str, "args": dict}, where, required=("name", "args"))
    cls = model_by_class_name(spec["name"])
    if cls is None:
        known = ", ".join(sorted(m.__name__ for m in MODELS.values()))
        raise CheckpointError(f"{where}: unknown model {spec['name'][:60]!r} (known: {known})")
    fields, required = constructor_fields(cls)
    args = spec["args"]
    check_fields(args, fields, f"{where} {spec['name']}", required)
    bad = [k for k, v in args.items() if fields[k] is int and not 1 <= v <= 2**31]
    if bad:
        raise CheckpointError(f"{where} {spec['name']}: {bad[0]}={args[bad[0]]} is not a positive size")
    for key, (ok, says) in component_checks(cls).items():  # the caps a config has (num_layers <= 64, ...)
        if args.get(key) is not None and not ok(args[key]):
            raise CheckpointError(f"{where} {spec['name']}: {key}={str(args[key])[:40]} {says}")
    return cls, args


KEYS = ("format", "version", "model", "model_state", "task", "config", "optimizer", "scheduler", "progress", "carry",
        "metrics")  # fmt: skip


def check_archive(path: Path) -> None:
    """torch.save writes a zip of stored (uncompressed) entries, so the sizes its directory declares add up
    to at most the file's size: a file declaring more would make the reader allocate what it does not
    hold. Read from the zip's central directory, before any entry is."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
            packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CheckpointError(f"{path}: not a readable checkpoint (not a torch zip archive)") from None
    if packed:
        raise CheckpointError(f"{path}: not a readable checkpoint (compressed entry {packed[0][:60]!r})")
    if declared > path.stat().st_size:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (its entries declare {declared:,} bytes in a file of "
            f"{path.stat().st_size:,})"
        )


def read(path: str | Path, name: str = "best.pt") -> dict:
    """Read and check a checkpoint (a run directory means its `name`). Every field that generation or
    resuming reads is checked here; anything else is refused with a CheckpointError naming the file."""
    path = resolve(path, name)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    check_archive(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle refused by weights_only, not a torch file at all
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line[:200]})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a seq2seq checkpoint (no '{FORMAT}' marker)")
    if checkpoint.get("version") == 1:
        checkpoint = compat.upgrade_v1(checkpoint, path, {m.__name__ for m in MODELS.values()}, VERSION)
    if checkpoint.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {checkpoint.get('version')!r}, expected {VERSION}")
    too_much = nesting_beyond(checkpoint, MAX_NESTING)
    if too_much:
        raise CheckpointError(f"{path}: {too_much}")
    unknown = sorted(str(k)[:40] for k in checkpoint if k not in KEYS)
    if unknown:
        raise CheckpointError(f"{path}: unknown top-level key {unknown[0]!r} (a checkpoint holds {', '.join(KEYS)})")
    missing = [k for k in ("model", "model_state", "task") if k not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    task = compat.current_task(checkpoint["task"])
    checkpoint = {**checkpoint, "model": current_spec(checkpoint["model"]), "task": task}
    cls, args = check_model_spec(checkpoint["model"], f"{path}: model")
    state = checkpoint["model_state"]
    if not (
        isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise CheckpointError(f"{path}: model_state is not a mapping of names to tensors")
    for name, value in state.items():
        check_tensor(f"model_state {str(name)[:60]}", value, str(path))
    check_task_state(checkpoint["task"], cls, args, path)
    return checkpoint


def check_task_state(task, cls: type, args: dict, path: Path) -> None:
    """The task state must have its kind's fields and types, fit the model's family and vocabulary
    size, and make a working codec."""
    kind = task.get("kind") if isinstance(task, dict) else None
    if kind not in CODECS:
        raise CheckpointError(f"{path}: task kind {str(kind)[:40]!r} is not one of {', '.join(CODECS)}")
    fields = CODECS[kind].FIELDS
    required = [k for k in fields if k not in compat.OPTIONAL_FIELDS]
    check_fields(task, fields, f"{path}: task", required=required)
    if kind not in state_kinds(cls.family):
        raise CheckpointError(f"{path}: a {cls.__name__} model cannot serve a {kind!r} task")
    if len(set(task["vocab"])) != len(task["vocab"]):
        raise CheckpointError(f"{path}: the vocabulary lists a token twice")
    tokens, size = len(task["vocab"]), args.get("vocab_size")
    if tokens != size:
        raise CheckpointError(f"{path}: the vocabulary has {tokens} tokens but the model's vocab_size is {size}")
    try:
        codec_from_state(task)
    except (KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"{path}: task state does not make a codec ({e})") from None


class ShapesOnly(TorchFunctionMode):
    """Skips initialisers while a model is built on the meta device: they only fill values, and on meta
    tensors some of them (normal_) would import torch._dynamo, 1.7 s of every command's start-up."""

    FILLS = frozenset(
        [
            "normal_",
            "uniform_",
            "zero_",
            "zeros_",
            "ones_",
            "fill_",
            "constant_",
            "trunc_normal_",
            "orthogonal_",
            "kaiming_uniform_",
            "kaiming_normal_",
            "xavier_uniform_",
            "xavier_normal_",
        ]
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in self.FILLS:
            return args[0] if args else next(iter(kwargs.values()))
        return func(*args, **kwargs)


def meta_weights(cls: type, args: dict, name: str, where: str) -> tuple[dict, dict[str, str]]:
    """The weights a model of these arguments has, {name: (shape, dtype)}, found by building it on the
    meta device (no memory); and its tied weights, {name: the first name of the same tensor}."""
    try:
        with torch.device("meta"), ShapesOnly():
            model = cls(**args)
    except (ValueError, TypeError, RuntimeError) as e:  # the constructor's own checks (tie_weights, ...)
        raise CheckpointError(f"{where}: cannot build {name} from its spec ({str(e)[:200]})") from None
    first, aliases = {}, {}
    for key, param in model.named_parameters(remove_duplicate=False):
        aliases.update({key: first[id(param)]} if id(param) in first else {})
        first.setdefault(id(param), key)
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}, aliases


def build_model(spec: dict, weights: dict, where: str = "checkpoint") -> nn.Module:
    """The model of a checked spec with its weights. It is first built on the meta device (no memory),
    so weights whose names, shapes or dtypes do not fit the spec are refused before anything is allocated."""
    cls, args = check_model_spec(spec, where)
    shapes, _ = meta_weights(cls, args, spec["name"], where)
    saved = {k: (tuple(v.shape), v.dtype) for k, v in weights.items()}
    if shapes != saved:
        diff = sorted(set(shapes) ^ set(saved)) or sorted(k for k in shapes if shapes[k] != saved[k])
        raise CheckpointError(f"{where}: weights do not fit the saved model spec (first difference: {diff[0]})")
    model = cls(**args)  # names and shapes match: these cannot fail now
    model.load_state_dict(weights)
    return model


def read_model(path: str | Path, name: str = "best.pt") -> tuple[nn.Module, dict]:
    """Model (in eval mode, on the CPU) and checked checkpoint, from the file alone."""
    checkpoint = read(path, name)
    model = build_model(checkpoint["model"], checkpoint["model_state"], str(resolve(path, name)))
    return model.eval(), checkpoint
