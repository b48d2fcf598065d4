"""Where training runs: the device choice and the determinism switches (`trainer.device`,
`trainer.deterministic`). A module of its own, so sweeps can pickle the training entry point by value
(`python -m seq2seq.train` runs it as __main__) without pickling torch's backend modules."""

import logging
import os
import time
from pathlib import Path

import torch

from seq2seq.errors import ConfigError

log = logging.getLogger(__name__)


def select_device(name: str) -> torch.device:
    """`trainer.device`: auto (CUDA when available, else CPU), cpu or cuda."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda, but no CUDA device is available (use trainer.device=auto or cpu)")
    return torch.device(name)


CPUINFO = Path("/proc/cpuinfo")


def has_amx_bf16() -> bool:
    """Whether this CPU has AMX-BF16 tile units (Intel Sapphire Rapids and later, Linux's cpuinfo flag):
    there bf16 matrix products run on the tiles, and trainer.precision=bf16 was measured to pay."""
    try:
        return "amx_bf16" in CPUINFO.read_text().split()
    except OSError:
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """`trainer.precision=auto`: bf16 where it was measured to pay and hold accuracy, fp32 elsewhere, and
    the choice logged (README "Speed"): bf16 on CPUs with AMX-BF16; fp32 on CPUs without (an AMD EPYC:
    no gain) and on GPUs (an H200: these small models are bound by launch latency, not arithmetic, so
    bf16 only adds casts). fp32 and bf16 pass through."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        chosen, why = "fp32", "on the GPU these models are latency-bound: bf16 was measured not to pay"
    elif has_amx_bf16():
        chosen, why = "bf16", "this CPU has AMX-BF16"
    else:
        chosen, why = "fp32", "this CPU has no AMX-BF16: bf16 was measured not to pay"
    log.info("trainer.precision=auto: %s (%s)", chosen, why)
    return chosen


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


def runnable_elsewhere() -> int | None:
    """Threads that want a core right now besides this one: the 4th field of /proc/loadavg counts the
    runnable ones (this process included). The least of a few reads, so a passing burst does not count.
    None where there is no /proc (not Linux)."""
    try:
        counts = []
        for _ in range(5):
            counts.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1)
            time.sleep(0.02)
    except (OSError, IndexError, ValueError):
        return None
    return min(counts)


def set_threads(threads: int | None) -> int:
    """`trainer.threads`: torch's threads for this run. By default OMP_NUM_THREADS when it is set (the
    joblib launcher and parallel test workers set it, to share the cores), else every core this process
    may use. Warns when other work already keeps cores busy: two runs of 2 threads each on 2 cores made
    epochs 20-60 times slower than one run at a time."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else cores
    torch.set_num_threads(threads)
    others = runnable_elsewhere()
    if others and others + threads > cores:
        log.warning(
            "%d other threads are running on %d cores: with %d threads this run oversubscribes them, and "
            "every step can be many times slower. Run one training at a time, or give each "
            "trainer.threads=1 (OMP_NUM_THREADS=1)",
            others, cores, threads,
        )  # fmt: skip
    return threads
