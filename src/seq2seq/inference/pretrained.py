"""A trained model as a folder to share, in the Hugging Face Hub's layout, read without pickle:

    config.json              the format and its version; the model (a name of seq2seq.models.MODELS and its
                             constructor arguments); the task state (vocabulary and input handling); the
                             family and what its inputs are; where it came from (experiment, overrides,
                             seed, step, the metrics of best.pt, the project's version, the training config)
    model.safetensors        the weights only: raw tensors behind a JSON header, so reading it runs no code
                             (a language model's tied embedding and output layer are stored once)
    generation_config.json   the decoding defaults to use it with (seq2seq.core.decoding)
    README.md                the model card

`save(file, out)` writes the folder from a training checkpoint; `read_folder(folder)` checks and reads it as
seq2seq.training.checkpoint.read_model reads a checkpoint: every field checked before it is used, the
safetensors header checked against the model before any tensor is read, so a crafted folder costs at
most what its files hold.
"""

import json
import math
import shutil
import struct
from pathlib import Path

import torch

from seq2seq.core import __version__, decoding, files
from seq2seq.core.checks import check_fields
from seq2seq.core.errors import CheckpointError, ConfigError
from seq2seq.core.extras import require
from seq2seq.core.files import read_json
from seq2seq.core.registry import FAMILIES
from seq2seq.training import checkpoint as ckpt

FORMAT, VERSION = "seq2seq-pretrained", 1
FILES = ("config.json", "model.safetensors", "generation_config.json", "README.md")
GRAPHS = ("encoder.onnx", "decoder_step.onnx", "step.onnx")  # an ONNX export's graphs (seq2seq.inference.serving)
MAX_HEADER = 2**20  # bytes of the safetensors header: about 100 per tensor (safetensors allows 100 MB)

# safetensors' dtype names, for the dtypes a model here holds (checkpoint.DTYPES)
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}  # fmt: skip
CONFIG_FIELDS = {
    "format": str,
    "format_version": int,
    "family": str,
    "inputs": str,
    "model": dict,
    "task": dict,
    "source": dict,
    "onnx": dict,
}  # fmt: skip (onnx: the graphs' signature, seq2seq.inference.serving)


def read_model(file: Path) -> tuple[torch.nn.Module, dict]:
    """The model and checkpoint (a folder's record) of a file or folder `find.find` returned."""
    return read_folder(file) if file.is_dir() else ckpt.read_model(file)


def save(file: Path, out: str | Path) -> Path:
    """Write the folder of the checkpoint `file` (a .pt file, or a shared folder, copied: what
    seq2seq.inference.find names) into `out` (made if missing; refused when it holds other files than a shared
    folder's)."""
    return save_loaded(file, *read_model(file), out)


def save_loaded(source: Path, module, checkpoint: dict, out: str | Path, onnx=None) -> Path:
    """`save` for a model already read from `source`; `onnx`: (the graphs' signature, a function writing the
    graphs into a folder), from seq2seq.inference.serving. The folder is written whole (seq2seq.core.files
    .write_folder): a kill leaves the old folder or the new one, and a user's file in `out` is never touched."""
    out = Path(out)
    if onnx is None and out.is_dir() and any(name.endswith(".onnx") for name in files.owned(out) or []):
        raise ConfigError(f"out={out} holds an ONNX export: export with format=onnx to replace it, or give another "
                          "directory")  # fmt: skip
    try:
        return files.write_folder(out, lambda folder: fill_folder(folder, out.name, module, checkpoint, source, onnx))
    except OSError as e:  # a read-only place, a full disk, a path through a file
        raise ConfigError(f"out={out}: cannot write there ({e.strerror or e})") from None


def fill_folder(folder: Path, name: str, module, checkpoint: dict, source: Path, onnx) -> None:
    """The files of the shared folder `name`, written into the (staging) `folder`."""
    from safetensors.torch import save_model

    if source.is_dir():  # a shared folder (checked when read), copied file by file: streamed, links left out
        for name in FILES:
            if (source / name).is_file() and not (source / name).is_symlink():
                shutil.copyfile(source / name, folder / name)
        config = read_json(source / "config.json", "config")
    else:
        config = folder_config(module, checkpoint, source)
        (folder / "generation_config.json").write_text(json.dumps(decoding.family_defaults(module.family), indent=2))
        save_model(module, str(folder / "model.safetensors"), metadata={"format": "pt"})  # tied weights: once
    if onnx is not None:
        signature, write_graphs = onnx
        config = {**config, "onnx": signature}
        write_graphs(folder)
    else:
        config.pop("onnx", None)  # a copy of an ONNX export without its graphs
    if not source.is_dir():
        (folder / "README.md").write_text(model_card(config, name))
    (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def recorded_overrides(run_dir: Path) -> list[str] | None:
    """The command-line overrides of the run, from Hydra's record (.hydra/overrides.yaml), if readable."""
    import yaml

    try:
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return overrides if isinstance(overrides, list) and all(isinstance(o, str) for o in overrides) else None


def folder_config(module, checkpoint: dict, path: Path) -> dict:
    config = checkpoint.get("config") or {}
    progress = (checkpoint.get("progress") or {}) if isinstance(checkpoint.get("progress"), dict) else {}
    metrics = {k: v for k, v in (checkpoint.get("metrics") or {}).items()
               if isinstance(v, int | float) and not k.endswith("/time")}  # fmt: skip
    return {
        "format": FORMAT,
        "format_version": VERSION,
        "family": module.family,
        "inputs": FAMILIES[module.family].inputs,
        "model": checkpoint["model"],
        "task": checkpoint["task"],
        "source": {
            "experiment": config.get("name"),
            "overrides": recorded_overrides(path.parent),
            "seed": config.get("seed"),
            "step": progress.get("step"),
            "epoch": progress.get("epoch"),
            "metrics": metrics,
            "checkpoint": str(path),
            "seq2seq_version": __version__,
            "config": config,
        },
    }


def onnx_use(config: dict, name: str) -> str:
    """The model card's words on the ONNX graphs an export with format=onnx put beside the weights."""
    if not config.get("onnx"):
        return ""
    graphs = " and ".join(f"`{g}`" for g in (config["onnx"]["encoder"], config["onnx"]["step"]) if g)
    example = '["16+75"]' if config["family"] == "seq2seq" else '"the market", max_new_tokens=20'
    return f"""
## Without PyTorch

{graphs} are the model as ONNX graphs, decoded by onnxruntime and numpy alone (greedy or sampled; beam
search and the other options stay with the PyTorch API; a seed fixes this runner's samples, not PyTorch's):

```python
from seq2seq.inference.serving import OnnxModel
print(OnnxModel("{name}").generate({example}))
```
"""


def model_card(config: dict, name: str) -> str:
    source, model = config["source"], config["model"]
    metrics = "\n".join(f"| `{k}` | {v:.4f} |" for k, v in sorted(source["metrics"].items())) or "| - | - |"
    family = FAMILIES[config["family"]]
    experiment = source.get("experiment") or "?"
    overrides = source.get("overrides")
    command = (
        f"    python -m seq2seq.train {' '.join(overrides)}".rstrip()
        if overrides is not None
        else "    (the command line was not recorded: config.json holds the resolved training config)"
    )
    ptb = "Penn Treebank (the LDC's licence applies to the text; the files come from the Mikolov distribution)"
    data = ptb if config["family"] == "lm" else "the task's data (see the training config in config.json)"
    args = ", ".join(f"{k}={v}" for k, v in model["args"].items())
    args_ = model["args"]  # a recurrent model's cell (LSTM before cells were an option), else the model's name
    kind = args_.get("cell") or ("lstm" if "hidden_size" in args_ else str(model["name"]).lower())
    tags = ", ".join(dict.fromkeys(["seq2seq", str(kind), config["family"]]))
    return f"""---
library_name: seq2seq
tags: [{tags}]
---
# {experiment}: {model["name"]}

A `{model["name"]}` ({config["family"]}; {args}) trained with seq2seq {source.get("seq2seq_version")}:
inputs are {config["inputs"]}.

Trained (seed {source.get("seed")}) with:

{command}

The weights are its best.pt's: step {source.get("step")}, after {source.get("epoch")} full epoch(s).

| metric (validation, best.pt) | value |
|---|---|
{metrics}

## Use

    python -m seq2seq.generate checkpoint={name} {family.example}

```python
import seq2seq
model = seq2seq.load("{name}")
{family.api_example}
```

`generation_config.json` holds the decoding defaults; `model.safetensors` the weights; `config.json`
the model, its vocabulary and where it came from.
{onnx_use(config, name)}
## Data

Trained on {data}.
"""


def check_header(path: Path, expected: dict[str, tuple[tuple[int, ...], torch.dtype]], aliases: dict[str, str]):
    """The safetensors header of `path`, checked before any tensor is read: its length within the file
    and MAX_HEADER; each entry a known dtype and a shape whose bytes are exactly its offsets' span; the
    spans tiling the data without overlap or gap; and names, shapes and dtypes those of the model
    (`expected`), a tied weight stored under one of its names (`aliases`: name -> the name it shares)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file (shorter than its header's length)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            raise CheckpointError(f"{path}: its header claims {length:,} bytes in a file of {size:,}")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: its header is not JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: its header is not a mapping of tensors")
    header.pop("__metadata__", None)
    data, spans = size - 8 - length, []
    for name, entry in header.items():
        where = f"{path}: tensor {str(name)[:60]!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where} is not described by dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPES:
            raise CheckpointError(f"{where} has dtype {str(dtype)[:20]!r}, not one a model here holds")
        if not (isinstance(shape, list) and len(shape) <= 8 and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise CheckpointError(f"{where} has no valid shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(n, int) for n in offsets)):
            raise CheckpointError(f"{where} has no valid data_offsets")
        nbytes = math.prod(shape) * DTYPES[dtype].itemsize
        if not 0 <= offsets[0] <= offsets[1] <= data or offsets[1] - offsets[0] != nbytes:
            raise CheckpointError(
                f"{where}: shape {shape} of {dtype} is {nbytes:,} bytes, its offsets {offsets} span "
                f"{offsets[1] - offsets[0]:,} of the file's {data:,}"
            )
        spans.append(offsets)
    at = 0
    for begin, end in sorted(spans):
        if begin != at:
            raise CheckpointError(f"{path}: its tensors overlap or leave a gap at byte {at:,} of the data")
        at = end
    if at != data:
        raise CheckpointError(f"{path}: its tensors hold {at:,} of the {data:,} data bytes")
    saved = {name: (tuple(e["shape"]), DTYPES[e["dtype"]]) for name, e in header.items()}
    stored = {name: expected[name] for name in expected if name not in aliases or aliases[name] not in saved}
    if saved != stored:
        diff = sorted(set(saved) ^ set(stored)) or sorted(k for k in stored if stored[k] != saved[k])
        raise CheckpointError(f"{path}: weights do not fit the model in config.json (first difference: {diff[0]})")


def read_folder(folder: str | Path) -> tuple[torch.nn.Module, dict]:
    """Model (in eval mode, on the CPU) and a checkpoint-like dict (model, task, config), from a folder
    written by `save`; anything that does not fit is a CheckpointError naming the file."""
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / "config.json"
    config = read_json(path, "config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a seq2seq model folder (no format '{FORMAT}')")
    if config.get("format_version") != VERSION:
        raise CheckpointError(f"{path}: format_version {str(config.get('format_version'))[:20]}, expected {VERSION}")
    check_fields(config, CONFIG_FIELDS, str(path), required=("model", "task"))
    spec = ckpt.current_spec(config["model"])
    cls, args = ckpt.check_model_spec(spec, f"{path}: model")
    if config.get("family", cls.family) != cls.family:
        raise CheckpointError(
            f"{path}: family {str(config['family'])[:20]!r}, but {spec['name']} is a {cls.family} model"
        )
    ckpt.check_task_state(config["task"], cls, args, path)
    expected, aliases = ckpt.meta_weights(cls, args, spec["name"], str(path))
    weights_path = folder / "model.safetensors"
    check_header(weights_path, expected, aliases)
    try:
        weights = load_file(str(weights_path))
    except Exception as e:  # safetensors' own checks, after ours
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({str(e)[:100]})") from None
    for name, shared in aliases.items():  # a tied weight: the one tensor under both names
        if name not in weights:
            weights[name] = weights[shared]
    for name, value in weights.items():
        ckpt.check_tensor(name, value, str(weights_path))
    model = ckpt.build_model(spec, weights, str(weights_path))
    source = config.get("source") if isinstance(config.get("source"), dict) else {}
    generation = None
    if (folder / "generation_config.json").exists() or (folder / "generation_config.json").is_symlink():
        where = str(folder / "generation_config.json")
        try:
            generation = decoding.check_defaults(
                read_json(folder / "generation_config.json", "generation config"), where, model.family
            )
        except ConfigError as e:
            raise CheckpointError(str(e)) from None
    checkpoint = {"model": spec, "task": config["task"], "config": source.get("config"), "generation": generation}
    return model.eval(), checkpoint


def from_hub(address: str) -> Path:
    """The local folder of `hf://<user>/<repo>[@revision]`: downloaded with huggingface_hub's
    snapshot_download (only the folder's files), or found in its cache when HF_HUB_OFFLINE=1."""
    hub = require("huggingface_hub", f"checkpoint={address}")
    repo, _, revision = address.removeprefix("hf://").partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ConfigError(f"{address}: name a Hub model as hf://<user or organisation>/<name>")
    try:
        folder = hub.snapshot_download(repo, revision=revision or None, allow_patterns=list(FILES + GRAPHS))
    except Exception as e:  # offline and not cached, no such repository, no network
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, hub.errors.LocalEntryNotFoundError) or "offline" in first.lower():
            raise CheckpointError(f"{address}: not in the Hub cache, and downloading is off or failed") from None
        raise CheckpointError(f"{address}: cannot download ({first[:160]})") from None
    return Path(folder)
