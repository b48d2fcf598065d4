"""Where training runs: the device choice and the determinism switches (`trainer.device`,
`trainer.deterministic`). A module of its own, so sweeps can pickle the training entry point by value
(`python -m seq2seq.train` runs it as __main__) without pickling torch's backend modules."""

import functools
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
    """bf16 where the device cannot run it is refused in one line."""
    missing = bf16_missing(device.type) if precision == "bf16" else None
    if missing:
        raise ConfigError(f"trainer.precision=bf16: {missing}; use trainer.precision=fp32 (or auto)")


def resolve_precision(precision: str, device: torch.device) -> str:
    """`trainer.precision`: bf16 is refused, before anything is built, where the device cannot run it.
    `auto` chooses bf16 where it was measured to pay and hold accuracy, fp32 elsewhere, and logs the
    choice (README "Speed"): bf16 on CPUs with AMX-BF16; fp32 on CPUs without (an AMD EPYC: no gain) and
    on GPUs (an H200: these small models are bound by launch latency, not arithmetic, so bf16 only adds
    casts). fp32 passes through."""
    check_precision(precision, device)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        chosen, why = "fp32", "on the GPU these models are latency-bound: bf16 was measured not to pay"
    elif has_amx_bf16() and not bf16_missing(device.type):
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


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Set by the first job of a process, or by a sweep before its jobs start (seq2seq.preflight): the
# oversubscription warning is said once, not once per job.
WARNED_ENV = "SEQ2SEQ_THREADS_WARNED"


def oversubscription(threads: int, processes: int = 1) -> str | None:
    """The warning for a run of `processes` processes (torchrun's WORLD_SIZE) of `threads` threads each,
    when the cores left by other work cannot hold them; None when they can, or when the run already uses
    one thread a process (it cannot do better). The other processes of this run are not other work."""
    cores = usable_cores()
    others = runnable_elsewhere()
    if threads <= 1 or others is None:
        return None
    others = max(0, others - (processes - 1))  # the other ranks' main threads are this run's
    if not others or others + threads * processes <= cores:
        return None
    return (
        f"{others} other threads are running on {cores} cores: with {threads * processes} threads this run "
        "oversubscribes them, and every step can be many times slower. Run one training at a time, or give "
        "each trainer.threads=1 (OMP_NUM_THREADS=1)"
    )


def set_threads(threads: int | None) -> int:
    """`trainer.threads`: torch's threads for this run. By default OMP_NUM_THREADS when it is set (the
    joblib launcher and parallel test workers set it, to share the cores), else every core this process
    may use. Warns once when other work already keeps the cores busy: two runs of 2 threads each on 2
    cores made epochs 20-60 times slower than one run at a time."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else usable_cores()
    torch.set_num_threads(threads)
    if not os.environ.get(WARNED_ENV):
        processes = int(os.environ.get("WORLD_SIZE", "1")) if os.environ.get("WORLD_SIZE", "").isdigit() else 1
        warning = oversubscription(threads, processes)
        if warning:
            log.warning("%s", warning)
            os.environ[WARNED_ENV] = "1"
    return threads
