"""The hierarchical VAE p(z2) p(z1|z2) p(x|z1) and its bottom-up guide q(z1|x) q(z2|z1).

Exact test: a linear-Gaussian chain z2 ~ N(0, I), z1 | z2 ~ N(A z2 + a, S1), x | z1 ~
N(W z1 + b, s^2 I), built from the toolkit's own layers (no hidden units, so every mean is
linear and every scale constant). Its marginal is Gaussian, x ~ N(W a + b, W (A A^T + S1) W^T +
s^2 I), and since z2 -> z1 -> x is a chain, p(z2 | z1, x) = p(z2 | z1): the posterior is
p(z1 | x) p(z2 | z1), which the bottom-up guide represents exactly when both are diagonal. That
holds here: A and S1 diagonal and W with orthogonal columns. With the guide set to the exact
posterior every log weight equals log p(x) (to float64 precision); with a perturbed guide the
bounds are ordered ELBO < IWAE_5 < IWAE_50 < log p(x), each gap by more than 4 standard errors.
Then every objective and wrapper takes a step on the model, and the pictures draw it.
"""

from __future__ import annotations

import math

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import SVI
from torch.distributions import MultivariateNormal

from ppl_vae.bounds import log_weights
from ppl_vae.guides.hierarchical import HIERARCHICAL_GUIDES, BottomUpGaussian
from ppl_vae.model.hierarchical import build_hierarchical
from ppl_vae.model.likelihoods import softplus_inverse
from ppl_vae.objectives import OBJECTIVES, build_objective
from ppl_vae.training.optimizers import build_optimizer

DTYPE = torch.float64
A = torch.tensor([0.8, -1.5], dtype=DTYPE)  # diagonal of A
a = torch.tensor([0.3, -0.2], dtype=DTYPE)
S1 = torch.tensor([0.6, 0.9], dtype=DTYPE)  # standard deviations of z1 | z2
Q = torch.tensor([[1, 1], [1, -1], [1, 1], [1, -1]], dtype=DTYPE) / 2  # orthonormal columns
W = Q * torch.tensor([1.7, 0.9], dtype=DTYPE)  # orthogonal columns
b = torch.tensor([0.1, -0.4, 0.2, 0.0], dtype=DTYPE)
s = 0.5


def _set(layer, weight_loc, bias_loc, log_scale) -> None:
    """A linear Gaussian layer: loc = weight_loc v + bias_loc, scale = exp(log_scale)."""
    linear = layer.net[-1]
    d = layer.out_dim
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[:d] = weight_loc
        linear.bias[:d] = bias_loc
        linear.bias[d:] = log_scale


def chain_model():
    model = build_hierarchical(
        4, [2, 2], [[], []], likelihood="gaussian", likelihood_options={"scale": s}
    ).to(DTYPE)
    _set(model.conditionals[0], torch.diag(A), a, S1.log())
    with torch.no_grad():
        model.likelihood.raw_scale.fill_(softplus_inverse(s))  # made in float32, re-set in 64
        model.decoder[-1].weight.copy_(W)
        model.decoder[-1].bias.copy_(b)
    return model


def exact_posterior():
    """p(z1 | x) = N(M1 x + m1, diag(v1)) and p(z2 | z1) = N(M2 z1 + m2, diag(v2))."""
    prior_var = A**2 + S1**2  # z1's marginal: N(a, diag(A^2 + S1^2))
    v1 = 1 / (1 / prior_var + (W**2).sum(0) / s**2)  # W^T W is diagonal
    M1 = v1[:, None] * W.T / s**2
    m1 = v1 * (a / prior_var - W.T @ b / s**2)
    v2 = 1 / (1 + A**2 / S1**2)
    M2 = torch.diag(v2 * A / S1**2)
    m2 = -v2 * A * a / S1**2
    return (M1, m1, v1), (M2, m2, v2)


def exact_guide(shift: float = 0.0, widen: float = 1.0) -> BottomUpGaussian:
    guide = BottomUpGaussian(4, [2, 2], [[], []]).to(DTYPE)
    (M1, m1, v1), (M2, m2, v2) = exact_posterior()
    _set(guide.first, M1, m1 + shift, (widen * v1.sqrt()).log())
    _set(guide.steps[0], M2, m2 - shift, (widen * v2.sqrt()).log())
    return guide


def log_marginal(x: torch.Tensor) -> torch.Tensor:
    cov = W @ torch.diag(A**2 + S1**2) @ W.T + s**2 * torch.eye(4, dtype=DTYPE)
    return MultivariateNormal(W @ a + b, cov).log_prob(x)


def _data(n: int = 50) -> torch.Tensor:
    model = chain_model()
    with torch.random.fork_rng():
        torch.manual_seed(3)
        z = torch.randn(n, 2, dtype=DTYPE)
        z1 = model.conditionals[0](z).sample()
        return model.observation(z1).sample()


def test_sites_and_shapes_under_particles():
    model, guide = chain_model(), exact_guide()
    x = _data(6)
    with pyro.plate("particles", 3, dim=-2):
        tg = poutine.trace(guide).get_trace(x)
        tm = poutine.trace(poutine.replay(model, trace=tg)).get_trace(x)
    assert [n for n in ("z1", "z2") if tg.nodes[n]["value"].shape == (3, 6, 2)] == ["z1", "z2"]
    assert tm.nodes["x"]["is_observed"] and tm.nodes["z2"]["value"] is tg.nodes["z2"]["value"]
    assert model.sites == guide.sites == ["z1", "z2"]
    assert model.sample(5).shape == (5, 4)


def test_exact_posterior_gives_log_p_x_in_every_weight():
    model, guide, x = chain_model(), exact_guide(), _data()
    log_w = log_weights(model, guide, x, 20)
    assert log_w.shape == (20, len(x))
    torch.testing.assert_close(log_w, log_marginal(x).expand(20, -1), atol=1e-10, rtol=0)
    # any other guide leaves a gap: the check has power
    assert (log_weights(model, exact_guide(0.3), x, 20) - log_marginal(x)).abs().max() > 0.1


def test_bounds_are_ordered():
    """E[IWAE_K] rises with K to log p(x) (Burda et al., Theorem 1). Means over S disjoint
    groups of particles per point and over the points; SEs from the spread of those means."""
    model, guide, x = chain_model(), exact_guide(shift=0.5, widen=1.6), _data()
    torch.manual_seed(0)
    log_w = log_weights(model, guide, x, 5000)  # [K, N]
    truth = log_marginal(x)

    def iwae(k: int) -> torch.Tensor:  # [N]: mean over 5000 / k groups
        groups = log_w.reshape(k, -1, len(x))
        return (groups.logsumexp(0) - math.log(k)).mean(0)

    def gap(hi: torch.Tensor, lo: torch.Tensor) -> tuple[float, float]:
        d = hi - lo
        return d.mean().item(), (d.std() / math.sqrt(len(d))).item()

    ladder = [iwae(1), iwae(5), iwae(50), truth]
    for lo, hi in zip(ladder, ladder[1:], strict=False):
        mean, se = gap(hi, lo)
        assert mean > 4 * se, (mean, se)


def _binary(n: int = 16, x_dim: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.bernoulli(torch.rand(n, x_dim, generator=g, dtype=DTYPE), generator=g)


OPTIONS = {"renyi": {"alpha": 0.5}, "miwae": {"M": 2}, "piwae": {"M": 2}, "ciwae": {"beta": 0.5}}
UNLABELLED = sorted(set(OBJECTIVES) - {"semi_supervised"})  # that one needs a labelled model
WRAPPERS = {
    "iwae+warmup": ("iwae", {"kl_warmup_epochs": 3}),
    "iwae_dreg+warmup": ("iwae_dreg", {"kl_warmup_epochs": 3}),
    "elbo+free_bits": ("elbo", {"free_bits": 0.1}),
    "elbo_stl+warmup+free_bits": ("elbo_stl", {"free_bits": 0.1, "kl_warmup_epochs": 2}),
}


@pytest.mark.parametrize(
    "name, options",
    [(n, OPTIONS.get(n, {})) for n in UNLABELLED] + list(WRAPPERS.values()),
    ids=[*UNLABELLED, *WRAPPERS],
)
def test_every_objective_steps_the_two_layer_model(name, options):
    torch.manual_seed(0)
    model = build_hierarchical(12, [4, 3], [[8], [6]], likelihood="bernoulli").to(DTYPE)
    guide = BottomUpGaussian(12, [4, 3], [[8], [6]]).to(DTYPE)
    loss = build_objective(name, num_particles=4, **options)
    if hasattr(loss, "begin_epoch"):
        loss.begin_epoch(1)
    svi = SVI(model, guide, build_optimizer("adam_iwae", 1e-2), loss)
    before = {k: v.clone() for k, v in [*model.state_dict().items(), *guide.state_dict().items()]}
    losses = [svi.step(_binary()) for _ in range(2)]
    assert all(math.isfinite(v) for v in losses), losses
    after = {**model.state_dict(), **guide.state_dict()}
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert {"conditionals", "decoder", "first", "steps"} <= moved, moved


def test_three_layers_and_the_registry():
    model = build_hierarchical(12, [5, 4, 3], [[8], [6], [4]])
    guide = HIERARCHICAL_GUIDES["bottom_up"](12, [5, 4, 3], [[8], [6], [4]])
    log_w = log_weights(model, guide, _binary().float(), 7)
    assert log_w.shape == (7, 16) and torch.isfinite(log_w).all()
    assert model.sites == guide.sites == ["z1", "z2", "z3"]
    with pytest.raises(Exception, match="one list of hidden sizes per stochastic layer"):
        build_hierarchical(12, [5, 4], [[8]])


def test_pictures_draw_the_hierarchical_model(tmp_path):
    from ppl_vae.reports.pictures import write_pictures

    torch.manual_seed(0)
    model = build_hierarchical(784, [6, 3], [[16], [8]], image_shape=(1, 28, 28))
    guide = BottomUpGaussian(784, [6, 3], [[16], [8]])
    x = torch.bernoulli(torch.full((20, 784), 0.2))
    paths = write_pictures(model, guide, x, tmp_path, n=16)
    assert sorted(paths) == ["interpolations", "latent", "reconstructions", "samples"]
    assert all(p.stat().st_size > 1000 for p in paths.values())
