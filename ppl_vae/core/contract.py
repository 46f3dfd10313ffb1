"""The written contract: what a model, a guide, a prior, a likelihood and an objective must
have, and each optional capability the toolkit looks for.

A **model** is any callable ``model(x, **inputs)`` that samples its latent site(s) inside
``pyro.plate("data", N)`` and observes the data at site ``"x"`` under the same plate. A
**guide** is a ``PyroModule`` whose ``guide(x, **inputs)`` samples the same latent sites with
reparameterizable distributions under the same plate. Those two sentences are the whole
requirement: every objective, bound, AIS run and analysis works through Pyro traces of them
(``core.tracing``). ``ppl_vae.testing`` checks a user's own model or guide against it.

Everything else is optional. Each capability below is a ``typing.Protocol``: an object has it
when it has the members the protocol lists, and the toolkit asks in one way only,
``has(obj, Capability)``, never with ``getattr`` or ``hasattr`` of its own. Each docstring says
when the toolkit calls the capability and what it does without it.

Parts of a model (``ppl_vae.model``) have contracts too: a ``Prior`` returns p(z), a
``Likelihood`` maps decoder outputs to p(x|z) and declares how many outputs it needs per pixel,
and a part that needs another part's network (a VampPrior reads the guide's encoder) is a
``SharesGuide``: it gets the guide through ``share_guide`` and keeps it in a ``Shared``, which
holds a module without registering it, so its parameters stay the guide's alone.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: importing the contract loads no torch
    import torch
    from torch.distributions import Distribution


@runtime_checkable
class Model(Protocol):
    """``model(x, **inputs)``: samples the latent site(s) and observes ``"x"`` inside
    ``pyro.plate("data", N)``; each site's log density is one number per data point."""

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class Guide(Protocol):
    """``guide(x, **inputs)``: samples the model's latent sites with reparameterizable
    distributions (``has_rsample``) inside ``pyro.plate("data", N)``; observes nothing."""

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any: ...


# --- what a model may have ------------------------------------------------------------------


@runtime_checkable
class ChecksData(Protocol):
    """``check(x)`` raises ``DataError`` for data the model cannot score. Training and
    evaluation call it once per split before the first step (``model.checks.checked_once``);
    without it they check only that the data are finite."""

    def check(self, x: torch.Tensor) -> None: ...


@runtime_checkable
class QuietChecks(Protocol):
    """``data_checks_off()``: a context manager inside which ``forward`` skips its own data
    check. Entered around the hot loop once the data were checked; without it the model's own
    checks run every call."""

    def data_checks_off(self) -> contextlib.AbstractContextManager[None]: ...


@runtime_checkable
class Conditioned(Protocol):
    """A model (or guide) with a conditioning input: ``model(x, cond=c)``, ``c`` one row per data
    point (a label, the given part of an image). ``takes_cond`` is True. The data splits then
    carry ``cond``; training passes each batch's rows, and the bounds bound log p(x | cond)."""

    takes_cond: ClassVar[bool]


@runtime_checkable
class SumsOutLabel(Protocol):
    """A discrete latent summed params exactly where it is not given (M2's label).
    ``summed_cond(x)`` lists its values (each ``[N]``), or None when it must be given. The
    bounds then weigh every value: w = sum_y p(x, y, z_y) / q(z_y | x, y)."""

    def summed_cond(self, x: torch.Tensor) -> list[torch.Tensor] | None: ...


@runtime_checkable
class HasPrior(Protocol):
    """``prior(like)``: p(z) of the top latent site, on ``like``'s dtype and device. AIS starts
    from it (``start="prior"``), BDMC simulates from it, and the latent pictures decode its
    draws. A model without it gets neither."""

    def prior(self, like: torch.Tensor) -> Distribution: ...


@runtime_checkable
class JointDensity(Protocol):
    """``log_joint(x, z)``: (log p(x, z), log p(z)), each ``[C, N]`` for z ``[C, N, z_dim]``,
    computed directly for a model with one latent site ``"z"``. AIS and BDMC score every
    leapfrog step with it instead of a trace of the model, after checking once per chunk that
    it gives the trace's values; a model without it (or whose values differ) is traced."""

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class Samples(Protocol):
    """``sample(n, mean=True)``: ``n`` data points drawn from the model, ``[n, x_dim]`` (their
    means by default). ``ppl-vae sample``, TensorBoard images and BDMC's simulation use it."""

    x_dim: int

    def sample(self, n: int, mean: bool = True) -> torch.Tensor: ...


@runtime_checkable
class HasImages(Protocol):
    """``image_shape``: (C, H, W) of one data point, or None for plain vectors. Pictures are
    drawn only for models whose ``image_shape`` is set."""

    image_shape: tuple[int, ...] | None


@runtime_checkable
class HasLikelihood(Protocol):
    """``likelihood``: the model's p(x|z) part (a ``Likelihood``). Read by the output-bias
    initialization (Bernoulli pixels start at the logit of the training mean)."""

    likelihood: Any


@runtime_checkable
class Completes(Protocol):
    """``complete(cond, mean=True)``: image completion, the given pixels of ``cond`` kept and
    the hidden ones predicted. The CVAE's pictures show it."""

    def complete(self, cond: torch.Tensor, mean: bool = True) -> torch.Tensor: ...


@runtime_checkable
class Analogies(Protocol):
    """``analogies(z)``: the means of p(x | y, z) for each style z and every class y,
    ``[n, C, x_dim]``; ``num_classes`` is C. The pictures of a model with labels show it."""

    num_classes: int

    def analogies(self, z: torch.Tensor) -> torch.Tensor: ...


# --- what a guide may have ------------------------------------------------------------------


@runtime_checkable
class EncoderDistribution(Protocol):
    """``distribution(x)``: q(z|x) itself, batch ``[N]``, event ``[z_dim]``, for a guide with one
    latent site ``"z"``. AIS starts its chains from it, the information split and the
    closed-form KL read it; without it those fall back to traces (or say why not)."""

    def distribution(self, x: torch.Tensor) -> Distribution: ...


@runtime_checkable
class TopDistribution(Protocol):
    """``top_distribution(x)``: a density over a hierarchical guide's top site ``"zL"`` from x
    alone, batch ``[N]``, event ``[z_L dim]``. A VampPrior on the hierarchical model's top
    layer mixes it over its pseudo-inputs."""

    def top_distribution(self, x: torch.Tensor) -> Distribution: ...


@runtime_checkable
class ReusesDistribution(Protocol):
    """``reusing_distribution()``: a context manager inside which (gradients off) q(z|x) is
    built once per data tensor. The bounds enter it while drawing many chunks of particles for
    the same points, so the encoder runs once."""

    def reusing_distribution(self) -> contextlib.AbstractContextManager[None]: ...


@runtime_checkable
class EpochMetrics(Protocol):
    """``epoch_metrics(data)``: extra figures for every epoch's metrics row (M2's
    ``test_accuracy``), computed after the validation ELBO. Keys that start with ``test_`` also
    go into ``summary.json``."""

    def epoch_metrics(self, data: Any) -> dict[str, float]: ...


# --- what an objective may have -------------------------------------------------------------


@runtime_checkable
class BeginsEpoch(Protocol):
    """``begin_epoch(epoch)``: called by the training loop before each epoch (KL warm-up sets
    its weight); the figures it returns go into that epoch's metrics row."""

    def begin_epoch(self, epoch: int) -> dict[str, float] | None: ...


@runtime_checkable
class DeclaresKL(Protocol):
    """``kl_estimate``: how the objective estimates a separate KL term (``"sample"``,
    ``"analytic"``, ``"stl"``), or None if it has none. Free bits wrap only objectives that
    have one."""

    kl_estimate: str | None


@runtime_checkable
class Wraps(Protocol):
    """``base``: the objective a wrapper (KL warm-up, free bits) applies to. Plate nesting and
    the epoch hook pass through it."""

    base: Any


# --- model parts -----------------------------------------------------------------------------


@runtime_checkable
class Prior(Protocol):
    """A prior part: ``prior(like)`` returns p(z) with event shape ``[z_dim]`` on ``like``'s
    dtype and device. It is an ``nn.Module`` and may have parameters (a mixture, a flow); it is
    called on every model run, so it must not cache a distribution that depends on them."""

    z_dim: int

    def __call__(self, like: torch.Tensor) -> Distribution: ...


@runtime_checkable
class Likelihood(Protocol):
    """A likelihood part: ``likelihood(params)`` maps decoder outputs ``[..., k * x_dim]`` to a
    distribution with batch shape ``[..., x_dim]`` (one factor per pixel), ``event(params)`` to one
    with the pixels as one event, and ``check(x)`` refuses data it cannot score.
    ``outputs_per_pixel`` is k: the decoder is built with k outputs per pixel (parameter j of
    pixel i at ``params[..., j * x_dim + i]``)."""

    outputs_per_pixel: int

    def __call__(self, params: torch.Tensor) -> Distribution: ...

    def event(self, params: torch.Tensor) -> Distribution: ...

    def check(self, x: torch.Tensor) -> None: ...


@runtime_checkable
class DiscreteBits(Protocol):
    """A likelihood part that is a probability mass over the 2^``discrete_bits`` integer levels
    of every pixel (8: the 256 gray levels of an 8-bit image), so that -log p(x) in bits per
    dimension, -log p(x) / (D log 2), is the figure papers report. Evaluation then adds it to
    every bound's record (``bpd``, ``bpd_stderr``) and the tables a bits/dim column; without it
    there is no such figure (a density's or a binarized image's "bits" mean something else)."""

    discrete_bits: int


@runtime_checkable
class SharesGuide(Protocol):
    """A part (or a model holding one) that reads the guide's networks, e.g. a VampPrior's
    q(z | u_k) over pseudo-inputs. ``share_guide(guide)`` is called once both are built
    (``ppl_vae.model.connect``); the part keeps the guide in a ``Shared``."""

    def share_guide(self, guide: Any) -> None: ...


class Shared:
    """A reference to a module owned by another part, held outside ``nn.Module``'s registry:
    its parameters are saved, moved and optimized once, with their owner, and are not
    registered a second time in Pyro's param store."""

    def __init__(self, module: torch.nn.Module):
        self._module = module

    @property
    def module(self) -> torch.nn.Module:
        """The shared module."""
        return self._module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._module(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Shared({type(self._module).__name__})"


CAPABILITIES: dict[str, type] = {
    c.__name__: c
    for c in (
        ChecksData,
        QuietChecks,
        Conditioned,
        SumsOutLabel,
        HasPrior,
        JointDensity,
        Samples,
        HasImages,
        HasLikelihood,
        Completes,
        Analogies,
        EncoderDistribution,
        TopDistribution,
        ReusesDistribution,
        EpochMetrics,
        BeginsEpoch,
        DeclaresKL,
        Wraps,
        DiscreteBits,
        SharesGuide,
    )
}


def has(obj: object, capability: type) -> bool:
    """True when ``obj`` has every member of the ``capability`` protocol: the one way the
    toolkit tests for an optional hook."""
    return isinstance(obj, capability)


def reusing(guide: object) -> contextlib.AbstractContextManager[None]:
    """``guide.reusing_distribution()`` where the guide has it, else a block that does nothing."""
    return (
        guide.reusing_distribution() if has(guide, ReusesDistribution) else contextlib.nullcontext()
    )
