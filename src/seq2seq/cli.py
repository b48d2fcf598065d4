"""What the command lines `seq2seq.generate` and `seq2seq.chat` share: option translation, the
decoding options of a config, and user errors reported in one line."""

import sys
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

import seq2seq.config  # noqa: F401  (registers the config schemas generate and chat compose)
from seq2seq import api, decoding
from seq2seq.errors import Seq2seqError

# Words after `--` on the command line: one input given as plain text, so `-- hi !` or
# `-- september 27, 1994` need no quoting for Hydra's override grammar. None when there is no `--`.
free_text: str | None = None


def with_legacy_options(hydra_main: Callable[[], None]) -> Callable[[], None]:
    """An entry point that takes the words after `--` as free text and rewrites the old option names in
    sys.argv (with a note) before Hydra reads it."""

    def main() -> None:
        global free_text
        args = sys.argv[1:]
        if "--" in args:
            cut = args.index("--")
            args, free_text = args[:cut], " ".join(args[cut + 1 :])
        sys.argv[1:], notes = decoding.translate_legacy(args)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        hydra_main()

    return main


def decode_options(cfg: DictConfig) -> dict:
    return {name: OmegaConf.to_object(cfg[name]) if name == "skip" and cfg[name] is not None else cfg[name]
            for name in decoding.NAMES}  # fmt: skip


def load(cfg: DictConfig) -> api.TrainedModel:
    return api.load(cfg.checkpoint, device=None if cfg.device == "auto" else cfg.device)


def fail(error: Seq2seqError) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)
