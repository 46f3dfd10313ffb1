"""The discretized logistic and its mixture against exact answers in float64: the 256 bin
probabilities sum to 1, each equals the CDF difference over its bin (the edge bins taking the
tails), computed directly and to 50 digits with mpmath; then the data checks, the decoder's
layout and a VAE trained on real 8-bit MNIST."""

from __future__ import annotations

import math
import os
from pathlib import Path

import mpmath
import pyro
import pytest
import torch

import ppl_vae as pv
from ppl_vae.core import DiscreteBits, has
from ppl_vae.core.errors import DataError, InputError
from ppl_vae.model import LIKELIHOODS, build_likelihood
from ppl_vae.model.discretized_logistic import (
    MAX_LOG_SCALE,
    MIN_LOG_SCALE,
    DiscretizedLogisticDistribution,
    discretized_logistic_log_prob,
)
from ppl_vae.model.discretized_mixture import discretized_mixture
from ppl_vae.testing import check_model

EPS = torch.finfo(torch.float64).eps
BINS = torch.arange(256, dtype=torch.float64) / 255  # the 256 gray levels, x = k / 255
EDGES = (torch.arange(257, dtype=torch.float64) - 0.5) / 255  # bin edges, incl. the outer two
# locations inside and outside [0, 1], on bin centres and on bin edges
LOCS = torch.cat([torch.linspace(-2.0, 3.0, 101, dtype=torch.float64), BINS[::15], EDGES[::16]])
LOG_SCALES = torch.linspace(-40.0, 40.0, 33, dtype=torch.float64)  # s from 4e-18 to 2e17


def _grid(locs=LOCS, log_scales=LOG_SCALES):
    """Every (loc, log_scale) pair, as ``[P, 1]`` against the 256 bins."""
    loc, log_scale = torch.meshgrid(locs, log_scales, indexing="ij")
    return loc.reshape(-1, 1), log_scale.reshape(-1, 1)


def _cdf_difference(loc, log_scale, x=BINS):
    """P(k) = F(upper edge) - F(lower edge), F(lower) = 0 for k = 0, F(upper) = 1 for k = 255:
    the definition, in float64 (exact where the difference does not cancel)."""
    k = torch.round(x * 255)
    s = log_scale.exp()
    upper = torch.where(k == 255, 1.0, torch.sigmoid(((k + 0.5) / 255 - loc) / s))
    lower = torch.where(k == 0, 0.0, torch.sigmoid(((k - 0.5) / 255 - loc) / s))
    return upper, lower


def _mp_log_prob(k: int, loc: float, log_scale: float) -> mpmath.mpf:
    """log P(k) to 50 digits: the float64 inputs taken as exact, the edges as exact rationals.
    A difference of CDFs is taken on the side of the location where both terms are small (two
    survival functions above it), so that nothing cancels but the bin's own width."""
    with mpmath.workdps(50):
        inv_s = mpmath.exp(-mpmath.mpf(float(log_scale)))
        loc = mpmath.mpf(float(loc))

        def sigmoid(t):
            return 1 / (1 + mpmath.exp(-t))

        b = (mpmath.mpf(2 * k + 1) / 510 - loc) * inv_s  # upper edge (2k + 1) / 510
        a = (mpmath.mpf(2 * k - 1) / 510 - loc) * inv_s
        if k == 0:
            p = sigmoid(b)
        elif k == 255:
            p = sigmoid(-a)
        elif a > 0:
            p = sigmoid(-a) - sigmoid(-b)
        else:
            p = sigmoid(b) - sigmoid(a)
        return mpmath.log(p)


# --- the single logistic ---------------------------------------------------------------------


def test_probabilities_sum_to_one_over_the_bins():
    loc, log_scale = _grid()
    p = discretized_logistic_log_prob(BINS, loc, log_scale).exp()
    assert p.shape == (len(loc), 256)
    # a sum of 256 terms each rounded once: within 256 ulps of 1
    assert (p.sum(-1) - 1).abs().max() <= 256 * EPS


def test_log_prob_equals_the_cdf_difference():
    loc, log_scale = _grid(
        torch.linspace(-0.5, 1.5, 41, dtype=torch.float64),
        torch.linspace(-6.0, 3.0, 19, dtype=torch.float64),
    )
    got = discretized_logistic_log_prob(BINS, loc, log_scale)
    upper, lower = _cdf_difference(loc, log_scale)
    want = torch.log(upper - lower)
    # The difference loses eps * (upper + lower) / (upper - lower) of its relative precision;
    # and both sides round the edges (k +- 1/2) / 255 - loc, by eps (1 + |loc|), which moves
    # the standardized edges by that over s.
    cond = (upper + lower) / (upper - lower)
    edges = (1 + loc.abs()) * torch.exp(-log_scale)
    ok = cond < 1e8
    assert ok.float().mean() > 0.8
    assert ((got - want).abs() <= 4 * EPS * (cond * (1 + edges) + got.abs()))[ok].all()


@pytest.mark.parametrize("log_scale", [-40.0, -20.0, -8.0, 0.0, 8.0, 20.0, 40.0])
def test_log_prob_is_exact_at_extreme_scales_and_locations(log_scale):
    """To 50 digits: tiny scales (every bin but one improbable), huge scales (a flat mass),
    locations far outside [0, 1]; relative error of log P within 1e-12."""
    for loc in (-3.0, -0.2, 0.0, 0.37, 0.5, 200 / 255, 1.0, 1.4, 7.0):
        got = discretized_logistic_log_prob(
            BINS, torch.tensor(loc, dtype=torch.float64), torch.tensor(log_scale).double()
        )
        assert torch.isfinite(got).all()
        want = [float(_mp_log_prob(k, loc, log_scale)) for k in range(256)]
        want = torch.tensor(want, dtype=torch.float64)
        err = (got - want).abs() / want.abs().clamp(min=1.0)
        assert err.max() <= 1e-12, (loc, log_scale, int(err.argmax()))


def test_gradients_are_finite_at_extremes():
    loc, log_scale = _grid()
    loc.requires_grad_(), log_scale.requires_grad_()
    discretized_logistic_log_prob(BINS, loc, log_scale).sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(log_scale.grad).all()
    # through the likelihood, whose clamp keeps float32 finite for any decoder output
    lik = build_likelihood("discretized_logistic", 256)
    big = torch.tensor([-1e4, 1e4]).repeat(128)
    # rows: locations and log scales far below, far above, and alternating on both
    params = torch.stack([torch.full((512,), -1e4), torch.full((512,), 1e4), big.repeat(2)])
    params.requires_grad_()
    lp = lik.event(params).log_prob(BINS.float())
    lp.sum().backward()
    assert torch.isfinite(lp).all() and torch.isfinite(params.grad).all()


def test_mean_and_samples_are_those_of_the_bins():
    loc = torch.tensor([-0.3, 0.0, 0.2, 0.5, 0.9, 1.3], dtype=torch.float64)
    log_scale = torch.tensor([-2.0, -6.0, -3.0, 1.0, -9.0, -1.0], dtype=torch.float64)
    d = DiscretizedLogisticDistribution(loc, log_scale)
    p = d.log_prob(BINS.unsqueeze(-1)).exp()  # [256, 6]
    assert torch.allclose(d.mean, (BINS.unsqueeze(-1) * p).sum(0), rtol=0, atol=1e-14)
    torch.manual_seed(0)
    x = d.sample((40000,))
    assert x.shape == (40000, 6) and not bool(d.support.check(x).logical_not().any())
    counts = torch.stack([(x == b).double().mean(0) for b in BINS])  # [256, 6]
    sd = (p * (1 - p) / 40000).sqrt()
    assert ((counts - p).abs() <= 5 * sd + 1e-4).all()


def test_the_likelihood_reads_location_then_log_scale():
    lik = build_likelihood("discretized_logistic", 3)
    assert lik.outputs_per_pixel == 2 and has(lik, DiscreteBits) and lik.discrete_bits == 8
    params = torch.tensor([[0.1, 0.2, 0.3, -1.0, -2.0, -30.0]])
    d = lik(params)
    assert d.batch_shape == (1, 3) and lik.event(params).event_shape == (3,)
    assert torch.equal(d.loc, params[:, :3])
    assert torch.equal(d.log_scale, torch.tensor([[-1.0, -2.0, MIN_LOG_SCALE]]))
    assert lik(torch.full((1, 6), 100.0)).log_scale.eq(MAX_LOG_SCALE).all()


# --- the mixture -----------------------------------------------------------------------------


def _mixture_params(n=200, m=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, m, generator=g, dtype=torch.float64) * 3
    loc = torch.rand(n, m, generator=g, dtype=torch.float64) * 2.4 - 0.7
    log_scale = torch.rand(n, m, generator=g, dtype=torch.float64) * 30 - 20
    return logits, loc, log_scale


def test_mixture_sums_to_one_and_equals_the_weighted_cdf_differences():
    logits, loc, log_scale = _mixture_params()
    d = discretized_mixture(logits, loc, log_scale)
    lp = d.log_prob(BINS.unsqueeze(-1))  # [256, n]
    assert lp.shape == (256, 200)
    assert (lp.exp().sum(0) - 1).abs().max() <= 256 * EPS
    upper, lower = _cdf_difference(loc, log_scale, BINS.reshape(256, 1, 1))  # [256, n, m]
    direct = (torch.softmax(logits, -1) * (upper - lower)).sum(-1)
    ok = direct > 1e-6  # where no component's difference cancels badly
    assert torch.allclose(lp.exp()[ok], direct[ok], rtol=1e-9, atol=0)


def test_mixture_is_exact_to_fifty_digits():
    logits, loc, log_scale = _mixture_params(n=6, m=3, seed=1)
    loc[0], log_scale[0] = torch.tensor([-4.0, 0.5, 6.0]), torch.tensor([-40.0, -40.0, 40.0])
    got = discretized_mixture(logits, loc, log_scale).log_prob(BINS.unsqueeze(-1))
    log_pi = torch.log_softmax(logits, -1)
    for i in range(6):
        for k in range(0, 256, 5):
            with mpmath.workdps(50):
                terms = [
                    mpmath.exp(float(log_pi[i, j]) + _mp_log_prob(k, loc[i, j], log_scale[i, j]))
                    for j in range(3)
                ]
                want = float(mpmath.log(mpmath.fsum(terms)))
            assert abs(float(got[k, i]) - want) <= 1e-12 * max(1.0, abs(want)), (i, k)


def test_mixture_mean_and_samples():
    logits, loc, log_scale = _mixture_params(n=3, m=5, seed=2)
    log_scale = log_scale.clamp(-6, 0)
    d = discretized_mixture(logits, loc, log_scale)
    p = d.log_prob(BINS.unsqueeze(-1)).exp()  # [256, 3]
    assert torch.allclose(d.mean, (BINS.unsqueeze(-1) * p).sum(0), rtol=0, atol=1e-14)
    torch.manual_seed(1)
    x = d.sample((40000,))
    counts = torch.stack([(x == b).double().mean(0) for b in BINS])
    assert ((counts - p).abs() <= 5 * (p * (1 - p) / 40000).sqrt() + 1e-4).all()


def test_the_mixture_reads_logits_then_locations_then_log_scales():
    x_dim, m = 5, 3
    lik = build_likelihood("discretized_logistic_mixture", x_dim, num_mixtures=m)
    assert lik.outputs_per_pixel == 9 and has(lik, DiscreteBits)
    params = torch.arange(3 * m * x_dim, dtype=torch.float32).reshape(1, -1) / 100
    d = lik(params)
    assert d.batch_shape == (1, x_dim)
    for i in range(x_dim):
        for j in range(m):  # parameter g * M + j of pixel i at (g * M + j) * x_dim + i
            logits = params[0, [c * x_dim + i for c in range(m)]]  # the first M groups
            assert torch.allclose(d.mixture_distribution.probs[0, i], torch.softmax(logits, -1))
            assert d.component_distribution.loc[0, i, j] == params[0, (m + j) * x_dim + i]
            want = params[0, (2 * m + j) * x_dim + i].clamp(MIN_LOG_SCALE, MAX_LOG_SCALE)
            assert d.component_distribution.log_scale[0, i, j] == want
    assert lik.event(params).log_prob(torch.zeros(1, x_dim)).shape == (1,)
    with pytest.raises(InputError, match="num_mixtures"):
        build_likelihood("discretized_logistic_mixture", x_dim, num_mixtures=0)


# --- the data checks -------------------------------------------------------------------------

EIGHT_BIT = ["discretized_logistic", "discretized_logistic_mixture"]


@pytest.mark.parametrize("name", EIGHT_BIT)
def test_eight_bit_checks_refuse_what_is_not_on_the_bins(name):
    lik = build_likelihood(name, 4)
    lik.check(torch.tensor([[0.0, 1 / 255, 128 / 255, 1.0]]))  # gray levels pass
    lik.check(torch.tensor([[0.0, 1 / 255, 128 / 255, 1.0]], dtype=torch.float64))
    for bad in ([[0.0, 3.0, 255.0, 1.0]], [[0.0, 1 / 256, 0.5, 1.0]], [[-1 / 255, 0, 0, 1]]):
        with pytest.raises(DataError, match="data.binarize = 'none'"):
            lik.check(torch.tensor(bad))
    with pytest.raises(DataError, match="binarized"):
        lik.check(torch.tensor([[0.0, 1.0, 1.0, 0.0]]))
    with pytest.raises(DataError, match="NaN"):
        lik.check(torch.tensor([[0.0, math.nan, 0.0, 1.0]]))


def test_bernoulli_refuses_pixels_as_integers_with_the_binarize_fix():
    x = torch.tensor([[0.0, 17.0, 255.0, 3.0]])
    with pytest.raises(DataError, match=r"data\.binarize = 'dynamic' or 'static'"):
        build_likelihood("bernoulli", 4).check(x)
    model = pv.build_model(4, 2, hidden=[4])
    with pytest.raises(DataError, match="binarize"):
        model(x)


def test_only_the_discretized_likelihoods_declare_bits():
    assert {n for n, c in LIKELIHOODS.items() if has(c(4), DiscreteBits)} == set(EIGHT_BIT)


# --- a VAE on real 8-bit MNIST ---------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_8bit():
    if not (Path(os.environ["PPL_VAE_DATA"]) / "MNIST" / "raw").is_dir():
        pytest.skip("real datasets not found; set PPL_VAE_DATA")
    s = pv.load_data("mnist", binarize="none", subset=48)
    return s.train, s.test[:16]


@pytest.mark.parametrize("name, channels", [(EIGHT_BIT[0], 2), (EIGHT_BIT[1], 15)])
def test_a_conv_vae_trains_on_eight_bit_mnist(name, channels, mnist_8bit):
    train, test = mnist_8bit
    assert torch.equal(train, torch.round(train * 255) / 255) and 0 < train.mean() < 1
    pyro.set_rng_seed(0)
    model = pv.build_model(
        784, 8, likelihood=name, net="conv", image_shape=(1, 28, 28), hidden=[32, 64]
    )
    assert model.decoder.deconv[-1].out_channels == channels  # k * C with C = 1
    guide = pv.build_guide("diagonal", 784, 8, net="conv", image_shape=(1, 28, 28), hidden=[32, 64])
    result = pv.fit(model, guide, train, epochs=2, batch_size=16, progress=False)
    losses = [row["train_elbo"] for row in result.history]
    assert result.steps == 6 and all(math.isfinite(v) and v < 0 for v in losses)
    check_model(model, train[:8], guide=guide)
    x = model.sample(3, mean=False)
    assert x.shape == (3, 784) and torch.equal(x, torch.round(x * 255) / 255)
    assert model.sample(3).shape == (3, 784)
    bounds = pv.evaluate(model, guide, test, ks=[1, 4], khat=False)
    records = {(r["estimator"], r["k"]): r for r in bounds.estimates()}
    iwae = records["iwae", 4]
    assert iwae["bpd"] == pytest.approx(-iwae["mean"] / (784 * math.log(2)), rel=1e-15)
    assert iwae["bpd_stderr"] == pytest.approx(iwae["stderr"] / (784 * math.log(2)), rel=1e-15)
    assert "bpd" in records["elbo", 4] and "bpd" not in records["ess", 4]
    assert 0 < iwae["bpd"] < 8  # already better than 8 bits/dim, the uniform mass
