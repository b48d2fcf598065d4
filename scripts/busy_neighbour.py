"""Training speed on a quiet machine and beside one busy process, side by side in one run.

    python scripts/busy_neighbour.py [--baseline <checkout of another version>] [--experiment peeky_addition]
                                     [--rounds 3] [--precision fp32] [--env NAME=VALUE ...] [override ...]

Each measurement is one epoch of `python -m seq2seq.train experiment=<experiment>` in a fresh process, its
training time read from the run's log ("epoch 1: ... | <seconds>s for <steps> steps"). Conditions:

- quiet: nothing else running;
- busy: one `python -c "while True: pass"` running from before the run starts to after it ends;
- arriving: the busy process starts a few seconds into the epoch (the run must notice it while training).

`--env GOMP_SPINCOUNT=0` (say) sets a variable for the runs; overrides (`trainer.threads=1`) go to every run.
With --baseline, the same conditions run against that checkout's code (PYTHONPATH=<checkout>/src) too,
alternating with this one's, so a slow spell of the machine does not land on one side only. Each side's
and condition's best and worst are printed, and the ratios the speed targets name: busy / quiet for each
side, and this code's quiet time against the baseline's.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
EPOCH = re.compile(r"epoch 1: train/loss \S+ \| ([\d.]+)s for (\d+) steps")
THREADS = re.compile(r"(\d+) CPU threads")
BUSY = [sys.executable, "-c", "while True: pass"]


def epoch_seconds(src: Path, args, condition: str) -> tuple[float, str]:
    """One epoch's training seconds of a fresh run with `src` on the path, under `condition`, and the thread
    count its log reports."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update({"PYTHONPATH": str(src), **dict(item.split("=", 1) for item in args.env)})
    with tempfile.TemporaryDirectory() as run:
        cmd = [sys.executable, "-m", "seq2seq.train", f"experiment={args.experiment}", "trainer.max_epochs=1",
               "trainer.progress=false", f"trainer.precision={args.precision}", "trainer.device=cpu",
               *args.overrides, f"hydra.run.dir={run}/run"]  # fmt: skip
        neighbour = subprocess.Popen(BUSY) if condition == "busy" else None
        try:
            process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if condition == "arriving":
                time.sleep(8)  # start-up and data generation take about 5 s: the epoch is under way
                neighbour = subprocess.Popen(BUSY)
            _, stderr = process.communicate()
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
    found = EPOCH.search(stderr)
    if process.returncode or not found:
        raise SystemExit(f"{src}: the run failed:\n{stderr[-2000:]}")
    threads = THREADS.search(stderr)
    return float(found.group(1)), threads.group(1) if threads else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="a checkout of another version to compare with")
    parser.add_argument("--experiment", default="peeky_addition")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conditions", default="quiet,busy,arriving", help="comma-separated")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="for every run")
    parser.add_argument("overrides", nargs="*", help="for every run (trainer.threads=1, ...)")
    args = parser.parse_args()
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    sides = {"this": HERE / "src"}
    if args.baseline:
        if not (args.baseline / "src" / "seq2seq").is_dir():
            parser.error(f"--baseline {args.baseline}: no src/seq2seq there")
        sides["baseline"] = args.baseline / "src"
    conditions = args.conditions.split(",")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")  # fmt: skip
    print(
        f"{cpu}, {os.cpu_count()} cores; {args.experiment}, {args.precision}, one epoch a run, {args.rounds} rounds;"
        f" {' '.join(args.env + args.overrides) or 'defaults'}"
    )
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for condition in conditions:
            for side, src in sides.items() if r % 2 == 0 else reversed(sides.items()):
                seconds, threads = epoch_seconds(src, args, condition)
                times.setdefault((side, condition), []).append(seconds)
                print(f"  round {r + 1}: {side:<9}{condition:<9}{seconds:7.2f} s  ({threads} threads at the start)")
    print(f"\n{'side':<10}{'condition':<10}{'best s':>8}{'worst s':>9}{'best / quiet best':>19}")
    for (side, condition), values in times.items():
        quiet = min(times[(side, "quiet")]) if (side, "quiet") in times else None
        ratio = f"{min(values) / quiet:.2f}x" if quiet else "-"
        print(f"{side:<10}{condition:<10}{min(values):8.2f}{max(values):9.2f}{ratio:>19}")
    if args.baseline and ("this", "quiet") in times:
        change = min(times[("this", "quiet")]) / min(times[("baseline", "quiet")]) - 1
        print(f"\nquiet, this against the baseline (best of each): {100 * change:+.1f}%")


if __name__ == "__main__":
    main()
