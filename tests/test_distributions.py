"""The fused Bernoulli log-likelihood against torch's Bernoulli computed in float64."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch
from torch.nn.functional import softplus

from ppl_vae.model.bernoulli import IndependentBernoulli, bernoulli_log_prob_sum

EPS32 = torch.finfo(torch.float32).eps


def _data(shape, scale=8.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g) * scale
    logits.view(-1)[:9] = torch.tensor([-100.0, -30, -1e-3, 0, 1e-3, 30, 100, 17, -17])
    x = (torch.rand(shape, generator=g) > 0.5).float()
    return logits, x


def _exact(logits, x):
    """x l - softplus(l) in float64: the reference."""
    logits, x = logits.double(), x.double()
    return x * logits - softplus(logits)


def _bound(logits, eps=EPS32):
    """Rounding allowance of a sum over pixels: a few ulps of each term's magnitude, summed."""
    return 4 * eps * (logits.abs() + 1).sum(-1)


@pytest.mark.parametrize("d", [784, 12, 7])  # groups of 16, 4 and 1 pixels
def test_summed_log_prob_matches_float64(d):
    logits, x = _data((5, 32, d))
    got = bernoulli_log_prob_sum(logits, x).double()
    assert got.shape == (5, 32)
    assert (got - _exact(logits, x).sum(-1)).abs().le(_bound(logits)).all()


def test_summed_log_prob_broadcasts_data_over_particles():
    logits, x = _data((10, 4, 784))
    got = bernoulli_log_prob_sum(logits, x[0])  # x: [4, 784] against logits [10, 4, 784]
    want = bernoulli_log_prob_sum(logits, x[0].expand(10, 4, 784).contiguous())
    assert torch.equal(got, want)


def test_gradients_match_autograd_of_the_formula():
    logits, x = _data((3, 16), scale=4.0)
    logits, x = logits.double().requires_grad_(), x.double().requires_grad_()
    assert torch.autograd.gradcheck(bernoulli_log_prob_sum, (logits, x))
    assert torch.autograd.gradgradcheck(bernoulli_log_prob_sum, (logits, x))


def test_independent_bernoulli_is_pyros_bernoulli_as_one_event():
    logits, x = _data((6, 784), scale=3.0)
    fused = IndependentBernoulli(logits)
    plain = dist.Bernoulli(logits=logits).to_event(1)
    assert fused.batch_shape == plain.batch_shape and fused.event_shape == plain.event_shape
    diff = (fused.log_prob(x).double() - plain.log_prob(x).double()).abs()
    assert diff.le(2 * _bound(logits)).all()  # each within the bound of the exact value
    assert torch.equal(fused.mean, plain.mean)
    wide = fused.expand([2, 6])  # as a vectorized particle plate does
    assert isinstance(wide, IndependentBernoulli) and wide.log_prob(x).shape == (2, 6)


def test_observed_under_plates_in_a_pyro_trace():
    logits, x = _data((4, 784), scale=3.0)

    def model():
        with pyro.plate("particles", 3, dim=-2), pyro.plate("data", 4, dim=-1):
            pyro.sample("x", IndependentBernoulli(logits), obs=x)

    tr = poutine.trace(model).get_trace()
    tr.compute_log_prob()
    lp = tr.nodes["x"]["log_prob"]
    assert lp.shape == (3, 4)
    assert (lp[0].double() - _exact(logits, x).sum(-1)).abs().le(_bound(logits)).all()


def test_validation_refuses_non_binary_values():
    logits, x = _data((2, 784))
    x[0, 0] = 0.5
    with pytest.raises(ValueError):
        IndependentBernoulli(logits, validate_args=True).log_prob(x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_stays_within_its_rounding(dtype):
    logits, x = _data((4, 784), scale=3.0)
    got = bernoulli_log_prob_sum(logits.to(dtype), x.to(dtype)).double()
    want = _exact(logits.to(dtype), x.to(dtype)).sum(-1)
    assert (got - want).abs().le(_bound(logits, torch.finfo(dtype).eps)).all()
