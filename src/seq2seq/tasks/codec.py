"""Text <-> ids, rebuilt from a checkpoint's task state (Task.state_dict()) for generation and chat. Each
codec is registered under the `kind` of the state it reads, and declares the state's FIELDS with their types:
what a checkpoint must hold, checked before anything is built (seq2seq.training.checkpoint).

- `FixedWidthCodec` (the chapter's addition format): every question is space-padded to one width,
  so no row is padded and the decoder runs a fixed number of steps.
- `PairCodec` (variable-length pairs): sources are right-padded with <pad> (id 0) and come with their
  lengths; targets are `<bos> tokens <eos>`, and decoding stops at <eos>. `ImageCodec`: PNG files in.
- `WordsCodec` (language models): a vocabulary and its end-of-sentence word.
The first two reverse the source tokens when the model was trained on reversed input (padding stays right).
"""

from typing import ClassVar

import torch

from seq2seq.core import compat
from seq2seq.core.errors import DataError
from seq2seq.core.registry import CODECS, register_codec
from seq2seq.data.addition import START
from seq2seq.data.digit_images import load_png
from seq2seq.data.questions import check_question, check_texts, where
from seq2seq.data.text import BOS, EOS, PAD, TOKENIZERS, UNK, detokenize, tokenize, tokenize_turns
from seq2seq.data.vocab import Vocab


def sample_lines(source: str, target: str, output: str, right: bool, source_mark: str = "S") -> list[str]:
    """The chapter's printout of one validation example: source, target, output marked ☑ or ☒."""
    return [f"{source_mark} {source}", f"T {target}", f"{'☑' if right else '☒'} {output}", "---"]


MAX_WIDTH = 1000  # the widest fixed-width line seq2seq.data.addition reads
MAX_LENGTH = 10_000  # the most tokens a pair task's side may hold (task.max_length): a default decode's length


@register_codec("fixed_width")
class FixedWidthCodec:
    FIELDS: ClassVar[dict] = {"kind": str, "vocab": list[str], "question_width": int, "answer_width": int,
                              "reverse": bool, "number_digits": int, "question_form": str}  # fmt: skip
    eos_id = None
    mode = "char"
    context_turns = 0  # a question is read alone

    def __init__(
        self,
        vocab: list[str],
        question_width: int,
        answer_width: int,
        reverse: bool,
        number_digits: int | None = None,
        question_form: str | None = None,
    ):
        if not (1 <= question_width <= MAX_WIDTH and 2 <= answer_width <= MAX_WIDTH + 1):
            raise ValueError(f"question_width={question_width} and answer_width={answer_width}: must be from 1 and 2 "
                             f"to {MAX_WIDTH} and {MAX_WIDTH + 1}")  # fmt: skip
        if number_digits is not None and not 1 <= number_digits <= MAX_WIDTH:
            raise ValueError(f"number_digits={number_digits}: must be from 1 to {MAX_WIDTH}")
        if not all(len(token) == 1 for token in vocab) or START not in vocab:
            raise ValueError(f"a fixed-width vocabulary is single characters, the start symbol {START!r} among them")
        self.vocab = Vocab(vocab)
        self.width, self.reverse = question_width, reverse
        self.number_digits = number_digits  # the longest number in the training questions (None: unknown)
        # "a+b": every training question was a sum (None: not recorded, as in checkpoints of 0.3, where an
        # addition file's vocabulary says so); "": any text that fits the width and the vocabulary.
        self.question_form = compat.question_form(vocab, question_form)
        self.start_id = self.vocab.stoi[START]
        self.steps = answer_width - 1  # decoder steps: the answer without its start symbol

    @classmethod
    def from_state(cls, state: dict) -> "FixedWidthCodec":
        widths = state["question_width"], state["answer_width"]
        form = state.get("question_form")
        return cls(state["vocab"], *widths, state["reverse"], state.get("number_digits") or None, form)

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, None]:
        """Pad each question as in training (spaces to the question width), reversed if trained so.
        Unknown characters and over-long questions are refused, never cut."""
        check_texts(texts)
        rows = []
        for n, text in enumerate(texts, start=1):
            text = check_question(texts, n, self.width, self.vocab.stoi, self.question_form, self.number_digits)
            rows.append(self.vocab.encode(text.ljust(self.width)))
        x = torch.tensor(rows, dtype=torch.long)  # (N, S)
        return (x.flip(1) if self.reverse else x), None

    def decode(self, ids: list[int]) -> str:
        return self.vocab.decode(ids).rstrip()

    def tokens(self, ids: list[int]) -> list[str]:
        return [self.vocab.itos[i] for i in ids]


@register_codec("token_pairs")
class PairCodec:
    FIELDS: ClassVar[dict] = {"kind": str, "vocab": list[str], "tokenize": str, "lowercase": bool, "reverse": bool,
                              "max_length": int, "context_turns": int}  # fmt: skip

    def __init__(
        self, vocab: list[str], tokenize: str, lowercase: bool, reverse: bool, max_length: int, context_turns: int = 0
    ):
        if tokenize not in TOKENIZERS or not 1 <= max_length <= MAX_LENGTH or not 0 <= context_turns <= 1000:
            raise ValueError(f"tokenize={tokenize!r}, max_length={max_length} are not a pair codec's")
        self.vocab = Vocab(vocab)
        self.context_turns = context_turns  # earlier turns a source holds (0: the message alone)
        self.mode, self.lowercase, self.reverse, self.max_length = tokenize, lowercase, reverse, max_length
        self.pad_id, self.start_id, self.eos_id, self.unk_id = (self.vocab.stoi[t] for t in (PAD, BOS, EOS, UNK))
        self.steps = max_length + 1  # decoder steps: the longest target and its <eos>

    @classmethod
    def from_state(cls, state: dict) -> "PairCodec":
        options = state["tokenize"], state["lowercase"], state["reverse"], state["max_length"]
        return cls(state["vocab"], *options, state.get("context_turns", 0))

    def state_dict(self) -> dict:
        state = {
            "kind": "token_pairs",
            "vocab": self.vocab.itos,
            "tokenize": self.mode,
            "lowercase": self.lowercase,
            "reverse": self.reverse,
            "max_length": self.max_length,
        }
        return {**state, "context_turns": self.context_turns} if self.context_turns else state

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text, self.mode, self.lowercase)

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.vocab.stoi.get(t, self.unk_id) for t in tokens]

    def source_ids(self, tokens: list[str]) -> list[int]:
        ids = self.ids(tokens)
        return ids[::-1] if self.reverse else ids

    def target_ids(self, tokens: list[str]) -> list[int]:
        return [self.start_id, *self.ids(tokens), self.eos_id]

    def pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad id lists with <pad> -> ids (N, longest) and lengths (N,)."""
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)  # (N,)
        x = torch.full((len(rows), int(lengths.max())), self.pad_id, dtype=torch.long)  # (N, S)
        for i, r in enumerate(rows):
            x[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return x, lengths

    def encode(self, texts: list[str], context: list[str] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        """Sources as the model saw them in training; unknown tokens become <unk>, too-long inputs are
        refused, never cut. `context`: the conversation's earlier turns, oldest first (a model trained
        with task.context_turns=k reads the last k of them before each text)."""
        check_texts(texts)
        if context and not self.context_turns:
            raise DataError("this model was trained on single messages (task.context_turns=0): it takes no context")
        turns = list(context)[-self.context_turns :] if self.context_turns else []
        rows = []
        for n, text in enumerate(texts, start=1):
            tokens = self.tokenize(text)
            if turns and tokens:
                tokens = tokenize_turns([*turns, text], self.mode, self.lowercase)
            if not tokens:
                raise DataError(f"{where(texts, n)} has no tokens")
            if len(tokens) > self.max_length:
                raise DataError(
                    f"{where(texts, n)} has {len(tokens)} tokens; this model takes at most {self.max_length}"
                )
            rows.append(self.source_ids(tokens))
        return self.pad(rows)

    def decode(self, ids: list[int]) -> str:
        """Output ids up to the first <eos>, as text."""
        return detokenize(self.tokens(ids), self.mode)

    def tokens(self, ids: list[int]) -> list[str]:
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.start_id):  # never part of an answer: a reply is never "<bos>"
                out.append(self.vocab.itos[i])
        return out


@register_codec("captions")
class ImageCodec(PairCodec):
    """Captioning: the inputs are PNG files (white ink on black, resized to the training images'
    size); the outputs are PairCodec's words."""

    FIELDS: ClassVar[dict] = {**PairCodec.FIELDS, "image_size": list[int]}

    def __init__(self, state: dict):
        super().__init__(state["vocab"], state["tokenize"], state["lowercase"], state["reverse"], state["max_length"])
        if len(state["image_size"]) != 2 or not all(1 <= n <= 4096 for n in state["image_size"]):
            raise ValueError(f"image_size={state['image_size']} is not (height, width)")
        self.height, self.width = state["image_size"]

    @classmethod
    def from_state(cls, state: dict) -> "ImageCodec":
        return cls(state)

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, None]:
        check_texts(texts)
        return torch.stack([load_png(path, self.height, self.width) for path in texts]), None  # (N, 1, H, W)


@register_codec("lm")
class WordsCodec:
    """A language model's words: the vocabulary and the end-of-sentence word that text shows as a line break."""

    FIELDS: ClassVar[dict] = {"kind": str, "vocab": list[str], "eos": str}

    def __init__(self, vocab: list[str], eos: str):
        self.vocab, self.eos = Vocab(vocab), eos

    @classmethod
    def from_state(cls, state: dict) -> "WordsCodec":
        return cls(state["vocab"], state["eos"])

    def state_dict(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab.itos, "eos": self.eos}


def codec_from_state(state: dict):
    """The codec of a checkpoint's task state (its fields checked: seq2seq.training.checkpoint)."""
    if state.get("kind") not in CODECS:
        raise DataError(f"this checkpoint's task state ({str(state.get('kind'))[:40]!r}) is of no kind known here")
    return CODECS[state["kind"]].from_state(state)
