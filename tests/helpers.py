"""Helpers the tests share: small training settings, running the package's commands in fresh
processes, composing configs, reading TensorBoard scalars back."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seq2seq.config import CONFIG_DIR
from seq2seq.device import bf16_missing

# bf16 tests run where oneDNN has bf16 kernels (AVX512-BF16, AMX-BF16), and skip, saying why, elsewhere.
needs_bf16 = pytest.mark.skipif(bool(bf16_missing("cpu")), reason=f"bf16 cannot run here: {bf16_missing('cpu')}")

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


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every point of a TensorBoard tag in a run directory."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


# Refusing any crafted file below: at most this much peak memory (a Python process with torch
# imported takes about 300 MB here) and this many seconds, start-up included.
PEAK_MB, SECONDS = 800, 30


# Runs a module as `python -m` would, then reports the process's own peak memory on stderr: VmHWM, the
# peak of this program's memory since exec. (ru_maxrss also keeps the peak of the process before exec,
# which, when subprocess forks, is the size of the parent: a large pytest worker.)
PEAK = """
import re, resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    try:
        kb = int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1))
    except (OSError, AttributeError):
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stderr.write(f"\\nPEAK_KB {kb}\\n")
"""


def measured(*args: str, cwd=None) -> tuple[subprocess.CompletedProcess, float, float]:
    """`python -m args` in a fresh process: its result (stderr without the report), peak memory (MB) and
    seconds."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, cwd=cwd)
    seconds = time.monotonic() - started
    stderr, _, peak = result.stderr.rpartition("PEAK_KB ")
    result.stderr = stderr.strip() + "\n"
    return result, int(peak) / 1024, seconds
