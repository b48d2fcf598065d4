"""Attention heatmaps of an attention seq2seq checkpoint: which source token each output token
attends to, for the questions given (addition or any pair task).

    python scripts/attention_heatmap.py outputs/attention_addition/<run>/best.pt "16+75" "582+84" --out attention.png
"""

import argparse
import sys
from pathlib import Path

from seq2seq import checkpoint as ckpt
from seq2seq.errors import Seq2seqError
from seq2seq.plots import attention_figures, attention_maps
from seq2seq.tasks.codec import codec_from_state


def heatmaps(checkpoint: Path, questions: list[str]):
    """Per question: source tokens as fed to the encoder, output tokens, weights (T, S)."""
    model, saved = ckpt.load_model(checkpoint)
    if not hasattr(model, "attention"):
        raise Seq2seqError(f"{checkpoint}: {type(model).__name__} has no attention (train model=attention_seq2seq)")
    codec = codec_from_state(saved["task"])
    x, lengths = codec.encode(questions)  # (N, S), reversed if the model was trained so
    return attention_maps(model, codec, x, lengths)


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
    titles = [
        f"{q} → {''.join(out).replace('<eos>', '').strip()}"
        for q, (_, out, _) in zip(args.questions, maps, strict=True)
    ]
    fig = attention_figures(maps, titles)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
