import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from seq2seq.config import CONFIG_DIR

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers (pytest -n) share the cores: one thread each, in the processes their tests start
    # too, or they oversubscribe the cores and every training step slows down many times over.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
PTB_DIR = Path(os.environ.get("PTB_DIR", REPO.parent / "shared" / "data" / "ptb"))

# Small, fast settings for addition runs in tests: 400 two-digit questions, tiny model, no bars, on
# the CPU (the tests that compare runs bit for bit mean the CPU; GPU tests say trainer.device=cuda).
TINY_ADDITION = [
    "trainer.device=cpu",
    "task.num_examples=400",
    "task.max_digits=2",
    "task.batch_size=32",
    "model.wordvec_size=8",
    "model.hidden_size=32",
    "trainer.progress=false",
    "trainer.log_every_n_steps=5",
]


def run_module(module: str, *args: str, cwd=None, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python -m module args...` in a fresh process, output captured as text."""
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=cwd)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def compose_train(out: Path, *overrides: str):
    """`train.yaml` composed with overrides, the run writing into `out`."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    """Compose `train.yaml` with overrides, writing the run into tmp_path/run (or out=...)."""

    def _make(*overrides: str, out: Path | None = None):
        return compose_train(out or tmp_path / "run", *overrides)

    return _make


@pytest.fixture
def ptb_dir() -> Path:
    if not (PTB_DIR / "ptb.train.txt").is_file():
        pytest.fail(f"Penn Treebank not found in {PTB_DIR}; set PTB_DIR to the folder holding ptb.*.txt")
    return PTB_DIR
