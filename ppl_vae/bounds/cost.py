"""What an evaluation will hold in memory, checked against what the machine has before it starts.

The stream of particles is folded chunk by chunk, so memory is flat in K, except where an
estimator needs a batch's log weights whole (PSIS k-hat, ``Estimator.keeps_log_w``): then one
batch holds ``[K_max, batch]`` of them several times over: the float32 chunks kept, their
concatenation, the float64 copies handed to arviz and arviz's own work. Measured as the growth
of peak RSS for K = 400,000 on a batch of 20 points with k-hat (2026-12-02, this repository's
``tests/test_cost.py::test_the_kept_bytes_match_the_measured_peak`` measures it again): 25.0
bytes per particle and data point, ``KEPT_BYTES``. ``check_memory`` refuses a run whose peak
would exceed the memory available now, naming the figure and the fixes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import InputError

KEPT_BYTES = 25  # bytes per particle and data point of a batch whose log weights are kept


def available_memory(device: torch.device) -> int | None:
    """Bytes the job may still take: free GPU memory on CUDA, ``MemAvailable`` on Linux; None
    where it cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_bytes(k_max: int, batch: int, keeps_log_w: bool) -> int:
    """The memory an evaluation's kept log weights reach for one batch (0 when none keeps them:
    the chunks' own memory does not grow with K)."""
    return KEPT_BYTES * k_max * batch if keeps_log_w else 0


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(k_max: int, batch: int, keeps_log_w: bool, device: torch.device) -> None:
    """Raises InputError when the kept log weights of one batch would not fit in memory."""
    need = peak_bytes(k_max, batch, keeps_log_w)
    have = available_memory(device)
    if not need or have is None or need <= have:
        return
    fits = have // (KEPT_BYTES * k_max)
    smaller = f", or a batch size of at most {fits} (--batch-size)" if fits else ""
    raise InputError(
        f"K = {k_max:,} with PSIS k-hat keeps each batch's log weights whole: about "
        f"{gib(need)} for a batch of {batch} points, and this machine has {gib(have)} "
        f"available. Pass --no-khat (khat=False: memory then stays flat in K){smaller}, or a "
        f"smaller K."
    )
