"""Use a trained checkpoint: `python -m seq2seq.generate checkpoint=<run> ...` (or `seq2seq-generate`).

Seq2seq checkpoints answer a `question=...`, or every line of `file=...` (`file=-`: standard input),
CHUNK lines to a batch, printed as they are answered; captioning checkpoints take PNG file names the
same way. `index=N` answers validation example N of the checkpoint's pair task. Language-model
checkpoints continue a `prompt=...` (or each line of `file=...`). Decoding options: seq2seq.core.decoding,
shared with seq2seq.chat and the Python API.
"""

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seq2seq.cli import common as cli
from seq2seq.core.errors import DataError, Seq2seqError
from seq2seq.core.registry import FAMILIES

CHUNK = 256  # lines decoded as one batch: memory stays bounded whatever the file's length
MAX_LINE = 100_000  # bytes; far beyond any question or prompt, and what one line may cost to read


def read_lines(path: str) -> Iterator[list[str]]:
    """Non-empty lines of a UTF-8 file, or of standard input for "-", CHUNK at a time; a line that is
    not UTF-8 or longer than MAX_LINE fails with its line number."""
    p = Path(path)
    if path != "-" and not p.is_file():
        raise DataError(f"{p}: no such file")
    where = "standard input" if path == "-" else str(p)
    with contextlib.nullcontext(sys.stdin.buffer) if path == "-" else p.open("rb") as f:
        chunk = []
        for number, raw in enumerate(iter(lambda: f.readline(MAX_LINE + 1), b""), start=1):
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                raise DataError(f"{where}:{number}: a line longer than {MAX_LINE:,} bytes")
            line = decode_line(raw, where, number)
            if line.strip():
                chunk.append(line)
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def decode_line(raw: bytes, where: str, number: int) -> str:
    """A line as text; a byte-order mark (Windows editors) on the first line is not data."""
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise DataError(f"{where}:{number}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def run(cfg: DictConfig, free_text: str | None = None) -> Iterator[str]:
    """The outputs to print, one by one. Everything but the lines of file= is checked before the first.
    `free_text`: the words after `--` on the command line."""
    cli.check_keys(cfg, cli.GenerateConfig, "seq2seq.generate")
    model = cli.open_model(cfg)
    options = cli.decode_options(cfg)
    family = FAMILIES[model.family]
    allowed = family.generate_inputs  # the first is what the words after `--` are
    given = [k for k in ("question", "file", "index", "prompt") if cfg[k] is not None]
    if free_text is not None:  # `-- words`: the question, or a language model's prompt
        if given:
            raise DataError(f"give the input once: after -- or as {given[0]}=, not both")
        cfg = OmegaConf.merge(cfg, {allowed[0]: free_text})
        given = [allowed[0]]
    wrong = [k for k in given if k not in allowed]
    if wrong:
        choices = " or ".join(f"{k}=" for k in allowed)
        raise DataError(f"{wrong[0]}= does not apply to {family.words}: give {choices}")
    if len(given) > 1:
        raise DataError(f"give one of {', '.join(f'{k}=' for k in allowed)}, not {' and '.join(given)}")
    if cfg.index is not None:
        if any(v is not None for v in options.values()):
            raise DataError("index= shows the greedy output used in validation: it takes no decoding options")
        return iter(["\t".join(model.validation_answer(cfg.index))])
    if model.family == "lm":
        if cfg.file:
            return (sample for prompts in read_lines(cfg.file) for sample in lm_outputs(model, prompts, options))
        return iter(lm_outputs(model, [str("you" if cfg.prompt is None else cfg.prompt)], options))
    if cfg.question is None and cfg.file is None:
        raise DataError("give question=... or file=... (file=- reads standard input), or index=...")
    if cfg.question is not None:
        return iter(answers(model, [str(cfg.question)], options))
    return (f"{q}\t{a}" for questions in read_lines(cfg.file)
            for q, a in zip(questions, answers(model, questions, options), strict=True))  # fmt: skip


def answers(model, questions: list[str], options: dict) -> list[str]:
    return ["\t".join(a) if isinstance(a, list) else a for a in model.generate(questions, **options)]


def lm_outputs(model, prompts: list[str], options: dict) -> list[str]:
    return ["\n\n".join(s) if isinstance(s, list) else s for s in model.generate(prompts, **options)]


def run_command(cfg: DictConfig, free_text: str | None = None) -> None:
    """Print each output as it comes: question<TAB>answer lines, or a language model's samples with a
    blank line between them."""
    try:
        for i, output in enumerate(run(cfg, free_text)):
            if i == 0:
                lines = "\t" in output or cfg.question is not None or cfg.index is not None
            print(output if i == 0 or lines else "\n" + output, flush=True)
    except Seq2seqError as e:
        cli.fail(e)


main = cli.command_line(
    "seq2seq.generate", cli.GenerateConfig, "checkpoint=latest question=16+75", input_key="question"
)(run_command)

if __name__ == "__main__":
    main()
