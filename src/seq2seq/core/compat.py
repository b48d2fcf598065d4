"""Everything that keeps files and command lines of earlier versions working, in one place: when that
support ends, this module and its callers' one-line uses of it go.

- checkpoints of format version 1 (the model named by its import path), of models renamed since, of
  task kinds renamed since, and task states without the fields added since;
- runs made before a config key existed, resumed or rebuilt with the value that reproduces them;
- the command lines' old spellings (`model=peeky_seq2seq`, `num_words=`, `decode.beam_size=`, ...),
  rewritten with a note.

A leaf module: nothing here imports the rest of the project but its errors.
"""

import logging

from omegaconf import DictConfig, OmegaConf

from seq2seq.core.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

# --- checkpoints ---------------------------------------------------------------------------------------

V1_PREFIX = "seq2seq.models."  # format version 1 named the model class by its import path

# Model names before the decoder was an argument: (the name now, the arguments it adds).
RENAMED = {"PeekySeq2seq": ("Seq2seq", {"decoder": "peeky"}), "AttentionSeq2seq": ("Seq2seq", {"decoder": "attention"})}

OLD_KINDS = {"pairs": "fixed_width", "text_pairs": "token_pairs"}  # task kinds of seq2seq 0.2 and earlier

# Task-state fields added in 0.3 (number_digits, context_turns: only when above 0) and 0.4
# (question_form): a checkpoint without them is not different, it is older.
OPTIONAL_FIELDS = ("number_digits", "context_turns", "question_form")


def upgrade_v1(checkpoint: dict, path, known: set[str], version: int) -> dict:
    """A version 1 checkpoint in today's layout: `{_target_: seq2seq.models.X, **args}` becomes
    `{name: X, args}` when X is a model name here (`known`) or one renamed since, looked up as a string,
    never imported."""
    spec = checkpoint.get("model")
    if not isinstance(spec, dict):
        raise CheckpointError(f"{path}: model spec is {type(spec).__name__}, not a mapping")
    args = dict(spec)
    target = args.pop("_target_", None)
    name = target[len(V1_PREFIX) :] if isinstance(target, str) and target.startswith(V1_PREFIX) else None
    if name not in known and name not in RENAMED:
        raise CheckpointError(f"{path}: model {str(target)[:60]!r} is not one of {', '.join(sorted(known))}")
    return {**checkpoint, "model": {"name": name, "args": args}, "version": version}


def current_model(name: str, args: dict) -> tuple[str, dict]:
    """A model's name and arguments in today's terms (PeekySeq2seq -> Seq2seq with decoder="peeky")."""
    if name in RENAMED:
        name, added = RENAMED[name]
        args = {**args, **added}
    return name, args


def current_task(task):
    """A saved task state with its kind in today's terms."""
    if isinstance(task, dict) and task.get("kind") in OLD_KINDS:
        return {**task, "kind": OLD_KINDS[task["kind"]]}
    return task


def question_form(vocab, saved: str | None) -> str:
    """A fixed-width model's question form: what its task state says, or for a checkpoint of 0.3 (which did
    not record it) "a+b" when its vocabulary is an addition file's."""
    if saved is not None:
        return saved
    return "a+b" if set(vocab) <= set("0123456789+ _") and "+" in vocab else ""


# Temporary checkpoint files of 0.2 and 0.3 (`last.pt.tmp`): removed at a run's start as today's are.
OLD_TMP_PATTERNS = ("last.pt.tmp", "best.pt.tmp")


# --- configs of earlier runs ---------------------------------------------------------------------------

# Keys added after seq2seq 0.2, with the value that reproduces a run made before they existed: resuming
# such a run, or rebuilding its task from a checkpoint, keeps the data it was trained on.
ADDED_KEYS = {"task.split_seed": None, "task.drop_last": False, "model.cell": "lstm"}


def added_task_values(values: dict, declared) -> dict:
    """A saved task config with the task keys it predates set to the values that reproduce it."""
    out = dict(values)
    for key, legacy in ADDED_KEYS.items():
        name = key.removeprefix("task.")
        if name not in out and name in declared:
            out[name] = legacy
    return out


def keep_old_behaviour(saved, cfg: DictConfig) -> None:
    """A run of an earlier version resumes as it was trained. Its saved config names its model as today
    (`PeekySeq2seq` is `Seq2seq` with decoder=peeky), so a config that builds another model is still
    refused; keys it did not have take the value that reproduces it (ADDED_KEYS), in `cfg` itself, so
    the rebuilt task and the saved config agree."""
    if not isinstance(saved, dict):
        return
    model = saved.get("model")
    if isinstance(model, dict) and isinstance(model.get("_target_"), str):  # a model renamed since
        name = model["_target_"].removeprefix(V1_PREFIX)
        if name in RENAMED:
            name, args = current_model(name, {})
            model.update({"_target_": f"{V1_PREFIX}{name}", **args})
        if name == "Seq2seq":
            model.setdefault("decoder", "plain")
    for key, legacy in ADDED_KEYS.items():
        missing = OmegaConf.select(OmegaConf.create(saved), key, default="<unset>") == "<unset>"
        if missing and OmegaConf.select(cfg, key, default="<unset>") != "<unset>":
            log.info("resuming a run made before %s existed: keeping its behaviour (%s=%s)", key, key, legacy)
            OmegaConf.update(cfg, key, legacy)
            saved_node = saved
            *parents, name = key.split(".")
            for part in parents:
                saved_node = saved_node.setdefault(part, {})
            saved_node[name] = legacy


def old_auto_precision(device_type: str) -> str:
    """What trainer.precision=auto chose before runs recorded their choice: bf16 on CPUs listing amx_bf16
    (where the bf16 step runs), fp32 elsewhere. A run of that time resumes in the precision it trained in."""
    from pathlib import Path

    from seq2seq.core.device import bf16_missing

    try:
        amx = "amx_bf16" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        amx = False
    return "bf16" if device_type == "cpu" and amx and not bf16_missing("cpu") else "fp32"


def state_from_log(log, running: bool) -> str:
    """The state of a run made before runs wrote status.json, read from its train.log (a regular file only,
    its last 64 KiB): finished (the summary line), running (`running`: its lock's holder is alive), failed (an
    error line), interrupted otherwise (a log that cannot be read, too)."""
    import os
    import stat

    tail = b""
    try:
        fd = os.open(log, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        fd = None
    if fd is not None:
        try:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode):
                os.lseek(fd, max(0, info.st_size - 65536), os.SEEK_SET)
                tail = os.read(fd, 65536)
        finally:
            os.close(fd)
    if b" - done: best " in tail[-4096:]:
        return "finished"
    if running:
        return "running"
    return "failed" if b"][ERROR] - " in tail else "interrupted"


def events_without_record(record) -> None:
    """Runs of 0.4 and earlier kept no record of their event files: every one in the folder is taken as theirs
    (None), as those versions did. A run of today writes its record when its writer starts."""
    return None


# --- exported folders ----------------------------------------------------------------------------------


def old_onnx_signature(family) -> dict:
    """The graphs of an ONNX export of 0.4 (config.json without "onnx"): an LSTM's h and c, the seq2seq decoder
    starting from the encoder's summary ("summary"), the language model from zeros of its graph's shapes."""
    if family == "seq2seq":
        return {"encoder": "encoder.onnx", "step": "decoder_step.onnx", "memory": ["states", "summary"],
                "state": ["h", "c"], "initial": "summary"}  # fmt: skip
    return {"encoder": None, "step": "step.onnx", "memory": [], "state": ["h", "c"], "initial": "graph"}


def old_onnx_initial_state(summary):
    """The first state of an export of 0.4's LSTM decoder: h the encoder's summary (1, N, H), c zeros."""
    import numpy as np

    h = summary[None].copy()
    return [h, np.zeros_like(h)]


# --- command lines -------------------------------------------------------------------------------------

# Model choices of 0.2, when each decoder had its model config: the decoder is a model argument now.
OLD_MODEL_CHOICES = {"model=peeky_seq2seq": "peeky", "model=attention_seq2seq": "attention"}


def translate_model_choice(args: list[str]) -> tuple[list[str], list[str]]:
    """`model=peeky_seq2seq` -> `model=seq2seq model.decoder=peeky`, and a note for each. A key override
    wins over an experiment's own model.decoder wherever it stands, as the old model choice did."""
    out, notes = [], []
    for arg in args:
        if arg in OLD_MODEL_CHOICES:
            decoder = f"model.decoder={OLD_MODEL_CHOICES[arg]}"
            notes.append(f"{arg} is now model=seq2seq {decoder}")
            out += ["model=seq2seq", decoder]
        else:
            out.append(arg)
    return out, notes


# Decoding options' spellings before the shared options (generate, chat).
OLD_DECODING_KEYS = {
    "num_words": "max_new_tokens",
    "decode.max_length": "max_new_tokens",
    "decode.strategy": "strategy",
    "decode.beam_size": "beam_size",
    "decode.n_best": "n_best",
    "decode.length_penalty": "length_penalty",
    "decode.temperature": "temperature",
    "decode.top_k": "top_k",
    "decode.top_p": "top_p",
}
OLD_DECODING_FLAGS = {"greedy": "strategy=greedy", "decode.skip_unk": 'skip=["<unk>"]'}


def translate_decoding(args: list[str]) -> tuple[list[str], list[str]]:
    """Command-line overrides with old decoding option names rewritten to the shared ones, and a note for each."""
    out, notes = [], []
    given = {arg.partition("=")[0].lstrip("+") for arg in args}
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and key in OLD_DECODING_KEYS and OLD_DECODING_KEYS[key] in given:
            now = OLD_DECODING_KEYS[key]
            raise ConfigError(f"{key}= and {now}= are the same option: give {now}= only")
        if eq and key in OLD_DECODING_KEYS:
            out.append(f"{OLD_DECODING_KEYS[key]}={value}")
            notes.append(f"{key}= is now {OLD_DECODING_KEYS[key]}=")
        elif eq and key in OLD_DECODING_FLAGS:
            if value.strip().lower() == "true":
                out.append(OLD_DECODING_FLAGS[key])
            notes.append(f"{key}=true is now {OLD_DECODING_FLAGS[key]}")
        else:
            out.append(arg)
    # The old decode.beam_size / n_best / length_penalty meant a beam search by themselves.
    keys = {arg.partition("=")[0] for arg in out}
    if {"beam_size", "n_best", "length_penalty"} & keys and "strategy" not in keys and notes:
        out.append("strategy=beam")
        notes.append("a beam option now needs strategy=beam (added)")
    return out, notes
