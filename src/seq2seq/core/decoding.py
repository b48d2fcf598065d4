"""The decoding options shared by `seq2seq.generate`, `seq2seq.chat`, the explorer and the Python API
(`seq2seq.load(...).generate`), declared once: each field of `DecodeOptions` says its type, its range,
the strategy it belongs to and its default (per model family where families differ). Everything else
is derived from these fields: the checks, `--help`, the YAML files (checked against them by the tests)
and the docs' reference.

`resolve` turns the options a user set (None: unset) into one frozen `GenerationConfig` holding every
value, which the decoders (seq2seq.models.sampling, seq2seq.models.beam, the models' `generate` and
`beam_search`, the ONNX runner) take as it is: they have no defaults of their own. An option given for
a strategy it does not apply to is refused, never ignored.
"""

import dataclasses
from dataclasses import dataclass, field, fields

from seq2seq.core.checks import Check, at_most, fits, one_of, type_name
from seq2seq.core.errors import ConfigError

STRATEGIES = ("greedy", "beam", "sample")
# The chapter's skip list for language models: numbers, unknown words and '$' are never emitted.
CHAPTER_SKIP = ("N", "<unk>", "$")
MAX_NEW_TOKENS = 100_000
MAX_FILE_NEW_TOKENS = 1_000  # a model's own default (generation_config.json): a file sets no hour-long default
BUDGET = 2_000_000  # tokens one call may decode, all rows together: inputs x samples or beams x new tokens
WORDS = Check(lambda v: isinstance(v, list | tuple) and all(isinstance(w, str) for w in v), "a list of words")


def option(default, check: Check, help: str, *, strategy: str | None = None, lm=None):
    """A decoding option: its default (`lm`: the language models' where it differs), its range, the strategy it
    belongs to (None: every strategy) and what it means."""
    facts = {
        "default": default,
        "lm": default if lm is None else lm,
        "check": check,
        "strategy": strategy,
        "help": help,
    }
    return field(default=None, metadata=facts)


@dataclass
class DecodeOptions:
    """The options as a user gives them (None: the default); the command lines' schemas extend it."""

    strategy: str | None = option("greedy", one_of(STRATEGIES), "greedy | beam | sample", lm="sample")
    max_new_tokens: int | None = option(
        None, at_most(MAX_NEW_TOKENS, "tokens"), "tokens to generate; seq2seq: the longest training answer", lm=100
    )
    skip: list[str] | None = option((), WORDS, "tokens never emitted, e.g. [<unk>]", lm=CHAPTER_SKIP)  # noqa: RUF009 (a field)
    repetition_penalty: float | None = option(
        1.0, Check(lambda v: 0.01 <= v <= 100, "from 0.01 to 100"), "> 1 makes tokens already generated less likely"
    )
    beam_size: int | None = option(5, at_most(1000, "beams"), "beams per input", strategy="beam")
    n_best: int | None = option(1, at_most(1000, "outputs"), "outputs per input, best first", strategy="beam")
    length_penalty: float | None = option(
        1.0, Check(lambda v: -10 <= v <= 10, "in [-10, 10]"), "scores divided by length ** length_penalty",
        strategy="beam",
    )  # fmt: skip
    num_samples: int | None = option(1, at_most(10_000, "samples"), "independent samples per input", strategy="sample")
    # Below 1e-3 the scaled logits overflow; strategy=greedy is the limit of a small temperature.
    temperature: float | None = option(
        1.0, Check(lambda v: 1e-3 <= v <= 1e3, "in [0.001, 1000] (strategy=greedy is the zero-temperature limit)"),
        "below 1 sharpens the distribution", strategy="sample",
    )  # fmt: skip
    top_k: int | None = option(
        None, Check(lambda v: v >= 1, "at least 1"), "only the k likeliest tokens (null: all)", strategy="sample"
    )
    top_p: float | None = option(
        None, Check(lambda v: 0 < v <= 1, "in (0, 1]"), "only the smallest set of tokens holding this probability "
        "mass (null: all)", strategy="sample",
    )  # fmt: skip
    seed: int | None = option(0, Check(lambda v: 0 <= v < 2**63, "from 0 to 2**63 - 1"), "fixes the samples",
                              strategy="sample")  # fmt: skip


OPTIONS = {f.name: f for f in fields(DecodeOptions)}
NAMES = tuple(OPTIONS)
ONLY_FOR = {name: f.metadata["strategy"] for name, f in OPTIONS.items() if f.metadata["strategy"]}
MODEL_DEFAULTS = ("strategy", "max_new_tokens", "skip")  # what a shared model's generation_config.json may set


def default(name: str, family: str):
    """An option's default for a model family."""
    return OPTIONS[name].metadata["lm" if family == "lm" else "default"]


def family_defaults(family: str) -> dict:
    """The defaults a model of this family decodes with unless told otherwise (a shared model's
    generation_config.json)."""
    return {name: list(v) if isinstance(v := default(name, family), tuple) else v for name in MODEL_DEFAULTS}


@dataclass(frozen=True)
class GenerationConfig:
    """Every decoding option's value, resolved for one model: what the decoders take."""

    strategy: str
    max_new_tokens: int | None  # None: seq2seq's longest training answer (the codec's steps)
    skip: tuple[str, ...]
    repetition_penalty: float
    beam_size: int
    n_best: int
    length_penalty: float
    num_samples: int
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int
    skip_given: bool = False  # unknown words are an error only in a list the user gave

    def replace(self, **changes) -> "GenerationConfig":
        """A copy with `changes`, each checked as `resolve` checks a value a user gives."""
        for name, value in changes.items():
            if name in OPTIONS and not (value is None and name in ("max_new_tokens", "top_k", "top_p")):
                check(name, list(value) if name == "skip" else value)
        return dataclasses.replace(self, **changes)


def check(name: str, value, where: str = "") -> None:
    """One option's type and range (a value read from a file or typed by a user)."""
    prefix = f"{where}: " if where else ""
    annotation, (ok, says) = OPTIONS[name].type, OPTIONS[name].metadata["check"]
    if name != "skip" and (value is None or not fits(value, annotation)):  # skip's check is its type
        raise ConfigError(f"{prefix}{name}={value!r}: must be {type_name(annotation).split(' | ')[0]}")
    if not ok(value):
        raise ConfigError(f"{prefix}{name}={value!r}: must be {says.removeprefix('must be ')}")


def resolve(options, family: str, defaults: dict | None = None) -> GenerationConfig:
    """Every option's value for a model family ("lm", "seq2seq", "captioner"), given the ones set (a dict
    or DecodeOptions; None = unset). Unknown names, wrong types, values out of range and options that do
    not apply are refused. `defaults`: a model's own strategy, max_new_tokens and skip, in place of its
    family's (a shared model's generation_config.json, checked by check_defaults)."""
    if isinstance(options, DecodeOptions):
        options = dataclasses.asdict(options)
    unknown = sorted(set(options) - set(NAMES))
    if unknown:
        raise ConfigError(f"unknown decoding option {unknown[0]!r} (options: {', '.join(NAMES)})")
    given = {k: v for k, v in options.items() if v is not None}
    for name, value in given.items():
        check(name, value)
    values = {name: default(name, family) for name in NAMES} | (defaults or {})
    strategy = given.get("strategy", values["strategy"])
    for name in given:
        if ONLY_FOR.get(name, strategy) != strategy:
            raise ConfigError(
                f"{name} applies to strategy={ONLY_FOR[name]}, not {strategy}: add strategy={ONLY_FOR[name]}"
            )
    values |= given | {"strategy": strategy, "skip": tuple(given.get("skip", values["skip"]))}
    if strategy == "beam" and values["n_best"] > values["beam_size"]:
        raise ConfigError(f"n_best={values['n_best']} exceeds beam_size={values['beam_size']}")
    return GenerationConfig(**values, skip_given="skip" in given)


def check_defaults(defaults, where: str, family: str) -> dict:
    """A model's own defaults (MODEL_DEFAULTS: strategy, max_new_tokens, skip), read from a file: those
    keys only, each of its type and range (max_new_tokens may be None for a seq2seq model: the longest
    training answer; a language model has no such length)."""
    if not isinstance(defaults, dict) or not set(defaults) <= set(MODEL_DEFAULTS):
        raise ConfigError(f"{where}: holds strategy, max_new_tokens and skip, nothing else")
    for name, value in defaults.items():
        if value is None and name == "max_new_tokens" and family != "lm":
            continue
        check(name, value, where)
    if (defaults.get("max_new_tokens") or 0) > MAX_FILE_NEW_TOKENS:
        raise ConfigError(f"{where}: max_new_tokens={defaults['max_new_tokens']}: a model's default is at most "
                          f"{MAX_FILE_NEW_TOKENS:,} (ask for more with max_new_tokens=)")  # fmt: skip
    return defaults


def check_budget(inputs: int, opts: "GenerationConfig", steps: int) -> None:
    """One call decodes at most BUDGET tokens: inputs x (samples or beams) x steps, refused in one line beyond."""
    each, what = {"sample": (opts.num_samples, "samples"), "beam": (opts.beam_size, "beams")}.get(
        opts.strategy, (1, "output"))  # fmt: skip
    if inputs * each * steps > BUDGET:
        raise ConfigError(
            f"{inputs} input{'s' if inputs != 1 else ''} x {each} {what} x {steps:,} tokens = "
            f"{inputs * each * steps:,} tokens to decode; at most {BUDGET:,} a call (ask for fewer samples, "
            "shorter outputs or fewer inputs at a time)"
        )


def help_text(families: str = "all") -> str:
    """`--help`'s lines for the decoding options, from the fields: every family's defaults ("all",
    generate's) or the seq2seq ones ("seq2seq", chat's)."""
    out = []
    for name, f in OPTIONS.items():
        facts = f.metadata
        both = f"{shown(facts['lm'])} for language models, {shown(facts['default'])} for seq2seq"
        same = facts["lm"] == facts["default"] or families == "seq2seq"
        where = f"strategy={facts['strategy']}: " if facts["strategy"] else ""
        value = shown(facts["default"]) if same else both
        out.append(f"  {name:<20}{where}{facts['help']}" + ("" if value == "null" else f" (default: {value})"))
    return "\n".join(out)


def shown(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(value) + "]"
    return str(value)
