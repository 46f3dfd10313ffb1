"""Bounds on log p(x) against exact answers (linear-Gaussian model) and Pyro's RenyiELBO.

Monte Carlo tolerances: two estimates of the same per-point quantity from independent draws
differ by d_n with E[d_n] = 0; their mean over N points has standard error sd(d) / sqrt(N), and
the tests allow 4 of those (a false alarm about once in 16,000 runs).
"""

import contextlib
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import RenyiELBO
from pyro.nn import PyroModule

from ppl_vae import GUIDES, LinearGaussian, build_guide
from ppl_vae.bounds import (
    auto_chunk,
    batch_seed,
    elbo,
    ess,
    evaluate,
    iwae,
    log_weights,
    mean_and_stderr,
    psis_khat,
)
from ppl_vae.bounds.evaluate import CHUNK_ROWS
from ppl_vae.guides import ExactPosterior
from ppl_vae.model import linear_vae

DTYPE = torch.float64


@pytest.fixture(scope="module")
def lg():
    truth = LinearGaussian.random(x_dim=6, z_dim=2, noise=0.5, correlation=0.7, dtype=DTYPE)
    x = truth.sample(200, torch.Generator().manual_seed(5))
    return truth, linear_vae(truth), x


class OffGuide(PyroModule):
    """An imperfect diagonal guide: N(mean + shift * sd, (widen * sd)^2), with mean and sd
    the exact posterior's mean and marginal standard deviations."""

    def __init__(self, truth, shift: float = 0.0, widen: float = 1.0):
        super().__init__(name="guide")
        self.truth, self.shift, self.widen = truth, shift, widen

    def forward(self, x):
        post = self.truth.posterior(x)
        sd = post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(post.mean + self.shift * sd, self.widen * sd).to_event(1))


def _assert_same_mean(a, b, what):
    d = (a - b).double()
    se = d.std() / math.sqrt(d.numel())
    assert d.mean().abs() < 4 * se + 1e-12, f"{what}: {d.mean():.4g} vs 4 SE = {4 * se:.4g}"


@pytest.mark.parametrize("k", [1, 10, 100])
def test_exact_posterior_gives_exact_log_px(lg, k):
    truth, model, x = lg
    log_w = log_weights(model, ExactPosterior(truth), x, k, chunk_size=7)
    assert log_w.shape == (k, len(x))
    exact = truth.log_prob(x)
    assert torch.allclose(log_w, exact.expand(k, -1), atol=1e-6, rtol=0)
    assert torch.allclose(iwae(log_w), exact, atol=1e-6, rtol=0)


def test_ordering_and_shrinking_gap():
    truth = LinearGaussian.random(x_dim=6, z_dim=2, noise=0.5, correlation=0.7, dtype=DTYPE)
    x = truth.sample(500, torch.Generator().manual_seed(6))
    pyro.set_rng_seed(1)
    log_w = log_weights(linear_vae(truth), OffGuide(truth, shift=1.5), x, 1000, chunk_size=250)
    exact = truth.log_prob(x)
    bounds = [elbo(log_w), iwae(log_w[:10]), iwae(log_w[:100]), iwae(log_w), exact]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        d = hi - lo  # paired per point: E[d] >= 0 for a correct estimator
        se = d.std() / math.sqrt(len(d))
        assert d.mean() > -4 * se
        if hi is not exact:
            # The gap to log p(x) shrinks: with this guide each step up in K gains about
            # 5 standard errors or more, so 2 SE fails only if the bound stopped tightening.
            assert d.mean() > 2 * se


def test_matches_pyro_renyi_elbo_at_the_same_seed(lg):
    truth, model, x = lg
    guide, k = OffGuide(truth, widen=1.5), 50
    pyro.set_rng_seed(3)
    ours = iwae(log_weights(model, guide, x, k))
    pyro.set_rng_seed(3)
    renyi = RenyiELBO(alpha=0, num_particles=k, vectorize_particles=True, max_plate_nesting=1)
    renyi = -renyi.loss(model, guide, x)
    # Same draws: the same number up to float64 rounding of a sum over 200 points.
    assert ours.sum().item() == pytest.approx(renyi, rel=1e-9)
    # Different draws: equal within Monte Carlo error, point by point.
    pyro.set_rng_seed(4)
    other = iwae(log_weights(model, guide, x, k, chunk_size=k))
    _assert_same_mean(ours, other, "IWAE_50 across seeds")


def test_chunk_sizes_agree(lg):
    truth, model, x = lg
    k = 40
    results = {}
    for c in (1, 7, k):
        pyro.set_rng_seed(10 + c)
        results[c] = iwae(log_weights(model, OffGuide(truth, widen=1.5), x, k, chunk_size=c))
        exact = log_weights(model, ExactPosterior(truth), x, k, chunk_size=c)
        assert torch.allclose(exact, truth.log_prob(x).expand(k, -1), atol=1e-6, rtol=0)
    _assert_same_mean(results[1], results[k], "chunk 1 vs K")
    _assert_same_mean(results[7], results[k], "chunk 7 vs K")


def test_per_data_point_and_splitting(lg):
    truth, model, x = lg
    g = ExactPosterior(truth)
    whole = log_weights(model, g, x, 5)
    parts = torch.cat([log_weights(model, g, x[:77], 5), log_weights(model, g, x[77:], 5)], 1)
    assert whole.shape == (5, 200) and torch.allclose(whole, parts, atol=1e-9)
    guide = OffGuide(truth, widen=1.5)
    full = evaluate(model, guide, x, [1, 10, 30], chunk_size=8, batch_size=50, khat=False)
    a = evaluate(model, guide, x[:100], [1, 10, 30], chunk_size=8, batch_size=50, khat=False)
    b = evaluate(
        model, guide, x[100:], [1, 10, 30], chunk_size=8, batch_size=50, khat=False, offset=100
    )
    assert torch.equal(full.iwae, torch.cat([a.iwae, b.iwae]))
    assert torch.equal(full.ess, torch.cat([a.ess, b.ess]))


def test_streaming_equals_the_materialized_estimators(lg):
    truth, model, x = lg
    guide = OffGuide(truth, widen=1.5)
    res = evaluate(model, guide, x, [1, 10, 100], chunk_size=30, batch_size=len(x), seed=7)
    with torch.random.fork_rng():
        torch.manual_seed(batch_seed(7, 0))
        log_w = log_weights(model, guide, x, 100, chunk_size=30)
    for i, k in enumerate([1, 10, 100]):
        assert torch.allclose(res.iwae[:, i], iwae(log_w[:k]), atol=1e-9, rtol=0)
    assert torch.allclose(res.elbo, elbo(log_w), atol=1e-9, rtol=0)
    assert torch.allclose(res.ess, ess(log_w), rtol=1e-9)
    assert torch.allclose(res.khat, psis_khat(log_w))
    rows = {(r["estimator"], r["k"]): r for r in res.estimates()}
    mean, se = mean_and_stderr(iwae(log_w))
    assert rows["iwae", 100]["mean"] == pytest.approx(mean) and rows["iwae", 100]["n"] == 200


def test_ess_and_khat_behave(lg):
    truth, model, x = lg
    exact = log_weights(model, ExactPosterior(truth), x[:20], 100)
    assert torch.allclose(ess(exact), torch.full((20,), 100.0, dtype=DTYPE), rtol=1e-6)
    pyro.set_rng_seed(0)
    wide = log_weights(model, OffGuide(truth, widen=1.5), x[:20], 100)
    assert (ess(wide) < 100).all() and (ess(wide) >= 1).all()
    assert psis_khat(wide).shape == (20,)


class TwoSiteModel(PyroModule):
    """x ~ N(w1 z1 + w2 z2 + b, s^2 I) with z1, z2 ~ N(0, 1): two latent sites."""

    def __init__(self, truth):
        super().__init__(name="model")
        self.truth = truth

    def forward(self, x):
        W, b, s = self.truth.W, self.truth.b, self.truth.s
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.Normal(x.new_zeros(()), 1.0))
            z2 = pyro.sample("z2", dist.Normal(x.new_zeros(()), 1.0))
            loc = z1.unsqueeze(-1) * W[:, 0] + z2.unsqueeze(-1) * W[:, 1] + b
            pyro.sample("x", dist.Normal(loc, s).to_event(1), obs=x)


class TwoSiteExactGuide(PyroModule):
    """The exact posterior, factored as p(z1 | x) p(z2 | z1, x)."""

    def __init__(self, truth):
        super().__init__(name="guide")
        self.truth = truth

    def forward(self, x):
        post = self.truth.posterior(x)
        m, S = post.mean, post.covariance_matrix[0]
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.Normal(m[:, 0], S[0, 0].sqrt()))
            loc2 = m[:, 1] + S[1, 0] / S[0, 0] * (z1 - m[:, 0])
            pyro.sample("z2", dist.Normal(loc2, (S[1, 1] - S[1, 0] ** 2 / S[0, 0]).sqrt()))


def test_hand_written_model_with_several_latent_sites(lg):
    truth, _, x = lg
    log_w = log_weights(TwoSiteModel(truth), TwoSiteExactGuide(truth), x, 30, chunk_size=8)
    assert torch.allclose(log_w, truth.log_prob(x).expand(30, -1), atol=1e-6, rtol=0)


def test_works_with_a_built_in_guide_and_float32():
    truth = LinearGaussian.random(x_dim=6, z_dim=2)
    x = truth.sample(10)
    guide = build_guide("diagonal", 6, 2, hidden=[8])
    log_w = log_weights(linear_vae(truth), guide, x, 13, chunk_size=5)
    assert log_w.shape == (13, 10) and torch.isfinite(log_w).all()


def test_bad_arguments_are_clear_errors(lg):
    truth, model, x = lg
    with pytest.raises(ValueError, match=r"K\) must be an integer >= 1"):
        log_weights(model, ExactPosterior(truth), x, 0)
    with pytest.raises(ValueError, match="chunk_size"):
        log_weights(model, ExactPosterior(truth), x, 5, chunk_size=0)
    with pytest.raises(ValueError, match="k-hat needs at least 21 particles"):
        psis_khat(torch.zeros(10, 3))
    with pytest.raises(ValueError, match="k-hat needs at least 21.*--no-khat"):
        evaluate(model, ExactPosterior(truth), x, [1, 10], khat=True)  # asked for: refused
    unasked = evaluate(model, ExactPosterior(truth), x, [1, 10])  # not asked for: skipped
    assert unasked.khat is None and unasked.iwae.shape == (len(x), 2)
    with pytest.raises(ValueError, match=r"shape \[K, N\]"):
        iwae(torch.zeros(3))


def test_site_outside_the_data_plate_is_refused(lg):
    truth, model, x = lg

    def global_model(x):
        pyro.sample("c", dist.Normal(0.0, 1.0))
        model(x)

    def global_guide(x):
        pyro.sample("c", dist.Normal(0.0, 1.0))
        ExactPosterior(truth)(x)

    with pytest.raises(ValueError, match="'c' is not inside pyro.plate"):
        log_weights(global_model, global_guide, x, 3)


@pytest.mark.parametrize("name", sorted(GUIDES))
def test_encoder_runs_once_per_batch_and_changes_nothing(name):
    truth = LinearGaussian.random(x_dim=6, z_dim=2)
    x = truth.sample(10)
    guide = build_guide(name, 6, 2, hidden=[8])
    calls = []
    guide.encoder.register_forward_hook(lambda *_: calls.append(1))
    torch.manual_seed(3)
    reused = log_weights(linear_vae(truth), guide, x, 40, chunk_size=7)  # 6 chunks
    assert len(calls) == 2  # the plate-nesting probe, then once for all chunks
    torch.manual_seed(3)
    guide.reusing_distribution = contextlib.nullcontext  # the encoder on every chunk
    again = log_weights(linear_vae(truth), guide, x, 40, chunk_size=7)
    assert len(calls) == 2 + 6 + 1
    assert torch.equal(reused, again)


def test_auto_chunk_sizes_chunks_for_the_device():
    assert auto_chunk(100, torch.device("cpu")) * 100 <= CHUNK_ROWS["cpu"]
    assert auto_chunk(10**6, torch.device("cpu")) == 1
    assert auto_chunk(1, torch.device("cuda")) == CHUNK_ROWS["cuda"]
