"""The ONNX runner against PyTorch on the same CPU, side by side (the docs' "Sharing a model" page):

    python scripts/onnx_speed.py --checkpoint outputs/peeky_addition [--repeat 30]

Exports the addition checkpoint with `format=onnx` into a temporary folder, checks that the runner's
greedy answers equal PyTorch's on every validation question of the run (5,000 for the chapter's
addition), then times one question (median of --repeat calls, after a warm-up) and the whole
validation set in one call (best of 3), each with PyTorch (seq2seq.load) and onnxruntime
(seq2seq.inference.serving.OnnxModel), and prints the ratios.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import seq2seq
from seq2seq.inference import serving
from seq2seq.tasks import task_from_saved_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup_time import cpu_name


def seconds(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="an addition run (directory, folder of runs or .pt)")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls of one question (default 30)")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch_model = seq2seq.load(args.checkpoint, device="cpu")
    task = task_from_saved_config(torch_model.config["task"], "config.task")
    questions = [q.strip() for q in task.val_questions]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_model = serving.OnnxModel(serving.export(args.checkpoint, Path(tmp) / "onnx"), threads=threads)
        expected, answered = torch_model.generate(questions), onnx_model.generate(questions)
        same = sum(a == b for a, b in zip(expected, answered, strict=True))
        print(f"{cpu_name()}, {threads} threads; {len(questions):,} validation questions")
        print(f"greedy answers equal to PyTorch's: {same:,} of {len(questions):,}")
        rows = []
        for name, model in (("PyTorch", torch_model), ("onnxruntime", onnx_model)):
            model.generate(questions[:1])  # warm-up
            one = statistics.median(seconds(lambda m=model: m.generate(questions[:1]), args.repeat))
            everything = min(seconds(lambda m=model: m.generate(questions), 3))
            rows.append((name, one, everything))
        for name, one, everything in rows:
            print(f"{name:12s} one question {one * 1000:7.2f} ms | {len(questions):,} questions {everything:6.3f} s "
                  f"({len(questions) / everything:,.0f} questions/s)")  # fmt: skip
        (_, t1, ta), (_, o1, oa) = rows
        print(f"onnxruntime / PyTorch: one question {t1 / o1:.2f}x faster, the validation set {ta / oa:.2f}x faster")
        if same != len(questions):
            sys.exit("the ONNX runner's greedy answers differ from PyTorch's")


if __name__ == "__main__":
    main()
