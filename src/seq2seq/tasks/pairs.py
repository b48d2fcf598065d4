"""PairsTask: variable-length (source, target) pairs for the Encoder-Decoder models, the base class of
the pair tasks (tsv, chitchat, programs: one file each). The addition task's fixed-width pairs are
seq2seq.tasks.addition.

Data layout on the device, per split (N pairs):
    src      (N, S) source ids, right-padded with <pad> = 0, reversed if configured
    src_len  (N,)   real source lengths
    tgt      (N, T) `<bos> target <eos>`, right-padded
A batch is `(src, src_len, tgt)` cut to its longest row. Bucketing sorts each window of 100 batches'
worth of shuffled pairs by length before cutting, so the rows of a batch have similar lengths.
"""

import logging
import math
from typing import ClassVar

import torch
from torch.nn import functional as F

from seq2seq.core.checks import FRACTION, NON_NEGATIVE, POSITIVE, SEED, at_most, one_of
from seq2seq.core.errors import ConfigError, DataError
from seq2seq.core.extras import available, require
from seq2seq.core.metrics import mode as metric_mode
from seq2seq.data import text
from seq2seq.data.split import epoch_generator
from seq2seq.data.text import TOKENIZERS
from seq2seq.tasks.codec import MAX_LENGTH, PairCodec, sample_lines
from seq2seq.tasks.plots import attention_figures, attention_maps

log = logging.getLogger(__name__)

MONITORS = ("val/acc", "val/token_acc", "val/bleu", "val/loss", "val/ppl")
BUCKET_WINDOW = 100  # batches whose pairs are sorted by length together


class PairsTask:
    """Pairs given as {split: [(source, target), ...]}; see the module docstring for the layout.

    Examples with more than max_length tokens on either side are left out, counted and reported.
    Metrics: val/loss and val/ppl (teacher forcing, padding ignored), val/acc (exact match of greedy
    decoding up to <eos>), val/token_acc (position-wise, over the target's tokens and its <eos>), and
    val/bleu (sacrebleu on the tokens, no further tokenisation) for word-level tasks.
    """

    family = "seq2seq"
    final_splits: tuple[str, ...] = ()
    monitor, mode = "val/acc", "max"  # task.monitor's default (an instance takes its own)
    CODEC = PairCodec
    DATA_KEYS: tuple[str, ...] = ()
    REPORT_OPTIONS = ("num_samples", "num_heatmaps")
    EXTRAS: tuple[str, ...] = ()
    context_turns = 0  # turns before the message in each source (ChitchatTask's task.context_turns)

    CHECKS: ClassVar[dict] = {
        "tokenize": one_of(TOKENIZERS),
        "min_freq": POSITIVE,
        "max_vocab": POSITIVE,
        "max_length": at_most(MAX_LENGTH, "tokens a side"),
        "batch_size": POSITIVE,
        "eval_batch_size": POSITIVE,
        "num_samples": NON_NEGATIVE,
        "num_heatmaps": NON_NEGATIVE,
        "monitor": one_of(MONITORS),
        "eval_limit": POSITIVE,
        "val_fraction": FRACTION,
        "seed": SEED,
    }

    def __init__(
        self,
        splits: dict[str, list[tuple[str, str]]],
        tokenize: str = "word",  # char | word (split on whitespace) | wordpunct (words and punctuation marks)
        lowercase: bool = False,  # lower-case both sides before tokenising
        min_freq: int = 1,  # rarer tokens become <unk>
        max_vocab: int | None = None,  # at most this many tokens, <pad> <bos> <eos> <unk> included
        max_length: int = 50,  # pairs with more tokens on either side are left out, counted and reported
        reverse: bool = False,  # feed the source tokens reversed (padding stays at the end)
        batch_size: int = 64,  # pairs per optimizer step
        eval_batch_size: int = 512,  # pairs per validation batch
        bucket: bool = True,  # batch pairs of similar length together: less padding
        num_samples: int = 5,  # validation pairs printed and logged each epoch
        num_heatmaps: int = 2,  # attention heatmaps logged to TensorBoard each epoch (attention models)
        monitor: str = "val/acc",  # picks best.pt: val/acc, val/token_acc, val/bleu (max) or val/loss, val/ppl (min)
        eval_limit: int | None = None,  # validate on the first eval_limit pairs only (quick checks)
        seed: int = 0,  # shuffles each epoch (the config passes the run's seed)
    ):
        if monitor not in MONITORS:
            raise ConfigError(f"task.monitor={monitor!r}: must be a validation metric such as val/acc or val/loss")
        if monitor == "val/bleu" and tokenize == "char":
            raise ConfigError("task.monitor=val/bleu needs word tokens (BLEU is computed on words, not characters)")
        # BLEU needs words and the optional sacrebleu; without it val/bleu is left out (and cannot be monitored).
        self.bleu = tokenize != "char" and (monitor == "val/bleu" or available("sacrebleu"))
        if self.bleu:
            require("sacrebleu", "val/bleu")
        elif tokenize != "char":
            log.warning("val/bleu is not computed: it needs sacrebleu (pip install '.[bleu]' in the project's folder)")
        self.monitor, self.mode = monitor, metric_mode(monitor)
        self.batch_size, self.eval_batch_size, self.bucket = batch_size, eval_batch_size, bucket
        self.num_samples, self.num_heatmaps, self.seed = num_samples, num_heatmaps, seed
        self.eval_limit = eval_limit
        self.tokenized = {}
        self.dropped = {}
        for split, pairs in splits.items():
            tokens = [
                (self.source_tokens(s, tokenize, lowercase), text.tokenize(t, tokenize, lowercase)) for s, t in pairs
            ]
            kept = [(s, t) for s, t in tokens if s and t and len(s) <= max_length and len(t) <= max_length]
            self.dropped[split] = len(tokens) - len(kept)
            if self.dropped[split]:
                log.warning(
                    "%s: left out %d of %d pairs with an empty side or more than max_length=%d tokens",
                    split, self.dropped[split], len(tokens), max_length,
                )  # fmt: skip
            if not kept:
                raise DataError(f"{split}: no pairs left with at most max_length={max_length} tokens per side")
            self.tokenized[split] = kept
        vocab = text.build_vocab(self.vocab_tokens(), min_freq, max_vocab)
        self.codec = PairCodec(vocab.itos, tokenize, lowercase, reverse, max_length, self.context_turns)
        self.data = {split: self.tensors(split) for split in self.tokenized}
        log.info("pairs: %s; vocabulary %d tokens", {k: len(v) for k, v in self.tokenized.items()}, len(vocab))

    @staticmethod
    def source_tokens(source: str | tuple[str, ...], mode: str, lowercase: bool) -> list[str]:
        """A source's tokens; a tuple of turns (a message with its context) is joined with <sep>."""
        if isinstance(source, str):
            return text.tokenize(source, mode, lowercase)
        return text.tokenize_turns(list(source), mode, lowercase)

    def vocab_tokens(self):
        """Token lists the vocabulary is built from: both sides of the training pairs."""
        return (tokens for pair in self.tokenized["train"] for tokens in pair)

    def tensors(self, split: str) -> dict:
        pairs = self.tokenized[split]
        src, src_len = self.codec.pad([self.codec.source_ids(s) for s, _ in pairs])
        tgt, tgt_len = self.codec.pad([self.codec.target_ids(t) for _, t in pairs])
        return {"src": src, "src_len": src_len, "tgt": tgt, "lengths": (src_len.tolist(), tgt_len.tolist())}

    @property
    def vocab_size(self) -> int:
        return len(self.codec.vocab)

    def state_dict(self) -> dict:
        return self.codec.state_dict()

    def to(self, device: torch.device) -> "PairsTask":
        for split in self.data.values():
            for key in ("src", "src_len", "tgt"):
                if split[key] is not None:
                    split[key] = split[key].to(device)
        return self

    def batch(self, split: str, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The given pairs as (src (B, S), src_len (B,), tgt (B, T)), cut to the longest row."""
        d = self.data[split]
        src_len, tgt_len = d["lengths"]
        S, T = max(src_len[i] for i in rows), max(tgt_len[i] for i in rows)
        index = torch.tensor(rows, device=d["src"].device)
        return d["src"][index, :S], d["src_len"][index], d["tgt"][index, :T]

    def train_batches(self, epoch: int):
        """Shuffled with (seed, epoch); bucketed by length when configured, batch order shuffled too."""
        generator = epoch_generator(self.seed, epoch)
        src_len, tgt_len = self.data["train"]["lengths"]
        order = torch.randperm(len(src_len), generator=generator).tolist()
        B = self.batch_size
        if self.bucket:
            window = B * BUCKET_WINDOW
            order = [
                i
                for start in range(0, len(order), window)
                for i in sorted(order[start : start + window], key=lambda i: (src_len[i], tgt_len[i]))
            ]
        batches = [order[i : i + B] for i in range(0, len(order), B)]
        if self.bucket:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return [self.batch("train", rows) for rows in batches]

    def training_step(self, model, batch, carry=None):
        src, src_len, tgt = batch  # (B, S), (B,), (B, T)
        logits = model(src, tgt[:, :-1], src_len)  # (B, T-1, V)
        return F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=self.codec.pad_id), None

    def train_metrics(self, mean_loss: float) -> dict[str, float]:
        return {"train/ppl": math.exp(min(mean_loss, 50.0))}

    @torch.no_grad()
    def evaluate(self, model, split: str = "val"):
        if split not in self.data:
            raise ValueError(f"{type(self).__name__} has no split {split!r}")
        codec, data = self.codec, self.data[split]
        src_len = data["lengths"][0]
        n = len(src_len) if self.eval_limit is None else min(len(src_len), self.eval_limit)  # the first n pairs
        order = sorted(range(n), key=src_len.__getitem__)  # similar lengths share a batch
        device = data["src"].device
        loss_sum, tokens, right, exact = (torch.zeros((), device=device) for _ in range(4))
        outputs: list[list[int]] = [[]] * len(order)  # greedy ids per pair, in the split's order
        for start in range(0, len(order), self.eval_batch_size):
            rows = order[start : start + self.eval_batch_size]
            src, lengths, tgt = self.batch(split, rows)
            enc = model.encoder(src, lengths)  # encoded once for the loss and the greedy outputs
            target = tgt[:, 1:]  # (B, T'): the target's tokens and <eos>, then padding
            logits = model.decode(enc, tgt[:, :-1])  # (B, T', V)
            loss_sum += F.cross_entropy(
                logits.flatten(0, 1).float(), target.flatten(), ignore_index=codec.pad_id, reduction="sum"
            )
            pred = model.generate(enc, codec.start_id, codec.steps)  # (B, L), L >= T'
            real = target != codec.pad_id
            match = (pred[:, : target.shape[1]] == target) & real
            tokens += real.sum()
            right += match.sum()
            exact += (match | ~real).all(dim=1).sum()
            for i, ids in zip(rows, pred.tolist(), strict=True):
                outputs[i] = ids
        loss = (loss_sum / tokens).item()
        metrics = {
            f"{split}/loss": loss,
            f"{split}/ppl": math.exp(min(loss, 50.0)),
            f"{split}/acc": exact.item() / len(order),
            f"{split}/token_acc": (right / tokens).item(),
        }
        if self.bleu:
            hyps = [codec.decode(ids) for ids in outputs]
            refs = [" ".join(t) for _, t in self.tokenized[split][:n]]
            metrics[f"{split}/bleu"] = require("sacrebleu", "val/bleu").corpus_bleu(hyps, [refs], tokenize="none").score
        return metrics, self.samples(split, outputs[: self.num_samples])

    def add_split(self, name: str, path: str) -> None:
        """A TSV file of `source<TAB>target` lines as split `name` (seq2seq.evaluate file=), tokenised with the
        training vocabulary (unknown tokens become <unk>, as in validation)."""
        pairs = text.load_tsv(path)
        mode, lowercase = self.codec.mode, self.codec.lowercase
        tokens = [(self.source_tokens(s, mode, lowercase), text.tokenize(t, mode, lowercase)) for s, t in pairs]
        kept = [(s, t) for s, t in tokens if s and t and len(s) <= self.codec.max_length
                and len(t) <= self.codec.max_length]  # fmt: skip
        if len(kept) < len(tokens):
            raise DataError(f"{path}: {len(tokens) - len(kept)} pairs have an empty side or more than "
                            f"{self.codec.max_length} tokens, the trained maximum")  # fmt: skip
        device = self.data["val"]["src"].device
        self.tokenized[name] = kept
        self.data[name] = self.tensors(name)
        for key in ("src", "src_len", "tgt"):
            self.data[name][key] = self.data[name][key].to(device)

    @torch.no_grad()
    def predictions(self, model, split: str) -> list[dict]:
        """Each pair of the split with its greedy output as scored in validation, whether it matches the
        target exactly, and its loss (mean cross-entropy of the target's tokens, teacher-forced)."""
        codec, n = self.codec, len(self.tokenized[split])
        rows: list[dict] = [{}] * n
        for start in range(0, n, self.eval_batch_size):
            index = list(range(start, min(n, start + self.eval_batch_size)))
            src, lengths, tgt = self.batch(split, index)
            enc = model.encoder(src, lengths)
            target = tgt[:, 1:]  # (B, T')
            logits = model.decode(enc, tgt[:, :-1])  # (B, T', V)
            losses = F.cross_entropy(logits.transpose(1, 2).float(), target, ignore_index=codec.pad_id,
                                     reduction="none")  # (B, T')  # fmt: skip
            real = target != codec.pad_id
            pred = model.generate(enc, codec.start_id, codec.steps)  # (B, L)
            exact = ((pred[:, : target.shape[1]] == target) | ~real).all(dim=1)
            mean = (losses.sum(dim=1) / real.sum(dim=1)).tolist()
            for i, ids, ok, loss in zip(index, pred.tolist(), exact.tolist(), mean, strict=True):
                source, reference = self.tokenized[split][i]
                rows[i] = {"input": text.detokenize(source, codec.mode),
                           "target": text.detokenize(reference, codec.mode), "prediction": codec.decode(ids),
                           "correct": bool(ok), "loss": round(loss, 6)}  # fmt: skip
        return rows

    def samples(self, split: str, outputs: list[list[int]]) -> str:
        """The first pairs of the split with their greedy outputs: source, target, output ☑ or ☒."""
        lines = []
        for (source, target), ids in zip(self.tokenized[split], outputs, strict=False):
            output = self.codec.tokens(ids)
            shown = (text.detokenize(tokens, self.codec.mode) for tokens in (source, target, output))
            lines += sample_lines(*shown, right=output == target)
        return "\n".join(lines)

    @torch.no_grad()
    def figures(self, model) -> dict:
        """Attention heatmaps of the first num_heatmaps validation pairs (attention models only)."""
        k = min(self.num_heatmaps, len(self.tokenized["val"]))
        if not model.has_attention or k == 0:
            return {}
        src, lengths, _ = self.batch("val", list(range(k)))
        maps = attention_maps(model, self.codec, src, lengths)
        return {"val/attention": attention_figures(maps)}
