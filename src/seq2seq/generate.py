"""Use a trained checkpoint: `python -m seq2seq.generate checkpoint=<run>/best.pt ...`.

Seq2seq checkpoints answer a `question=...`, or every line of `file=...` (`file=-`: standard input),
in one batch; captioning checkpoints take PNG file names the same way. `index=N` answers validation
example N of the checkpoint's pair task. Language-model checkpoints sample text after a `prompt=...`.
"""

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from seq2seq import checkpoint as ckpt
from seq2seq.config import make
from seq2seq.data import text
from seq2seq.data.vocab import Vocab
from seq2seq.errors import DataError, Seq2seqError
from seq2seq.tasks.codec import codec_from_state


def answer(model, codec, questions: list[str], beam_size=1, n_best=1, length_penalty=0.0, max_length=None):
    """Answers for a batch of questions (see seq2seq.tasks.codec for how they are encoded): greedy, or
    beam search when beam_size > 1 (then the n_best answers of a question are joined by tabs, best first).
    max_length: decoder steps (default: the longest answer seen in training, and its <eos>)."""
    if beam_size < 1 or not 1 <= n_best <= beam_size:
        raise DataError(f"need beam_size >= 1 and 1 <= n_best <= beam_size, got {beam_size} and {n_best}")
    if max_length is not None and max_length < 1:
        raise DataError(f"decode.max_length={max_length}: must be at least 1")
    steps = max_length or codec.steps
    x, lengths = codec.encode(questions)  # (N, S), (N,) or None
    if beam_size == 1:
        pred = model.generate(x, codec.start_id, steps, lengths=lengths)[:, None]  # (N, 1, L)
    else:
        options = {"beam_size": beam_size, "n_best": n_best, "length_penalty": length_penalty, "eos_id": codec.eos_id}
        pred, _ = model.beam_search(x, codec.start_id, steps, lengths=lengths, **options)  # (N, n_best, L)
    return ["\t".join(codec.decode(seq) for seq in row) for row in pred.tolist()]


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


def validation_examples(checkpoint: dict, indices: list[int]):
    """The checkpoint's pair task, rebuilt from its saved config (same seed, same data), and the
    batch (src, lengths, tgt) of the given validation examples."""
    task = make(OmegaConf.create(checkpoint["config"]["task"]))
    if not hasattr(task, "batch"):
        raise DataError("validation examples by index need a pair task (TSV pairs, chitchat, programs, captions)")
    n = len(task.tokenized["val"])
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise DataError(f"index {bad[0]}: the validation set has examples 0..{n - 1}")
    return task, task.batch("val", indices)


def validation_answer(model, checkpoint: dict, index: int) -> str:
    """Greedy output for validation example `index`, then a tab and the reference."""
    task, (src, lengths, _) = validation_examples(checkpoint, [index])
    ids = model.generate(src, task.codec.start_id, task.codec.steps, lengths=lengths)[0].tolist()
    reference = task.tokenized["val"][index][1]
    return f"{task.codec.decode(ids)}\t{text.detokenize(reference, task.codec.mode)}"


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
    if cfg.index is not None:
        return [validation_answer(model, checkpoint, cfg.index)]
    if cfg.question is None and cfg.file is None:
        raise DataError("give question=... or file=... (file=- reads standard input), or index=...")
    decode = dict(cfg.decode)
    codec = codec_from_state(task)
    if cfg.question is not None:
        return answer(model, codec, [str(cfg.question)], **decode)
    questions = read_lines(cfg.file)
    return [f"{q}\t{a}" for q, a in zip(questions, answer(model, codec, questions, **decode), strict=True)]


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
