import os
from pathlib import Path

import pytest
import torch

from .helpers import PTB_DIR, compose_train

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers (pytest -n) share the cores: one thread each, in the processes their tests start
    # too, or they oversubscribe the cores and every training step slows down many times over.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


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
