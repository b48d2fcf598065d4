"""Use a trained checkpoint: `python -m seq2seq.generate checkpoint=<run> ...` (or `seq2seq-generate`).

Seq2seq checkpoints answer a `question=...`, or every line of `file=...` (`file=-`: standard input),
in one batch; captioning checkpoints take PNG file names the same way. `index=N` answers validation
example N of the checkpoint's pair task. Language-model checkpoints continue a `prompt=...` (or each
line of `file=...`). Decoding options: seq2seq.decoding, shared with seq2seq.chat and the Python API.
"""

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seq2seq import cli
from seq2seq.data.text import read_utf8
from seq2seq.errors import DataError, Seq2seqError

SEQ2SEQ_INPUTS, LM_INPUTS = ("question", "file", "index"), ("prompt", "file")


def read_lines(path: str) -> list[str]:
    """Non-empty lines of a UTF-8 file, or of standard input for "-"."""
    p = Path(path)
    if path != "-" and not p.is_file():
        raise DataError(f"{p}: no such file")
    raw = sys.stdin.buffer.read() if path == "-" else p.read_bytes()
    text = read_utf8(raw, "standard input" if path == "-" else str(p))
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def run(cfg: DictConfig) -> list[str]:
    """The lines to print."""
    cli.check_keys(cfg, cli.GenerateConfig, "seq2seq.generate")
    model = cli.load(cfg)
    options = cli.decode_options(cfg)
    allowed = LM_INPUTS if model.family == "lm" else SEQ2SEQ_INPUTS
    given = [k for k in ("question", "file", "index", "prompt") if cfg[k] is not None]
    if cli.free_text is not None:  # `-- words`: the question, or a language model's prompt
        if given:
            raise DataError(f"give the input once: after -- or as {given[0]}=, not both")
        cfg = OmegaConf.merge(cfg, {"prompt" if model.family == "lm" else "question": cli.free_text})
        given = ["prompt" if model.family == "lm" else "question"]
    wrong = [k for k in given if k not in allowed]
    if wrong:
        kind = "a language model" if model.family == "lm" else "a seq2seq model"
        raise DataError(f"{wrong[0]}= does not apply to {kind}: give {' or '.join(f'{k}=' for k in allowed)}")
    if len(given) > 1:
        raise DataError(f"give one of {', '.join(f'{k}=' for k in allowed)}, not {' and '.join(given)}")
    if cfg.index is not None:
        if any(v is not None for v in options.values()):
            raise DataError("index= shows the greedy output used in validation: it takes no decoding options")
        return ["\t".join(model.validation_answer(cfg.index))]
    if model.family == "lm":
        prompts = read_lines(cfg.file) if cfg.file else [str("you" if cfg.prompt is None else cfg.prompt)]
        samples = model.generate(prompts, **options)
        return ["\n\n".join(s) if isinstance(s, list) else s for s in samples]
    if cfg.question is None and cfg.file is None:
        raise DataError("give question=... or file=... (file=- reads standard input), or index=...")
    questions = [str(cfg.question)] if cfg.question is not None else read_lines(cfg.file)
    answers = ["\t".join(a) if isinstance(a, list) else a for a in model.generate(questions, **options)]
    if cfg.question is not None:
        return answers
    return [f"{q}\t{a}" for q, a in zip(questions, answers, strict=True)]


def run_command(cfg: DictConfig) -> None:
    try:
        outputs = run(cfg)
    except Seq2seqError as e:
        cli.fail(e)
    lm = "\t" not in outputs[0] and cfg.question is None and cfg.index is None
    print(("\n\n" if lm and len(outputs) > 1 else "\n").join(outputs))


main = cli.command_line(
    "seq2seq.generate", cli.GenerateConfig, "checkpoint=latest question=16+75", input_key="question"
)(run_command)

if __name__ == "__main__":
    main()
