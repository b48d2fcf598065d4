"""What `checkpoint=` names, everywhere it is taken (generate, chat, export, the Python API, the explorer): a
checkpoint file, a run directory, a folder of runs, `latest`, or a shared model's folder, local or on the
Hugging Face Hub."""

from pathlib import Path

from seq2seq.inference import pretrained
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.runs import newest_run


def find(path: str | Path, name: str = "best.pt", outputs: Path = Path("outputs")) -> tuple[Path, str | None]:
    """The checkpoint a user means by `checkpoint=`: a file; a run directory (its `name`); a folder of
    runs, such as an experiment's outputs/<name>/ (its newest finished run's); `latest` (the newest
    finished run under ./outputs); or a shared model's folder, local or `hf://<user>/<repo>` (returned
    as the folder: seq2seq.inference.pretrained reads it). The note says which run was chosen, when one was."""
    if str(path) == "latest":
        return newest_run(outputs, name, "checkpoint=latest")
    if str(path).startswith("hf://"):  # a shared model on the Hugging Face Hub (seq2seq.inference.pretrained)
        return pretrained.from_hub(str(path)), None
    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():  # a shared model's folder
        return path, None
    if path.is_dir() and not (path / name).exists():
        return newest_run(path, name, f"checkpoint={path}")
    return ckpt.resolve(path, name), None
