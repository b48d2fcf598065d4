"""A checkpoint evaluated on a split of its task, or on a file in the task's format: the metrics exactly as
training computes them (the task's own `evaluate`, greedy decoding, the same batches), each example's
prediction for error analysis, and where a task has natural groups its errors by group.

    from seq2seq.inference.evaluate import evaluate
    result = evaluate("outputs/peeky_addition/<run>")       # val: the split that picks best.pt
    result.metrics          # {"val/loss": ..., "val/acc": ..., "val/char_acc": ...}
    result.rows[0]          # {"input": "16+75", "target": "91", "prediction": "91", "correct": True, "loss": ...}
    result.breakdown        # {"digits": {"digits=1": (right, total), ...}, "carries": {...}}
"""

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seq2seq.core.errors import DataError
from seq2seq.inference import api
from seq2seq.tasks import task_from_saved_config

FILE_SPLIT = "file"  # the name a file= split's metrics carry: file/acc, file/loss, ...


@dataclass
class Evaluation:
    checkpoint: Path
    split: str
    metrics: dict[str, float]
    rows: list[dict] = field(default_factory=list)  # one per example, in the split's order
    breakdown: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # group -> key -> (right, total)
    notes: list[str] = field(default_factory=list)


def splits_of(task) -> tuple[str, ...]:
    """The splits a task can be evaluated on: the monitored one, and those evaluated when training ends."""
    return (task.monitor.split("/", 1)[0], *task.final_splits)


@torch.no_grad()
def evaluate(checkpoint: str | Path, split: str | None = None, file: str | None = None, device=None) -> Evaluation:
    """`checkpoint` (anything `checkpoint=` takes) on `split` of its task (default: the one that picks best.pt)
    or on `file`. The task is rebuilt from the checkpoint's saved config (the same data, the same split), its
    data read from the folder the command runs in."""
    model = api.load(checkpoint, device=device)
    node = model.config.get("task") if isinstance(model.config, dict) else None
    if node is None:
        raise DataError(f"{model.path}: holds no task config to rebuild its data from (evaluate the run it came from)")
    roots = (Path.cwd(), *([Path(os.environ["PTB_DIR"])] if os.environ.get("PTB_DIR") else []))
    task = task_from_saved_config(node, f"{model.path}: config.task", roots).to(model.device)  # (PTB_DIR: the user's)
    notes = []
    limit = node.get("eval_limit") if isinstance(node, dict) else None
    if limit:
        notes.append(f"the run's task.eval_limit={limit}: the metrics cover the first {limit:,} examples (tokens for a "
                     "language model) of the split, the predictions all of it")  # fmt: skip
    if file is not None and split is not None:
        raise DataError("give split= or file=, not both")
    if file is not None:
        if not hasattr(task, "add_split"):
            raise DataError(f"file= is not taken by the {type(task).__name__} task: evaluate a split= of it")
        if not Path(file).is_file():
            raise DataError(f"file={file}: no such file")
        task.add_split(FILE_SPLIT, file)
        split = FILE_SPLIT
    else:
        known = splits_of(task)
        split = split or known[0]
        if split == "test" and "test" not in known:  # addition: the held-out split is val (the book's test set)
            notes.append(f"{type(task).__name__} holds out one split, val (the book's test set): evaluated that")
            split = "val"
        if split not in known:
            raise DataError(f"split={split}: this checkpoint's task ({type(task).__name__}) has split "
                            f"{' and '.join(known)}")  # fmt: skip
    module = model.module
    metrics, _ = task.evaluate(module, split)
    rows = task.predictions(module, split) if hasattr(task, "predictions") else []
    if not hasattr(task, "predictions"):
        notes.append(f"the {type(task).__name__} task writes no per-example predictions")
    breakdown = task.breakdown(rows) if hasattr(task, "breakdown") else {}
    return Evaluation(model.path, split, metrics, rows, breakdown, notes)


def write_rows(rows: list[dict], path: Path) -> None:
    """The predictions as JSON lines (.jsonl) or CSV (.csv), one example a line, written whole."""
    from seq2seq.core.files import write_file

    if path.suffix not in (".jsonl", ".csv"):
        raise DataError(f"out={path}: name a .jsonl or .csv file")
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["input"])
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, text)


def report(result: Evaluation) -> str:
    """The metrics, one `name value` a line, then each breakdown as a small table of accuracies."""
    lines = [f"{name} {value:.6f}" for name, value in result.metrics.items()]
    for by, groups in result.breakdown.items():
        lines.append(f"by {by}:")
        width = max(len(key) for key in groups)
        for key, (right, total) in groups.items():
            lines.append(f"  {key:<{width}}  {right / total:7.2%}  ({right:,} of {total:,})")
    return "\n".join(lines)
