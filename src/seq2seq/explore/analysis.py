"""What the explorer shows of a trained model, computed with torch and returned as plain values (the
page draws them, seq2seq.explore.app): an answer with what the model considered at each step, the
validation split's right and wrong answers, and a language model's word probabilities.

Every answer is decoded by the Python API (seq2seq.inference.api.TrainedModel) with the options `generate` takes,
so the explorer answers as `seq2seq-generate` does. The probabilities shown are the model's own, from a
teacher-forced pass over that answer: the distribution each step chose from, before temperature,
top-k or skip lists.
"""

import math
import re
from dataclasses import dataclass

import torch

from seq2seq.core.errors import DataError
from seq2seq.data import text
from seq2seq.data.questions import SUM
from seq2seq.tasks import task_from_saved_config

TOP_STEPS = 5  # next tokens listed at each decoding step (Ask)
TOP_WORDS = 10  # next words listed at a clicked position (Sample)
MAX_TEXT = 2000  # characters of a question, prompt, sentence or message
EVAL_BATCH = 1000  # validation examples decoded at once (Errors)


def check_text(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"the {what} is empty")
    if len(value) > MAX_TEXT:
        raise DataError(f"the {what} has {len(value):,} characters; at most {MAX_TEXT:,} are read")
    return value


@dataclass
class Step:
    token: str  # the token this step emitted
    prob: float  # its probability under the model
    top: list[tuple[str, float]]  # the likeliest next tokens, best first


@dataclass
class Answer:
    text: str  # the output as seq2seq-generate prints it (the best of an n-best list)
    steps: list[Step]
    nbest: list[tuple[str, float]] | None  # beam search: every output with its score, best first
    samples: list[str] | None  # num_samples above 1: every sample
    source: list[str]  # the source tokens as fed to the encoder (reversed if trained so)
    attention: list[list[float]] | None  # attention models: weights (T, S) of each step over the source
    attention_of: str = ""  # which layer and head the weights are (a Transformer's: one of several)


def visible_tokens(codec, ids: list[int]) -> list[int]:
    """The ids a decoder emitted up to and with its <eos> (fixed-width answers: every step)."""
    if codec.eos_id is not None and codec.eos_id in ids:
        return ids[: ids.index(codec.eos_id) + 1]
    return ids


def attention_choice(module, layer: int | None, head: int | None) -> tuple[int, int | None, str]:
    """The page's attention layer and head (counted from 1; None: the last layer, the mean of the heads) as
    the model's `attention` takes them (from 0), and their words. A model of one attention layer (or head)
    shows it whatever is asked (runs side by side share the fields); beyond a model's several: a DataError."""
    layers, heads = module.attention_heads
    layer, head = layer if layers > 1 else None, head if heads > 1 else None
    for name, value, most in (("layer", layer, layers), ("head", head, heads)):
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value is not None and not (whole and 1 <= value <= most):
            shown = value if whole and abs(value) < 10**6 else "?"
            raise DataError(f"attention {name} {shown}: this model has {most} (1 to {most})")
    where = f"layer {layer or layers} of {layers}" if layers > 1 else ""
    which = (f"head {head} of {heads}" if head else f"mean of {heads} heads") if heads > 1 else ""
    return (layer or layers) - 1, None if head is None else head - 1, ", ".join(w for w in (where, which) if w)


@torch.no_grad()
def ask(model, question: str, options: dict, layer: int | None = None, head: int | None = None) -> Answer:
    """A seq2seq model's answer to `question` decoded as `options` say (seq2seq.core.decoding), with the top
    next tokens of each step of the best answer and, for an attention model, its attention weights: of decoder
    layer `layer` and head `head` (counted from 1; None: the last layer, the mean of its heads)."""
    check_text(question, "question")
    at_layer, at_head, attention_of = -1, None, ""
    if model.module.has_attention:
        at_layer, at_head, attention_of = attention_choice(model.module, layer, head)
    opts = model.resolve(options)
    ids, scores = model.answer_ids([question], opts)  # (1, outputs, L), (1, outputs) or None
    codec, module = model.codec, model.module
    outputs = ids[0].tolist()
    best = visible_tokens(codec, outputs[0])
    x, lengths = codec.encode([question])  # (1, S), (1,) or None
    x, lengths = x.to(model.device), None if lengths is None else lengths.to(model.device)
    tgt_in = torch.tensor([[codec.start_id, *best[:-1]]], device=model.device)  # (1, T)
    probs = module(x, tgt_in, lengths)[0].float().softmax(dim=-1)  # (T, V)
    top_p, top_i = probs.topk(min(TOP_STEPS, probs.shape[-1]), dim=-1)  # (T, k)
    itos = codec.vocab.itos
    steps = [
        Step(
            itos[token],
            probs[t, token].item(),
            [(itos[i], p) for i, p in zip(top_i[t].tolist(), top_p[t].tolist(), strict=True)],
        )
        for t, token in enumerate(best)
    ]
    texts = [codec.decode(row) for row in outputs]
    nbest = list(zip(texts, scores[0].tolist(), strict=True)) if scores is not None else None
    weights = None
    if module.has_attention:
        weights = module.attention(x, tgt_in, lengths, layer=at_layer, head=at_head)[0].float().tolist()  # (T, S)
    return Answer(
        texts[0],
        steps,
        nbest,
        texts if len(texts) > 1 and scores is None else None,
        [itos[i] for i in x[0].tolist()],
        weights,
        attention_of,
    )


@dataclass
class Validation:
    """The validation split of a seq2seq checkpoint answered greedily, as training's `val/acc` counts it."""

    questions: list[str]
    expected: list[str]
    answered: list[str]
    right: list[bool]
    groups: dict[str, list]  # a breakdown's name -> the group of each question

    @property
    def accuracy(self) -> float:
        return sum(self.right) / len(self.right)

    def breakdown(self, name: str) -> list[list]:
        """Rows [group, questions, right, accuracy] of exact match by the groups of `name`."""
        counts: dict = {}
        for group, right in zip(self.groups[name], self.right, strict=True):
            total, good = counts.get(group, (0, 0))
            counts[group] = (total + 1, good + right)
        return [[g, n, good, round(good / n, 4)] for g, (n, good) in sorted(counts.items())]


def carries(question: str) -> int | None:
    """How many digit columns of `a+b` carry a one into the next (None when the question is not a sum)."""
    match = SUM.fullmatch(question.strip())
    if not match:
        return None
    a, b = (int(n) for n in match.groups())
    count, carry = 0, 0
    while a or b:
        carry = (a % 10 + b % 10 + carry) // 10
        count += carry
        a, b = a // 10, b // 10
    return count


def validation_task(model, data_roots: tuple = ()):
    """The checkpoint's task rebuilt from its saved config (same seed, same data, task.eval_limit applied as
    in training): its validation split is what `val/acc` counted. Data files only from `data_roots`."""
    node = model.config.get("task") if isinstance(model.config, dict) else None
    return task_from_saved_config(node, f"{model.path}: config.task", data_roots)


@torch.no_grad()
def validate(model, task) -> Validation:
    """Greedy answers to the validation split of `task` (validation_task), in batches of EVAL_BATCH."""
    module, codec, device = model.module, model.codec, model.device
    if hasattr(task, "x_val"):  # the fixed-width addition format
        questions, expected, answered, right = list(task.val_questions), [], [], []
        for start in range(0, len(questions), EVAL_BATCH):
            x, t = task.x_val[start : start + EVAL_BATCH].to(device), task.t_val[start : start + EVAL_BATCH].to(device)
            enc = module.encoder(x)  # (B, S, H): the greedy answers as training's evaluate finds them
            logits = module.decode(enc, t[:, :-1])  # (B, A-1, V)
            pred = module.greedy_from_teacher_forcing(x, codec.start_id, enc, t[:, :-1], logits)  # (B, A-1)
            right += (pred == t[:, 1:]).all(dim=1).tolist()
            expected += [codec.decode(row) for row in t[:, 1:].tolist()]
            answered += [codec.decode(row) for row in pred.tolist()]
        questions = [q.rstrip() for q in questions]
        groups = {
            "question length": [len(q) for q in questions],
            "answer digits": [len(a) for a in expected],
        }
        if all(carries(q) is not None for q in questions):
            groups["carries"] = [carries(q) for q in questions]
        return Validation(questions, expected, answered, right, groups)
    if not hasattr(task, "batch"):
        raise DataError("the errors tab needs a seq2seq task with a validation split")
    pairs = task.tokenized["val"]
    n = len(pairs) if task.eval_limit is None else min(len(pairs), task.eval_limit)
    outputs: list[list[str]] = []
    for start in range(0, n, EVAL_BATCH):
        src, lengths, _ = task.batch("val", list(range(start, min(n, start + EVAL_BATCH))))
        pred = module.generate(src.to(device), codec.start_id, codec.steps, lengths=lengths.to(device))
        outputs += [codec.tokens(row) for row in pred.tolist()]
    sources, targets = [list(s) for s, _ in pairs[:n]], [list(t) for _, t in pairs[:n]]
    right = [out == target for out, target in zip(outputs, targets, strict=True)]
    detok = lambda tokens: text.detokenize(tokens, codec.mode)  # noqa: E731
    groups = {"source tokens": [len(s) for s in sources], "target tokens": [len(t) for t in targets]}
    return Validation(
        [detok(s) for s in sources], [detok(t) for t in targets], [detok(o) for o in outputs], right, groups
    )


def compare(a: Validation, b: Validation) -> tuple[list[list], list[list]]:
    """Questions A answers right and B wrong, and the other way round: rows [question, expected, A's, B's]."""
    if a.questions != b.questions:
        raise DataError("the two runs validate on different questions (another dataset or split): nothing to compare")
    rows = list(zip(a.questions, a.expected, a.answered, b.answered, strict=True))
    only_a = [list(r) for r, ra, rb in zip(rows, a.right, b.right, strict=True) if ra and not rb]
    only_b = [list(r) for r, ra, rb in zip(rows, a.right, b.right, strict=True) if rb and not ra]
    return only_a, only_b


@torch.no_grad()
def word_probs(model, ids: list[int]) -> torch.Tensor:
    """A language model's next-word distributions along `ids` (N,): row t is p(. | ids[:t+1]), (N, V),
    with the context generation gives (the words alone, from a zero state)."""
    tokens = torch.tensor([ids], device=model.device)  # (1, N)
    logits, _ = model.module(tokens)  # (1, N, V)
    return logits[0].float().softmax(dim=-1)


@dataclass
class Sample:
    words: list[str]
    ids: list[int]
    prompt_length: int
    probs: list[float | None]  # p(word | the words before it); None for the first word (no context)


def sample(model, prompt: str, options: dict) -> Sample:
    """A language model's first continuation of `prompt` (as seq2seq-generate gives it), each word with the
    probability the model gave it."""
    check_text(prompt, "prompt")
    opts = model.resolve(options)
    prompt_ids, rows, _ = model.continuation_ids(prompt, opts)  # (P,), (outputs, steps)
    ids = prompt_ids.tolist() + rows[0].tolist()
    dist = word_probs(model, ids)  # (N, V)
    probs = [None] + [dist[t - 1, ids[t]].item() for t in range(1, len(ids))]
    return Sample([model.vocab.itos[i] for i in ids], ids, len(prompt_ids), probs)


def next_words(model, ids: list[int], position: int) -> list[tuple[str, float]]:
    """The TOP_WORDS likeliest words at `position` of `ids`, given the words before it."""
    if position == 0:
        raise DataError("the first word has no words before it: click a later word")
    if not isinstance(position, int) or not 0 < position <= len(ids):
        raise DataError(f"no word at position {str(position)[:20]} of {len(ids)}")
    probs = word_probs(model, ids[:position])[-1]  # (V,)
    top_p, top_i = probs.topk(min(TOP_WORDS, probs.shape[-1]))
    return [(model.vocab.itos[i], p) for i, p in zip(top_i.tolist(), top_p.tolist(), strict=True)]


WORD = re.compile(r"\S+")


def perplexity(model, sentence: str) -> tuple[float, list[tuple[str, float]]]:
    """exp of the mean negative log-probability of each word of `sentence`, given <eos> (a sentence
    boundary of the training text) and the words before it; and each word's probability."""
    check_text(sentence, "sentence")
    words = WORD.findall(sentence)
    unknown = [w for w in words if w not in model.vocab]
    if unknown:
        raise DataError(
            f"words {unknown[:5]} are not in the model's {len(model.vocab):,}-word vocabulary "
            f"(its text is lower case; rare words are <unk>, numbers N)"
        )
    ids = [model.vocab.stoi[model.task_state["eos"]], *model.vocab.encode(words)]
    dist = word_probs(model, ids[:-1])  # (N, V)
    probs = [dist[t, ids[t + 1]].item() for t in range(len(words))]
    nll = -sum(math.log(max(p, 1e-45)) for p in probs) / len(probs)
    return math.exp(nll), list(zip(words, probs, strict=True))
