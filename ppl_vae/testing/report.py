"""What the contract checks share: the clause names, the collector of failures, the report a
passing check returns, and the block that leaves the caller's random streams and Pyro's param
store as they were."""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyro
import torch

from ..core.errors import ContractError
from ..core.rng import forked_rng
from ..core.tracing import DATA_PLATE

# Each clause by its short name (the name of the problem), and what the contract asks.
CLAUSES: dict[str, str] = {
    "does not run": "the model, guide or objective runs on a batch x [N, ...] (and cond=)",
    "not a module": "a guide is a PyroModule, so that SVI, checkpoints, STL and DReG reach it",
    "observed site": "the model observes the data at site 'x' (obs=x); a guide observes nothing",
    "site outside the data plate": "every latent site and 'x' lie inside pyro.plate('data', N)",
    "log density not per data point": "log_prob is one number per data point (.to_event)",
    "wrong shapes": "batch [N] at the data plate, any N, [K, N] under a particle plate, "
    "log weights [K, N], estimates [N]",
    "not reparameterized": "a guide's continuous latents have rsample; discrete ones enumerate",
    "sites do not match": "the model and the guide have the same latent sites",
    "not finite": "log densities, log weights, losses, gradients and estimates are finite",
    "no gradients": "every trainable parameter of the guide (and model) gets a gradient",
    "missing method": "an objective has loss() and loss_and_grads() (Pyro's ELBO interface)",
    "not a float": "loss() and loss_and_grads() return a Python float",
    "not deterministic": "the same pyro.set_rng_seed gives the same loss",
    "fails with vectorized particles": "with vectorize_particles, the guide is drawn under a "
    "particle plate of size num_particles",
    "not pure": "an estimator is a function of log_w alone: no in-place change, no randomness",
    "depends on particle order": "permuting the particles leaves the estimate unchanged",
    "not exact at equal weights": "a bound equals c where every log weight is c",
    "not shift-equivariant": "a bound of log_w + c is the bound of log_w, plus c",
    "fold disagrees": "a streaming fold equals compute() on the concatenated parts",
}


@dataclass(frozen=True)
class Failure:
    """One broken clause: its short name and a message that names the problem and the fix."""

    clause: str
    message: str

    def __str__(self) -> str:
        return f"{self.clause}: {self.message}"


@dataclass(frozen=True)
class ContractReport:
    """What a passing check ran: ``passed`` clause names, and ``skipped`` ``(clause, why)``."""

    check: str
    passed: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        lines = [f"{self.check}: {len(self.passed)} clauses passed: {', '.join(self.passed)}"]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)


def describe(subject: object) -> str:
    """A short name for what is checked: a function's name, else its class name."""
    name = getattr(subject, "__name__", None)
    return name if isinstance(name, str) else type(subject).__name__


class Checks:
    """Collects the clauses one check ran, the failures found and the clauses it skipped."""

    def __init__(self, check: str, subject: object):
        self.title = f"{check}({subject if isinstance(subject, str) else describe(subject)})"
        self.ran: list[str] = []
        self.failures: list[Failure] = []
        self.skipped: dict[str, str] = {}

    def passed(self, clause: str) -> None:
        if clause not in self.ran:
            self.ran.append(clause)

    def fail(self, clause: str, message: str) -> None:
        self.passed(clause)
        if (failure := Failure(clause, message)) not in self.failures:
            self.failures.append(failure)

    def fail_once(self, clause: str, message: str) -> None:
        """Records a failure unless ``clause`` has failed already (the same fault, elsewhere)."""
        if not self.failed(clause):
            self.fail(clause, message)

    def skip(self, clause: str, why: str) -> None:
        self.skipped.setdefault(clause, why)

    def merge(self, other: Checks) -> bool:
        """Takes in what ``other`` ran, found and skipped; True if it found nothing."""
        for clause in other.ran:
            self.passed(clause)
        for f in other.failures:
            self.fail(f.clause, f.message)
        for clause, why in other.skipped.items():
            self.skip(clause, why)
        return not other.failures

    def failed(self, *clauses: str) -> bool:
        return any(f.clause in clauses for f in self.failures) if clauses else bool(self.failures)

    def done(self, clauses: tuple[str, ...]) -> ContractReport:
        """Raises one ContractError listing every failure, else returns the report."""
        not_run = [c for c in clauses if c not in self.ran and c not in self.skipped]
        failed = {f.clause for f in self.failures}
        skipped = {c: why for c, why in self.skipped.items() if c not in failed}
        if self.failures:
            skipped.update((c, "not reached after the failures above") for c in not_run)
            lines = [f"{self.title} broke {len(self.failures)} contract clause(s):"]
            lines += [f"  - {f}" for f in self.failures]
            if skipped:
                lines.append(f"  (not checked: {', '.join(skipped)})")
            raise ContractError("\n".join(lines), tuple(self.failures))
        skipped.update((c, "not reached") for c in not_run)
        passed = tuple(c for c in self.ran if c not in failed and c not in self.skipped)
        return ContractReport(self.title, passed, tuple(skipped.items()))


@contextlib.contextmanager
def isolated(like: torch.Tensor) -> Iterator[None]:
    """Runs the block on forks of torch's, Python's and NumPy's random streams (the checks seed
    them with ``pyro.set_rng_seed``) and on an empty param store, restoring all afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with forked_rng(like.device), pyro.get_param_store().scope():
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def first_line(e: BaseException) -> str:
    """The exception in one line (Pyro appends a table of trace shapes to its messages)."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": .")


MISMATCH = re.compile(
    r"Shape mismatch inside plate\('(?P<plate>[^']*)'\) at site (?P<site>\S+) dim "
    r"(?P<dim>-?\d+), (?P<size>\d+) vs (?P<got>\d+)"
)


def explain(role: str, e: BaseException, x: torch.Tensor) -> Failure | None:
    """The clause behind Pyro's "Shape mismatch inside plate" error, with the fix, or None."""
    m = MISMATCH.search(str(e))
    if m is None:
        return None
    site, plate, dim, size, got = m["site"], m["plate"], int(m["dim"]), int(m["size"]), m["got"]
    n = x.shape[0]
    if plate != DATA_PLATE:
        return Failure(
            "wrong shapes",
            f"{role} site '{site}' has size {got} at dim {dim}, where pyro.plate('{plate}', "
            f"{size}) sits: give distributions batch shape [N] and let the plates broadcast them "
            f"(do not size tensors from z.shape or a fixed number).",
        )
    if size != n:
        return Failure(
            "wrong shapes",
            f"{role} has pyro.plate('{DATA_PLATE}', {size}) but the batch holds {n} data points: "
            f"size the plate from the data, pyro.plate('{DATA_PLATE}', x.shape[0]).",
        )
    if site == "x" and x.dim() > 1 and int(got) == x.shape[-1]:
        return Failure(
            "log density not per data point",
            f"{role} site 'x' has log_prob of shape {list(x.shape)}: declare the pixels as one "
            f"event with .to_event({x.dim() - 1}).",
        )
    return Failure(
        "log density not per data point",
        f"{role} site '{site}' has a batch dimension of size {got} at dim {dim}, where "
        f"pyro.plate('{DATA_PLATE}', {n}) puts the data points: its log density is not one "
        f"number per data point; declare that dimension as part of the event with .to_event(1).",
    )
