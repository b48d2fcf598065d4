"""What the command lines share: the arguments checked before Hydra starts (and before torch is
imported, so `--version` and mistakes answer at once), the schemas of `seq2seq.generate` and
`seq2seq.chat`, the decoding options of their configs, and user errors in one line with exit code 2.
"""

import contextlib
import difflib
import itertools
import os
import re
import signal
import string
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from seq2seq.core import __version__, compat, decoding
from seq2seq.core.checks import unknown_key_message
from seq2seq.core.decoding import DecodeOptions
from seq2seq.core.errors import ConfigError, Seq2seqError
from seq2seq.inference import find

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

# `${decoding_help:all}` (generate) and `${decoding_help:seq2seq}` (chat): --help's decoding options and
# their defaults, from where they are declared (seq2seq.core.decoding).
OmegaConf.register_new_resolver("decoding_help", decoding.help_text, replace=True)


@dataclass
class GenerateConfig(DecodeOptions):
    checkpoint: str = MISSING
    question: str | None = None
    file: str | None = None
    index: int | None = None
    prompt: str | None = None
    device: str = "auto"


@dataclass
class ChatConfig(DecodeOptions):
    checkpoint: str = MISSING
    device: str = "auto"
    context: int | None = None


@dataclass
class ExportConfig:
    checkpoint: str = MISSING
    out: str | None = None
    format: str = "safetensors"
    push: str | None = None


@dataclass
class EvaluateConfig:
    checkpoint: str = "best"
    split: str | None = None
    file: str | None = None
    out: str | None = None
    device: str = "auto"


@dataclass
class ExploreConfig:
    root: str = "outputs"
    host: str = "127.0.0.1"
    port: int = 7860
    device: str = "auto"
    cache: int = 6


ConfigStore.instance().store(name="generate_schema", node=GenerateConfig)
ConfigStore.instance().store(name="explore_schema", node=ExploreConfig)
ConfigStore.instance().store(name="export_schema", node=ExportConfig)
ConfigStore.instance().store(name="chat_schema", node=ChatConfig)
ConfigStore.instance().store(name="evaluate_schema", node=EvaluateConfig)

# Hydra's flags that take a value (the word after one is not a stray argument), and the flags that
# print something instead of running.
VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd"}
VALUE_FLAGS |= {"--info", "-i", "--experimental-rerun", "--shell-completion", "-sc"}
INFO_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}


def fail(error: Exception | str, code: int = 2) -> None:
    """A user's mistake: one line on stderr, exit code 2 (as for any command's usage error)."""
    print(f"error: {error}", file=sys.stderr)
    sys.exit(code)


def overrides_of(args: list[str]) -> list[str]:
    """The key=value and group=option words of a command line: not flags, not a flag's value."""
    out, after_flag = [], False
    for arg in args:
        if after_flag:
            after_flag = False
        elif arg in VALUE_FLAGS:
            after_flag = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def stray_words(args: list[str]) -> list[str]:
    """Command-line words that are neither key=value, a flag, nor a flag's value."""
    return [word for word in overrides_of(args) if "=" not in word]


def config_groups() -> str:
    """`group: option, ...` for each config group of the package's configs (Hydra's $APP_CONFIG_GROUPS,
    read from the folders: Hydra's own listing composes every group once, which took seconds)."""
    lines = []
    for folder in sorted(p for p in CONFIG_DIR.rglob("*") if p.is_dir()):
        group = folder.relative_to(CONFIG_DIR).as_posix()
        names = sorted(f.stem for f in folder.glob("*.yaml"))
        if names and group != "hydra" and not group.startswith("hydra/"):
            lines.append(f"{group}: {', '.join(names)}")
    return "\n".join(lines) + "\n"


def render_help(config_name: str, args: list[str]) -> str:
    """What Hydra's --help prints for this composition (the config's hydra.help.template with its
    $APP_CONFIG_GROUPS and $CONFIG), rendered without Hydra's slow listing of the groups."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    overrides = overrides_of(args)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    template = cfg.hydra.help.template
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return string.Template(template).safe_substitute(APP_CONFIG_GROUPS=config_groups(), CONFIG=OmegaConf.to_yaml(job))


def render_config(args: list[str]) -> str:
    """What `--cfg job|hydra|all` (with `--resolve`) prints for the training command, rendered here: Hydra's
    own rendering cannot resolve paths.output_dir outside a run; here it is the run directory this command
    would make."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    which = args[args.index("--cfg" if "--cfg" in args else "-c") + 1] if len(args) > 1 else "job"
    if which not in ("job", "hydra", "all"):
        raise ConfigError(f"--cfg {which[:20]}: give --cfg job, hydra or all")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides_of(args), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    run_dir = str(cfg.hydra.run.dir)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = run_dir
    HydraConfig.instance().set_config(cfg)
    parts = {"job": [k for k in cfg if k != "hydra"], "hydra": ["hydra"], "all": list(cfg)}[which]
    return OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, parts), resolve="--resolve" in args)


def check_args(prog: str, args: list[str], hint: Callable[[str], str], config_name: str | None = None) -> None:
    """`--version`; `--help` (rendered here, quickly); and words that are not key=value
    (`seq2seq.generate checkpoint=... 16+75`), which Hydra's override parser would end in a traceback."""
    if "--version" in args:
        print(f"{prog} {__version__}")
        sys.exit(0)
    if config_name and {"--help", "-h"} & set(args):
        try:
            print(render_help(config_name, args))
        except Exception as e:
            fail(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        sys.exit(0)
    stray = stray_words(args)
    if stray:
        word = stray[0] if len(stray[0]) <= 80 else stray[0][:77] + "..."
        fail(f"{word!r} is not key=value: {hint(word)}")


def needs_checkpoint(prog: str, args: list[str], example: str) -> None:
    if INFO_FLAGS & set(args) or any(a.lstrip("+").startswith("checkpoint=") for a in args):
        return
    fail(
        f"checkpoint= is missing.\nusage: python -m {prog} checkpoint=<run directory | .pt file | folder of runs | "
        f"latest> [key=value ...]\nexample: python -m {prog} {example}    (python -m {prog} --help lists the options)"
    )


def override_error(error: Exception, valid: list[str]) -> str:
    """Hydra's composition error in one line: an override of a key that does not exist names the
    nearest valid keys (Hydra's own hint, `+key=value`, would add a key that nothing reads)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    unknown = re.match(r"Could not override '([^']+)'", first)
    if unknown:
        return unknown_key_message(unknown.group(1), valid, "--help")
    option = re.search(r"Could not find '([\w/]+)/([^']+)'", first)
    if option:  # group=option that does not exist: the group's options, the nearest first
        group, name = option.groups()
        options = sorted(f.stem for f in (CONFIG_DIR / group).glob("*.yaml"))
        near = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
        hint = f"did you mean {group}={near[0]}? " if near else ""
        return f"{group}={name}: no such option; {hint}{group} is one of {', '.join(options)}"
    ambiguous = re.match(r"Ambiguous value for argument '([^=']+)=(.*)'$", first)
    if ambiguous:
        key, value = ambiguous.groups()
        return f"{key}={value}: a comma makes a list; quote the value: '{key}=\"{value}\"'"
    lines = [line.strip() for line in str(error).strip().splitlines()]
    key = next((line.removeprefix("full_key: ") for line in lines if line.startswith("full_key: ")), None)
    inside = re.match(r"In '(\w+)/([^']+)': \w+ raised while composing config:$", first)
    if inside and len(lines) > 1:  # a config file of a group that sets what the chosen config lacks
        group, name = inside.groups()
        where = f"{group}={name} sets {key}" if key else f"{group}={name}"
        return f"{where}: {lines[1]}"
    cause = str(error.__cause__ or "").strip().splitlines()
    return f"{first}: {cause[0]}" if cause else first


def compose_config(config_name: str, overrides: list[str], valid: list[str]) -> DictConfig:
    """The config of `configs/<config_name>.yaml` with the overrides, Hydra's errors in one line."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name, overrides=overrides)
    except Exception as e:
        raise ConfigError(override_error(e, valid)) from None


MAX_SWEEP_CHECKS = 24  # compositions checked before a sweep starts (about 0.25 s each)


def sweep_variants(overrides: list[str]) -> list[list[str]]:
    """The command lines a sweep's lists (`a=1,2`, `range(..)`, `choice(..)`) expand to, checked before any
    job runs: all lists at their first value, then each other value of each list with the rest at
    their first (not the whole product), the lists taking turns so that a long list cannot crowd out another.
    Lists Hydra's sweepers draw from (interval, glob) are left to them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as e:
        raise ConfigError(override_error(e, [])) from None
    choices = []
    for override in parsed:
        values = [override.input_line]
        if override.is_sweep_override():
            try:
                iterator = override.sweep_iterator(transformer=Transformer.encode)  # range(0,100000): the first few
                encoded = list(itertools.islice(iterator, MAX_SWEEP_CHECKS))
                values = [f"{override.get_key_element()}={v}" for v in encoded] or values
            except Exception:  # a sweep only a sweeper can expand
                values = []
        choices.append(values)
    choices = [values for values in choices if values]
    first = [values[0] for values in choices]
    variants = [first]  # then each list's second value, each list's third, ...: every list is reached early
    for index in range(1, max(map(len, choices), default=1)):
        variants += [[*first[:at], values[index], *first[at + 1 :]] for at, values in enumerate(choices)
                     if index < len(values)]  # fmt: skip
    return variants[:MAX_SWEEP_CHECKS]


def check_interpolations(cfg: DictConfig, overrides: list[str]) -> None:
    """An override whose value is an interpolation (`name=${oops}`) must resolve: OmegaConf resolves
    lazily, so a bad one failed only inside the run, in Hydra's multi-line report. Hydra's own resolvers
    (`${hydra:...}`) resolve only inside the run and are left to it."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if "${" not in value or "${hydra:" in value:
            continue
        try:
            OmegaConf.select(cfg, key.partition("@")[0], throw_on_resolution_failure=True)
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            shown = override if len(override) <= 80 else override[:77] + "..."
            raise ConfigError(f"{shown}: {first[:200]}") from None


def check_sweep_base(overrides: list[str]) -> None:
    """Hydra composes a sweep's config once without its lists before any job (the groups at their defaults):
    a key that exists only in the swept groups' options (model.d_model over experiment=transformer_addition,
    transformer_ptb) fails there, so say so in one line rather than as Hydra's error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return  # the variants' checks below say what is wrong with the words themselves
    swept = [o.input_line for o in parsed if o.is_sweep_override()]
    if not swept:
        return
    try:
        compose_config("train", [o.input_line for o in parsed if not o.is_sweep_override()], [])
    except ConfigError as e:
        unknown = re.match(r"(\S+): unknown key", str(e))
        if not unknown:
            raise
        raise ConfigError(f"{unknown.group(1)}: not a key of the config Hydra composes before the sweep's lists "
                          f"({', '.join(swept)[:80]}) apply, the groups at their defaults; set it in each experiment "
                          "file, or sweep each family on its own") from None  # fmt: skip


def check_overrides(args: list[str]) -> None:
    """The training command line's overrides: Hydra's own errors (a key that does not exist, a value of
    the wrong type, an interpolation that does not resolve) in one line, before Hydra prints them with
    a traceback hint; in a sweep (-m), for each value of its lists, the values' own checks too (a run is
    checked by Hydra's callback, a sweep's jobs only when each starts: `task.batch_size=32,0` would train
    the first before the 0 was refused)."""
    from seq2seq.training.config import check as check_config
    from seq2seq.training.config import unknown_keys

    # debug=null is the default spelt out; dropped, as train.yaml's defaults interpolate ${debug} (debug/tiny's
    # sizes per family), which Hydra cannot do for a group set to null on the command line
    args[:] = [a for a in args if a != "debug=null"]
    overrides = overrides_of(args)
    sweep = bool({"-m", "--multirun"} & set(args))
    if sweep:
        check_sweep_base(overrides)
    for variant in sweep_variants(overrides) if sweep else [overrides]:
        try:
            cfg = compose_config("train", variant, [])
        except ConfigError as e:
            unknown = re.match(r"(\S+): unknown key", str(e))
            if not unknown:
                raise
            others = [a for a in variant if a.lstrip("+~").partition("=")[0] != unknown.group(1)]
            valid = unknown_keys(compose_config("train", others, []))[1]
            raise ConfigError(unknown_key_message(unknown.group(1), valid, "python -m seq2seq.train --help")) from None
        check_interpolations(cfg, variant)
        if sweep:
            check_config(cfg)


def command_line(prog: str, schema: type, example: str, input_key: str | None, checkpoint: bool = True) -> Callable:
    """The entry point of a command around `run(cfg)` (generate, chat, export, explore; `checkpoint`: whether
    checkpoint= is required): the checks above, the words after `--` as
    free text, the old option names rewritten (with a note), the config composed (these commands write
    no run directory, so Hydra's app runner is not needed), and user errors in one line, exit code 2."""

    def hint(word: str) -> str:
        if input_key is None:
            return "options are key=value (see --help); messages are read from standard input"
        return f"give {input_key}={word} (quote it if it has spaces or commas), or put the text after --: -- {word}"

    def wrap(run: Callable[[DictConfig], None]) -> Callable[[], None]:
        def main() -> None:
            # Words after `--`: one input given as plain text, so `-- hi !` or `-- september 27, 1994` need no
            # quoting for Hydra's override grammar (generate's question or prompt: input_key).
            args, free_text = sys.argv[1:], None
            if "--" in args:
                cut = args.index("--")
                args, free_text = args[:cut], " ".join(args[cut + 1 :])
                if input_key is None:
                    fail(f"{prog} takes no text after --: {hint(free_text)}")
            config_name = prog.removeprefix("seq2seq.")
            check_args(prog, args, hint, config_name=config_name)
            if checkpoint:
                needs_checkpoint(prog, args, example)
            try:
                args, notes = compat.translate_decoding(args)
                for note in notes:
                    print(f"note: {note}", file=sys.stderr)
                cfg = compose_config(config_name, overrides_of(args), schema_keys(schema))
                check_interpolations(cfg, overrides_of(args))  # `max_new_tokens=${oc.env:HOME}`: one line
            except ConfigError as e:
                fail(e)
            if {"--cfg", "-c"} & set(args):
                print(OmegaConf.to_yaml(cfg))
                return
            with interruptible(prog):
                try:
                    run(cfg, free_text) if input_key else run(cfg)
                except Seq2seqError as e:  # a user's mistake found while running: one line, exit code 2
                    fail(e)

        return main

    return wrap


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so its cleanups run (a folder being written stays as it was)."""


@contextlib.contextmanager
def interruptible(prog: str):
    """A command's run: Ctrl-C and SIGTERM end it in one line (exit 130 and 143), with its cleanups run; output
    it cannot write (a full disk, `ulimit -f`) is one line too, and a reader that went away (`| head`) ends it
    quietly."""

    def terminate(signum, frame):
        raise Terminated

    previous = (
        signal.signal(signal.SIGTERM, terminate) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        yield
    except Terminated:
        print(f"{prog}: stopped by SIGTERM", file=sys.stderr)
        sys.exit(143)
    except KeyboardInterrupt:
        print(f"{prog}: stopped (Ctrl-C)", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        sys.exit(141)
    except OSError as e:
        fail(f"cannot write: {e.strerror or e}", code=1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def schema_keys(schema: type) -> list[str]:
    return [f.name for f in fields(schema)]


def check_keys(cfg: DictConfig, schema: type, prog: str) -> None:
    """A key added with `+` that the command does not read is refused, with the nearest valid keys."""
    valid = schema_keys(schema)
    unknown = [k for k in cfg if k not in valid]
    if unknown:
        raise ConfigError(unknown_key_message(unknown[0], valid, f"python -m {prog} --help"))


def decode_options(cfg: DictConfig) -> dict:
    return {name: OmegaConf.to_object(cfg[name]) if name == "skip" and cfg[name] is not None else cfg[name]
            for name in decoding.NAMES}  # fmt: skip


def checkpoint_file(value: str) -> Path:
    """The file (or shared folder) `checkpoint=` means, with a note on stderr when it chose a run."""

    file, note = find.find(value, "best.pt")
    if note:
        print(f"note: {note}", file=sys.stderr)
    return file


def open_model(cfg: DictConfig):
    """The checkpoint `checkpoint=` means as an api.TrainedModel."""
    from seq2seq.core.threads import Threads
    from seq2seq.inference import api

    model = api.load(checkpoint_file(cfg.checkpoint), device=None if cfg.device == "auto" else cfg.device)
    Threads(what=model.family + " decoding").start()
    return model
