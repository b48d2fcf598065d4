"""Fixed-width string-to-string pairs (the chapter's addition toy) for Encoder-Decoder models."""

import re
from typing import ClassVar

import numpy
import torch
from torch.nn import functional as F

from seq2seq.core.checks import COUNT, DIGITS, FRACTION, NON_NEGATIVE, POSITIVE, SEED
from seq2seq.core.errors import DataError
from seq2seq.core.registry import register_task
from seq2seq.data.addition import START, generate_addition, load_fixed_width
from seq2seq.data.questions import SUM
from seq2seq.data.split import epoch_generator
from seq2seq.data.vocab import Vocab
from seq2seq.tasks.codec import FixedWidthCodec, sample_lines
from seq2seq.tasks.plots import attention_figures, attention_maps


@register_task("addition")
class AdditionTask:
    """Questions (B, S) and answers (B, A) as character ids; the answer starts with `_`.

    Teacher forcing feeds the decoder answer[:, :-1] (`_91 `) and scores it on answer[:, 1:] (`91  `).
    """

    family = "seq2seq"
    monitor = "val/acc"
    mode = "max"
    final_splits: tuple[str, ...] = ()
    CODEC = FixedWidthCodec
    DATA_KEYS = ("path",)
    REPORT_OPTIONS = ("num_samples", "num_heatmaps")
    EXTRAS: tuple[str, ...] = ()

    CHECKS: ClassVar[dict] = {
        "num_examples": COUNT,
        "max_digits": DIGITS,
        "val_fraction": FRACTION,
        "batch_size": POSITIVE,
        "num_samples": NON_NEGATIVE,
        "num_heatmaps": NON_NEGATIVE,
        "split_seed": SEED,
        "eval_limit": POSITIVE,
        "seed": SEED,
    }

    def __init__(
        self,
        path: str | None = None,  # file of lines like '16+75  _91  '; null generates the chapter's dataset
        num_examples: int = 50_000,  # generated questions (ignored when path is set)
        max_digits: int = 3,  # operand digits of generated questions
        reverse: bool = False,  # feed the question's characters to the encoder reversed (section 3.1)
        val_fraction: float = 0.1,  # the last 10% of the shuffle is the validation set
        batch_size: int = 128,  # questions per optimizer step
        num_samples: int = 10,  # validation questions printed and logged each epoch
        num_heatmaps: int = 2,  # attention heatmaps logged to TensorBoard each epoch (attention models)
        split_seed: int | None = 1984,  # shuffles before the split, as the book does (not `seed`); null: `seed`
        drop_last: bool = True,  # drop each epoch's last partial batch, as the book does (351 steps, not 352)
        eval_limit: int | None = None,  # validate on the first eval_limit questions only (quick checks)
        seed: int = 0,  # generates the questions and shuffles each epoch (the config passes the run's seed)
        small_sums: bool = False,  # generated data holds all 55 sums of two one-digit numbers (rare when drawn)
    ):
        if small_sums and path:
            raise DataError("task.small_sums=true adds questions to generated data only: leave task.path null")
        data = load_fixed_width(path) if path else generate_addition(num_examples, max_digits, seed, small_sums)
        n = len(data.questions)
        n_val = int(n * val_fraction)
        if not 0 < n_val < n:
            raise DataError(f"val_fraction={val_fraction} leaves no train or no validation examples of {n}")
        self.vocab = Vocab(sorted(set("".join(data.questions) + "".join(data.answers))))
        self.question_width = len(data.questions[0])
        self.answer_width = len(data.answers[0])
        self.reverse = reverse
        # The longest number in any question: a wider one is refused at generation (`1000+1` on 3 digits).
        self.number_digits = max((len(m) for q in data.questions for m in re.findall(r"\d+", q)), default=0)
        # "a+b" when every question is a sum of two numbers: generation then takes only that shape.
        self.question_form = "a+b" if all(SUM.fullmatch(q.strip()) for q in data.questions) else ""
        self.codec = FixedWidthCodec(
            self.vocab.itos, self.question_width, self.answer_width, reverse, self.number_digits or None,
            self.question_form,
        )  # fmt: skip
        self.batch_size, self.drop_last = batch_size, drop_last
        self.num_samples = num_samples
        self.num_heatmaps = num_heatmaps
        self.seed = seed

        # The split is the book's (dataset/sequence.py): numpy's legacy generator seeded with split_seed
        # shuffles the examples, the last n // 10 are validation; it does not depend on `seed`, so the
        # book's own file gives the book's 5,000 test questions. split_seed=null: shuffled with `seed`
        # (runs of seq2seq 0.2 and earlier).
        if split_seed is None:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        else:
            order = numpy.random.RandomState(split_seed).permutation(n).tolist()
        questions = [data.questions[i] for i in order]
        answers = [data.answers[i] for i in order]
        x, _ = self.codec.encode(questions)  # (N, S), reversed if configured
        t = torch.tensor([self.vocab.encode(a) for a in answers])  # (N, A)
        self.x_train, self.t_train = x[: n - n_val], t[: n - n_val]
        self.x_val, self.t_val = x[n - n_val :], t[n - n_val :]
        self.val_questions = questions[n - n_val :]
        if eval_limit is not None:  # quick checks: validate on the first eval_limit questions only
            self.x_val, self.t_val = self.x_val[:eval_limit], self.t_val[:eval_limit]
            self.val_questions = self.val_questions[:eval_limit]
        self.added: dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]] = {}  # splits of add_split

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def start_id(self) -> int:
        return self.vocab.stoi[START]

    def to(self, device: torch.device) -> "AdditionTask":
        """Keep the whole dataset on the training device: batches are slices, never copies."""
        for name in ("x_train", "t_train", "x_val", "t_val"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def train_batches(self, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        perm = torch.randperm(len(self.x_train), generator=epoch_generator(self.seed, epoch)).to(self.x_train.device)
        x, t = self.x_train[perm], self.t_train[perm]  # one gather per epoch; batches are views
        B = self.batch_size
        end = len(x) - len(x) % B if self.drop_last and len(x) >= B else len(x)  # the book drops the rest
        return [(x[i : i + B], t[i : i + B]) for i in range(0, end, B)]

    def training_step(self, model, batch, carry=None):
        x, t = batch  # (B, S), (B, A)
        logits = model(x, t[:, :-1])  # (B, A-1, V)
        return F.cross_entropy(logits.flatten(0, 1), t[:, 1:].flatten()), None

    def train_metrics(self, mean_loss: float) -> dict[str, float]:
        return {}

    @torch.no_grad()
    def evaluate(self, model, split: str = "val"):
        """Loss with teacher forcing; exact match and per-character accuracy of batched greedy decoding
        (only wrongly answered questions are decoded again: see greedy)."""
        x, t, questions = self.split(split)
        logits, pred = self.greedy(model, x, t)
        target = t[:, 1:]  # (N, A-1)
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        right = pred == target
        metrics = {
            f"{split}/loss": loss.item(),
            f"{split}/acc": right.all(dim=1).float().mean().item(),
            f"{split}/char_acc": right.float().mean().item(),
        }
        return metrics, self.format_samples(pred[: self.num_samples], right[: self.num_samples], t, questions)

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """A split's questions (N, S), answers (N, A) and question texts: val, or one added by add_split."""
        if split == "val":
            return self.x_val, self.t_val, self.val_questions
        if split in self.added:
            return self.added[split]
        raise ValueError(f"AdditionTask has no split {split!r}")

    def greedy(self, model, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits (N, A-1, V) and greedy answers (N, A-1). Greedy decoding reuses the
        teacher-forced pass wherever it would read the same inputs (Seq2seq.greedy_from_teacher_forcing)."""
        tgt_in = t[:, :-1]  # (N, A-1)
        enc = model.encoder(x)  # encoded once for both the loss and the greedy answers
        logits = model.decode(enc, tgt_in)  # (N, A-1, V)
        return logits, model.greedy_from_teacher_forcing(x, self.start_id, enc, tgt_in, logits)

    def format_samples(self, pred: torch.Tensor, right: torch.Tensor, t: torch.Tensor, questions: list[str]) -> str:
        """The chapter's printout: question, correct answer, prediction marked ☑ or ☒."""
        lines = []
        for i in range(len(pred)):
            target, output = self.vocab.decode(t[i, 1:].tolist()), self.vocab.decode(pred[i].tolist())
            lines += sample_lines(questions[i], target, output, bool(right[i].all()), source_mark="Q")
        return "\n".join(lines)

    def add_split(self, name: str, path: str) -> None:
        """A file of questions and answers in the training format ('16+75  _91  ' per line) as split `name`
        (seq2seq.evaluate file=): the widths and characters must be the trained ones."""
        data = load_fixed_width(path)
        widths = (len(data.questions[0]), len(data.answers[0]))
        if widths != (self.question_width, self.answer_width):
            raise DataError(f"{path}: questions and answers {widths[0]} and {widths[1]} characters wide; this model "
                            f"was trained on {self.question_width} and {self.answer_width}")  # fmt: skip
        for number, line in enumerate(zip(data.questions, data.answers, strict=True), start=1):
            unknown = sorted(set("".join(line)) - set(self.vocab.stoi))
            if unknown:
                raise DataError(f"{path}:{number}: {unknown[0]!r} is not a character this model was trained on")
        x, _ = self.codec.encode(data.questions)  # (N, S), reversed if trained so
        t = torch.tensor([self.vocab.encode(a) for a in data.answers])  # (N, A)
        self.added[name] = (x.to(self.x_val.device), t.to(self.x_val.device), list(data.questions))

    @torch.no_grad()
    def predictions(self, model, split: str) -> list[dict]:
        """Each question of the split with its answer, the greedy prediction scored in validation, whether it
        is right and its loss (mean cross-entropy of the answer's characters, teacher-forced)."""
        x, t, questions = self.split(split)
        logits, pred = self.greedy(model, x, t)
        target = t[:, 1:]  # (N, A-1)
        losses = F.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(dim=1)  # (N,)
        right = (pred == target).all(dim=1)
        return [{"input": q.strip(), "target": self.vocab.decode(a).strip(), "prediction": self.vocab.decode(p).strip(),
                 "correct": bool(ok), "loss": round(float(loss), 6)}
                for q, a, p, ok, loss in zip(questions, target.tolist(), pred.tolist(), right.tolist(),
                                             losses.tolist(), strict=True)]  # fmt: skip

    def breakdown(self, rows: list[dict]) -> dict[str, dict[str, tuple[int, int]]]:
        """Natural groups of the questions with (right, total) each: sums by the digits of their longer
        number and by their carries; other fixed-width data (dates) by the form of the question (its letters
        as `a`, its digits as `9`)."""
        groups: dict[str, dict[str, list[int]]] = {}

        def count(by: str, key: str, ok: bool) -> None:
            tally = groups.setdefault(by, {}).setdefault(key, [0, 0])
            tally[0] += ok
            tally[1] += 1

        for row in rows:
            sum_ = SUM.fullmatch(row["input"])
            if self.question_form == "a+b" and sum_:
                a, b = sum_.group(1), sum_.group(2)
                count("digits", f"digits={max(len(a), len(b))}", row["correct"])
                count("carries", f"carries={carries(int(a), int(b))}", row["correct"])
            else:
                form = re.sub(r"[^\W\d_]", "a", re.sub(r"\d", "9", row["input"]))
                count("form", form, row["correct"])
        return {by: {k: (v[0], v[1]) for k, v in sorted(keys.items())} for by, keys in groups.items()}

    @torch.no_grad()
    def figures(self, model) -> dict:
        """Attention heatmaps of the first num_heatmaps validation questions (attention models only)."""
        k = min(self.num_heatmaps, len(self.x_val))
        if not model.has_attention or k == 0:
            return {}
        maps = attention_maps(model, self.codec, self.x_val[:k])
        return {"val/attention": attention_figures(maps, self.val_questions[:k])}

    def state_dict(self) -> dict:
        return {
            "kind": "fixed_width",
            "vocab": self.vocab.itos,
            "question_width": self.question_width,
            "answer_width": self.answer_width,
            "reverse": self.reverse,
            "number_digits": self.number_digits,
            "question_form": self.question_form,
        }


def carries(a: int, b: int) -> int:
    """How many digit columns of a + b carry into the next one (99+1: 2)."""
    count = carry = 0
    while a or b:
        carry = (a % 10 + b % 10 + carry) >= 10
        count += carry
        a, b = a // 10, b // 10
    return count
