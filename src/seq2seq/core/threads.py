"""How many threads torch runs, for every command that runs a model: training (and each job of a sweep,
each torchrun rank), generate, chat, the explorer and the benchmark all go through `Threads`.

Why it adapts. On a machine shared with other work (an editor, TensorBoard, a second experiment, a test
run), OpenMP threads that outnumber the free cores wait for each other at every parallel region: the
thread that finished spins (libgomp's default) while the one it waits for is off its core. On 2 cores
beside one busy process a Peeky step took 3.7 times as long with 2 threads as with 1 (AVX2 EPYC; 40 times
on an AVX-512 EPYC). So by default a run takes the cores other work leaves free, never fewer than one,
and measures again every `CHECK_SECONDS` while it trains: when a neighbour comes or goes, the count
follows. Spinning is kept (OMP_WAIT_POLICY and GOMP_SPINCOUNT are left alone): with threads that fit the
free cores no thread waits on one that lost its core, and every shorter spin measured slower, on a quiet
machine (PASSIVE: 2x) and on a busy one alike (docs/speed.md).

How it measures. Other work's load is the busy time of this process's CPUs (/proc/stat), less this run's
own CPU time (its threads, and the other ranks of a torchrun job on this machine), over the last window:
a neighbour keeping 0.4 of a core or more busy takes one core away (from there, one thread less was
already as fast on 2 cores).

What is honoured as given: `trainer.threads`, OMP_NUM_THREADS (the joblib launcher and the tests' workers
set it), and `trainer.deterministic=true`, which keeps one count for the whole run (every usable core,
whatever the load): a different thread count changes float rounding, so bit-identical runs and resumes
need a fixed one. Counts above MAX_PER_CORE threads a core are capped, with a warning (libgomp crashes
creating 100,000 threads).

Torch-free until a count is applied, so commands that read no model do not import it.
"""

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_PER_CORE = 4  # more threads than 4 a core only thrash
CHECK_SECONDS = 1.0  # how often a training run measures the machine's load again
START_WINDOW = 0.1  # seconds of measuring before the first choice
BUSY = 0.6  # other work's load is rounded up from 0.4 of a core: a core it keeps busy is not free
PROC = Path("/proc")
CGROUP_CPU = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" in microseconds, or "max <period>"


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, within a cgroup's CPU quota (a container's
    `--cpus`), at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def max_threads() -> int:
    return MAX_PER_CORE * usable_cores()


def ranks_here() -> int:
    """The processes of this run on this machine: torchrun's ranks (LOCAL_WORLD_SIZE), else one."""
    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def cpu_ticks(cpus: set[int]) -> int | None:
    """Busy clock ticks of these CPUs since boot (/proc/stat: user, nice, system, irq, softirq, steal),
    or None where there is no /proc/stat."""
    try:
        lines = (PROC / "stat").read_text().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
            busy += user + nice + system + irq + softirq + steal
    return busy


def process_ticks(pid: int) -> int:
    """User and system clock ticks of one process (its threads included); 0 once it is gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def sibling_ranks() -> list[int]:
    """The other torchrun ranks on this machine: the processes with this one's parent (torchrun's agent)."""
    if ranks_here() <= 1:
        return []
    parent, found = os.getppid(), []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == parent:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


class LoadMeter:
    """Other work's load on this process's CPUs, in cores, over the window since the last reading."""

    def __init__(self):
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
        self.siblings = sibling_ranks()
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = self.read()

    def read(self) -> tuple[float, int, float] | None:
        busy = cpu_ticks(self.cpus)
        if busy is None:
            return None
        times = os.times()
        own = times.user + times.system + sum(process_ticks(pid) for pid in self.siblings) / self.tick
        return time.monotonic(), busy, own

    def others(self) -> float | None:
        """Cores' worth of busy time that was not this run's since the last call (None: cannot tell)."""
        now = self.read()
        before, self.last = self.last, now
        if now is None or before is None or now[0] - before[0] <= 0:
            return None
        busy = (now[1] - before[1]) / self.tick
        return max(0.0, (busy - (now[2] - before[2])) / (now[0] - before[0]))


def env_threads() -> int | None:
    """OMP_NUM_THREADS as a count (its first level when it lists several), or None when unset or empty.
    Refused in one line when it is not a positive integer."""
    from seq2seq.core.errors import ConfigError

    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not value:
        return None
    first = value.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise ConfigError(f"OMP_NUM_THREADS={value[:40]!r}: must be a positive number of threads (or unset)")
    return int(first)


@dataclass
class Choice:
    threads: int
    why: str
    adapts: bool  # re-checked while training


def given(requested: int | None, deterministic: bool = False, source: str = "trainer.threads") -> Choice | None:
    """A count that does not follow the load: `requested` (`source`: the option that gave it, or why) or
    OMP_NUM_THREADS as given (capped), or every usable core (a share of them per torchrun rank) when
    deterministic; else None."""
    cores = usable_cores()
    for value, name in ((requested, source), (None if requested else env_threads(), "OMP_NUM_THREADS")):
        if value is not None:
            if value > max_threads():
                log.warning("%s=%d is more than %d threads a core on %d cores: using %d", name, value, MAX_PER_CORE,
                            cores, max_threads())  # fmt: skip
                os.environ["OMP_NUM_THREADS"] = str(max_threads())  # the processes this one starts, too
                return Choice(max_threads(), f"{name}={value}, capped", adapts=False)
            return Choice(value, f"{name}={value}, as given" if "." in name or name.isupper() else name, adapts=False)
    if deterministic:
        share = max(1, cores // ranks_here())
        return Choice(share, "trainer.deterministic: one count for the whole run, whatever the load", adapts=False)
    return None


def fit(others: float | None) -> Choice:
    """The cores that other work's load (`others`, in cores; None: unknown) leaves free, shared by this
    run's ranks on the machine, at least one thread."""
    cores, ranks = usable_cores(), ranks_here()
    if others is None:
        return Choice(max(1, cores // ranks), "the machine's load cannot be read here", adapts=False)
    busy = min(cores, int(others + BUSY))
    return Choice(max(1, (cores - busy) // ranks), describe(cores, busy, others), adapts=True)


def describe(cores: int, busy: int, others: float) -> str:
    if not busy:
        return f"{cores} cores free"
    return f"other work keeps {others:.1f} of {cores} cores busy"


def apply(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class Threads:
    """The thread count of one command: chosen by `start` (and logged once), adapted by `check` in a loop."""

    def __init__(self, requested: int | None = None, deterministic: bool = False, what: str = "training",
                 source: str = "trainer.threads"):  # fmt: skip
        self.requested, self.deterministic, self.what, self.source = requested, deterministic, what, source
        self.meter: LoadMeter | None = None
        self.choice: Choice | None = None
        self.next_check = 0.0
        self.pending: int | None = None  # a higher count seen once: taken when the next check agrees

    def start(self) -> int:
        """Choose, apply and log the count. Measuring the load takes START_WINDOW seconds; it is skipped
        where nothing depends on it (one thread given)."""
        pinned = given(self.requested, self.deterministic, self.source)
        others = None
        if pinned is None or pinned.threads > 1:
            self.meter = LoadMeter()
            time.sleep(START_WINDOW)
            others = self.meter.others()
        self.choice = pinned or fit(others)
        apply(self.choice.threads)
        message = f"threads: {self.choice.threads} for {self.what} ({self.choice.why}"
        log.info("%s", message + (f"; measured again every {CHECK_SECONDS:g} s)" if self.choice.adapts else ")"))
        if pinned is not None and others is not None:
            busy = int(others + BUSY)
            if pinned.threads * ranks_here() + busy > usable_cores():
                log.warning("threads: other work keeps %.1f of %d cores busy, and %d threads wait for each other's "
                            "cores: steps may be several times slower (leave trainer.threads and OMP_NUM_THREADS "
                            "unset to fit the free cores)", others, usable_cores(), pinned.threads)  # fmt: skip
        self.next_check = time.monotonic() + CHECK_SECONDS
        return self.choice.threads

    def check(self) -> int:
        """Cheap enough for every training step: measures only once CHECK_SECONDS have passed. A count
        goes down at once (a stalled step costs many), up when two measurements in a row agree."""
        if self.choice is None or not self.choice.adapts or time.monotonic() < self.next_check:
            return self.choice.threads if self.choice else 0
        self.next_check = time.monotonic() + CHECK_SECONDS
        others = self.meter.others()
        if others is None:
            return self.choice.threads
        new = fit(others)
        now = self.choice.threads
        if new.threads < now or (new.threads > now and self.pending == new.threads):
            log.info("threads: %d -> %d for %s (%s)", now, new.threads, self.what, new.why)
            apply(new.threads)
            self.choice, self.pending = new, None
        else:
            self.pending = new.threads if new.threads > now else None
        return self.choice.threads
