"""The linear-Gaussian VAE: exact log p(x) and posterior, and training against them.

Tolerances come from a KL budget: an error d in the guide's mean adds d^2 / (2 sigma^2) to
KL(q || p(z|x)), so a mean within 0.05 posterior standard deviations costs at most 1.25e-3 nats
per latent dimension; a scale off by a factor r adds (r^2 - 1 - 2 log r) / 2, about (r - 1)^2,
so 5% costs 2.5e-3. The Monte Carlo checks use four standard errors of the estimate.
"""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ppl_vae import LinearGaussian, build_guide, build_model, build_objective, fit
from ppl_vae.data import Splits
from ppl_vae.model import linear_vae

DTYPE = torch.float64


def test_exact_formulas_satisfy_bayes_rule():
    truth = LinearGaussian.random(x_dim=7, z_dim=3, noise=0.4, correlation=0.6, dtype=DTYPE)
    x = truth.sample(20, torch.Generator().manual_seed(1))
    z = torch.randn(20, 3, dtype=DTYPE)
    log_joint = Normal(0.0, 1.0).log_prob(z).sum(-1) + Normal(
        z @ truth.W.T + truth.b, truth.s
    ).log_prob(x).sum(-1)
    # log p(x) = log p(x, z) - log p(z | x) for every z.
    assert torch.allclose(truth.log_prob(x), log_joint - truth.posterior(x).log_prob(z), atol=1e-10)


def _frozen_model(truth):
    return linear_vae(truth)


def _mc_elbo(model, guide, x, num_samples):
    """Per-point Monte Carlo ELBO samples ``[num_samples, N]``: log p(x, z) - log q(z|x)."""
    with torch.no_grad():
        q = guide.distribution(x)
        z = q.sample((num_samples,))
        log_p = model.prior(x).log_prob(z) + model.observation(z).log_prob(x)
        return log_p - q.log_prob(z)


@pytest.fixture(scope="module")
def trained():
    truth = LinearGaussian.random(x_dim=8, z_dim=2, noise=0.5, correlation=0.5, dtype=DTYPE)
    g = torch.Generator().manual_seed(2)
    data = Splits(truth.sample(4000, g), truth.sample(0, g), truth.sample(500, g), truth=truth)
    model = _frozen_model(truth)
    guide = build_guide("diagonal", truth.x_dim, truth.z_dim, hidden=[]).to(DTYPE)
    loss = build_objective("elbo", num_particles=8)
    fit(model, guide, data, epochs=60, batch_size=200, lr=5e-2, objective=loss, progress=False)
    # A second, quieter stage: smaller steps average out the SGD noise in the guide.
    fit(
        model,
        guide,
        data,
        epochs=60,
        batch_size=1000,
        lr=5e-3,
        objective=loss,
        seed=1,
        progress=False,
    )
    return truth, model, guide, data.test


def test_decoder_stayed_frozen(trained):
    truth, model, _, _ = trained
    assert torch.equal(model.decoder[0].weight, truth.W)


def test_learned_posterior_means_match_the_exact_posterior(trained):
    truth, _, guide, x = trained
    post = truth.posterior(x)
    loc, scale = guide.loc_scale(x)
    sd = post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    err = ((loc.detach() - post.mean) / sd).pow(2).mean().sqrt()
    assert err < 0.05, f"RMS mean error {err:.3f} posterior standard deviations"
    # The best diagonal scale is 1 / sqrt(Lambda_ii), Lambda the posterior precision.
    best = post.precision_matrix.diagonal(dim1=-2, dim2=-1).rsqrt()
    rel = (scale.detach() / best - 1).pow(2).mean().sqrt()
    assert rel < 0.05, f"RMS relative scale error {rel:.3f}"


def test_elbo_gap_is_the_closed_form_kl(trained):
    truth, model, guide, x = trained
    log_px = truth.log_prob(x)
    q = guide.distribution(x)
    post = truth.posterior(x)
    qm = torch.distributions.MultivariateNormal(
        q.base_dist.loc, scale_tril=torch.diag_embed(q.base_dist.scale)
    )
    kl = kl_divergence(qm, post).detach()
    samples = _mc_elbo(model, guide, x, 200)
    elbo = samples.mean()
    se = samples.mean(0).std() / math.sqrt(x.shape[0])  # points are independent
    expected = (log_px - kl).mean()
    assert abs(elbo - expected) < 4 * se, (elbo, expected, se)
    # The smallest KL a diagonal Gaussian can reach: 0.5 (sum_i log Lambda_ii - log det Lambda).
    lam = post.precision_matrix[0]
    kl_min = 0.5 * (lam.diagonal().log().sum() - torch.logdet(lam))
    assert kl.mean() >= kl_min - 1e-9
    assert kl.mean() - kl_min < (1.25e-3 + 2.5e-3) * truth.z_dim
    assert kl_min > 0.01  # the posterior is correlated: the diagonal guide keeps a real gap


def test_learned_decoder_gives_its_own_exact_answers():
    truth = LinearGaussian.random(x_dim=6, z_dim=2, noise=0.5, dtype=DTYPE)
    x = truth.sample(2000, torch.Generator().manual_seed(3))
    model = build_model(
        6,
        2,
        likelihood="gaussian",
        likelihood_options={"scale": 1.0, "learn_scale": "scalar"},
        hidden=[],
    )
    guide = build_guide("diagonal", 6, 2, hidden=[])
    model, guide = model.to(DTYPE), guide.to(DTYPE)
    fit(model, guide, x, epochs=30, batch_size=100, lr=2e-2, progress=False)
    learned = LinearGaussian.from_vae(model)
    # Maximum likelihood fits the data about as well as the truth does.
    assert (learned.log_prob(x).mean() - truth.log_prob(x).mean()).abs() < 0.05
    assert abs(learned.s - truth.s) < 0.05
