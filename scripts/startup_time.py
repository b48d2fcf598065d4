"""How long the small commands take, start to exit, in fresh processes (the docs' "Speed" page):

    python scripts/startup_time.py --checkpoint outputs/peeky_addition [--repeat 5]

Times `--help` of the three command lines, `python -c "import torch"` (the floor of anything that
loads a model), and `seq2seq.generate` answering one question with the checkpoint. Prints the median
and the range of `--repeat` runs of each, and the CPU.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="an addition run (directory, folder of runs or .pt)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    py = sys.executable
    commands = {
        "seq2seq.train --help": [py, "-m", "seq2seq.train", "--help"],
        "seq2seq.generate --help": [py, "-m", "seq2seq.generate", "--help"],
        "seq2seq.chat --help": [py, "-m", "seq2seq.chat", "--help"],
        "import torch": [py, "-c", "import torch"],
        "seq2seq.generate question=16+75": [py, "-m", "seq2seq.generate", f"checkpoint={args.checkpoint}",
                                            "question=16+75"],
    }  # fmt: skip
    print(f"{cpu_name()}, {args.repeat} runs each, seconds from start to exit")
    print("| command | median | range |\n| --- | --- | --- |")
    for name, cmd in commands.items():
        wall(cmd)  # warm the file cache
        times = [wall(cmd) for _ in range(args.repeat)]
        print(f"| `{name}` | {statistics.median(times):.2f} | {min(times):.2f}-{max(times):.2f} |")


if __name__ == "__main__":
    main()
