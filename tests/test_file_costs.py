"""A crafted checkpoint costs only what it holds: numbers read from a file are bounded before they are
used, tensors must hold their own finite values, optimizer state must fit the parameters. Each refusal
runs in a real process whose peak memory and time are measured."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq.train import train

from .helpers import TINY_ADDITION, compose_train

# Refusing any crafted file below: at most this much peak memory (a Python process with torch
# imported takes about 300 MB here) and this many seconds, start-up included.
PEAK_MB, SECONDS = 800, 30


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished addition run and a finished language-model run (its saved task config kept)."""
    root = tmp_path_factory.mktemp("costs")
    addition = root / "addition"
    train(compose_train(addition, *TINY_ADDITION, "trainer.max_epochs=1"))
    data = root / "ptb"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_text(" a b c d e f \n" * 30)
    lm = root / "lm"
    sizes = ["task.batch_size=2", "task.time_size=4", "task.eval_batch_size=2", "model.wordvec_size=8"]
    quick = ["model.hidden_size=8", "trainer.max_epochs=1", "trainer.device=cpu", "trainer.progress=false"]
    train(compose_train(lm, "experiment=rnnlm_ptb", f"task.data_dir={data}", *sizes, *quick))
    return addition, lm


# Runs a module as `python -m` would, then reports the process's own peak memory on stderr.
PEAK = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    sys.stderr.write(f"\\nPEAK_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
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


def refused(path: Path, message: str, *args: str) -> None:
    result, peak, seconds = measured("seq2seq.generate", f"checkpoint={path}", *(args or ("question=1+2",)))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert peak < PEAK_MB and seconds < SECONDS, (peak, seconds)


def save(state: dict, path: Path) -> Path:
    torch.save(state, path)
    return path


@pytest.mark.slow
def test_expanded_weights_declaring_huge_sizes_are_refused_in_bounded_memory(runs, tmp_path):
    """A small file whose weights are torch.zeros(1).expand(shape) for hidden_size=12000 once allocated
    4.7 GB: the views are refused before the model is built."""
    state = torch.load(runs[0] / "best.pt", weights_only=True)
    hidden = 12000
    state["model"]["args"]["hidden_size"] = hidden
    with torch.device("meta"):
        from seq2seq.models import Seq2seq

        shapes = {k: v.shape for k, v in Seq2seq(**state["model"]["args"]).state_dict().items()}
    state["model_state"] = {k: torch.zeros(1).expand(shape) for k, shape in shapes.items()}
    path = save(state, tmp_path / "expanded.pt")
    assert path.stat().st_size < 200_000  # the optimizer state included
    refused(path, "is an expanded or strided view")


@pytest.mark.slow
def test_sizes_beyond_the_caps_are_refused_before_any_build(runs, tmp_path):
    lm = torch.load(runs[1] / "best.pt", weights_only=True)
    lm["model"]["args"]["num_layers"] = 2**31  # hung inside the meta build
    refused(save(lm, tmp_path / "layers.pt"), "num_layers=2147483648 must be from 1 to 64", "prompt=a")
    addition = torch.load(runs[0] / "best.pt", weights_only=True)
    addition["task"]["answer_width"] = 10**9  # a decode of 10**9 steps
    refused(save(addition, tmp_path / "width.pt"), "task state does not make a codec")
    addition = torch.load(runs[0] / "best.pt", weights_only=True)
    addition["config"]["task"]["num_examples"] = 10**9  # generate index=0 rebuilt the task: 10**9 questions
    refused(save(addition, tmp_path / "examples.pt"), "num_examples=1000000000 must be from 1 to 10,000,000",
            "index=0")  # fmt: skip


@pytest.mark.slow
def test_non_finite_weights_are_refused(runs, tmp_path):
    for bad in (float("nan"), float("inf")):
        state = torch.load(runs[0] / "best.pt", weights_only=True)
        name = next(iter(state["model_state"]))
        state["model_state"][name] = state["model_state"][name].clone().fill_(bad)
        refused(save(state, tmp_path / "bad.pt"), "holds NaN or infinite values")


def test_meta_sparse_and_complex_tensors_are_refused(runs):
    from seq2seq import checkpoint as ckpt
    from seq2seq.errors import CheckpointError

    weight = torch.zeros(3, 4)
    for tensor, says in (
        (torch.empty(3, 4, device="meta"), "not a dense CPU tensor"),
        (weight.to_sparse(), "not a dense CPU tensor"),
        (torch.zeros(3, 4, dtype=torch.complex64), "complex-valued"),
        (torch.zeros(4, 3).t(), "expanded or strided view"),
    ):
        with pytest.raises(CheckpointError, match=says):
            ckpt.check_tensor("w", tensor, "file.pt")
    ckpt.check_tensor("w", weight, "file.pt")


@pytest.mark.slow
def test_an_optimizer_state_of_the_wrong_shapes_is_refused_not_a_segfault(runs, tmp_path):
    """Adam's exp_avg of other shapes crashed the fused Adam (exit 139) on resume."""
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(runs[0] / "last.pt", weights_only=True)
    first = next(iter(state["optimizer"]["state"].values()))
    first["exp_avg"] = torch.zeros(3)
    first["exp_avg_sq"] = torch.zeros(3)
    save(state, run / "last.pt")
    args = [*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}"]
    result = subprocess.run([sys.executable, "-m", "seq2seq.train", *args], capture_output=True, text=True,
                            cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "optimizer state 0.exp_avg is (3,) torch.float32, its parameter" in result.stderr


def test_the_archive_is_checked_before_any_entry_is_read(runs, tmp_path):
    import struct
    import zipfile

    from seq2seq import checkpoint as ckpt
    from seq2seq.errors import CheckpointError

    raw = bytearray((runs[0] / "best.pt").read_bytes())
    at = raw.find(b"PK\x01\x02")  # the first central-directory record: uncompressed size at offset 24
    raw[at + 24 : at + 28] = struct.pack("<I", 0xFFFFFFF0)
    (tmp_path / "lying.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"its entries declare [\d,]+ bytes in a file of"):
        ckpt.load(tmp_path / "lying.pt")
    with zipfile.ZipFile(tmp_path / "deflated.pt", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * 10_000_000)  # 10 MB that compress to a few KB
    with pytest.raises(CheckpointError, match=r"compressed entry 'archive/data\.pkl'"):
        ckpt.load(tmp_path / "deflated.pt")
    state = torch.load(runs[0] / "best.pt", weights_only=True)
    state["payload"] = "anything"
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match="unknown top-level key 'payload'"):
        ckpt.load(tmp_path / "extra.pt")
