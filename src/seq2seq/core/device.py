"""Where training runs: the device choice and the determinism switches (`trainer.device`,
`trainer.deterministic`). A module of its own, so sweeps can pickle the training entry point by value
(`python -m seq2seq.train` runs it as __main__) without pickling torch's backend modules."""

import functools
import logging
import os
from pathlib import Path

import torch

from seq2seq.core.errors import ConfigError

log = logging.getLogger(__name__)


def select_device(name: str) -> torch.device:
    """`trainer.device`: auto (CUDA when available, else CPU), cpu or cuda."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda, but no CUDA device is available (use trainer.device=auto or cpu)")
    return torch.device(name)


CPUINFO = Path("/proc/cpuinfo")


def cpu_name() -> str:
    """The CPU's model name as Linux reports it ("AMD EPYC", "Intel(R) Xeon(R) Processor"), for messages."""
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "this CPU"


@functools.cache
def bf16_missing(device_type: str) -> str | None:
    """Why bf16 autocast cannot run on this kind of device, or None when it can. On a CPU, oneDNN has bf16
    kernels for the LSTM and the linear layers only with AVX512-BF16 or AMX-BF16 (or its AVX-512
    emulation): on an AVX2-only CPU it raises at the first step. So a tiny LSTM and linear layer are tried
    once, forward and backward, under autocast (about 0.1 s, cached for the process)."""
    if device_type == "cuda":
        return None if torch.cuda.is_bf16_supported() else f"{torch.cuda.get_device_name()} has no bf16"
    lstm, linear = torch.nn.LSTM(4, 4, batch_first=True), torch.nn.Linear(4, 3)
    try:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = linear(lstm(torch.randn(2, 3, 4))[0])  # (B, T, 3)
        out.float().sum().backward()
    except RuntimeError:
        return f"{cpu_name()} has no bf16 kernels here (oneDNN needs AVX512-BF16 or AMX-BF16)"
    return None


def check_precision(precision: str, device: torch.device) -> None:
    """bf16 where the device cannot run it is refused in one line (auto: seq2seq.training.precision decides)."""
    missing = bf16_missing(device.type) if precision == "bf16" else None
    if missing:
        raise ConfigError(f"trainer.precision=bf16: {missing}; use trainer.precision=fp32 (or auto)")


def set_deterministic(on: bool) -> None:
    """`trainer.deterministic`: PyTorch's deterministic algorithms, cuDNN without autotuning and a fixed
    cuBLAS workspace, so the same run on the same GPU gives the same bits (the CPU already does). The
    cuBLAS setting must be in the environment before the first cuBLAS call, so it is set here, before
    the model reaches the GPU."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    if on:
        torch.backends.cudnn.benchmark = False
