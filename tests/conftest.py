import os
import tempfile
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from seq2seq.core.threads import usable_cores
from seq2seq.training.loop import train

from .helpers import PTB_DIR, TINY_ADDITION, compose_train

# Threads: parallel workers (pytest -n) share the cores, one thread each, in the processes their tests start
# too, or they oversubscribe the cores and every training step slows down many times over. Without workers,
# every core. Either way a count given, never one that follows the load: tests compare runs bit for bit, and
# a different thread count changes float rounding (tests/test_threads.py covers the default).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
else:
    os.environ.setdefault("OMP_NUM_THREADS", str(usable_cores()))
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"].split(",")[0]))
# Caches a run writes (trainer.precision=auto's answers) go to a folder of the test session, never the home's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="seq2seq-tests-cache-")


@pytest.fixture
def make_cfg(tmp_path):
    """Compose `train.yaml` with overrides, writing the run into tmp_path/run (or out=...)."""

    def _make(*overrides: str, out: Path | None = None):
        return compose_train(out or tmp_path / "run", *overrides)

    return _make


@pytest.fixture
def ptb_dir() -> Path:
    if not (PTB_DIR / "ptb.train.txt").is_file():
        pytest.skip(f"Penn Treebank not found in {PTB_DIR}: set PTB_DIR to the folder holding ptb.*.txt")
    return PTB_DIR


def trained_once(tmp_path_factory, name: str, make) -> Path:
    """A folder `make(folder)` fills with trained runs once per test session, shared by every xdist worker
    (the first one trains under a file lock, the others wait and read). Tests read it, never change it."""
    session = tmp_path_factory.getbasetemp()  # under xdist, a worker's folder inside the session's
    shared = (session.parent if os.environ.get("PYTEST_XDIST_WORKER") else session) / name
    shared.mkdir(exist_ok=True)
    with FileLock(shared / "lock"):
        if not (shared / "trained").exists():
            make(shared / "runs")
            (shared / "trained").touch()
    return shared / "runs"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """An addition run of debug=tiny, one epoch (plain decoder): its best.pt, last.pt and config.yaml."""
    overrides = [*TINY_ADDITION, "trainer.max_epochs=1"]
    return trained_once(tmp_path_factory, "tiny_run", lambda out: train(compose_train(out, *overrides)))


@pytest.fixture(scope="session")
def peeky_run(tmp_path_factory) -> Path:
    """A reversed Peeky addition run of debug=tiny, two epochs."""
    overrides = [*TINY_ADDITION, "experiment=peeky_addition", "trainer.max_epochs=2"]
    return trained_once(tmp_path_factory, "peeky_run", lambda out: train(compose_train(out, *overrides)))


@pytest.fixture(scope="session")
def tiny_lm_run(tmp_path_factory) -> Path:
    """A language model of one epoch on a six-word corpus (its saved task config names the corpus)."""

    def make(out: Path) -> None:
        data = out.parent / "ptb"
        data.mkdir()
        for split in ("train", "valid", "test"):
            (data / f"ptb.{split}.txt").write_text(" a b c d e f \n" * 30)
        sizes = ["task.batch_size=2", "task.time_size=4", "task.eval_batch_size=2", "model.wordvec_size=8"]
        quick = ["model.hidden_size=8", "trainer.max_epochs=1", "trainer.device=cpu", "trainer.progress=false"]
        train(compose_train(out, "experiment=rnnlm_ptb", f"task.data_dir={data}", *sizes, *quick))

    return trained_once(tmp_path_factory, "tiny_lm_run", make)


@pytest.fixture(scope="session")
def explore_root(tmp_path_factory) -> Path:
    """A folder of tiny runs of each family the explorer shows, trained by the command line as a user's
    are (so each has its train.log and Hydra's record) into the layout of `outputs/`: a Transformer, attention
    and Peeky addition, a language model on a tiny corpus, a word-pairs model that reverses its message (chat)."""
    return trained_once(tmp_path_factory, "explore", lambda root: train_explore_runs(root, tmp_path_factory))


def train_explore_runs(root: Path, tmp_path_factory) -> None:
    import random

    from seq2seq.data import ptb

    from .helpers import TINY_ADDITION, assert_ok, run_module

    corpus = tmp_path_factory.mktemp("tiny_ptb")
    for split in ptb.SPLITS:
        (corpus / f"ptb.{split}.txt").write_text(" the cat sat on the mat \n N dogs <unk> ran \n" * 10)
    (root / "data").mkdir(parents=True)  # under the explorer's root: where it reads the data a run names
    rng, pairs = random.Random(0), root / "data" / "reverse.tsv"
    words = [[rng.choice("abcdef") for _ in range(rng.randint(1, 4))] for _ in range(600)]
    pairs.write_text("".join(f"{' '.join(w)}\t{' '.join(reversed(w))}\n" for w in words))
    # Tiny addition runs that answer a few validation questions right (5% in 8 epochs), so the accuracy the
    # explorer counts is not trivially zero.
    addition = [
        *TINY_ADDITION,
        "model.wordvec_size=16",
        "model.hidden_size=64",
        "optimizer.lr=0.01",
        "trainer.max_epochs=8",
    ]
    runs = {  # the newest (the last) is the one the page opens on
        "transformer_addition/tiny": ["experiment=transformer_addition", *TINY_ADDITION, "trainer.max_epochs=2"],
        "attention_addition/tiny": [*addition, "name=attention_addition", "model.decoder=attention"],
        "peeky_addition/tiny": [*addition, "name=peeky_addition", "model.decoder=peeky", "task.reverse=true"],
        "rnnlm_ptb/tiny": ["experiment=rnnlm_ptb", f"task.data_dir={corpus}", "task.batch_size=2", "task.time_size=5",
                           "task.eval_batch_size=2", "trainer.max_epochs=1", "trainer.progress=false"],
        "reverse_pairs/tiny": ["task=pairs", f"task.train={pairs}", "name=reverse_pairs", "model.decoder=attention",
                               "model.wordvec_size=16", "model.hidden_size=32", "trainer.max_epochs=12",
                               "trainer.progress=false"],
    }  # fmt: skip
    for name, overrides in runs.items():
        assert_ok(run_module("seq2seq.train", *overrides, f"hydra.run.dir={root / name}"))


def pytest_collection_modifyitems(items) -> None:
    # The explorer's runs (`explore_root`) are five trainings: a test over them is slow, whatever its own time.
    for item in items:
        if "explore_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
