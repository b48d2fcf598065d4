"""Where training runs: the device choice and the determinism switches (`trainer.device`,
`trainer.deterministic`). A module of its own, so sweeps can pickle the training entry point by value
(`python -m seq2seq.train` runs it as __main__) without pickling torch's backend modules."""

import os

import torch

from seq2seq.errors import ConfigError


def select_device(name: str) -> torch.device:
    """`trainer.device`: auto (CUDA when available, else CPU), cpu or cuda."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda, but no CUDA device is available (use trainer.device=auto or cpu)")
    return torch.device(name)


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
