"""What `checkpoint=` names, everywhere it is taken (generate, chat, export, evaluate, the Python API, the
explorer): a checkpoint file, a run directory, a folder of runs, `latest`, `best`, or a shared model's folder,
local or on the Hugging Face Hub.

    latest                   the newest finished run under ./outputs
    latest@<folder>          ... under <folder> (a sweep's outputs/multirun/<time>, an experiment's folder)
    best                     the run with the best value of its monitored metric under ./outputs
    best:val/ppl@<folder>    the run with the best val/ppl under <folder> (lowest: losses and perplexities fall)

Runs under <folder>/debug/ (where debug=... runs go) are skipped by all of them."""

import re
from pathlib import Path

from seq2seq.core.errors import ConfigError
from seq2seq.inference import pretrained
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.runs import best_run, newest_run

PICK = re.compile(r"(latest|best)(?::([A-Za-z_]+/[A-Za-z0-9_]+))?(?:@(.+))?")


def find(path: str | Path, name: str = "best.pt", outputs: Path = Path("outputs")) -> tuple[Path, str | None]:
    """The checkpoint a user means by `checkpoint=`: a file; a run directory (its `name`); a folder of
    runs, such as an experiment's outputs/<name>/ (its newest finished run's); `latest` or `best` (above); or a
    shared model's folder, local or `hf://<user>/<repo>` (returned as the folder: seq2seq.inference.pretrained
    reads it). The note says which run was chosen, when one was."""
    pick = PICK.fullmatch(str(path))
    if pick:
        how, metric, folder = pick.groups()
        if how == "latest" and metric:
            raise ConfigError(f"checkpoint={path}: latest takes no metric (best:{metric} picks by one)")
        folder = Path(folder) if folder else outputs
        if how == "latest":
            return newest_run(folder, name, f"checkpoint={path}", skip_debug=True)
        return best_run(folder, name, metric, f"checkpoint={path}")
    if re.match(r"(latest|best)[:@]", str(path)):
        raise ConfigError(f"checkpoint={str(path)[:100]}: write latest[@<folder>] or best[:<split>/<metric>]"
                          "[@<folder>], e.g. best:val/ppl@outputs/multirun/<time>")  # fmt: skip
    if str(path).startswith("hf://"):  # a shared model on the Hugging Face Hub (seq2seq.inference.pretrained)
        return pretrained.from_hub(str(path)), None
    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():  # a shared model's folder
        return path, None
    if path.is_dir() and not (path / name).exists():
        return newest_run(path, name, f"checkpoint={path}", skip_debug=True)
    return ckpt.resolve(path, name), None
