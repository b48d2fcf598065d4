"""The GPU paths: what can be checked on any machine (the processes-vs-GPUs check, the deterministic
switches, the benchmark's clock), and what needs a GPU (skipped without one): training, decoding and
exact resume on CUDA."""

import os

import pytest
import torch

import seq2seq
from seq2seq.cli import bench
from seq2seq.core.device import set_deterministic
from seq2seq.core.errors import ConfigError
from seq2seq.training import checkpoint as ckpt
from seq2seq.training import distributed
from seq2seq.training.loop import build, train

from .helpers import TINY_ADDITION


def gpu(test):
    """A test that needs a CUDA GPU: marked `gpu` (pytest -m gpu runs these alone), skipped without one."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


ON_GPU = [*TINY_ADDITION, "trainer.device=cuda"]


def test_more_processes_than_gpus_is_refused_before_any_process_group(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"^2 processes, 1 visible GPU: use trainer\.device=cpu, or fewer processes$"):
        distributed.init(torch.device("cuda"))
    assert not torch.distributed.is_initialized()


def test_deterministic_switches(make_cfg, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        build(make_cfg(*TINY_ADDITION, "trainer.deterministic=true"))
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and not torch.backends.cudnn.benchmark
        build(make_cfg(*TINY_ADDITION))
        assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    finally:
        set_deterministic(False)


def test_the_benchmark_synchronizes_before_reading_the_clock(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    bench.clock(torch.device("cuda"))
    bench.clock(torch.device("cpu"))
    assert calls == [torch.device("cuda")]


@gpu
def test_training_and_decoding_on_cuda(make_cfg, tmp_path):
    metrics = train(make_cfg(*ON_GPU, "experiment=peeky_addition", "trainer.max_epochs=2", out=tmp_path / "run"))
    assert metrics["val/loss"] < 3
    on_gpu, on_cpu = seq2seq.load(tmp_path / "run", device="cuda"), seq2seq.load(tmp_path / "run", device="cpu")
    questions = ["12+3", "7+70", "99+99"]
    assert on_gpu.generate(questions) == on_cpu.generate(questions)
    assert len(on_gpu.generate(questions, strategy="sample", num_samples=3, seed=1)[0]) == 3
    assert len(on_gpu.generate(questions, strategy="beam", n_best=2)[0]) == 2


@gpu
def test_deterministic_cuda_runs_and_resumes_are_bit_identical(make_cfg, tmp_path):
    lm = [*ON_GPU, "trainer.deterministic=true", "trainer.max_epochs=2"]
    try:
        train(make_cfg(*lm, out=tmp_path / "a"))
        train(make_cfg(*lm, out=tmp_path / "b"))
        train(make_cfg(*lm, "trainer.max_steps=17", out=tmp_path / "split"))
        train(make_cfg(*lm, f"trainer.resume={tmp_path / 'split'}", out=tmp_path / "split"))
    finally:
        set_deterministic(False)
    a, b, split = (ckpt.read(tmp_path / d / "last.pt", "last.pt")["model_state"] for d in ("a", "b", "split"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
        assert torch.equal(a[k], split[k]), k
