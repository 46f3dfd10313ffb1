"""Property-based tests of the estimators over arbitrary log weights."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ppl_vae.bounds import elbo, ess, iwae

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
log_ws = st.integers(1, 12).flatmap(
    lambda k: st.integers(1, 5).flatmap(
        lambda n: arrays("float64", (k, n), elements=finite).map(torch.from_numpy)
    )
)
settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile("ci")


@given(log_ws, st.floats(-1e3, 1e3))
def test_constant_shift_moves_elbo_and_iwae_by_the_constant(log_w, c):
    assert torch.allclose(elbo(log_w + c), elbo(log_w) + c, atol=1e-9)
    assert torch.allclose(iwae(log_w + c), iwae(log_w) + c, atol=1e-9)
    assert torch.allclose(ess(log_w + c), ess(log_w), rtol=1e-9)


@given(log_ws, st.randoms(use_true_random=False))
def test_particle_order_does_not_matter(log_w, rnd):
    perm = list(range(log_w.shape[0]))
    rnd.shuffle(perm)
    shuffled = log_w[perm]
    assert torch.allclose(iwae(shuffled), iwae(log_w), atol=1e-9)
    assert torch.allclose(elbo(shuffled), elbo(log_w), atol=1e-9)
    assert torch.allclose(ess(shuffled), ess(log_w), rtol=1e-9)


@given(arrays("float64", (1, 4), elements=finite).map(torch.from_numpy))
def test_iwae_with_one_particle_is_the_elbo_sample(log_w):
    assert torch.equal(iwae(log_w), log_w[0]) and torch.equal(elbo(log_w), log_w[0])


@given(log_ws)
def test_iwae_is_at_least_the_elbo(log_w):
    # Jensen: log mean exp >= mean; the slack covers float64 rounding of logsumexp.
    assert (iwae(log_w) >= elbo(log_w) - 1e-9 * (1 + elbo(log_w).abs())).all()


@given(log_ws)
def test_ess_lies_between_one_and_k(log_w):
    k = log_w.shape[0]
    e = ess(log_w)
    assert (e >= 1 - 1e-9).all() and (e <= k * (1 + 1e-9)).all()
    assert math.isclose(ess(torch.zeros(k, 1, dtype=torch.float64)).item(), k, rel_tol=1e-12)
