"""Every command of README.md and docs/ works as written, so a renamed option breaks a test, not a reader.

- Training commands (`python -m seq2seq.train ...`, `seq2seq-train ...`) are composed with their
  overrides (a sweep's first value of each list) and checked as the command line checks them before
  anything is written (unknown keys, values, families).
- `seq2seq.generate` and `seq2seq.chat` commands run, in this process, against small checkpoints trained
  here (addition, a language model, word pairs, captions) laid out as `outputs/<experiment>/<run>`;
  placeholders such as `<run>` name those runs, and piped or redirected input is given as stdin.
- Where a page shows a `$ command` followed by an `error: ...` line, the command must fail with it.
- `seq2seq.bench` commands are parsed (the benchmark itself runs in CI's quick mode); the data
  generators run; Python blocks run.
"""

import io
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from seq2seq.cli import common as cli
from seq2seq.cli.train import without_hydra
from seq2seq.core.device import bf16_missing
from seq2seq.core.errors import Seq2seqError
from seq2seq.training.config import CONFIG_DIR
from seq2seq.training.config import check as check_config
from seq2seq.training.loop import train

from .helpers import REPO, compose_train

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A command line: optional VAR=value words or a `printf ... |` before the command itself.
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+\s+)*(?:printf .*\|\s*)?(?:python -m seq2seq\.[\w.]+|seq2seq-\w+)\b")
# <run>, <file.tsv>, <seed>: the docs' placeholders (not the special tokens <unk>, <eos>, ... of skip lists).
PLACEHOLDER = re.compile(r"<(?!(?:unk|eos|bos|pad|sep)>)[^>\s][^>]*>")
CONSOLE = {"seq2seq-train": "seq2seq.train", "seq2seq-generate": "seq2seq.generate", "seq2seq-chat": "seq2seq.chat",
           "seq2seq-export": "seq2seq.export", "seq2seq-explore": "seq2seq.explore", "seq2seq-evaluate":
           "seq2seq.evaluate", "seq2seq-plot": "seq2seq.plot", "seq2seq-runs": "seq2seq.runs"}  # fmt: skip


WALKTHROUGH = "<!-- walkthrough: run by tests/test_layout.py with the files above added to a copy of the package -->"


def commands(page: Path) -> list[tuple[str, str | None]]:
    """(command line, the error line the page shows after it, if any) in page order: lines of code blocks
    (a `$ ` prompt or none; `\\` continuations joined) and inline code spans of the prose."""
    text = page.read_text()
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        walkthrough = (
            text[: match.start()]
            .rstrip()
            .endswith(
                "<!-- walkthrough: run by tests/test_layout.py with the files above added to a copy of the package -->"
            )
        )
        if match.group(1) == "python" or walkthrough:  # a walkthrough's files are not the package's
            continue
        lines = match.group(2).replace("\\\n", " ").splitlines()
        for i, line in enumerate(lines):
            line = line.strip().removeprefix("$ ")
            if not COMMAND.match(line):
                continue
            after = lines[i + 1].strip() if i + 1 < len(lines) else ""
            found.append((match.start(), line, after if after.startswith("error:") else None))
    prose = re.sub(r"^```.*?^```", lambda m: " " * len(m.group(0)), text, flags=re.S | re.M)
    for match in re.finditer(r"`([^`]*?(?:python -m seq2seq\.|seq2seq-)[^`]*)`", prose):
        span = " ".join(match.group(1).split())  # a span may wrap across lines
        if COMMAND.match(span):
            found.append((match.start(), span, None))
    return [(line, error) for _, line, error in sorted(found)]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working directory whose outputs/ holds one small finished run of each kind of model."""
    root = tmp_path_factory.mktemp("docs")
    data = root / "data"
    data.mkdir()
    words = ["you", "the", "meaning", "of", "life", "is", "a", "cat", "sat", "on", "mat", "N", "<unk>", "$"]
    for split in ("train", "valid", "test"):
        lines = [" " + " ".join(words[(s + k) % len(words)] for k in range(7)) + " " for s in range(40)]
        (data / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    pairs = ["hi !\thello !", "how are you ?\ti am fine .", "what is your name ?\ti am a bot ."] * 20
    (data / "pairs.tsv").write_text("\n".join(pairs) + "\n")
    quick = ["trainer.device=cpu", "trainer.progress=false", "trainer.max_epochs=1"]
    runs = {
        "rnnlm_ptb": ["experiment=rnnlm_ptb", f"task.data_dir={data}", "task.batch_size=4", "task.time_size=5",
                      "task.eval_batch_size=2", "model.wordvec_size=8", "model.hidden_size=8"],
        "chitchat": ["task=pairs", f"task.train={data / 'pairs.tsv'}", "task.tokenize=wordpunct",
                     "model.decoder=attention", "model.wordvec_size=8", "model.hidden_size=8", "task.batch_size=8"],
        "captions": ["experiment=captions", "task.num_train=64", "task.num_val=16", "task.batch_size=16",
                     "model.wordvec_size=8", "model.hidden_size=8"],
        # last, so that checkpoint=latest means it
        "peeky_addition": ["experiment=peeky_addition", "task.num_examples=400", "task.batch_size=32",
                           "model.wordvec_size=8", "model.hidden_size=16"],
    }  # fmt: skip
    for name, overrides in runs.items():
        train(compose_train(root / "outputs" / name / "2026-01-01_00-00-00", *overrides, *quick))
    return root


def checkpoint_for(value: str, root: Path) -> str:
    """A checkpoint path of the docs, as one of the sandbox's runs: `latest` and existing paths stay."""
    if value == "latest" or (root / value).exists():
        return value
    for name in ("rnnlm_ptb", "chitchat", "captions"):
        if name.split("_")[0] in value or (name == "rnnlm_ptb" and "ptb" in value):
            return f"outputs/{name}"
    return "outputs/peeky_addition"


def shell_parts(line: str, root: Path) -> tuple[list[str], str | None]:
    """The words of a documented command and its standard input (a `printf '...' |` or a `< file`)."""
    stdin = None
    if line.startswith("printf ") and "|" in line:
        printed, line = line.split("|", 1)
        stdin = shlex.split(printed)[1].encode().decode("unicode_escape")
    line = PLACEHOLDER.sub("0", line.replace("/tmp/", f"{root}/tmp/"))
    words = shlex.split(line, comments=True)
    if "<" in words:
        at = words.index("<")
        stdin = (REPO / words[at + 1]).read_text()
        words = words[:at] + words[at + 2 :]
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=value before the command
        words = words[1:]
    if words[0] in CONSOLE:
        return [CONSOLE[words[0]], *words[1:]], stdin
    assert words[:2] == ["python", "-m"], line
    return words[2:], stdin


def first_of_sweep(arg: str) -> str:
    key, eq, value = arg.partition("=")
    if eq and "," in value and not re.search(r"[\[\]\"'(]", value):
        return f"{key}={value.split(',')[0]}"
    return arg


def check_train(args: list[str]) -> None:
    """The training command's config, as the command line checks it before anything is written."""
    sweep = bool({"-m", "--multirun"} & set(args))
    overrides = [first_of_sweep(a) if sweep else a for a in args if not a.startswith("-") and a != "job"]
    if {"--help", "-h"} & set(args):
        assert cli.render_help("train", overrides)
        return
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    if cfg.trainer.precision == "bf16" and bf16_missing("cpu"):  # refused here, as it must be
        with pytest.raises(Seq2seqError, match=r"^trainer\.precision=bf16: "):
            check_config(without_hydra(cfg))
        return
    check_config(without_hydra(cfg))


def run_in_process(module: str, args: list[str], stdin: str | None, capsys) -> tuple[int, str, str]:
    """`python -m module args` in this process: its exit code, stdout and stderr."""
    import importlib

    found = importlib.import_module(module)
    main = found.main if hasattr(found, "main") else importlib.import_module(f"{module}.__main__").main  # a package
    saved = sys.argv, sys.stdin
    sys.argv = [module, *args]
    sys.stdin = io.TextIOWrapper(io.BytesIO((stdin or "").encode()))
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.stdin = saved
    out = capsys.readouterr()
    return code, out.out, out.err


def run_command(line: str, error: str | None, root: Path, capsys) -> None:
    (module, *args), stdin = shell_parts(line, root)
    if module == "seq2seq.train":
        if error:
            with pytest.raises(Seq2seqError) as e:
                check_train(args)
            assert f"error: {e.value}" == error, line
        else:
            check_train(args)
        return
    if module == "seq2seq.bench":
        from seq2seq.cli.bench import build_parser

        build_parser().parse_args(args)
        return
    args = [
        f"checkpoint={checkpoint_for(a.split('=', 1)[1], root)}" if a.startswith("checkpoint=") else a
        for a in args
        if not a.startswith("push=")
    ]  # fmt: skip  (uploads: tests/test_sharing.py, offline)
    if "question=digits.png" in args:  # a PNG of the captioning model's kind, in the working directory
        from seq2seq.data import digit_images

        digit_images.main([str(root / "pngs"), "--num", "1", "--seed", "0"])
        (root / "digits.png").write_bytes(next((root / "pngs").glob("*.png")).read_bytes())
        capsys.readouterr()
    if module in ("seq2seq.plot", "seq2seq.runs"):  # a documented run or sweep folder: the sandbox's outputs/
        valued = {"--out", "--tag", "--x", "--title", "--label", "--metric", "--sort"}
        args = [a if a.startswith("-") or (i and args[i - 1] in valued) or (root / a).exists() else "outputs"
                for i, a in enumerate(args)]  # fmt: skip
    if module == "seq2seq.explore" and not error:  # it would serve until stopped: its config composed instead
        args = [*args, "--cfg", "job"]  # (serving the page: tests/test_explore*.py)
    if module == "seq2seq.chat" and stdin is None:  # at a terminal a person would type a message
        stdin = "hi !\n"
    code, out, err = run_in_process(module, args, stdin, capsys)
    if error:
        assert code == 2 and error in err.splitlines(), (line, err)
    else:
        assert code == 0, (line, err[-2000:])
        empty = {"--help", "-h"} & set(args) or module.startswith("seq2seq.data")  # (maybe an empty answer)
        empty = empty or (module == "seq2seq.plot" and "--table" not in args)  # a figure, said on stderr
        assert out or empty, line


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_of_the_page_works(page, sandbox, capsys, monkeypatch):
    monkeypatch.chdir(sandbox)
    (sandbox / "tmp").mkdir(exist_ok=True)
    for line, error in commands(page):
        run_command(line, error, sandbox, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_python_block_of_the_page_runs(page, sandbox, monkeypatch):
    monkeypatch.chdir(sandbox)
    for block in re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M):
        code = re.sub(r'"(outputs/[^"]*)"', lambda m: repr(checkpoint_for(m.group(1), sandbox)), block)
        exec(compile(code, f"{page.name} python block", "exec"), {"__name__": "docs"})


def test_the_pages_have_commands_and_the_extractor_finds_them():
    """The extraction itself: a prompt, a continuation, an inline span and an error line."""
    page = REPO / "README.md"
    found = commands(page)
    assert ("python -m seq2seq.train experiment=peeky_addition +trainer.epochs=3",
            "error: trainer.epochs: unknown key; did you mean trainer.max_epochs?") in found  # fmt: skip
    assert sum(len(commands(p)) for p in PAGES) > 40
    assert os.path.basename(str(page)) == "README.md"
