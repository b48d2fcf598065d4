"""Attention heatmaps of an attention seq2seq checkpoint: which source token each output token
attends to, for the questions given (addition or any pair task) or chosen validation examples.

    python scripts/attention_heatmap.py outputs/attention_addition/<run>/best.pt "16+75" "582+84" --out attention.png
    python scripts/attention_heatmap.py outputs/chitchat/<run>/best.pt --val-index 0 3 --out attention.png
"""

import argparse
import sys
from pathlib import Path

import seq2seq
from seq2seq.core.errors import Seq2seqError
from seq2seq.data import text
from seq2seq.tasks.plots import attention_figures, attention_maps


def heatmaps(checkpoint: Path, questions: list[str], val_index: list[int]):
    """Per question or validation example: source tokens as fed to the encoder, output tokens, and
    weights (T, S); with titles."""
    trained = seq2seq.load(checkpoint, device="cpu")
    model, codec = trained.module, trained.codec
    if not model.has_attention:
        raise Seq2seqError(f"{checkpoint}: this model has no attention (train with model.decoder=attention)")
    if val_index:
        task, (x, lengths, _) = trained.validation_batch(val_index)
        questions = [text.detokenize(task.tokenized["val"][i][0], codec.mode) for i in val_index]
    else:
        x, lengths = codec.encode(questions)  # (N, S), reversed if the model was trained so
    maps = attention_maps(model, codec, x, lengths)
    titles = [
        f"{q} → {text.detokenize([t for t in out if t != '<eos>'], codec.mode).strip()}"
        for q, (_, out, _) in zip(questions, maps, strict=True)
    ]
    return maps, titles


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("questions", nargs="*", help="inputs as you would give them to seq2seq.generate")
    parser.add_argument("--val-index", type=int, nargs="+", default=[], help="validation examples of a pair task")
    parser.add_argument("--out", type=Path, default=Path("attention.png"))
    args = parser.parse_args(argv)
    if bool(args.questions) == bool(args.val_index):
        parser.error("give either questions or --val-index")
    try:
        maps, titles = heatmaps(args.checkpoint, args.questions, args.val_index)
    except Seq2seqError as e:
        sys.exit(f"attention_heatmap: {e}")
    fig = attention_figures(maps, titles)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
