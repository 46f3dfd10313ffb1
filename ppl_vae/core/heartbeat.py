"""What a long job will cost, said before it is spent, and a line every few minutes while it runs.

``Heartbeat`` serves ``evaluate``, AIS and BDMC: the job times its first piece of work (a chunk
of particles, a batch of chains) and calls ``estimate`` with the total it implies, then reports
the share done with ``beat``. The estimate is printed on stderr once: always when a progress bar
is shown (through tqdm, so the bar is not broken), and with the bar off only when the job will
run longer than ``every`` seconds. With the bar off, ``beat`` prints a line every ``every``
seconds (default three minutes): the share done, the time spent and the time left.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

EVERY = 180.0  # seconds between the lines of a job without a progress bar


def duration(seconds: float) -> str:
    """``"40 s"``, ``"4.2 min"``, ``"1.3 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Heartbeat:
    """Says what ``what`` (e.g. ``"evaluate"``) will cost and, without a bar, how far it is."""

    def __init__(
        self,
        what: str,
        *,
        progress: bool,
        enabled: bool = True,
        every: float = EVERY,
        out: TextIO | None = None,
    ) -> None:
        self.what, self.progress, self.enabled, self.every = what, progress, enabled, every
        self.out = out
        self.t0 = self.last = time.perf_counter()
        self.said: float | None = None  # the total estimated, once said

    def _say(self, line: str) -> None:
        out = self.out or sys.stderr
        if self.progress:
            from tqdm import tqdm

            tqdm.write(f"{self.what}: {line}", file=out)
        else:
            print(f"{self.what}: {line}", file=out, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def estimate(self, total_seconds: float, detail: str) -> None:
        """Says ``about <total> for <detail>`` once, and again if a later estimate is more than
        1.5 times the one said (the first piece of work did not show all the costs)."""
        if not self.enabled:
            return
        if self.said is not None and total_seconds <= 1.5 * self.said:
            return
        if self.progress or total_seconds > self.every:
            again = "" if self.said is None else "now "
            self._say(f"{again}about {duration(total_seconds)} for {detail}")
            self.said = total_seconds

    def beat(self, fraction: float) -> None:
        """Without a bar, prints the share done every ``every`` seconds."""
        now = time.perf_counter()
        if not self.enabled or self.progress or now - self.last < self.every or fraction <= 0:
            return
        self.last = now
        spent = now - self.t0
        left = spent * (1 - fraction) / fraction
        self._say(
            f"{100 * fraction:.0f}% done after {duration(spent)}, about {duration(left)} left"
        )
