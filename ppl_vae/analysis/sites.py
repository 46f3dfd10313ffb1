"""The latent sites of a guide, traced in batches of data and, where asked, of particles.

Every diagnostic of the latent space reads the guide through here, so it works for any guide
that follows the contract: each latent sample site lies inside ``pyro.plate("data", N)``, any
number of sites, any distribution. A site's value has shape ``[N, *event]``; its units are the
``prod(event)`` numbers of one data point's value, flattened (``[N, d]``).

Particles are traced under the vectorized particle plate of ``core.tracing``, left of the
guide's own plates, so a value becomes ``[S, N, *event]``; the model, where one is needed (for
the prior of each site), is replayed on the guide's values.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import pyro.poutine as poutine
import torch
from pyro.poutine.trace_struct import Trace

from ..core.contract import reusing
from ..core.errors import InputError, SiteError
from ..core.tracing import DATA_PLATE, is_latent, particle_plate

MAX_ROWS = 50_000  # particles x data points traced at once; bounds memory for any batch size


def check_data(x: torch.Tensor, batch_size: int) -> None:
    """Raises InputError unless ``x`` has at least 2 data points and ``batch_size >= 1``."""
    if not torch.is_tensor(x) or x.dim() < 1:
        raise InputError(f"x must be a tensor of data points [N, ...], got {type(x).__name__}.")
    if len(x) < 2:
        raise InputError(
            f"the latent-space diagnostics compare data points and need at least 2, got {len(x)}."
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}.")


def plate_nesting(guide: Callable, x: torch.Tensor) -> int:
    """The number of vectorized plate dimensions the guide's latent sites use (one probe trace,
    on a forked RNG so that later draws do not depend on it)."""
    with torch.no_grad(), poutine.block(), torch.random.fork_rng():
        tr = poutine.trace(guide).get_trace(x[:1])
    dims = [
        -f.dim
        for site in tr.nodes.values()
        if is_latent(site)
        for f in site["cond_indep_stack"]
        if f.vectorized
    ]
    return max(dims, default=0)


def latent_sites(tr: Trace) -> dict[str, dict]:
    """The latent sample sites of a trace, in the order the guide sampled them; SiteError if
    there is none or one is outside the data plate."""
    sites = {name: s for name, s in tr.nodes.items() if is_latent(s)}
    if not sites:
        raise SiteError("the guide samples no latent site; there is no latent space to diagnose.")
    for name, s in sites.items():
        if not any(f.name == DATA_PLATE for f in s["cond_indep_stack"]):
            raise SiteError(
                f"latent site '{name}' is not inside pyro.plate('{DATA_PLATE}', N); the "
                f"diagnostics need one value per data point at every latent site."
            )
    return sites


def units(value: torch.Tensor, fn) -> torch.Tensor:
    """A site's value ``[..., N, *event]`` as ``[..., N, d]``, d = prod(event)."""
    event = len(fn.event_shape)
    lead = value.shape[: value.dim() - event]
    return value.reshape(*lead, math.prod(value.shape[value.dim() - event :]))


def closed_form_mean(fn) -> torch.Tensor | None:
    """The distribution's mean if torch knows it in closed form, else None (flows, say)."""
    try:
        mean = fn.mean
    except (NotImplementedError, AttributeError):
        return None
    return mean if torch.isfinite(mean).all() else None


@contextlib.contextmanager
def _reusing(guide: Callable) -> Iterator[None]:
    with torch.no_grad(), reusing(guide):
        yield


def iter_traces(
    guide: Callable,
    x: torch.Tensor,
    batch_size: int,
    num_particles: int = 0,
    model: Callable | None = None,
) -> Iterator[tuple[slice, Trace, Trace | None]]:
    """Yields ``(rows, guide_trace, model_trace)`` per batch of data: the guide traced on
    ``x[rows]``, under a particle plate of ``num_particles`` when that is > 0, and the model
    replayed on the guide's latent values when a ``model`` is given (else None). With particles,
    a batch holds at most ``MAX_ROWS // num_particles`` data points."""
    nesting = plate_nesting(guide, x) if num_particles else 0
    if num_particles:
        batch_size = max(1, min(batch_size, MAX_ROWS // num_particles))
    for start in range(0, len(x), batch_size):
        rows = slice(start, min(start + batch_size, len(x)))
        xb = x[rows]

        def wrap(fn):
            return particle_plate(num_particles, nesting)(fn) if num_particles else fn

        with _reusing(guide):
            guide_tr = poutine.trace(wrap(guide)).get_trace(xb)
            model_tr = None
            if model is not None:
                replayed = poutine.replay(wrap(model), trace=guide_tr)
                model_tr = poutine.trace(replayed).get_trace(xb)
        yield rows, guide_tr, model_tr


def per_particle(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` as ``[S, n, d]``: a tensor that lacks the particle dimension gets one of size 1."""
    return t if t.dim() == 3 else t.reshape(1, n, -1)
