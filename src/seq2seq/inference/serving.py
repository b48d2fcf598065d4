"""Serving without PyTorch: a model exported to ONNX (`seq2seq-export ... format=onnx`) and a runner that
decodes with onnxruntime and numpy alone.

The folder holds the shared folder's config.json and generation_config.json (seq2seq.inference.pretrained) and:

    seq2seq models (fixed-width questions, such as addition):
      encoder.onnx        src (B, S) int64 -> states (B, S, H), summary (B, H)
      decoder_step.onnx   token (B, 1) int64, states, summary, h (1, B, H), c (1, B, H)
                          -> logits (B, V), h, c          (one step of the plain, Peeky or attention decoder)
    language models:
      step.onnx           tokens (B, T) int64, h (L, B, H), c (L, B, H) -> logits (B, T, V), h, c

    from seq2seq.inference.serving import OnnxModel
    model = OnnxModel("peeky-addition-onnx")
    model.generate(["16+75", "582+84"])                       # greedy, as seq2seq.load(...).generate
    lm = OnnxModel("rnnlm-onnx")
    lm.generate("the market", strategy="sample", max_new_tokens=20, seed=1)

Greedy answers equal PyTorch's; sampling draws from the same distributions with numpy's generator, so
a seed fixes the samples of this runner, not PyTorch's. Beam search stays with the PyTorch API.
"""

from pathlib import Path

import numpy as np

from seq2seq.core import decoding
from seq2seq.core.decoding import MAX_NEW_TOKENS
from seq2seq.core.errors import CheckpointError, ConfigError, DataError
from seq2seq.core.files import read_json
from seq2seq.data.addition import START
from seq2seq.data.questions import check_question, check_texts, question_form_of
from seq2seq.inference import find

GRAPHS = {"seq2seq": ("encoder.onnx", "decoder_step.onnx"), "lm": ("step.onnx",)}


def export(path, out) -> Path:
    """Write the shared folder of the checkpoint at `path` (seq2seq.inference.pretrained) into `out`, with the ONNX
    graphs beside it: the folder still loads with seq2seq.load, and with OnnxModel without PyTorch."""
    import warnings

    import torch

    from seq2seq.inference import pretrained
    from seq2seq.models.seq2seq import Encoded
    from seq2seq.tasks.codec import codec_from_state

    source, _ = find.find(path, "best.pt")
    module, checkpoint = pretrained.read(source)
    family = module.family
    codec = codec_from_state(checkpoint["task"]) if family != "lm" else None
    if family == "captioner" or (codec is not None and codec.eos_id is not None):
        kind = "an image captioner" if family == "captioner" else "a variable-length (pairs) model"
        raise ConfigError(f"format=onnx exports fixed-width seq2seq models (addition) and language models, not {kind}")
    out = pretrained.save_loaded(source, module, checkpoint, out)

    class Graph(torch.nn.Module):  # the model registered as a submodule: its weights become the graph's
        def __init__(self):
            super().__init__()
            self.model = module

    class EncoderGraph(Graph):
        def forward(self, src):
            enc = self.model.encoder(src)
            return enc.states, enc.summary

    class DecoderStepGraph(Graph):
        def forward(self, token, states, summary, h, c):
            logits, (h, c) = self.model.decoder(token, Encoded(states, summary, None), (h, c))
            return logits[:, -1], h, c

    class LanguageModelGraph(Graph):
        def forward(self, tokens, h, c):
            logits, (h, c) = self.model(tokens, (h, c))
            return logits, h, c

    def save(graph, inputs, names, outputs, axes, file):
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's notes on LSTM batch sizes
            torch.onnx.export(graph.eval(), inputs, str(out / file), input_names=names, output_names=outputs,
                              dynamic_axes=axes, dynamo=False, keep_initializers_as_inputs=False)  # fmt: skip

    B = 2
    if family == "seq2seq":
        H, S = module.decoder.lstm.hidden_size, codec.width
        src = torch.zeros(B, S, dtype=torch.long)
        states, summary = torch.zeros(B, S, H), torch.zeros(B, H)
        h = c = torch.zeros(1, B, H)
        save(EncoderGraph(), (src,), ["src"], ["states", "summary"],
             {"src": {0: "B"}, "states": {0: "B"}, "summary": {0: "B"}}, "encoder.onnx")  # fmt: skip
        token = torch.zeros(B, 1, dtype=torch.long)
        batch = {0: "B"}
        save(DecoderStepGraph(), (token, states, summary, h, c), ["token", "states", "summary", "h", "c"],
             ["logits", "h_out", "c_out"], {"token": batch, "states": batch, "summary": batch, "h": {1: "B"},
             "c": {1: "B"}, "logits": batch, "h_out": {1: "B"}, "c_out": {1: "B"}}, "decoder_step.onnx")  # fmt: skip
    else:
        L, H = module.lstm.num_layers, module.lstm.hidden_size
        tokens, h = torch.zeros(B, 3, dtype=torch.long), torch.zeros(L, B, H)
        save(LanguageModelGraph(), (tokens, h, h.clone()), ["tokens", "h", "c"], ["logits", "h_out", "c_out"],
             {"tokens": {0: "B", 1: "T"}, "h": {1: "B"}, "c": {1: "B"}, "logits": {0: "B", 1: "T"},
              "h_out": {1: "B"}, "c_out": {1: "B"}}, "step.onnx")  # fmt: skip
    return out


# What the runner decodes (beam search and the rest need the PyTorch API).
RUNNER_STRATEGIES = ("greedy", "sample")
NOT_IN_THE_RUNNER = ("repetition_penalty", "num_samples", "top_p")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class OnnxModel:
    """An exported folder run by onnxruntime: `generate` takes text, returns text, as the PyTorch API."""

    def __init__(self, folder: str | Path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("the ONNX runner needs onnxruntime: pip install 'seq2seq[onnx]'") from None
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"{folder}: not an exported ONNX folder (no config.json)")
        config = read_json(folder / "config.json", "config")
        if not isinstance(config, dict) or config.get("format") != "seq2seq-pretrained":
            raise CheckpointError(f"{folder}/config.json: not a seq2seq model folder (no format 'seq2seq-pretrained')")
        self.family = config.get("family")
        if self.family not in GRAPHS or not all((folder / g).is_file() for g in GRAPHS[self.family]):
            raise CheckpointError(f"{folder}: not an exported ONNX folder (no {' and '.join(GRAPHS['seq2seq'])})")
        generation = folder / "generation_config.json"
        self.defaults = read_json(generation, "generation config") if generation.exists() else {}
        if self.family in GRAPHS:
            try:
                decoding.check_defaults(self.defaults, str(generation), self.family)
            except ConfigError as e:
                raise CheckpointError(str(e)) from None
        task = config.get("task")
        fields = {"seq2seq": {"vocab": list, "question_width": int, "answer_width": int, "reverse": bool},
                  "lm": {"vocab": list, "eos": str}}[self.family]  # fmt: skip
        if not isinstance(task, dict) or not all(isinstance(task.get(k), t) for k, t in fields.items()):
            raise CheckpointError(f"{folder}/config.json: task holds no {', '.join(fields)} of their types")
        self.itos = task["vocab"]
        if not all(isinstance(t, str) for t in self.itos) or len(set(self.itos)) != len(self.itos):
            raise CheckpointError(f"{folder}/config.json: the vocabulary is not a list of distinct words")
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.sessions = [ort.InferenceSession(str(folder / g), options, providers=["CPUExecutionProvider"])
                             for g in GRAPHS[self.family]]  # fmt: skip
        except Exception as e:  # onnxruntime's own refusal of a damaged or foreign graph
            raise CheckpointError(
                f"{folder}: a graph onnxruntime cannot load ({str(e).splitlines()[0][:120]})"
            ) from None
        self.folder = folder
        outputs = self.sessions[-1].get_outputs()[0].shape[-1]  # V, the vocabulary the graphs score
        if isinstance(outputs, int) and outputs != len(self.itos):
            raise CheckpointError(f"{folder}: the graphs score {outputs} tokens, the vocabulary has {len(self.itos)}")
        if self.family == "seq2seq":
            self.width, self.reverse = task["question_width"], task["reverse"]
            self.steps = task["answer_width"] - 1
            digits = task.get("number_digits")
            self.number_digits = digits if isinstance(digits, int) and digits > 0 else None
            self.question_form = question_form_of(self.itos, task.get("question_form"))
            if not (1 <= self.width <= 1000 and 1 <= self.steps <= MAX_NEW_TOKENS) or START not in self.stoi:
                raise CheckpointError(f"{folder}/config.json: question and answer widths out of range, or no {START!r}")
        else:
            self.eos = task["eos"]
            shape = self.sessions[0].get_inputs()[1].shape  # h: (L, B, H)
            if len(shape) != 3 or not isinstance(shape[0], int) or not isinstance(shape[2], int):
                raise CheckpointError(f"{folder}: step.onnx is not a language model's step")
            self.layers, self.hidden = shape[0], shape[2]

    def generate(self, inputs, **options):
        """Outputs for one input (a str) or a list of inputs, decoded with the shared options
        (seq2seq.core.decoding.resolve, the folder's generation_config.json as the model's defaults): greedy
        or sample, with max_new_tokens, skip, temperature, top_k and seed."""
        opts = decoding.resolve(options, self.family, self.defaults)
        if opts.strategy not in RUNNER_STRATEGIES:
            raise ConfigError(f"strategy={opts.strategy!r}: the ONNX runner decodes greedy or sample")
        beyond = [name for name in NOT_IN_THE_RUNNER if options.get(name) is not None]
        if beyond:
            raise ConfigError(f"{beyond[0]}: the ONNX runner does not take it (seq2seq.load(...).generate does)")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list | tuple) or not texts or not all(isinstance(t, str) for t in texts):
            raise DataError("generate takes a string or a non-empty list of strings")
        check_texts(list(texts))
        skip_ids = [self.stoi[w] for w in opts.skip if w in self.stoi]
        rng = np.random.default_rng(opts.seed)
        pick = {"greedy": opts.strategy == "greedy", "temperature": opts.temperature, "top_k": opts.top_k, "rng": rng}
        if self.family == "seq2seq":
            outputs = self.answers(texts, opts.max_new_tokens or self.steps, skip_ids, pick)
        else:
            outputs = [self.continue_prompt(t, opts.max_new_tokens, skip_ids, pick) for t in texts]
        return outputs[0] if isinstance(inputs, str) else outputs

    @staticmethod
    def choose(logits: np.ndarray, skip_ids, greedy, temperature, top_k, rng) -> np.ndarray:
        logits = logits.astype(np.float64)
        logits[:, skip_ids] = -np.inf
        if greedy:
            return logits.argmax(axis=-1)
        logits = logits / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
            logits[logits < kth] = -np.inf
        probs = softmax(logits)
        return np.array([rng.choice(len(p), p=p) for p in probs])

    def encode(self, texts: list[str]) -> np.ndarray:
        """As seq2seq.tasks.codec.FixedWidthCodec.encode, with the same checks and messages."""
        rows = []
        for n in range(1, len(texts) + 1):
            text = check_question(texts, n, self.width, self.stoi, self.question_form, self.number_digits)
            row = [self.stoi[ch] for ch in text.ljust(self.width)]
            rows.append(row[::-1] if self.reverse else row)
        return np.array(rows, dtype=np.int64)  # (N, S)

    def run(self, session, feed: dict):
        try:
            return session.run(None, feed)
        except Exception as e:  # graphs that do not fit each other or the config
            raise CheckpointError(f"{self.folder}: the graphs do not fit ({str(e).splitlines()[0][:120]})") from None

    def answers(self, texts: list[str], max_new_tokens: int, skip_ids, pick) -> list[str]:
        encoder, step = self.sessions
        src = self.encode(texts)
        states, summary = self.run(encoder, {"src": src})
        h = summary[None].copy()  # (1, N, H): the decoder starts from the encoder's summary, cell zero
        c = np.zeros_like(h)
        token = np.full((len(texts), 1), self.stoi[START], dtype=np.int64)
        out = []
        needs = {i.name for i in step.get_inputs()}  # the exporter drops inputs a decoder does not read
        for _ in range(max_new_tokens):
            feed = {"token": token, "states": states, "summary": summary, "h": h, "c": c}
            logits, h, c = self.run(step, {k: v for k, v in feed.items() if k in needs})
            token = self.choose(logits, skip_ids, **pick)[:, None].astype(np.int64)
            out.append(token[:, 0])
        ids = np.stack(out, axis=1)  # (N, max_new_tokens)
        return ["".join(self.itos[i] for i in row).rstrip() for row in ids.tolist()]

    def next_word_probs(self, words: list[str]) -> np.ndarray:
        """The language model's distribution (V,) of the word after `words`."""
        logits, _, _ = self.run_lm(np.array([[self.stoi[w] for w in words]], dtype=np.int64), None)
        return softmax(logits[0, -1].astype(np.float64))

    def run_lm(self, tokens: np.ndarray, state):
        if state is None:
            zeros = np.zeros((self.layers, tokens.shape[0], self.hidden), dtype=np.float32)
            state = (zeros, zeros)
        logits, h, c = self.run(self.sessions[0], {"tokens": tokens, "h": state[0], "c": state[1]})
        return logits, h, c

    def continue_prompt(self, prompt: str, max_new_tokens: int, skip_ids, pick) -> str:
        words = prompt.split()
        unknown = [w for w in words if w not in self.stoi]
        if not words or unknown:
            raise DataError(f"prompt words {unknown[:5]} are not in the vocabulary" if words else "the prompt is empty")
        logits, h, c = self.run_lm(np.array([[self.stoi[w] for w in words]], dtype=np.int64), None)
        picked = []
        for t in range(max_new_tokens):
            token = self.choose(logits[:, -1], skip_ids, **pick)
            picked.append(int(token[0]))
            if t + 1 < max_new_tokens:
                logits, h, c = self.run_lm(token[:, None].astype(np.int64), (h, c))
        joined = " ".join(words + [self.itos[i] for i in picked])
        return joined.replace(f" {self.eos}", ".\n").replace("\n ", "\n").strip()
