"""Keeps freed tensor memory inside the process, so CPU tensors of a few MiB are not re-faulted.

glibc's ``malloc`` serves large blocks with ``mmap`` and hands them back to the kernel on
``free``; the next tensor of that size then pays a page fault per 4 KiB before the arithmetic
starts. For the VAE's activations (a batch of 784 logits: 3 MiB at batch 1024, 6 MiB for a
chunk of 2,000 particles) that costs more than the arithmetic itself. Raising the ``mmap``
threshold to its maximum (32 MiB) and the trim threshold keeps such blocks in the heap for
reuse, as jemalloc or tcmalloc would. The ``ppl-vae`` command calls this at start; call it once
in your own process. It changes nothing on a system without glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Tunes glibc ``malloc`` as described above; True if it was applied."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (musl, macOS, Windows)
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
