"""Attention heatmaps of an attention seq2seq checkpoint: which question character each answer
character attends to, for the questions given.

    python scripts/attention_heatmap.py outputs/attention_addition/<run>/best.pt "16+75" "582+84" --out attention.png
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from seq2seq import checkpoint as ckpt
from seq2seq.data.addition import START
from seq2seq.data.vocab import Vocab
from seq2seq.errors import Seq2seqError
from seq2seq.generate import encode_questions


def heatmaps(checkpoint: Path, questions: list[str]):
    """Per question: source characters as fed to the encoder, answer characters, weights (T, S)."""
    model, saved = ckpt.load_model(checkpoint)
    if not hasattr(model, "attention"):
        raise Seq2seqError(f"{checkpoint}: {type(model).__name__} has no attention (train model=attention_seq2seq)")
    task = saved["task"]
    vocab = Vocab(task["vocab"])
    x = encode_questions(questions, task)  # (N, S), reversed if the model was trained so
    pred = model.generate(x, vocab.stoi[START], task["answer_width"] - 1)  # (N, T)
    tgt_in = torch.cat([torch.full((len(x), 1), vocab.stoi[START]), pred[:, :-1]], dim=1)  # (N, T)
    weights = model.attention(x, tgt_in)  # (N, T, S)
    return [
        (list(vocab.decode(x[i].tolist())), list(vocab.decode(pred[i].tolist())), weights[i])
        for i in range(len(questions))
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("questions", nargs="+")
    parser.add_argument("--out", type=Path, default=Path("attention.png"))
    args = parser.parse_args(argv)
    try:
        maps = heatmaps(args.checkpoint, args.questions)
    except Seq2seqError as e:
        sys.exit(f"attention_heatmap: {e}")
    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.2), squeeze=False)
    for ax, question, (source, answer, weights) in zip(axes[0], args.questions, maps, strict=True):
        ax.imshow(weights.numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks(range(len(source)), [c if c != " " else "␣" for c in source])
        ax.set_yticks(range(len(answer)), [c if c != " " else "␣" for c in answer])
        ax.set_title(f"{question} → {''.join(answer).strip()}")
        ax.set_xlabel("question (as fed to the encoder)")
        ax.set_ylabel("answer")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
