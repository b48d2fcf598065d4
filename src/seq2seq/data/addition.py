"""The chapter's addition toy and its fixed-width text format.

File format, one example per line: the question left-aligned and space-padded, then `_` (the
decoder's start symbol) and the answer, space-padded. Every line has the same width:

    16+75  _91
    582+84 _666

Widths and the character vocabulary are read from the file, so any string-to-string problem
written this way can be loaded unchanged. Run `python -m seq2seq.data.addition --help` to write
the chapter's dataset to a file.
"""

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

from seq2seq.core.errors import DataError
from seq2seq.data.text import read_utf8

START = "_"


@dataclass
class FixedWidthPairs:
    """Questions and answers of one file. Each answer starts with START; all have equal widths."""

    questions: list[str]
    answers: list[str]


def random_operand(rng: random.Random, max_digits: int) -> int:
    """Digit count uniform in 1..max_digits, then the digits: small numbers are common."""
    digits = rng.randint(1, max_digits)
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def generate_addition(
    num_examples: int = 50_000, max_digits: int = 3, seed: int = 0, small_sums: bool = False
) -> FixedWidthPairs:
    """Distinct questions `a+b` (`a+b` and `b+a` count as the same question), padded as in the chapter.
    small_sums: the 55 sums of two one-digit numbers come first (drawn at random they are about 0.01% of
    the questions; the book's data holds a handful), then random ones up to num_examples."""
    capacity = (10**max_digits) * (10**max_digits + 1) // 2  # unordered pairs of 0 .. 10**max_digits - 1
    if num_examples > capacity:
        raise DataError(f"only {capacity} distinct questions exist with max_digits={max_digits}")
    rng = random.Random(seed)
    q_width = 2 * max_digits + 1
    a_width = max_digits + 2  # START + up to max_digits + 1 digits
    seen: set[tuple[int, int]] = set()
    questions, answers = [], []
    small = [(a, b) for a in range(10) for b in range(a, 10)] if small_sums else []
    rng.shuffle(small)
    if len(small) > num_examples:
        raise DataError(f"small_sums needs num_examples >= {len(small)}")
    while len(questions) < num_examples:
        a, b = small.pop() if small else (random_operand(rng, max_digits), random_operand(rng, max_digits))
        key = (min(a, b), max(a, b))
        if key in seen:
            continue
        seen.add(key)
        questions.append(f"{a}+{b}".ljust(q_width))
        answers.append(f"{START}{a + b}".ljust(a_width))
    return FixedWidthPairs(questions, answers)


def format_fixed_width(data: FixedWidthPairs) -> str:
    return "".join(q + a + "\n" for q, a in zip(data.questions, data.answers, strict=True))


# Fixed-width lines wider than this are refused: the chapter's questions are 7 characters, and every
# character is an encoder step, so a line of thousands would make an untrainable model.
MAX_WIDTH = 1000


def shorten(line: str, limit: int = 80) -> str:
    """A line as an error message shows it: repr, cut after `limit` characters."""
    return repr(line) if len(line) <= limit else f"{line[:limit]!r}... ({len(line):,} characters)"


def load_fixed_width(path: str | Path) -> FixedWidthPairs:
    """Read a fixed-width pair file, failing with the file and line of the first problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (task.path must name a file in the addition format)")
    text = read_utf8(path.read_bytes(), str(path))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    if not lines:
        raise DataError(f"{path}: empty file, expected lines like '16+75  _91  '")
    questions, answers = [], []
    width = split = None
    for lineno, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        where, shown = f"{path}:{lineno}", shorten(line)
        if len(line) > MAX_WIDTH:
            raise DataError(f"{where}: line is {len(line):,} characters wide; this format takes at most {MAX_WIDTH}")
        if START not in line:
            raise DataError(f"{where}: no '{START}' separating question and answer in {shown}")
        if line.index(START) == 0:
            raise DataError(f"{where}: empty question before '{START}' in {shown}")
        if width is None:
            width, split = len(line), line.index(START)
        elif len(line) != width:
            raise DataError(f"{where}: line is {len(line)} characters wide, line 1 is {width}: {shown}")
        elif line.index(START) != split:
            raise DataError(
                f"{where}: '{START}' at column {line.index(START) + 1}, line 1 has it at column {split + 1}: {shown}"
            )
        questions.append(line[:split])
        answers.append(line[split:])
    if width - split < 2:
        raise DataError(f"{path}:1: empty answer after '{START}'")
    return FixedWidthPairs(questions, answers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the chapter's addition dataset to a text file.")
    parser.add_argument("out", type=Path, help="file to write, e.g. addition.txt")
    parser.add_argument("--num-examples", type=int, default=50_000)
    parser.add_argument("--max-digits", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small-sums", action="store_true", help="the 55 sums of two one-digit numbers first")
    only = "only the 100 sums a+b of one-digit a and b (at --max-digits widths): a test file"
    parser.add_argument("--one-digit-only", action="store_true", help=only)
    args = parser.parse_args(argv)
    if args.one_digit_only:
        q_width, a_width = 2 * args.max_digits + 1, args.max_digits + 2
        sums = [(a, b) for a in range(10) for b in range(10)]
        data = FixedWidthPairs([f"{a}+{b}".ljust(q_width) for a, b in sums],
                               [f"{START}{a + b}".ljust(a_width) for a, b in sums])  # fmt: skip
    else:
        data = generate_addition(args.num_examples, args.max_digits, args.seed, args.small_sums)
    args.out.write_text(format_fixed_width(data), encoding="utf-8")
    print(f"wrote {len(data.questions)} questions to {args.out}")


if __name__ == "__main__":
    main()
