"""`seq2seq-plot` (or `python -m seq2seq.plot`): a TensorBoard scalar (default val/acc) of one or more runs, or of
a whole sweep, against epoch or time, one labelled line per run, to a PNG you name; `--table` prints final
and best values and seconds per epoch as a Markdown table.

    seq2seq-plot outputs/multirun/2026-11-25_13-47-29 --out addition.png --label model.decoder,task.reverse
    seq2seq-plot outputs/rnnlm_ptb outputs/better_rnnlm_ptb --tag val/ppl --out ppl.png --table

Each argument is a run directory or a folder searched for run directories (any folder holding TensorBoard
event files). A run is labelled by the `name` in its config.yaml and its folder name, or by the values of
the config keys given to --label.
"""

import argparse
import sys
from pathlib import Path

from seq2seq.core.errors import CheckpointError
from seq2seq.core.files import read_yaml
from seq2seq.training.events import curves

PROG = "seq2seq-plot"


def find_runs(paths: list[Path]) -> list[Path]:
    runs = set()
    for path in paths:
        if not path.exists():
            sys.exit(f"{PROG}: error: {path}: no such file or directory")
        runs.update(p.parent for p in path.rglob("events.out.tfevents.*"))
    return sorted(runs)


def read_scalar(run: Path, tag: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `tag`; a resumed run may repeat a step: the last value is kept."""
    points = curves(run, tag).get(tag, [])
    return [s for s, _ in points], [v for _, v in points]


def elapsed(run: Path, epochs: list[int]) -> list[float]:
    """Seconds of training and validation up to the end of each epoch (startup excluded)."""
    per_epoch = {}
    for tag in ("train/epoch_time", "val/time"):
        for epoch, seconds in zip(*read_scalar(run, tag), strict=True):
            per_epoch[epoch] = per_epoch.get(epoch, 0.0) + seconds
    total, out = 0.0, {}
    for epoch in sorted(per_epoch):
        total += per_epoch[epoch]
        out[epoch] = total
    return [out[e] for e in epochs]


def config_of(run: Path) -> dict:
    try:
        config = read_yaml(run / "config.yaml", "a run's config") if (run / "config.yaml").is_file() else {}
    except CheckpointError:
        return {}
    return config if isinstance(config, dict) else {}


def lookup(config: dict, key: str):
    for part in key.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config


def label(run: Path, keys: list[str] | None = None) -> str:
    """The run's name and folder, or `key=value` of each key given (a sweep's lines told apart by what varied)."""
    config = config_of(run)
    if keys:
        return " ".join(f"{key.rsplit('.', 1)[-1]}={shown_value(lookup(config, key))}" for key in keys)
    name = config.get("name")
    return f"{name} ({run.name})" if name and name not in run.name else run.name


def shown_value(value) -> str:
    """A config value in a label: a chosen group (scheduler, optimizer) by its class, an absent one as -."""
    if isinstance(value, dict):
        return str(value.get("_target_", "{...}")).rsplit(".", 1)[-1]
    return "-" if value is None else str(value)


def shown(tag: str, value: float) -> str:
    """Accuracies and BLEU as the README writes them (99.6%, 0.61); other scalars to 4 decimals."""
    name = tag.rsplit("/", 1)[-1]
    return f"{100 * value:.1f}%" if name.endswith("acc") else f"{value:.2f}" if name == "bleu" else f"{value:.4f}"


def print_table(runs: list[Path], tag: str, keys: list[str] | None = None) -> None:
    """Markdown table: final and best value of `tag`, mean seconds per training epoch and per validation."""
    print(f"| run | epochs | final {tag} | best {tag} | s/epoch (train) | s/validation |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run in runs:
        steps, values = read_scalar(run, tag)
        if not steps:
            continue
        best = max(values) if "acc" in tag else min(values)
        train_s, val_s = (read_scalar(run, t)[1] for t in ("train/epoch_time", "val/time"))
        mean = [f"{sum(v) / len(v):.2f}" if v else "-" for v in (train_s, val_s)]
        cells = [label(run, keys), str(steps[-1]), shown(tag, values[-1]), shown(tag, best), *mean]
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=raw)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories or folders holding them")
    parser.add_argument("--tag", default="val/acc", help="scalar to plot (default: val/acc)")
    parser.add_argument(
        "--out", type=Path, default=None, help="PNG to write (default: curves.png, or none with --table alone)"
    )
    parser.add_argument(
        "--x", choices=["epoch", "time"], default="epoch", help="x axis: epoch, or seconds of training + validation"
    )
    parser.add_argument("--title", default=None)
    parser.add_argument("--table", action="store_true", help="print final and best value and s/epoch per run")
    parser.add_argument("--label", default=None, help="config keys naming each line, e.g. model.decoder,task.reverse")
    args = parser.parse_args(argv)
    keys = [k for k in args.label.split(",") if k] if args.label else None

    runs = find_runs(args.runs)
    if not runs:
        sys.exit(f"{PROG}: error: no TensorBoard event files under {', '.join(map(str, args.runs))}")
    if args.table and args.out is None:  # the table alone: nothing written
        print_table(runs, args.tag, keys)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    plotted = 0
    for run in runs:
        steps, values = read_scalar(run, args.tag)
        if steps and args.x == "time":
            steps = elapsed(run, steps)
        if steps:
            ax.plot(steps, values, marker="o", markersize=3, label=label(run, keys))
            plotted += 1
        else:
            print(f"{PROG}: {run} has no {args.tag!r} scalar, skipped", file=sys.stderr)
    if not plotted:
        by_step = args.tag.replace("val/", "val_step/", 1)  # a max_steps run stopped inside its first epoch
        hint = (f" (a run stopped inside its first epoch has {by_step!r}, by step: --tag {by_step})"
                if by_step != args.tag and any(read_scalar(run, by_step)[0] for run in runs) else "")  # fmt: skip
        sys.exit(f"{PROG}: error: no run has a {args.tag!r} scalar{hint}")
    if args.table:
        print_table(runs, args.tag, keys)
    ax.set_xlabel("epoch" if args.x == "epoch" else "seconds (training + validation)")
    if args.x == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no ticks at 1.2, 1.4
    ax.set_ylabel(args.tag)
    ax.set_title(args.title or args.tag)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = args.out or Path("curves.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out} ({plotted} runs of {len(runs)} found under {', '.join(map(str, args.runs))})", file=sys.stderr)


if __name__ == "__main__":
    main()
