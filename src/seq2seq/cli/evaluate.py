"""`python -m seq2seq.evaluate checkpoint=<run> [split=val|test] [file=...] [out=...]` (or `seq2seq-evaluate`):
a checkpoint's metrics, as training computes them, and its predictions (seq2seq.inference.evaluate)."""

import sys
from pathlib import Path

from omegaconf import DictConfig

from seq2seq.cli import common as cli


def default_out(checkpoint: Path, split: str) -> Path:
    """evaluate/<run>-<split>.jsonl: the run's folder name (or the exported folder's)."""
    run = checkpoint if checkpoint.is_dir() else checkpoint.parent
    return Path("evaluate") / f"{run.name}-{split}.jsonl"


def run(cfg: DictConfig):
    from seq2seq.core.threads import Threads
    from seq2seq.inference.evaluate import evaluate, report, write_rows

    cli.check_keys(cfg, cli.EvaluateConfig, "seq2seq.evaluate")
    if cfg.out is not None and Path(str(cfg.out)).suffix not in (".jsonl", ".csv"):
        raise cli.ConfigError(f"out={cfg.out}: name a .jsonl or .csv file")
    file = cli.checkpoint_file(cfg.checkpoint)
    Threads(what="evaluation").start()
    result = evaluate(file, cfg.split, cfg.file, device=None if cfg.device == "auto" else cfg.device)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(report(result))
    if result.rows:
        out = Path(cfg.out) if cfg.out else default_out(file, result.split)
        write_rows(result.rows, out)
        wrong = sum(1 for row in result.rows if row.get("correct") is False)
        said = f", {wrong:,} wrong" if "correct" in result.rows[0] else ""
        print(f"predictions: {out} ({len(result.rows):,} examples{said})", file=sys.stderr)
    return result


main = cli.command_line(
    "seq2seq.evaluate", cli.EvaluateConfig, "checkpoint=best split=test", input_key=None, checkpoint=False
)(run)

if __name__ == "__main__":
    main()
