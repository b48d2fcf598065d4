"""The explorer's server side: the runs under a root and the models loaded from them (Explorer), the
decoding fields read as options, and the handlers' errors turned into one-line messages. The page that
calls them, and serving it on this machine only, is seq2seq.explore.page.

A mistake of the user's (a question in the wrong shape, an option out of range, a path outside the root)
is shown in the tab in one line, never as a traceback. Models are loaded through seq2seq.load (its checks
and refusals) and cached, at most `cache`.
"""

import functools
import html
import json
import logging
import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from seq2seq.core import decoding
from seq2seq.core.errors import DataError, Seq2seqError
from seq2seq.core.threads import Threads
from seq2seq.explore import analysis
from seq2seq.explore.runs import Runs
from seq2seq.inference import find, pretrained

log = logging.getLogger(__name__)
# Every handler runs in this one thread, with one torch thread: Gradio calls handlers from a pool of threads,
# each of which would start its own OpenMP team, and the browser drawing its progress animation takes a core
# that a team of two spins waiting for (three answers took 250 ms instead of 30 on 2 cores).
WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seq2seq-explore",
                            initializer=lambda: Threads(1, what="the explorer", source="one request at a time, "
                                                        "beside the browser's drawing").start())  # fmt: skip
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported: no request leaves the machine

# The decoding options the page offers (seq2seq.core.decoding's, in its order; `skip` keeps each family's default).
OPTION_FIELDS = tuple(name for name in decoding.NAMES if name not in ("strategy", "skip"))


class Explorer:
    """The runs under `root`, the models loaded from them (an LRU cache of `cache` models) and their
    validation answers. Handlers run in Gradio's worker threads: the caches are shared under a lock."""

    def __init__(self, root: str | Path, device: str | None = None, cache: int = 6):
        if not isinstance(cache, int) or not 1 <= cache <= 100:
            raise DataError(f"cache={cache}: must be from 1 to 100 models")
        self.runs = Runs(root)
        self.device, self.cache = device, cache
        self.models: OrderedDict = OrderedDict()
        self.validations: OrderedDict = OrderedDict()
        self.tasks: OrderedDict = OrderedDict()  # rebuilt tasks, by their config
        self.lock = threading.Lock()

    def remember(self, store: OrderedDict, key, make):
        with self.lock:
            if key in store:
                store.move_to_end(key)
                return store[key]
        value = make()
        with self.lock:
            store[key] = value
            while len(store) > self.cache:
                store.popitem(last=False)
        return value

    def file(self, value: str) -> tuple[Path, tuple]:
        """The checkpoint file (or shared folder) of the run `value` names under the root, and its cache key."""
        path = self.runs.path(value)
        file, _ = find.find(path, "best.pt")
        inside = [file, *(file / name for name in pretrained.FILES + pretrained.GRAPHS)] if file.is_dir() else [file]
        if not all(f.resolve().is_relative_to(self.runs.root) for f in inside):  # a best.pt linking out of the root
            raise DataError(f"{value[:200]}: its checkpoint (or a file of it) lies outside {self.runs.root}")
        return file, (str(file.resolve()), file.stat().st_mtime_ns)

    def model(self, value: str, family: str | None = None):
        """The model of the run (or checkpoint, or shared folder) `value` names under the root."""
        from seq2seq.inference.api import load

        file, key = self.file(value)
        model = self.remember(self.models, key, lambda: load(file, device=self.device))
        if family == "lm" and model.family != "lm":
            raise DataError(f"{value}: a {model.family} model; this tab samples language models (e.g. rnnlm_ptb)")
        if family == "seq2seq" and model.family != "seq2seq":
            raise DataError(f"{value}: a {model.family} model; this tab takes text seq2seq models (e.g. addition)")
        return model

    def validation(self, value: str) -> analysis.Validation:
        """The greedy answers to a run's validation split; runs of the same data share its rebuilt task."""
        model = self.model(value, "seq2seq")
        node = model.config.get("task") if isinstance(model.config, dict) else None
        task_key = json.dumps(node, sort_keys=True, default=str)
        roots = (self.runs.root, Path.cwd())  # the data a run names is read under the root or where the page runs
        task = self.remember(self.tasks, task_key, lambda: analysis.validation_task(model, roots))
        return self.remember(self.validations, self.file(value)[1], lambda: analysis.validate(model, task))


# What one request of the page may ask for (seq2seq-generate takes more): every request runs in one thread,
# so a 100,000-token answer or 10,000 samples would hold the page for hours.
PAGE_LIMITS = {"max_new_tokens": 1000, "num_samples": 20, "beam_size": 100, "n_best": 20}


def number(name: str, value: str):
    """A decoding field's text as the number it spells (an int where it has no point or exponent)."""
    try:
        number = int(value) if value.lstrip("+-").isdigit() else float(value)
    except ValueError:
        number = None
    if number is None or (isinstance(number, int) and abs(number) > 2**63):
        raise DataError(f"{name}={value[:40]!r}: not a number (or far out of range)")
    if name in PAGE_LIMITS and number > PAGE_LIMITS[name]:
        raise DataError(f"{name}={value[:40]}: at most {PAGE_LIMITS[name]:,} here (seq2seq-generate takes more)")
    return number


def options_of(strategy: str | None, values) -> dict:
    """The page's decoding fields as options: those of the chosen strategy that are filled in (blank: the
    model's default); their ranges are checked by seq2seq.core.decoding, as for seq2seq-generate."""
    options = {"strategy": strategy or None}
    for name, value in zip(OPTION_FIELDS, values, strict=True):
        value = (value or "").strip() if isinstance(value, str | type(None)) else str(value)
        if value and decoding.ONLY_FOR.get(name, strategy) == strategy:
            options[name] = number(name, value)
    return options


def whole(value) -> int | None:
    """A whole-number field of the page (blank: None); anything else the page may be sent is refused."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{str(value)[:20]!r} is not a whole number")
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise DataError(f"{value!r:.20} is not a whole number")
    if abs(value) > 10**6:
        raise DataError("a number beyond a million: no model here has that many layers or heads")
    return int(value)


def message(error: Exception) -> str:
    return f"**error:** {html.escape(str(error))}"


def handler(outputs: int, clear: bool = False):
    """A page handler with `outputs` outputs, the last its tab's message: a user's mistake becomes that
    message, anything else a one-line message too (its traceback goes to the terminal). The other outputs
    keep what they showed, or with `clear` (answers that would read as the failed request's) are emptied."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            import gradio as gr

            try:
                return WORKER.submit(fn, *args, **kwargs).result()
            except Seq2seqError as e:
                shown = message(e)
            except Exception as e:  # a bug, not the user's: one line here, the details in the terminal
                log.exception("explorer: %s failed", fn.__name__)
                what = f"{type(e).__name__}: {html.escape(str(e)[:200])}"
                shown = f"**unexpected error** ({what}); details in the terminal"
            return (*["" if clear else gr.skip()] * (outputs - 1), shown)

        return run

    return wrap
