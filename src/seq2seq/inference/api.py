"""The Python API: load a trained checkpoint and decode with it.

    import seq2seq
    model = seq2seq.load("outputs/peeky_addition/<run>")        # a run directory (its best.pt) or a .pt file
    model.generate(["16+75", "582+84"], strategy="beam", beam_size=5)   # -> ["91", "666"]
    lm = seq2seq.load("outputs/rnnlm_ptb/<run>")
    lm.generate("the meaning of life is", max_new_tokens=40, top_k=50, temperature=0.8, seed=1)

`seq2seq.generate` and `seq2seq.chat` are command lines around this class, so the three take the same
options (seq2seq.core.decoding) and refuse the same inputs with the same errors.
"""

import logging
from pathlib import Path

import torch

from seq2seq.core import decoding
from seq2seq.core.decoding import GenerationConfig
from seq2seq.core.errors import ConfigError, DataError
from seq2seq.data import text
from seq2seq.data.vocab import Vocab
from seq2seq.inference import find
from seq2seq.tasks import task_from_saved_config
from seq2seq.tasks.codec import codec_from_state

log = logging.getLogger(__name__)


def pick_device(device: str | torch.device | None) -> torch.device:
    """None: CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(
            f"device={str(device)[:40]!r}: not a device ({str(e)[:80]}); use 'cpu', 'cuda' or None"
        ) from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={str(device)[:40]!r}: models run on 'cpu' or 'cuda' (None: CUDA when available)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda, but no CUDA device is available (use device='cpu' or None)")
    return device


def load(path: str | Path, device: str | torch.device | None = None) -> "TrainedModel":
    """A trained model from a checkpoint file, a run directory (its best.pt), a folder of runs (its newest
    finished run's), "latest" (the newest finished run under ./outputs), or a shared model's folder
    (seq2seq.inference.pretrained; "hf://<user>/<repo>" on the Hugging Face Hub), on `device`."""
    if not isinstance(path, str | Path):
        raise ConfigError(f"load takes a checkpoint path (str or Path), not {type(path).__name__}")
    file, note = find.find(path, "best.pt")
    if note:
        log.info("%s", note)
    from seq2seq.inference import pretrained

    module, checkpoint = pretrained.read_model(file)  # a shared model's folder is read with no pickle involved
    return TrainedModel(module, checkpoint, file, pick_device(device))


class TrainedModel:
    """A checkpoint's model with its vocabulary and input handling: `generate` takes text, returns text.

    family: "seq2seq" (questions in, answers out), "captioner" (PNG paths in, captions out) or "lm" (prompts in,
    continuations out). `module` is the torch model, `config` the run's resolved config (a record).
    """

    def __init__(self, module: torch.nn.Module, checkpoint: dict, path: Path, device: torch.device):
        self.module, self.path, self.device = module.to(device).eval(), path, device
        self.family = module.family
        self.task_state, self.config = checkpoint["task"], checkpoint.get("config")
        self.defaults = checkpoint.get("generation")  # a shared folder's generation_config.json, else the family's
        self.codec = codec_from_state(self.task_state) if self.family != "lm" else None
        self.vocab = self.codec.vocab if self.codec else Vocab(self.task_state["vocab"])

    def __repr__(self) -> str:
        return f"TrainedModel({type(self.module).__name__}, {self.family}, {self.path}, device={self.device})"

    def save_pretrained(self, out: str | Path) -> Path:
        """Write this model as a folder to share (config.json, model.safetensors, generation_config.json,
        README.md; see seq2seq.inference.pretrained), from the checkpoint or folder it was loaded from."""
        from seq2seq.inference import pretrained

        return pretrained.save(self.path, out)

    def generate(self, inputs: str | list[str], context: list[str] = (), **options) -> str | list:
        """Outputs for one input (a str: returns its output) or a list of inputs (returns a list). An input
        with several outputs (n_best or num_samples above 1) gives a list of them, best first for beams.
        Options: see seq2seq.core.decoding.DecodeOptions. `context`: a conversation's earlier turns, oldest
        first, for a chat model trained with task.context_turns above 0 (it reads the last that many).
        """
        opts = decoding.resolve(options, self.family, self.defaults)
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list | tuple) or not texts or not all(isinstance(t, str) for t in texts):
            raise DataError("generate takes a string or a non-empty list of strings")
        texts = list(texts)
        if context and self.family != "seq2seq":
            raise DataError(f"context applies to chat models (seq2seq), not to a {self.family} model")
        if context and not getattr(self.codec, "context_turns", 0):
            raise DataError("this model was trained on single messages (task.context_turns=0): it takes no context")
        if self.family != "lm":
            outputs = self._answers(texts, opts, list(context))
        else:
            outputs = [self._continue(t, opts) for t in texts]
        outputs = [out[0] if len(out) == 1 else out for out in outputs]
        return outputs[0] if isinstance(inputs, str) else outputs

    def skip_ids(self, opts: GenerationConfig) -> list[int]:
        """The ids of the tokens never emitted (opts.skip); unknown words are an error in a list the user gave."""
        unknown = [w for w in opts.skip if w not in self.vocab]
        if unknown and opts.skip_given:
            raise DataError(f"skip: {unknown[:5]} are not in the model's {len(self.vocab)}-token vocabulary")
        ids = [self.vocab.stoi[w] for w in opts.skip if w in self.vocab]
        if len(set(ids)) >= len(self.vocab):
            raise DataError(f"skip leaves none of the model's {len(self.vocab)} tokens to generate")
        return ids

    def generator(self, opts: GenerationConfig) -> torch.Generator | None:
        """Sampling's random generator, seeded by opts.seed (the other strategies draw nothing)."""
        return torch.Generator(device=self.device).manual_seed(opts.seed) if opts.strategy == "sample" else None

    def resolve(self, options: dict) -> GenerationConfig:
        """Every decoding option's value for this model (seq2seq.core.decoding.resolve with its own defaults)."""
        return decoding.resolve(options, self.family, self.defaults)

    def _answers(self, texts: list[str], opts: GenerationConfig, context: list[str]) -> list[list[str]]:
        """Seq2seq: every input decoded in one batch -> per input its list of outputs."""
        ids, _ = self.answer_ids(texts, opts, context)
        return [[self.codec.decode(seq) for seq in row] for row in ids.tolist()]  # ids (N, outputs, L)

    def answer_ids(self, texts: list[str], opts: GenerationConfig, context: list[str] = ()):
        """Seq2seq: the output ids of every input, decoded in one batch as `opts` (resolved) say:
        ids (N, outputs, L) and, for beam search, their scores (N, outputs), else None."""
        codec = self.codec
        new = opts.max_new_tokens or codec.steps  # max_new_tokens; a fixed-width task's default: its width
        decoding.check_budget(len(texts), opts, new)
        x, lengths = codec.encode(texts, list(context)) if context else codec.encode(texts)  # (N, S), (N,) or None
        x, lengths = x.to(self.device), None if lengths is None else lengths.to(self.device)
        skip_ids = self.skip_ids(opts)
        if opts.strategy == "beam":
            return self.module.beam_search(x, codec.start_id, new, opts, lengths, skip_ids, eos_id=codec.eos_id)
        # greedy: one output per input; sample: each input num_samples times in a row, sampled as one batch
        k = opts.num_samples if opts.strategy == "sample" else 1
        rows = torch.arange(len(texts), device=self.device).repeat_interleave(k)  # (N * k,)
        x, lengths = (x, lengths) if k == 1 else (x[rows], None if lengths is None else lengths[rows])
        ids = self.module.generate(x, codec.start_id, new, lengths=lengths, how=opts, skip_ids=skip_ids,
                                   generator=self.generator(opts))  # fmt: skip
        return ids.view(len(texts), k, -1), None  # (N, k, L)

    def prompt_ids(self, prompt: str) -> torch.Tensor:
        """Language model: a prompt's word ids (P,); unknown words are refused."""
        words = prompt.split()
        if not words:
            raise DataError("the prompt is empty: give a start word, e.g. 'you'")
        unknown = [w for w in words if w not in self.vocab]
        if unknown:
            raise DataError(f"prompt words {unknown} are not in the model's {len(self.vocab)}-word vocabulary")
        return torch.tensor(self.vocab.encode(words), device=self.device)  # (P,)

    def continuation_ids(self, prompt: str, opts: GenerationConfig):
        """Language model: the ids of the prompt (P,), of its continuations (outputs, steps) as `opts`
        (resolved) say, and for beam search their scores (outputs,), else None."""
        ids = self.prompt_ids(prompt)  # (P,)
        decoding.check_budget(1, opts, opts.max_new_tokens)
        skip_ids = self.skip_ids(opts)
        if opts.strategy == "beam":
            rows, scores = self.module.beam_search(ids, opts.max_new_tokens, opts, skip_ids)
            return ids, rows[0], scores[0]  # (n_best, steps), (n_best,)
        rows = self.module.generate(ids, opts.max_new_tokens, opts, skip_ids, self.generator(opts))  # (outputs, steps)
        return ids, rows, None

    def words_text(self, ids: list[int]) -> str:
        """Language model: word ids as text, the chapter's <eos> as a line break."""
        eos = self.task_state["eos"]
        joined = " ".join(self.vocab.itos[i] for i in ids)
        return joined.replace(f" {eos}", ".\n").replace("\n ", "\n").strip()

    def _continue(self, prompt: str, opts: GenerationConfig) -> list[str]:
        """Language model: the prompt followed by its continuations (the chapter's <eos> as a line break)."""
        ids, rows, _ = self.continuation_ids(prompt, opts)
        return [self.words_text(ids.tolist() + row) for row in rows.tolist()]

    def validation_batch(self, indices: list[int]):
        """The checkpoint's pair task, rebuilt from its saved config (same seed, same data; see
        seq2seq.tasks.task_from_saved_config), and the batch (src, lengths, tgt) of those validation
        examples, on this model's device."""
        node = self.config.get("task") if isinstance(self.config, dict) else None
        task = task_from_saved_config(node, f"{self.path}: config.task")
        if not hasattr(task, "batch"):
            raise DataError("validation examples by index need a seq2seq or captioning task, not a language model")
        n = len(task.tokenized["val"])
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise DataError(f"index {bad[0]}: the validation set has examples 0..{n - 1}")
        return task, tuple(None if t is None else t.to(self.device) for t in task.batch("val", indices))

    def validation_answer(self, index: int) -> tuple[str, str]:
        """Greedy output for validation example `index` of the checkpoint's task, and the reference."""
        node = self.config.get("task") if isinstance(self.config, dict) else None
        task = task_from_saved_config(node, f"{self.path}: config.task")
        if hasattr(task, "val_questions"):  # fixed-width questions (addition, dates): the question's text
            n = len(task.val_questions)
            if not 0 <= index < n:
                raise DataError(f"index {index}: the validation set has examples 0..{n - 1}")
            reference = task.vocab.decode(task.t_val[index, 1:].tolist()).strip()
            return self.generate(task.val_questions[index].strip()), reference
        task, (src, lengths, _) = self.validation_batch([index])
        ids = self.module.generate(src, task.codec.start_id, task.codec.steps, lengths=lengths)[0].tolist()
        reference = task.tokenized["val"][index][1]
        return task.codec.decode(ids), text.detokenize(reference, task.codec.mode)
