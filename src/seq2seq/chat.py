"""Talk to a trained seq2seq model: `python -m seq2seq.chat checkpoint=<run>/best.pt`.

Each line read from standard input is a message; the reply is printed on its own line. At a
terminal it shows a prompt; piped input (`echo hi | python -m seq2seq.chat ...`) gets one reply per
line and nothing else, so the loop can be scripted and tested.
"""

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from seq2seq import checkpoint as ckpt
from seq2seq.errors import DataError, Seq2seqError
from seq2seq.tasks.codec import codec_from_state

STRATEGIES = ("greedy", "beam", "sample")


class Chat:
    """A checkpoint's model and codec, and the decoding options of `configs/chat.yaml`."""

    def __init__(self, cfg: DictConfig):
        path = Path(cfg.checkpoint)
        self.model, saved = ckpt.load_model(path / "best.pt" if path.is_dir() else path)
        self.codec = codec_from_state(saved["task"])
        self.options = cfg.decode
        if self.options.strategy not in STRATEGIES:
            raise DataError(f"decode.strategy={self.options.strategy!r}: must be one of {', '.join(STRATEGIES)}")
        self.generator = torch.Generator().manual_seed(cfg.seed)
        # <unk> says nothing: with decode.skip_unk no strategy picks it.
        unk = getattr(self.codec, "unk_id", None)
        self.skip_ids = [unk] if unk is not None and self.options.skip_unk else []

    def reply(self, message: str) -> str:
        o, codec = self.options, self.codec
        x, lengths = codec.encode([message])  # (1, S), (1,)
        if o.strategy == "beam":
            options = {"beam_size": o.beam_size, "length_penalty": o.length_penalty, "eos_id": codec.eos_id}
            options["skip_ids"] = self.skip_ids
            ids, _ = self.model.beam_search(x, codec.start_id, codec.steps, lengths=lengths, **options)  # (1, 1, L)
            return codec.decode(ids[0, 0].tolist())
        if o.strategy == "greedy":
            sampling = {"greedy": True}
        else:
            sampling = {"temperature": o.temperature, "top_k": o.top_k, "top_p": o.top_p, "generator": self.generator}
        ids = self.model.generate(x, codec.start_id, codec.steps, lengths=lengths, skip_ids=self.skip_ids, **sampling)
        return codec.decode(ids[0].tolist())


def converse(chat: Chat, lines, interactive: bool) -> None:
    """Answer each non-empty line; a message the model cannot take gets an error on stderr, and the
    conversation goes on."""
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = lines.readline()
        if not line:
            break
        message = line.strip()
        if not message:
            continue
        try:
            reply = chat.reply(message)
        except DataError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            continue
        print(f"bot> {reply}" if interactive else reply, flush=True)


@hydra.main(version_base="1.3", config_path="../../configs", config_name="chat")
def main(cfg: DictConfig) -> None:
    try:
        chat = Chat(cfg)
    except Seq2seqError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {cfg.checkpoint} ({cfg.decode.strategy}); Ctrl-D to quit")
    converse(chat, sys.stdin, interactive)


if __name__ == "__main__":
    main()
