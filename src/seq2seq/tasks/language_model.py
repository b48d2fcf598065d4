"""Word-level language modelling on Penn Treebank with truncated backpropagation through time."""

import math
from pathlib import Path
from typing import ClassVar

import torch

from seq2seq.core.checks import POSITIVE, SEED
from seq2seq.core.errors import DataError
from seq2seq.core.registry import register_task
from seq2seq.data.ptb import EOS, load_ptb, read_stream
from seq2seq.models import recurrent
from seq2seq.tasks.codec import WordsCodec


def batchify(stream: list[int], batch_size: int) -> torch.Tensor:
    """Cut the token stream into batch_size parallel rows (B, L), dropping the < B leftover tokens.

    Row i holds the i-th contiguous chunk of the stream, so reading the columns left to right in
    windows continues every row exactly where its previous window stopped:

        stream a b c d e f g h i j k l   B=3  ->  row 0: a b c d
                                                  row 1: e f g h
                                                  row 2: i j k l
    """
    data = torch.tensor(stream, dtype=torch.long)
    length = len(data) // batch_size
    return data[: length * batch_size].view(batch_size, length)  # (B, L)


def windows(data: torch.Tensor, time_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input, target) windows of time_size columns; the target is the input shifted by one word."""
    length = data.shape[1] - 1  # the last column is only ever a target
    return [
        (data[:, i : min(i + time_size, length)], data[:, i + 1 : i + 1 + time_size])
        for i in range(0, length, time_size)
    ]


@register_task("language_model")
class LanguageModelTask:
    family = "lm"
    monitor = "val/ppl"
    mode = "min"
    final_splits = ("test",)
    CODEC = WordsCodec
    DATA_KEYS = ("data_dir",)
    REPORT_OPTIONS: tuple[str, ...] = ()
    EXTRAS: tuple[str, ...] = ()
    CHECKS: ClassVar[dict] = {
        "batch_size": POSITIVE,
        "time_size": POSITIVE,
        "eval_batch_size": POSITIVE,
        "eval_limit": POSITIVE,
        "seed": SEED,
    }

    def __init__(
        self,
        data_dir: str,  # folder with ptb.{train,valid,test}.txt
        batch_size: int = 20,  # parallel rows of the training stream
        time_size: int = 35,  # window length of truncated backpropagation through time
        eval_batch_size: int = 10,  # parallel rows of the validation and test streams
        download: bool = True,  # fetch missing files (checksums verified); offline this fails with a clear message
        eval_limit: int | None = None,  # evaluate on about the first eval_limit tokens of val and test only
        seed: int = 0,  # unused: the stream is read in order (kept so every task takes the run's seed)
    ):
        self.vocab, streams = load_ptb(data_dir, download_missing=download)
        self.time_size, self.eval_limit = time_size, eval_limit
        self.train_data = batchify(streams["train"], batch_size)  # (B, L)
        self.eval_data = {
            "val": batchify(streams["valid"], eval_batch_size),
            "test": batchify(streams["test"], eval_batch_size),
        }
        self.streams = {"val": streams["valid"], "test": streams["test"]}  # in order, for per-sentence losses
        self.num_tokens = {"train": len(streams["train"]), "val": len(streams["valid"]), "test": len(streams["test"])}
        for split, file, rows in (
            ("train", "train", batch_size),
            ("val", "valid", eval_batch_size),
            ("test", "test", eval_batch_size),
        ):
            if self.num_tokens[split] < 2 * rows:  # each row needs an input and its next word
                raise DataError(
                    f"{Path(data_dir) / f'ptb.{file}.txt'}: {self.num_tokens[split]} tokens, too few for "
                    f"{rows} rows of at least 2 tokens (lower the batch size or use a larger file)"
                )

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def to(self, device: torch.device) -> "LanguageModelTask":
        self.train_data = self.train_data.to(device)
        self.eval_data = {split: data.to(device) for split, data in self.eval_data.items()}
        return self

    def train_batches(self, epoch: int):
        # The stream is read in order; the LSTM state starts from zero at every epoch.
        return windows(self.train_data, self.time_size)

    def training_step(self, model, batch, carry=None):
        x, y = batch  # (B, T), (B, T)
        return model(x, recurrent.detach(carry), targets=y)  # the mean loss, the new state (truncated BPTT)

    def carry_shapes(self, model) -> list[tuple[int, ...]]:
        """The model's state carried between training windows (its cell's: an LSTM's h and c, (L, B, H) each)."""
        return model.carry_shapes(self.train_data.shape[0])

    def train_metrics(self, mean_loss: float) -> dict[str, float]:
        return {"train/ppl": math.exp(mean_loss)}

    @torch.no_grad()
    def evaluate(self, model, split: str = "val"):
        """Perplexity over the whole split (or its first eval_limit tokens), read in windows with the state
        carried, as in training."""
        data = self.eval_data[split]  # (B, L)
        if self.eval_limit is not None:  # about eval_limit target tokens: whole columns, plus the last target
            data = data[:, : max(2, -(-self.eval_limit // data.shape[0]) + 1)]
        total, count, state = 0.0, 0, None
        for x, y in windows(data, self.time_size):
            loss, state = model(x, state, targets=y)
            total += loss.item() * y.numel()
            count += y.numel()
        loss = total / count
        return {f"{split}/loss": loss, f"{split}/ppl": math.exp(loss)}, None

    def add_split(self, name: str, path: str) -> None:
        """A text file in the PTB format (words separated by spaces, a sentence a line) as split `name`
        (seq2seq.evaluate file=): words outside the training vocabulary must be written <unk>, as PTB does."""
        stream = read_stream(path, self.vocab)
        if len(stream) < 2 * self.eval_data["val"].shape[0]:
            raise DataError(f"{path}: {len(stream)} tokens, too few for {self.eval_data['val'].shape[0]} rows of 2")
        self.streams[name] = stream
        self.eval_data[name] = batchify(stream, self.eval_data["val"].shape[0]).to(self.eval_data["val"].device)

    @torch.no_grad()
    def predictions(self, model, split: str) -> list[dict]:
        """Each sentence of the split (up to its <eos>) with its mean loss and perplexity, the model reading
        the split as one stream in windows of time_size words, with its state carried from window to window
        where the model carries one (as in evaluation, where the stream is read in eval_batch_size rows: the
        split's perplexity differs from the mean of these in the first words of each row only)."""
        stream = torch.tensor(self.streams[split], device=self.eval_data[split].device)[None]  # (1, N)
        losses, state = [], None
        for x, y in windows(stream, self.time_size):
            logits, state = model(x, state)  # (1, T, V)
            state = model.between_windows(state)
            losses += torch.nn.functional.cross_entropy(logits[0].float(), y[0], reduction="none").tolist()
        eos, rows, words, start = self.vocab.stoi[EOS], [], self.streams[split], 0
        for i in range(len(losses)):  # losses[i] scores word i + 1 given the words before it
            if words[i + 1] == eos or i == len(losses) - 1:
                sentence = losses[start : i + 1]
                mean = sum(sentence) / len(sentence)
                first = start + 1 if start else 0  # the stream's first word is read, never scored
                text = " ".join(self.vocab.itos[w] for w in words[first : i + 1])
                rows.append({"input": text, "tokens": len(sentence), "loss": round(mean, 6),
                             "ppl": round(math.exp(min(mean, 50.0)), 4)})  # fmt: skip
                start = i + 1
        return rows

    def figures(self, model) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"kind": "lm", "vocab": self.vocab.itos, "eos": EOS}
