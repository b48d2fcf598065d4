"""Checkpoints: plain dicts of tensors and Python values, loadable with `weights_only=True`.

Layout (what `save` writes and `load` checks):
    format, version       mark a file as this project's checkpoint
    model                 {"_target_": "seq2seq.models.X", **constructor kwargs} (vocab size included)
    model_state           the model's state_dict
    task                  the task's state_dict: vocabulary and input handling, for generation
    config                the run's fully resolved config
    optimizer, scheduler  their state_dicts, for resuming
    progress              {"epoch", "batch", "step", "best", "rng"}: where training stands
    carry                 state carried between batches (the language model's LSTM state) or None
    metrics               the latest validation metrics
"""

import importlib
import os
from pathlib import Path

import torch
from torch import nn

from seq2seq.errors import CheckpointError

FORMAT = "seq2seq-checkpoint"
VERSION = 1
MODEL_PACKAGE = "seq2seq.models."


def save(checkpoint: dict, path: str | Path) -> None:
    """Write atomically: a crash while saving leaves the previous file in place, never a torn one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **checkpoint}, tmp)
    os.replace(tmp, path)


def resolve(path: str | Path) -> Path:
    """A run directory means its last.pt."""
    path = Path(path)
    return path / "last.pt" if path.is_dir() else path


def load(path: str | Path) -> dict:
    path = resolve(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle refused by weights_only, not a torch file at all
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a seq2seq checkpoint (no '{FORMAT}' marker)")
    if checkpoint.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {checkpoint.get('version')}, expected {VERSION}")
    missing = [k for k in ("model", "model_state", "task") if k not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return checkpoint


def build_model(spec: dict) -> nn.Module:
    """Rebuild a model from its saved spec. Only classes of `seq2seq.models` are accepted, so a crafted
    checkpoint cannot name an arbitrary callable to run."""
    spec = dict(spec)
    target = spec.pop("_target_", None)
    if not isinstance(target, str) or not target.startswith(MODEL_PACKAGE):
        raise CheckpointError(f"model target {target!r} is not a class of {MODEL_PACKAGE[:-1]}")
    module_name, _, class_name = target.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckpointError(f"model target {target!r} is not a model class")
    return cls(**spec)


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """Model (in eval mode) and checkpoint, from the file alone."""
    checkpoint = load(path)
    model = build_model(checkpoint["model"])
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as e:
        raise CheckpointError(f"{resolve(path)}: weights do not fit the saved model spec: {e}") from None
    return model.eval(), checkpoint
