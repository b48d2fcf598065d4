"""The decoding options shared by `seq2seq.generate`, `seq2seq.chat` and the Python API (`seq2seq.load`).

One schema, one set of defaults. `None` means "the default": the model family's for `strategy`,
`max_new_tokens` and `skip`, the strategy's for the rest. An option given for a strategy it does not
apply to is refused, never ignored.
"""

import math
from dataclasses import dataclass, fields

from seq2seq.errors import ConfigError

STRATEGIES = ("greedy", "beam", "sample")
# The chapter's skip list for language models: numbers, unknown words and '$' are never emitted.
CHAPTER_SKIP = ["N", "<unk>", "$"]


@dataclass
class DecodeOptions:
    strategy: str | None = None  # greedy | beam | sample; default: sample for language models, greedy for seq2seq
    max_new_tokens: int | None = None  # default: 100 words (language models), the longest training answer (seq2seq)
    skip: list[str] | None = None  # tokens never emitted; default: [N, <unk>, $] (language models), none (seq2seq)
    repetition_penalty: float | None = None  # > 1 makes tokens already generated less likely; default 1.0 (off)
    beam_size: int | None = None  # beam: beams per input (default 5)
    n_best: int | None = None  # beam: outputs per input, best first (default 1)
    length_penalty: float | None = None  # beam: scores divided by length ** length_penalty (default 1.0)
    num_samples: int | None = None  # sample: independent samples per input (default 1)
    temperature: float | None = None  # sample: below 1 sharpens the distribution (default 1.0)
    top_k: int | None = None  # sample: only the k likeliest tokens (default: all)
    top_p: float | None = None  # sample: only the smallest set of tokens holding this probability mass (default: all)
    seed: int | None = None  # sample: fixes the samples (default 0)


NAMES = tuple(f.name for f in fields(DecodeOptions))
ONLY_FOR = {
    "beam_size": "beam",
    "n_best": "beam",
    "length_penalty": "beam",
    "num_samples": "sample",
    "temperature": "sample",
    "top_k": "sample",
    "top_p": "sample",
    "seed": "sample",
}
DEFAULTS = {
    "repetition_penalty": 1.0,
    "beam_size": 5,
    "n_best": 1,
    "length_penalty": 1.0,
    "num_samples": 1,
    "temperature": 1.0,
    "seed": 0,
}
FAMILY_DEFAULTS = {
    "lm": {"strategy": "sample", "max_new_tokens": 100, "skip": CHAPTER_SKIP},
    "seq2seq": {"strategy": "greedy", "max_new_tokens": None, "skip": []},
}
FAMILY_DEFAULTS["captioner"] = FAMILY_DEFAULTS["seq2seq"]  # a caption is decoded as an answer is
MAX_NEW_TOKENS = 100_000
RANGES = {
    "max_new_tokens": (lambda v: 1 <= v <= MAX_NEW_TOKENS, f"from 1 to {MAX_NEW_TOKENS:,}"),
    "repetition_penalty": (lambda v: 0 < v <= 100, "in (0, 100]"),
    "beam_size": (lambda v: 1 <= v <= 1000, "from 1 to 1000"),
    "n_best": (lambda v: v >= 1, "at least 1"),
    "length_penalty": (lambda v: -10 <= v <= 10, "in [-10, 10]"),
    "num_samples": (lambda v: 1 <= v <= 10_000, "from 1 to 10,000"),
    # Below 1e-3 the scaled logits overflow; strategy=greedy is the limit of a small temperature.
    "temperature": (lambda v: 1e-3 <= v <= 1e3, "in [0.001, 1000] (strategy=greedy is the zero-temperature limit)"),
    "top_k": (lambda v: v >= 1, "at least 1"),
    "top_p": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "seed": (lambda v: 0 <= v < 2**63, "from 0 to 2**63 - 1"),
}
TYPES = {"strategy": str, "skip": list, **dict.fromkeys(("max_new_tokens", "beam_size", "n_best"), int)}
TYPES.update(dict.fromkeys(("num_samples", "top_k", "seed"), int))
TYPES.update(dict.fromkeys(("repetition_penalty", "length_penalty", "temperature", "top_p"), float))


def check_type(name: str, value) -> None:
    expected = TYPES[name]
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is list:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(f"{name}={value!r}: must be {'a list of words' if expected is list else expected.__name__}")


def resolve(options: dict, family: str, defaults: dict | None = None) -> dict:
    """Every option's value for a model family ("lm", "seq2seq", "captioner"), given the ones set (None = unset).
    Unknown names, wrong types, values out of range and options that do not apply are refused.
    `defaults`: a model's own strategy, max_new_tokens and skip, in place of its family's (a shared
    model's generation_config.json, checked by check_defaults)."""
    unknown = sorted(set(options) - set(NAMES))
    if unknown:
        raise ConfigError(f"unknown decoding option {unknown[0]!r} (options: {', '.join(NAMES)})")
    given = {k: v for k, v in options.items() if v is not None}
    for name, value in given.items():
        check_type(name, value)
    family_defaults = {**FAMILY_DEFAULTS[family], **(defaults or {})}
    strategy = given.get("strategy", family_defaults["strategy"])
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy={strategy!r}: must be one of {', '.join(STRATEGIES)}")
    for name in given:
        if ONLY_FOR.get(name, strategy) != strategy:
            raise ConfigError(
                f"{name} applies to strategy={ONLY_FOR[name]}, not {strategy}: add strategy={ONLY_FOR[name]}"
            )
    for name, value in given.items():
        if name in RANGES and not RANGES[name][0](value):
            raise ConfigError(f"{name}={value!r}: must be {RANGES[name][1]}")
    out = {**dict.fromkeys(NAMES), **DEFAULTS, **family_defaults, **given, "strategy": strategy}
    if strategy == "beam" and out["n_best"] > out["beam_size"]:
        raise ConfigError(f"n_best={out['n_best']} exceeds beam_size={out['beam_size']}")
    out["skip_given"] = "skip" in given  # unknown words are an error only in a list the user gave
    return out


def check_defaults(defaults, where: str) -> dict:
    """A model's own defaults (FAMILY_DEFAULTS' keys: strategy, max_new_tokens, skip), read from a file:
    those keys only, each of its type and range (max_new_tokens may be None: the longest training answer)."""
    if not isinstance(defaults, dict) or not set(defaults) <= {"strategy", "max_new_tokens", "skip"}:
        raise ConfigError(f"{where}: holds strategy, max_new_tokens and skip, nothing else")
    for name, value in defaults.items():
        if value is None and name == "max_new_tokens":
            continue
        try:
            check_type(name, value)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        if name in RANGES and not RANGES[name][0](value):
            raise ConfigError(f"{where}: {name}={value!r} must be {RANGES[name][1]}")
    if defaults.get("strategy", "greedy") not in STRATEGIES:
        raise ConfigError(f"{where}: strategy={str(defaults['strategy'])[:20]!r} is not one of {', '.join(STRATEGIES)}")
    return defaults


# Spellings of the command lines before the shared options: still accepted, with a note.
LEGACY = {
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
LEGACY_FLAGS = {"greedy": "strategy=greedy", "decode.skip_unk": 'skip=["<unk>"]'}


def translate_legacy(args: list[str]) -> tuple[list[str], list[str]]:
    """Command-line overrides with old option names rewritten to the shared ones, and a note for each."""
    out, notes = [], []
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and key in LEGACY:
            out.append(f"{LEGACY[key]}={value}")
            notes.append(f"{key}= is now {LEGACY[key]}=")
        elif eq and key in LEGACY_FLAGS:
            if value.strip().lower() == "true":
                out.append(LEGACY_FLAGS[key])
            notes.append(f"{key}=true is now {LEGACY_FLAGS[key]}")
        else:
            out.append(arg)
    # The old decode.beam_size / n_best / length_penalty meant a beam search by themselves.
    keys = {arg.partition("=")[0] for arg in out}
    if {"beam_size", "n_best", "length_penalty"} & keys and "strategy" not in keys and notes:
        out.append("strategy=beam")
        notes.append("a beam option now needs strategy=beam (added)")
    return out, notes
