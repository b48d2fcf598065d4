"""Every command's first step: its module imported with Ctrl-C ending in one line. Importing torch and Hydra
takes a second or two, before a command installs its own handlers (seq2seq.cli.common.interruptible); a
Ctrl-C then would print Python's traceback. The console scripts and the `python -m` modules start here."""

import functools
import importlib
import os
import sys

COMMANDS = ("train", "generate", "chat", "export", "explore", "evaluate", "plot", "runs", "bench")


def command(name: str) -> None:
    """Import seq2seq.cli.<name> and run its main()."""
    try:
        module = importlib.import_module(f"seq2seq.cli.{name}")
    except KeyboardInterrupt:
        print(f"seq2seq.{name}: stopped by Ctrl-C while starting", file=sys.stderr, flush=True)
        # Nothing is open yet to clean up; exiting at once keeps the exit code 130 (Python would otherwise die by
        # the signal itself where the interrupt reached its own import machinery first).
        os._exit(130)
    module.main()


def lazy(names: dict[str, str]):
    """A module's __getattr__ that imports `name` from its module on first use (PEP 562), so that importing
    the `python -m` module itself stays light."""

    def get(name: str):
        if name not in names:
            raise AttributeError(name)
        return getattr(importlib.import_module(names[name]), name)

    return get


# The console scripts' entry points (pyproject.toml): seq2seq-train is launcher:train, and so on.
for _name in COMMANDS:
    globals()[_name] = functools.partial(command, _name)
