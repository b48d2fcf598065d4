"""Helpers the tests share: small training settings, running the package's commands in fresh
processes, composing configs, reading TensorBoard scalars back."""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from seq2seq.core.device import bf16_missing
from seq2seq.core.files import CRASH_ENV
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.config import CONFIG_DIR

# bf16 tests run where oneDNN has bf16 kernels (AVX512-BF16, AMX-BF16), and skip, saying why, elsewhere.
needs_bf16 = pytest.mark.skipif(bool(bf16_missing("cpu")), reason=f"bf16 cannot run here: {bf16_missing('cpu')}")

REPO = Path(__file__).resolve().parents[1]
PTB_DIR = Path(os.environ.get("PTB_DIR", REPO.parent / "shared" / "data" / "ptb"))

# Small, fast addition runs: the config group users have too (configs/debug/tiny.yaml: 400 two-digit
# questions, a tiny model, no bars, on the CPU; the tests that compare runs bit for bit mean the CPU,
# GPU tests say trainer.device=cuda).
TINY_ADDITION = ["debug=tiny"]


def write_reverse_tsv(path, n=2000, seed=0, words=False):
    """Random strings of 1-8 symbols and their reversal: the target depends on every source token."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        tokens = [rng.choice("abcdef") for _ in range(rng.randint(1, 8))]
        sep = " " if words else ""
        lines.append(f"{sep.join(tokens)}\t{sep.join(reversed(tokens))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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


def train_cli(run: Path, *args: str, crash: str | None = None, limit_kb: int | None = None, cwd=None):
    """`python -m seq2seq.train` in a fresh process writing into `run` (unless args name hydra.run.dir)."""
    env = {**os.environ, CRASH_ENV: crash} if crash else None
    cmd = [sys.executable, "-m", "seq2seq.train", *args]
    if not any(a.startswith(("hydra.run.dir=", "trainer.resume=")) for a in args):
        cmd.append(f"hydra.run.dir={run}")
    if limit_kb:  # a full disk for the files this process writes: writes past the limit fail with EFBIG
        cmd = ["bash", "-c", f'ulimit -f {limit_kb}; exec "$@"', "bash", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd or run.parent)


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model_state"]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def points(run: Path) -> dict[str, list[int]]:
    """Every scalar tag's steps, reading the directory as TensorBoard does (all event files together)."""
    mux = EventMultiplexer({"run": str(run)}, size_guidance={"scalars": 0})
    mux.Reload()
    acc = mux.GetAccumulator("run")
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_same_run(a: Path, b: Path, tags: list[str]) -> None:
    sa, sb = ckpt.read(a / "last.pt"), ckpt.read(b / "last.pt")
    for k, v in sa["model_state"].items():
        assert torch.equal(v, sb["model_state"][k]), k
    assert sa["optimizer"]["param_groups"][0]["lr"] == sb["optimizer"]["param_groups"][0]["lr"]
    for tag in tags:
        assert scalars(a, tag) == scalars(b, tag), tag


def tiny(run: Path, *overrides: str):
    return compose_train(run, *TINY_ADDITION, *overrides)


def write_state(state: dict, path: Path) -> Path:
    """A state written as it is (torch.save, not the project's checks): a crafted checkpoint."""
    torch.save(state, path)
    return path


def tree(run: Path) -> dict:
    """Every path under a run directory with its size and modification time (the lock's pid file aside)."""
    return {str(p.relative_to(run)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in run.rglob("*")
            if p.name != ".lock"}  # fmt: skip


def assert_refused_alike(torch_model, onnx_model, bad_inputs) -> None:
    """Each bad input refused by the ONNX runner in the PyTorch model's words."""
    from seq2seq.core.errors import DataError

    for bad in bad_inputs:
        with pytest.raises(DataError) as by_torch:
            torch_model.generate(bad)
        with pytest.raises(DataError) as by_onnx:
            onnx_model.generate(bad)
        assert str(by_onnx.value) == str(by_torch.value), bad
