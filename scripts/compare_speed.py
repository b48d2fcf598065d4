"""Speed as ratios, measured side by side in one run on this machine: this project against the chapter's
own NumPy code and against a plain PyTorch language model written the standard way.

    python scripts/compare_speed.py --book ~/deep-learning-from-scratch-2 [--ptb-dir DIR] [--threads 2]

The chapter's code is not a dependency: clone https://github.com/oreilly-japan/deep-learning-from-scratch-2
(or its translations, which share the code) and give its path; it runs in a subprocess with the same
number of threads. What is timed:

- addition, reversed input + Peeky (wordvec 16, hidden 128, batch 128, Adam, clip 5), on one
  addition file (the book's dataset/addition.txt, or --addition FILE): one training epoch of the
  book's Trainer against this project's train_step loop (seq2seq.bench); validating the 5,000
  questions, one at a time with the book's eval_seq2seq against task.evaluate (one batch, every
  answer decoded: an untrained model's worst case). The book's run and this project's alternate for
  --rounds rounds and each side's best round counts.
- PTB Rnnlm (wordvec 100, hidden 100, batch 20, time 35, SGD lr 20, clip 0.25): seconds per training
  step of the book's RnnlmTrainer (--lm-steps steps), and of a plain nn.Embedding / nn.LSTM / nn.Linear
  model trained the standard way (pytorch/examples word_language_model) against this project: these
  two alternate, window by window (--lm-rounds windows of --lm-steps steps each), and the best window
  of each counts, so a machine that slows down for a while slows both alike.

The project is timed in fp32 and, on CPUs where bf16 runs (or with --bf16), with trainer.precision=bf16
as well; the book and the plain model always run fp32.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from seq2seq.cli import bench
from seq2seq.core.device import bf16_missing
from seq2seq.data.ptb import load_ptb
from seq2seq.training.build import build
from seq2seq.training.loop import train_step
from seq2seq.training.precision import machine

# The book's side, run with its own code in a subprocess (its modules import each other through
# sys.path entries, as its chapter scripts do). Its data loader is not used: dataset/sequence.py needs
# numpy.int, gone from numpy 1.24; the same procedure is restated here.
BOOK_DRIVER = r"""
import json, sys, time
import numpy

book, addition, ptb_train, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path[:0] = [book, book + "/ch07", book + "/ch06"]
from common.optimizer import SGD, Adam
from common.trainer import RnnlmTrainer, Trainer
from common.util import eval_seq2seq
from peeky_seq2seq import PeekySeq2seq
from rnnlm import Rnnlm

lines = open(addition, encoding="utf-8").read().splitlines()
questions = [line[: line.find("_")] for line in lines]
answers = [line[line.find("_") :] for line in lines]
char_to_id = {}
for q, a in zip(questions, answers):
    for c in q + a:
        char_to_id.setdefault(c, len(char_to_id))
id_to_char = {i: c for c, i in char_to_id.items()}
x = numpy.array([[char_to_id[c] for c in q] for q in questions], dtype=numpy.int32)
t = numpy.array([[char_to_id[c] for c in a] for a in answers], dtype=numpy.int32)
indices = numpy.arange(len(x))
numpy.random.seed(1984)
numpy.random.shuffle(indices)
x, t = x[indices], t[indices]
split_at = len(x) - len(x) // 10
x_train, x_test, t_train, t_test = x[:split_at, ::-1], x[split_at:, ::-1], t[:split_at], t[split_at:]

model = PeekySeq2seq(len(char_to_id), 16, 128)
trainer = Trainer(model, Adam())
started = time.perf_counter()
trainer.fit(x_train, t_train, max_epoch=1, batch_size=128, max_grad=5.0, eval_interval=10**9)
epoch_s = time.perf_counter() - started
started = time.perf_counter()
for i in range(len(x_test)):
    eval_seq2seq(model, x_test[[i]], t_test[[i]], id_to_char, False, True)
eval_s = time.perf_counter() - started

words = open(ptb_train, encoding="utf-8").read().replace("\n", " <eos> ").split()
word_to_id = {}
for w in words:
    word_to_id.setdefault(w, len(word_to_id))
corpus = numpy.array([word_to_id[w] for w in words[: steps * 20 * 35 + 1]])
lm = Rnnlm(len(word_to_id), 100, 100)
lm_trainer = RnnlmTrainer(lm, SGD(20.0))
started = time.perf_counter()
lm_trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=20, time_size=35, max_grad=0.25, eval_interval=10**9)
step_s = (time.perf_counter() - started) / steps
print(json.dumps({"addition_epoch_s": epoch_s, "addition_eval_s": eval_s, "lm_step_s": step_s}))
"""


class PlainLM(nn.Module):
    """The same language model as rnnlm_ptb, written as pytorch/examples' word_language_model does."""

    def __init__(self, vocab_size: int, emsize: int = 100, nhid: int = 100):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, emsize)
        self.rnn = nn.LSTM(emsize, nhid)  # (T, B, H): the example's layout
        self.decoder = nn.Linear(nhid, vocab_size)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.encoder(x), hidden)
        return self.decoder(out), hidden


def plain_lm_stepper(stream: torch.Tensor, vocab_size: int):
    """PlainLM trained as word_language_model trains it: batchify into (L, B), windows of 35, repackage
    the hidden state, clip at 0.25, SGD with lr 20 by hand. Returns run(steps): trains `steps` more
    steps and returns the seconds per step."""
    model = PlainLM(vocab_size)
    data = stream[: len(stream) // 20 * 20].view(20, -1).t().contiguous()  # (L, B)
    windows = (len(data) - 1) // 35
    at, hidden = 0, None

    def run(steps: int) -> float:
        nonlocal at, hidden
        started = time.perf_counter()
        for _ in range(steps):
            i, at = at % windows, at + 1
            x, y = data[i * 35 : (i + 1) * 35], data[i * 35 + 1 : (i + 1) * 35 + 1]
            hidden = None if hidden is None else tuple(h.detach() for h in hidden)
            model.zero_grad()
            out, hidden = model(x, hidden)
            loss = F.cross_entropy(out.view(-1, vocab_size), y.reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-20.0)
        return (time.perf_counter() - started) / steps

    return run


def project_lm_stepper(ptb_dir: Path, overrides: list[str]):
    """This project's rnnlm_ptb training steps (seq2seq.train's train_step at trainer.precision), as a
    run(steps) like plain_lm_stepper's. Also returns the number of steps of an epoch."""
    cfg = bench.compose_experiment("rnnlm_ptb", [*overrides, f"task.data_dir={ptb_dir}"])
    setup = build(cfg)
    batches, amp = setup.task.train_batches(0), bench.precision_of(setup, cfg)
    clip = cfg.trainer.grad_clip
    at, carry = 0, None

    def run(steps: int) -> float:
        nonlocal at, carry
        started = time.perf_counter()
        for _ in range(steps):
            batch, at = batches[at % len(batches)], at + 1
            _, _, carry = train_step(setup.task, setup.model, setup.optimizer, batch, carry, clip, amp)
        return (time.perf_counter() - started) / steps

    return run, len(batches)


def best_windows(runs: dict, rounds: int, steps: int) -> dict:
    """Each run's best seconds per step over `rounds` windows of `steps` steps, the runs alternating
    window by window, so a machine that slows down for a while slows every side alike."""
    for run in runs.values():
        run(3)  # warm-up
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = min(best[name], run(steps))
    return best


def cpu_name() -> str:
    """The CPU's model name and its bf16-relevant flags, from /proc/cpuinfo (seq2seq.training.precision.machine)."""
    info = machine()
    return f"{info['device']} ({' '.join(info['flags']) or 'no AVX2'})"


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def check_book(book: Path) -> None:
    missing = [p for p in ("common/trainer.py", "ch07/peeky_seq2seq.py", "ch06/rnnlm.py") if not (book / p).is_file()]
    if missing:
        sys.exit(
            f"error: {book} is not the chapter's code ({missing[0]} missing): clone "
            "https://github.com/oreilly-japan/deep-learning-from-scratch-2 and pass its path with --book"
        )


def run_book(book: Path, addition: Path, ptb_dir: Path, steps: int, threads: int) -> dict:
    env = {**os.environ, **{k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    paths = [str(p.resolve()) for p in (book, addition, ptb_dir / "ptb.train.txt")]
    args = [sys.executable, "-c", BOOK_DRIVER, *paths, str(steps)]
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=book)
    if result.returncode != 0:
        sys.exit(f"error: the chapter's code failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def time_addition_and_book(args, addition: Path, precisions: tuple[str, ...], base: list[str]):
    """The Peeky epoch and validation of this project (per precision) and the book's run, alternating
    for args.rounds rounds; each side's best round counts."""
    ours, book = {}, {}
    for _ in range(args.rounds):
        for p in precisions:
            overrides = [*base, f"trainer.precision={p}", f"task.path={addition}"]
            timed = bench.bench_addition("peeky_addition", False, overrides)
            ours[p] = {k: min(ours.get(p, timed)[k], timed[k]) for k in ("epoch_s", "eval_s")}
        timed = run_book(args.book, addition, args.ptb_dir, args.lm_steps, args.threads)
        book = {k: min(book.get(k, v), v) for k, v in timed.items()}
    return ours, book


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--book", type=Path, required=True, help="a checkout of deep-learning-from-scratch-2")
    parser.add_argument("--addition", type=Path, help="addition file (default: the book's dataset/addition.txt)")
    parser.add_argument("--ptb-dir", type=Path, default=Path(os.environ.get("PTB_DIR", "data/ptb")))
    parser.add_argument("--threads", type=positive, default=torch.get_num_threads(), help="for every side")
    parser.add_argument("--rounds", type=positive, default=2, help="rounds of the book's run and ours; the best counts")
    parser.add_argument("--lm-steps", type=positive, default=25, help="language-model steps per timed window")
    parser.add_argument("--lm-rounds", type=positive, default=4, help="windows per side, alternating; the best counts")
    bf16 = parser.add_mutually_exclusive_group()
    bf16.add_argument("--bf16", action="store_true", default=None, help="also time trainer.precision=bf16")
    bf16.add_argument("--no-bf16", dest="bf16", action="store_false", help="fp32 only")
    args = parser.parse_args(argv)
    check_book(args.book)
    if not (args.ptb_dir / "ptb.train.txt").is_file():
        parser.error(f"{args.ptb_dir}: no ptb.train.txt (give --ptb-dir or set PTB_DIR)")
    addition = args.addition or args.book / "dataset" / "addition.txt"
    if not addition.is_file():
        parser.error(f"{addition}: no such file (give --addition, e.g. from python -m seq2seq.data.addition)")
    torch.set_num_threads(args.threads)
    bf16 = args.bf16 if args.bf16 is not None else not bf16_missing("cpu")
    precisions = ("fp32", "bf16") if bf16 else ("fp32",)
    base = ["trainer.device=cpu", f"trainer.threads={args.threads}"]

    ours, book = time_addition_and_book(args, addition, precisions, base)
    vocab, streams = load_ptb(args.ptb_dir, download_missing=False)
    runs = {"plain": plain_lm_stepper(torch.tensor(streams["train"]), len(vocab))}
    for p in precisions:
        runs[p], epoch_steps = project_lm_stepper(args.ptb_dir, [*base, f"trainer.precision={p}"])
    step = best_windows(runs, args.lm_rounds, args.lm_steps)

    rows = []
    for p in precisions:
        rows += [
            (f"peeky addition: training epoch ({p})", book["addition_epoch_s"], ours[p]["epoch_s"], "s"),
            (f"peeky addition: validating 5,000 ({p})", book["addition_eval_s"], ours[p]["eval_s"], "s"),
        ]
    for p in precisions:
        rows += [
            (f"rnnlm_ptb: training step, book ({p})", book["lm_step_s"] * 1000, step[p] * 1000, "ms"),
            (f"rnnlm_ptb: training step, plain PyTorch ({p})", step["plain"] * 1000, step[p] * 1000, "ms"),
        ]
    print(f"torch {torch.__version__}, {args.threads} threads, {cpu_name()}; an LM epoch is {epoch_steps} steps")
    print("the book and plain PyTorch run fp32; (bf16) is this project's trainer.precision=bf16")
    print(f"{'work':<48}{'other':>10}{'this project':>14}{'ratio':>8}")
    for name, other, mine, unit in rows:
        print(f"{name:<48}{other:>8.2f}{unit:<2}{mine:>12.3f}{unit:<2}{other / mine:>7.2f}x")


if __name__ == "__main__":
    main()
