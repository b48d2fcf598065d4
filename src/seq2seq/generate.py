"""Use a trained checkpoint: `python -m seq2seq.generate checkpoint=<run>/best.pt ...`.

Seq2seq checkpoints answer a `question=...`, or every line of `file=...` (`file=-`: standard input),
in one batch. Language-model checkpoints sample text after a `prompt=...`.
"""

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from seq2seq import checkpoint as ckpt
from seq2seq.data.addition import START
from seq2seq.data.vocab import Vocab
from seq2seq.errors import DataError, Seq2seqError


def encode_questions(questions: list[str], task: dict) -> torch.Tensor:
    """Pad each question as in training (spaces to the question width) and reverse it if the model
    was trained reversed. Unknown characters and over-long questions are refused, never cut."""
    vocab, width = Vocab(task["vocab"]), task["question_width"]
    if not questions:
        raise DataError("no questions given")
    rows = []
    for n, question in enumerate(questions, start=1):
        where = f"question {n} ({question!r})" if len(questions) > 1 else f"question {question!r}"
        if not question.strip():
            raise DataError(f"{where} is empty")
        if len(question) > width:
            raise DataError(f"{where} has {len(question)} characters; this model takes at most {width}")
        unknown = sorted(set(question) - set(vocab.itos))
        if unknown:
            raise DataError(f"{where}: characters {unknown} are not in the model's vocabulary {vocab.itos}")
        rows.append(vocab.encode(question.ljust(width)))
    x = torch.tensor(rows, dtype=torch.long)  # (N, S)
    return x.flip(1) if task["reverse"] else x


def answer(model, task: dict, questions: list[str], beam_size: int = 1, n_best: int = 1, length_penalty=0.0):
    """Answers for a batch of questions, padding stripped: greedy, or beam search when beam_size > 1
    (then the n_best answers of a question are joined by tabs, best first)."""
    if beam_size < 1 or not 1 <= n_best <= beam_size:
        raise DataError(f"need beam_size >= 1 and 1 <= n_best <= beam_size, got {beam_size} and {n_best}")
    vocab = Vocab(task["vocab"])
    x = encode_questions(questions, task)
    length = task["answer_width"] - 1
    if beam_size == 1:
        pred = model.generate(x, vocab.stoi[START], length)[:, None]  # (N, 1, A-1)
    else:
        options = {"beam_size": beam_size, "n_best": n_best, "length_penalty": length_penalty}
        pred, _ = model.beam_search(x, vocab.stoi[START], length, **options)  # (N, n_best, A-1)
    return ["\t".join(vocab.decode(seq).rstrip() for seq in row) for row in pred.tolist()]


def sample(model, task: dict, cfg) -> list[str]:
    """Text samples from a language model: the prompt, then the sampled words."""
    checks = {
        "num_words": cfg.num_words >= 1,
        "num_samples": cfg.num_samples >= 1,
        "temperature": cfg.temperature > 0,
        "top_k": cfg.top_k is None or cfg.top_k >= 1,
        "top_p": cfg.top_p is None or 0 < cfg.top_p <= 1,
    }
    for key, ok in checks.items():
        if not ok:
            raise DataError(f"{key}={cfg[key]!r} is out of range")
    vocab = Vocab(task["vocab"])
    words = str(cfg.prompt).split()
    if not words:
        raise DataError("prompt is empty: give a start word, e.g. prompt=you")
    unknown = [w for w in words if w not in vocab]
    if unknown:
        raise DataError(f"prompt words {unknown} are not in the model's {len(vocab)}-word vocabulary")
    skip = [w for w in cfg.skip if w in vocab]
    generator = torch.Generator().manual_seed(cfg.seed)
    ids = model.generate(
        torch.tensor(vocab.encode(words)),
        num_words=cfg.num_words,
        num_samples=cfg.num_samples,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        greedy=cfg.greedy,
        skip_ids=vocab.encode(skip),
        generator=generator,
    )
    eos = task.get("eos", "<eos>")
    texts = []
    for row in ids.tolist():
        text = " ".join(words + [vocab.itos[i] for i in row])
        texts.append(text.replace(f" {eos}", ".\n").replace("\n ", "\n").strip())
    return texts


def read_lines(path: str) -> list[str]:
    if path == "-":
        text = sys.stdin.read()
    else:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"{p}: no such file")
        text = p.read_text(encoding="utf-8")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def run(cfg: DictConfig) -> list[str]:
    torch.manual_seed(cfg.seed)
    path = Path(cfg.checkpoint)
    if path.is_dir():
        path = path / "best.pt"
    model, checkpoint = ckpt.load_model(path)
    task = checkpoint["task"]
    if task["kind"] == "lm":
        return sample(model, task, cfg)
    if cfg.question is None and cfg.file is None:
        raise DataError("give question=... or file=... (file=- reads standard input)")
    decode = dict(cfg.decode)
    if cfg.question is not None:
        return answer(model, task, [str(cfg.question)], **decode)
    questions = read_lines(cfg.file)
    return [f"{q}\t{a}" for q, a in zip(questions, answer(model, task, questions, **decode), strict=True)]


@hydra.main(version_base="1.3", config_path="../../configs", config_name="generate")
def main(cfg: DictConfig) -> None:
    try:
        outputs = run(cfg)
    except Seq2seqError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    sep = "\n\n" if len(outputs) > 1 and "\t" not in outputs[0] else "\n"
    print(sep.join(outputs))


if __name__ == "__main__":
    main()
