"""Serving without PyTorch: a model exported to ONNX (`seq2seq-export ... format=onnx`) and a runner that
decodes with onnxruntime and numpy alone.

The folder holds the shared folder's config.json and generation_config.json (seq2seq.inference.pretrained) and:

    seq2seq models (fixed-width questions, such as addition):
      encoder.onnx        src (B, S) int64 -> the memory every step reads, and the decoder's first state
      decoder_step.onnx   token (B, 1) int64, the memory, the state -> logits (B, V), the state
                          (recurrent: memory states (B, S, H) and summary (B, H), state an LSTM's h and c or a
                          GRU's h; Transformer: memory each layer's keys and values of the source, state each
                          layer's key/value cache (L, B, K, t, D/K), empty at first)
    language models:
      step.onnx           tokens (B, T) int64, the state -> logits (B, T, V), the state (L, B, H each; the
                          Transformer LM's key/value cache, from zeros of t = 0)

The graphs and their signature are the model's (`onnx_export`, seq2seq.models.export); config.json's "onnx"
says which graph is which and what the state is, so the runner drives any of them alike.

    from seq2seq.inference.serving import OnnxModel
    model = OnnxModel("peeky-addition-onnx")
    model.generate(["16+75", "582+84"])                       # greedy, as seq2seq.load(...).generate
    lm = OnnxModel("rnnlm-onnx")
    lm.generate("the market", strategy="sample", max_new_tokens=20, seed=1)

Greedy answers equal PyTorch's; sampling draws from the same distributions with numpy's generator, so
a seed fixes the samples of this runner, not PyTorch's. Beam search stays with the PyTorch API.
"""

import math
from pathlib import Path

import numpy as np

from seq2seq.core import compat, decoding
from seq2seq.core.decoding import MAX_NEW_TOKENS
from seq2seq.core.errors import CheckpointError, ConfigError, DataError
from seq2seq.core.files import read_json
from seq2seq.data.addition import START
from seq2seq.data.questions import check_question, check_texts
from seq2seq.inference import find


def export(path, out) -> Path:
    """Write the shared folder of the checkpoint at `path` (seq2seq.inference.pretrained) into `out`, with the
    ONNX graphs its model declares (`onnx_export`, seq2seq.models.export) beside it and their signature in
    config.json, all in one staged folder: it loads with seq2seq.load, and with OnnxModel without PyTorch."""
    import warnings

    import torch

    from seq2seq.inference import pretrained
    from seq2seq.tasks.codec import codec_from_state

    source, _ = find.find(path, "best.pt")
    module, checkpoint = pretrained.read_model(source)
    codec = codec_from_state(checkpoint["task"])
    if module.family == "captioner" or getattr(codec, "eos_id", None) is not None:
        kind = "an image captioner" if module.family == "captioner" else "a variable-length (pairs) model"
        raise ConfigError(f"format=onnx exports fixed-width seq2seq models (addition) and language models, not {kind}")
    if not hasattr(module, "onnx_export"):
        raise ConfigError(f"format=onnx: a {type(module).__name__} declares no ONNX graphs (onnx_export)")
    exported = module.onnx_export(codec.width) if module.family == "seq2seq" else module.onnx_export()

    def write_graphs(folder: Path) -> None:
        for graph in exported.graphs:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the TorchScript exporter's notes on recurrent batch sizes
                names = {"input_names": graph.input_names, "output_names": graph.output_names}
                torch.onnx.export(
                    graph.module.eval(),
                    graph.inputs,
                    str(folder / graph.file),
                    **names,
                    dynamic_axes=graph.dynamic_axes,
                    dynamo=False,
                    keep_initializers_as_inputs=False,
                )

    return pretrained.save_loaded(source, module, checkpoint, out, onnx=(exported.signature, write_graphs))


# What the runner decodes (beam search and the rest need the PyTorch API).
RUNNER_STRATEGIES = ("greedy", "sample")
NOT_IN_THE_RUNNER = ("repetition_penalty", "num_samples", "top_p")
MAX_SECONDS = 60.0  # one call of a graph (a decoding step of a batch), by default
MAX_STATE_ELEMENTS = 2**28  # of one state tensor of one row, as the signature's shapes declare (1 GiB of floats)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class OnnxModel:
    """An exported folder run by onnxruntime: `generate` takes text, returns text, as the PyTorch API."""

    def __init__(self, folder: str | Path, threads: int | None = None, max_seconds: float = MAX_SECONDS):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError(
                "the ONNX runner needs onnxruntime: pip install '.[onnx]' in the project's folder"
            ) from None
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"{folder}: not an exported ONNX folder (no config.json)")
        config = read_json(folder / "config.json", "config")
        if not isinstance(config, dict) or config.get("format") != "seq2seq-pretrained":
            raise CheckpointError(f"{folder}/config.json: not a seq2seq model folder (no format 'seq2seq-pretrained')")
        self.family = config.get("family")
        if self.family not in ("seq2seq", "lm"):
            raise CheckpointError(f"{folder}/config.json: family {str(self.family)[:40]!r} has no ONNX runner")
        self.signature = check_signature(config.get("onnx", compat.old_onnx_signature(self.family)), folder)
        graphs = [g for g in (self.signature["encoder"], self.signature["step"]) if g]
        if not all((folder / g).is_file() for g in graphs):
            raise CheckpointError(f"{folder}: not an exported ONNX folder (no {' and '.join(graphs)})")
        generation = folder / "generation_config.json"
        self.defaults = read_json(generation, "generation config") if generation.exists() else {}
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
        for graph in graphs:
            check_graph(folder / graph)
        bounded_memory(ort)
        options.add_session_config_entry("session.use_env_allocators", "1")  # the bounded arena below
        try:
            # Constant folding computes at load, outside the bounded arena: a small file could ask for gigabytes.
            self.sessions = [ort.InferenceSession(str(folder / g), options, providers=["CPUExecutionProvider"],
                                                 disabled_optimizers=["ConstantFolding"]) for g in graphs]  # fmt: skip
        except Exception as e:  # onnxruntime's own refusal of a damaged or foreign graph
            raise CheckpointError(
                f"{folder}: a graph onnxruntime cannot load ({str(e).splitlines()[0][:120]})"
            ) from None
        self.folder, self.max_seconds, self.ort = folder, max_seconds, ort
        shape = self.sessions[-1].get_outputs()[0].shape
        if not isinstance(shape, list) or len(shape) < 2:
            raise CheckpointError(f"{folder}: the step graph's first output is not logits over the vocabulary")
        outputs = shape[-1]  # V, the vocabulary the graphs score
        if isinstance(outputs, int) and outputs != len(self.itos):
            raise CheckpointError(f"{folder}: the graphs score {outputs} tokens, the vocabulary has {len(self.itos)}")
        self.check_names()
        if self.family == "seq2seq":
            self.width, self.reverse = task["question_width"], task["reverse"]
            self.steps = task["answer_width"] - 1
            digits = task.get("number_digits")
            self.number_digits = digits if isinstance(digits, int) and digits > 0 else None
            self.question_form = compat.question_form(self.itos, task.get("question_form"))
            if not (1 <= self.width <= 1000 and 1 <= self.steps <= MAX_NEW_TOKENS) or START not in self.stoi:
                raise CheckpointError(f"{folder}/config.json: question and answer widths out of range, or no {START!r}")
        else:
            self.eos = task["eos"]
            if self.signature["initial"] == "graph":  # an export of 0.4: the state's shape is the graph's
                declared = {i.name: i.shape for i in self.sessions[0].get_inputs()}
                self.signature["initial"] = {n: ["B" if d == "B" else d for d in declared.get(n, [])]
                                             for n in self.signature["state"]}  # fmt: skip
            for name, shape in self.signature["initial"].items():  # (L, B, H), or a cache's (L, B, K, 0, D/K)
                if shape.count("B") != 1 or not all(isinstance(d, int) or d == "B" for d in shape):
                    raise CheckpointError(f"{folder}: the state {name} has no batch dimension B")

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

    def check_names(self) -> None:
        """The graphs' own input and output names are the signature's: tensors are fed and read by name, so a
        signature that swaps or renames them is refused, never fed keys as values."""
        signature = self.signature
        reads = {"seq2seq": {"token", *signature["memory"], *signature["state"]}, "lm": {"tokens", *signature["state"]}}
        step = [i.name for i in self.sessions[-1].get_inputs()]
        if not set(step) <= reads[self.family]:  # (the exporter drops inputs a decoder does not read)
            raise CheckpointError(f"{self.folder}: the step graph reads {step[:8]}, its signature names "
                                  f"{sorted(reads[self.family])[:8]}")  # fmt: skip
        if self.family == "seq2seq" and signature["initial"] == "encoder":
            gives = [o.name for o in self.sessions[0].get_outputs()]
            if gives != [*signature["memory"], *signature["state"]]:
                raise CheckpointError(f"{self.folder}: the encoder graph gives {gives[:8]}, its signature names "
                                      f"{[*signature['memory'], *signature['state']][:8]}")  # fmt: skip

    def run(self, session, feed: dict):
        """One call of a graph, stopped (an error) when it runs past max_seconds: onnxruntime checks the stop
        between operators, so a call ends within max_seconds and the one operator running then."""
        options = self.ort.RunOptions()
        WATCHDOG.watch(options, self.max_seconds)
        try:
            return session.run(None, feed, options)
        except Exception as e:  # graphs that do not fit each other or the config, or ask for more than MEMORY
            if options.terminate:
                raise CheckpointError(f"{self.folder}: one call of its graphs ran past {self.max_seconds:g} s and "
                                      "was stopped (OnnxModel(..., max_seconds=) allows more)") from None  # fmt: skip
            raise CheckpointError(f"{self.folder}: the graphs do not fit ({str(e).splitlines()[0][:160]})") from None
        finally:
            WATCHDOG.watch(None, 0)

    def answers(self, texts: list[str], max_new_tokens: int, skip_ids, pick) -> list[str]:
        encoder, step = self.sessions
        signature = self.signature
        outputs = self.run(encoder, {"src": self.encode(texts)})
        memory = dict(zip(signature["memory"], outputs, strict=False))
        if signature["initial"] == "encoder":
            state = outputs[len(memory) :]
            if len(memory) != len(signature["memory"]) or len(state) != len(signature["state"]):
                raise CheckpointError(f"{self.folder}: the encoder graph gives {len(outputs)} outputs, its signature "
                                      f"{len(signature['memory']) + len(signature['state'])}")  # fmt: skip
        else:  # an export of 0.4 ("summary"): the decoder starts from the encoder's summary, an LSTM's cell zero
            state = compat.old_onnx_initial_state(memory["summary"])
        token = np.full((len(texts), 1), self.stoi[START], dtype=np.int64)
        out = []
        needs = {i.name for i in step.get_inputs()}  # the exporter drops inputs a decoder does not read
        for _ in range(max_new_tokens):
            feed = {"token": token, **memory, **dict(zip(signature["state"], state, strict=True))}
            logits, state = self.step_outputs(self.run(step, {k: v for k, v in feed.items() if k in needs}))
            token = self.choose(logits, skip_ids, **pick)[:, None].astype(np.int64)
            out.append(token[:, 0])
        ids = np.stack(out, axis=1)  # (N, max_new_tokens)
        return ["".join(self.itos[i] for i in row).rstrip() for row in ids.tolist()]

    def next_word_probs(self, words: list[str]) -> np.ndarray:
        """The language model's distribution (V,) of the word after `words`."""
        logits, _ = self.run_lm(np.array([[self.stoi[w] for w in words]], dtype=np.int64), None)
        return softmax(logits[0, -1].astype(np.float64))

    def run_lm(self, tokens: np.ndarray, state):
        """One step of a language model: logits (B, T, V) and the state; None starts from zeros."""
        if state is None:
            shapes = self.signature["initial"]
            state = [np.zeros([tokens.shape[0] if d == "B" else d for d in shapes[n]], dtype=np.float32)
                     for n in self.signature["state"]]  # fmt: skip
        feed = {"tokens": tokens, **dict(zip(self.signature["state"], state, strict=True))}
        return self.step_outputs(self.run(self.sessions[0], feed))

    def step_outputs(self, outputs: list) -> tuple:
        """A step's logits and state, as many state tensors as the signature names."""
        if len(outputs) != 1 + len(self.signature["state"]):
            raise CheckpointError(f"{self.folder}: the step graph gives {len(outputs)} outputs, its signature "
                                  f"{1 + len(self.signature['state'])}")  # fmt: skip
        if not np.isfinite(outputs[0]).all():  # a graph of broken weights answers nothing, never silently ""
            raise CheckpointError(f"{self.folder}: the step graph gives NaN or infinite logits")
        return outputs[0], outputs[1:]

    def continue_prompt(self, prompt: str, max_new_tokens: int, skip_ids, pick) -> str:
        words = prompt.split()
        unknown = [w for w in words if w not in self.stoi]
        if not words or unknown:
            raise DataError(f"prompt words {unknown[:5]} are not in the vocabulary" if words else "the prompt is empty")
        logits, state = self.run_lm(np.array([[self.stoi[w] for w in words]], dtype=np.int64), None)
        picked = []
        for t in range(max_new_tokens):
            token = self.choose(logits[:, -1], skip_ids, **pick)
            picked.append(int(token[0]))
            if t + 1 < max_new_tokens:
                logits, state = self.run_lm(token[:, None].astype(np.int64), state)
        joined = " ".join(words + [self.itos[i] for i in picked])
        return joined.replace(f" {self.eos}", ".\n").replace("\n ", "\n").strip()


def check_signature(signature, folder: Path) -> dict:
    """config.json's "onnx" (seq2seq.models.export), checked: graph files by plain name, the names of the memory
    and the state, where the first state comes from."""
    where = f"{folder}/config.json: onnx"
    if not isinstance(signature, dict) or set(signature) != {"encoder", "step", "memory", "state", "initial"}:
        raise CheckpointError(f"{where} holds encoder, step, memory, state and initial, nothing else")
    graphs = [signature["step"], *([signature["encoder"]] if signature["encoder"] is not None else [])]
    if not all(isinstance(g, str) and g.endswith(".onnx") and g == Path(g).name and not g.startswith(".")
               for g in graphs):  # fmt: skip
        raise CheckpointError(f"{where}: graphs are .onnx files of the folder, named plainly")
    names = [*signature["memory"], *signature["state"]] if isinstance(signature["memory"], list) and isinstance(
        signature["state"], list) else None  # fmt: skip
    if not names or not all(isinstance(n, str) and n.isidentifier() and len(n) <= 40 for n in names) or len(
            set(names)) != len(names) or len(signature["state"]) > 8:  # fmt: skip
        raise CheckpointError(f"{where}: memory and state are lists of distinct names")
    initial = signature["initial"]
    shapes_ok = isinstance(initial, dict) and set(initial) == set(signature["state"]) and all(
        isinstance(shape, list) and len(shape) <= 8 and all(d == "B" or (isinstance(d, int) and not isinstance(
            d, bool) and 0 <= d <= 1 << 16) for d in shape) for shape in initial.values())  # fmt: skip
    if initial not in ("encoder", "summary", "graph") and not shapes_ok:
        raise CheckpointError(f"{where}: initial is 'encoder' or the shapes of each state's zeros")
    if shapes_ok and any(math.prod(d for d in shape if d != "B") > MAX_STATE_ELEMENTS for shape in initial.values()):
        raise CheckpointError(f"{where}: a state of more than {MAX_STATE_ELEMENTS:,} values a row")
    if initial == "summary" and "summary" not in signature["memory"]:
        raise CheckpointError(f"{where}: initial 'summary' (an export of 0.4) needs a memory named summary")
    if (signature["encoder"] is None) != (initial not in ("encoder", "summary")):
        raise CheckpointError(f"{where}: an encoder gives the first state; without one, zeros do")
    return signature


# What a graph of this project is made of: the operators its exports use (every family, decoder and cell;
# tests/test_sharing.py exports each and checks them against this list; Erf, Pow and Sub are what GELU and
# layer norms become at the opsets of older PyTorch exporters). No control flow (Loop, Scan, If),
# no function, no other domain: a graph's work is bounded by its operators and their sizes.
OPERATORS = frozenset({"Add", "Cast", "Concat", "Constant", "ConstantOfShape", "Cos", "Div", "Equal", "Erf", "Expand",
                       "Flatten", "GRU", "Gather", "Gelu", "Gemm", "Identity", "IsNaN", "LSTM", "LayerNormalization",
                       "LessOrEqual", "MatMul", "Mod", "Mul", "Pow", "RNN", "Range", "Relu", "Reshape", "Shape", "Sin",
                       "Slice", "Softmax", "Sqrt", "Squeeze", "Sub", "Transpose", "Unsqueeze", "Where"})  # fmt: skip
MAX_GRAPH_BYTES = 2**31  # protobuf's own limit
MAX_NODES = 10_000
MAX_ELEMENTS = 2**31  # of one tensor in the file
MEMORY = 2 * 2**30  # bytes the runner's graphs may allocate, all sessions together (onnxruntime's arena)


def check_graph(path: Path) -> None:
    """An ONNX graph read as data before onnxruntime loads it, refused in one line unless: a regular file of at
    most MAX_GRAPH_BYTES, of the default domain's OPERATORS only (no subgraph, no function), every tensor it holds
    (weights, constants) in the file itself and of the size its dimensions declare. What it computes at run
    time is bounded by MEMORY (`bounded_memory`): a small file cannot ask for gigabytes."""
    import onnx

    where = f"{path.parent.name}/{path.name}"
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_GRAPH_BYTES:
        raise CheckpointError(f"{where}: not a regular file of at most {MAX_GRAPH_BYTES:,} bytes")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # not a protobuf, truncated, ...
        raise CheckpointError(f"{where}: not an ONNX graph ({str(e).splitlines()[0][:100] if str(e) else e})") from None
    graph = model.graph
    if model.functions or any(o.domain not in ("", "ai.onnx") for o in model.opset_import):
        raise CheckpointError(f"{where}: functions or operators of another domain than ONNX's own")
    if len(graph.node) > MAX_NODES or graph.sparse_initializer:
        raise CheckpointError(f"{where}: more than {MAX_NODES:,} operators, or sparse tensors")
    tensors = list(graph.initializer)
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in OPERATORS:
            raise CheckpointError(f"{where}: operator {node.op_type[:40]!r} is not one a model here exports")
        for attribute in node.attribute:
            if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise CheckpointError(f"{where}: {node.op_type} holds a subgraph")
            if attribute.type == onnx.AttributeProto.SPARSE_TENSOR:
                raise CheckpointError(f"{where}: {node.op_type} holds a sparse tensor")
            tensors += [attribute.t] if attribute.type == onnx.AttributeProto.TENSOR else list(attribute.tensors)
    for tensor in tensors:
        check_tensor_proto(tensor, where)


def check_tensor_proto(tensor, where: str) -> None:
    """A tensor of the file holds, in the file, exactly the data its dimensions declare."""
    import math

    import onnx

    if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
        raise CheckpointError(f"{where}: tensor {tensor.name[:40]!r} keeps its data outside the file")
    elements = math.prod(tensor.dims) if all(d >= 0 for d in tensor.dims) else -1
    if not 0 <= elements <= MAX_ELEMENTS:
        raise CheckpointError(f"{where}: tensor {tensor.name[:40]!r} declares dimensions {list(tensor.dims)[:8]}")
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{where}: tensor {tensor.name[:40]!r} of an unknown type") from None
    fields = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")
    held = len(tensor.raw_data) // itemsize if tensor.raw_data else sum(len(getattr(tensor, f)) for f in fields)
    if held != elements:
        raise CheckpointError(f"{where}: tensor {tensor.name[:40]!r} declares {elements:,} values and holds {held:,}")


def bounded_memory(ort) -> None:
    """onnxruntime's CPU memory for every session of this process from one arena of at most MEMORY bytes: a
    graph asking for more fails at once (a one-line error), instead of taking the machine's memory."""
    global ARENA
    if ARENA:
        return
    ort.set_default_logger_severity(4)  # its errors reach the user as ours, in one line
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    try:
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(MEMORY, -1, -1, -1))
    except Exception as e:  # registered already by this process's earlier runner
        if "already" not in str(e).lower():
            raise
    ARENA = True


ARENA = False  # whether this process registered the bounded arena


class Watchdog:
    """One thread for every runner of the process: it stops each graph call being watched (its RunOptions'
    terminate) once its deadline has passed, a call of each thread at a time; a call costs two assignments,
    not a thread."""

    def __init__(self):
        self.calls = {}  # thread -> (RunOptions, deadline) of the call it runs now
        self.thread = None

    def watch(self, options, seconds: float) -> None:
        import threading
        import time

        if options is None:
            self.calls.pop(threading.get_ident(), None)
            return
        self.calls[threading.get_ident()] = (options, time.monotonic() + seconds)
        if self.thread is None:
            self.thread = threading.Thread(target=self.loop, name="onnx-watchdog", daemon=True)
            self.thread.start()

    def loop(self) -> None:
        import time

        while True:
            time.sleep(0.1)
            for options, deadline in list(self.calls.values()):
                if time.monotonic() > deadline:
                    options.terminate = True


WATCHDOG = Watchdog()
