"""`seq2seq-runs` (or `python -m seq2seq.runs`): the runs of a folder or a sweep as a table, one row a run, with
its status, the overrides it was started with and its best and final metric, sorted as asked.

    seq2seq-runs                                    # every run under outputs/, best first
    seq2seq-runs outputs/multirun/<time> --metric val/char_acc --sort final
    seq2seq-runs --markdown > runs.md

Runs under <folder>/debug/ (where debug=... runs go) are left out unless --debug is given."""

import argparse
import math
import sys
from pathlib import Path

from seq2seq.core.errors import DataError
from seq2seq.core.metrics import lower_is_better
from seq2seq.training.runs import DEBUG

PROG = "seq2seq-runs"
SORTS = ("best", "final", "date", "run")


def rows(folder: Path, metric: str | None, debug: bool) -> tuple[list[list], int]:
    """The table's rows (run, experiment, status, metric, best, final, date, overrides) and the number of
    debug runs left out."""
    from seq2seq.explore.runs import Runs

    found = Runs(folder).scan()
    kept = [run for run in found if debug or run.id.split("/", 1)[0] != DEBUG]
    table = []
    for run in kept:
        name = metric or run.metric
        best, final = run.best, run.final  # (a max_steps run's from its status.json: explore.runs reads them)
        if metric and metric != run.metric:
            values = [v for _, v in run.curves.get(metric, []) if math.isfinite(v)]
            best = (min if lower_is_better(metric) else max)(values) if values else None
            final = run.curves[metric][-1][1] if values else None
        table.append([run.id, run.experiment, run.status, name, best, final, run.date, run.overrides])
    return table, len(found) - len(kept)


def ordered(table: list[list], sort: str) -> list[list]:
    """best/final: the metric's best first (lowest for losses and perplexities), runs without one last;
    date: newest first; run: by folder."""
    if sort in ("best", "final"):
        at = 4 if sort == "best" else 5

        def key(row):
            value = row[at]
            if value is None:
                return (1, 0.0)
            return (0, value if lower_is_better(row[3] or "") else -value)

        return sorted(table, key=key)
    if sort == "date":
        return sorted(table, key=lambda row: row[6], reverse=True)
    return sorted(table, key=lambda row: row[0])


def render(table: list[list], markdown: bool) -> str:
    head = ["run", "experiment", "status", "metric", "best", "final", "date", "overrides"]
    cells = [[("" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)) for v in row] for row in table]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells])
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(head)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), *(fmt(row) for row in cells)])


def main(argv: list[str] | None = None) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=raw)
    parser.add_argument("folder", nargs="?", type=Path, default=Path("outputs"), help="default: outputs")
    parser.add_argument("--metric", default=None, help="of the best and final columns (default: each run's monitor)")
    parser.add_argument("--sort", choices=SORTS, default="best", help="row order (default: best)")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    parser.add_argument("--debug", action="store_true", help=f"include runs under <folder>/{DEBUG}/")
    args = parser.parse_args(argv)
    if args.metric is not None and args.metric.count("/") != 1:
        parser.error(f"--metric {args.metric}: name a logged metric such as val/acc or val/ppl")
    try:
        table, skipped = rows(args.folder, args.metric, args.debug)
    except DataError as e:
        parser.exit(2, f"{PROG}: error: {e}\n")
    if not table:
        more = f" ({skipped} debug run(s) left out: --debug lists them)" if skipped else ""
        parser.exit(1, f"{PROG}: no runs under {args.folder.resolve()}{more}\n")
    print(render(ordered(table, args.sort), args.markdown))
    more = f"; {skipped} debug run(s) left out (--debug lists them)" if skipped else ""
    print(f"{len(table)} runs under {args.folder.resolve()}{more}", file=sys.stderr)


if __name__ == "__main__":
    main()
