"""Annealed importance sampling against exact answers (linear-Gaussian models, float64).

- exact start: with the exact posterior as start, every AIS weight is log p(x);
- unbiased in p(x): with a poor guide, mean exp(log_w - log p(x)) = 1 within 5 standard
  errors; E[log w] <= log p(x) within 5 standard errors, and it tightens as T grows;
- the kernel: HMC started in a Gaussian target stays in it (moments within 5 standard errors);
- all of this for a model with two latent sites and a guide whose second site depends on the
  first; then the registry, and bad input.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from ppl_vae import GUIDES, LinearGaussian, build_guide, build_model
from ppl_vae.bounds import evaluate
from ppl_vae.bounds.ais import ais
from ppl_vae.bounds.anneal import SCHEDULES
from ppl_vae.bounds.hmc import hmc_step
from ppl_vae.bounds.target import State, Target
from ppl_vae.core.errors import InputError, SiteError, UnknownNameError
from ppl_vae.guides import ExactPosterior
from ppl_vae.model import linear_vae

Z = 5.0  # standard errors: the tolerance of every Monte Carlo check


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class TwoSites:
    """z1 ~ N(0, I_2), z2 ~ N(0, I_1), x = W1 z1 + W2 z2 + b + s eps: one LinearGaussian with
    W = [W1 W2], so log p(x) and the joint posterior are exact."""

    def __init__(self, seed: int = 3):
        self.truth = LinearGaussian.random(
            x_dim=5, z_dim=3, noise=0.7, seed=seed, dtype=torch.float64
        )

    def model(self, x):
        W, b, s = self.truth.W, self.truth.b, self.truth.s
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
            z2 = pyro.sample("z2", dist.Normal(x.new_zeros(1), 1.0).to_event(1))
            loc = z1 @ W[:, :2].T + z2 @ W[:, 2:].T + b
            pyro.sample("x", dist.Normal(loc, s).to_event(1), obs=x)

    def exact_guide(self, x):
        """z1 from its marginal posterior, z2 from its posterior given z1 (a guide whose second
        site depends on the first)."""
        post = self.truth.posterior(x)
        m, S = post.loc, post.covariance_matrix[0]
        gain = S[2:, :2] @ torch.linalg.inv(S[:2, :2])
        var2 = S[2:, 2:] - gain @ S[:2, 2:]
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.MultivariateNormal(m[:, :2], S[:2, :2]))
            loc2 = m[:, 2:] + (z1 - m[:, :2]) @ gain.T
            pyro.sample("z2", dist.Normal(loc2, var2.diagonal().sqrt()).to_event(1))

    def poor_guide(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z1", dist.Normal(x.new_full((2,), 0.3), 1.5).to_event(1))
            pyro.sample("z2", dist.Normal(x.new_full((1,), -0.3), 1.5).to_event(1))


def one_site():
    truth = LinearGaussian.random(x_dim=4, z_dim=2, noise=0.7, seed=2, dtype=torch.float64)

    def poor(x):  # wider than the posterior and off its mean: bounded weights, a real gap
        post = truth.posterior(x)
        scale = 1.6 * post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(post.loc + 0.8, scale).to_event(1))

    return truth, linear_vae(truth), ExactPosterior(truth), poor


def two_sites():
    t = TwoSites()
    return t.truth, t.model, t.exact_guide, t.poor_guide


CASES = {"one_site": one_site, "two_sites": two_sites}


@pytest.mark.parametrize("case", CASES)
def test_exact_start_gives_log_p_x_in_every_weight(case):
    truth, model, exact, _ = CASES[case]()
    x = truth.sample(4, torch.Generator().manual_seed(1))
    res = ais(model, exact, x, num_steps=6, num_chains=3, num_leapfrog=2)
    assert res.log_w.dtype == torch.float64 and res.log_w.shape == (3, 4)
    torch.testing.assert_close(res.log_w, truth.log_prob(x).expand(3, -1), atol=1e-10, rtol=0)
    assert (res.acceptance > 0.3).all()  # the chains moved: the weights did not stay put


@pytest.mark.parametrize("case", CASES)
def test_unbiased_in_p_x_and_a_lower_bound_that_tightens(case):
    truth, model, _, poor = CASES[case]()
    x = truth.sample(2, torch.Generator().manual_seed(4))
    log_px = truth.log_prob(x)
    gaps = []
    for steps in (1, 4, 40):
        res = ais(model, poor, x, num_steps=steps, num_chains=1000, num_leapfrog=3)
        w = torch.exp(res.log_w - log_px)  # [C, N], expectation 1
        assert ((w.mean(0) - 1).abs() < Z * w.std(0) / math.sqrt(1000)).all(), (steps, w.mean(0))
        gap = log_px - res.log_w  # E[gap] >= 0: a stochastic lower bound
        se = gap.std(0) / math.sqrt(1000)
        assert (gap.mean(0) > -Z * se).all()
        gaps.append((gap.mean(0), se))
    for (g0, s0), (g1, s1) in zip(gaps, gaps[1:], strict=False):
        assert (g1 < g0 - Z * (s0**2 + s1**2).sqrt()).all(), (g0, g1)  # tighter with T


def test_hmc_leaves_a_gaussian_target_invariant():
    """Started at draws from N(m, S), 10 HMC transitions (b = 1) keep the mean and covariance."""
    m = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    L = torch.tensor([[1.0, 0, 0], [0.8, 0.5, 0], [-0.3, 0.2, 0.3]], dtype=torch.float64)
    P = torch.cholesky_inverse(L)  # precision

    def score(z):
        d = z - m
        log_p = -0.5 * ((d @ P) * d).sum(-1)
        zero = torch.zeros_like(log_p)
        return State(z, log_p, zero, -d @ P, torch.zeros_like(z))

    c, n = 4000, 2
    z0 = m + torch.randn(c, n, 3, dtype=torch.float64) @ L.T
    state, accepted = score(z0), 0.0
    for _ in range(10):
        state, step = hmc_step(state, score, 1.0, torch.full((n,), 0.4), 4)
        accepted += step.accepted.double().mean().item() / 10
    assert 0.3 < accepted < 1.0  # it moved, and a Metropolis step rejected some
    z = state.z.reshape(-1, 3)
    S = L @ L.T
    se_mean = (S.diagonal() / len(z)).sqrt()
    assert ((z.mean(0) - m).abs() < Z * se_mean).all()
    cov = torch.cov(z.T)
    se_cov = ((S**2 + S.diagonal()[:, None] * S.diagonal()[None]) / len(z)).sqrt()
    assert ((cov - S).abs() < Z * se_cov).all()


def test_prior_start_and_linear_schedule_are_unbiased():
    truth, model, _, _ = one_site()
    x = truth.sample(2, torch.Generator().manual_seed(5))
    res = ais(
        model,
        None,
        x,
        num_steps=30,
        num_chains=1000,
        start="prior",
        schedule="linear",
        num_leapfrog=3,
    )
    w = torch.exp(res.log_w - truth.log_prob(x))
    assert ((w.mean(0) - 1).abs() < Z * w.std(0) / math.sqrt(1000)).all()


def test_schedules_run_from_zero_to_one():
    for name, make in SCHEDULES.items():
        b = make(7)
        assert b.dtype == torch.float64 and b.shape == (8,), name
        assert b[0] == 0 and b[-1] == 1 and (b.diff() > 0).all(), name


def test_the_registry_computes_ais_only_when_asked():
    truth, model, exact, _ = one_site()
    x = truth.sample(6, torch.Generator().manual_seed(6))
    plain = evaluate(model, exact, x, [1, 5], batch_size=3)
    assert plain.ais is None and "ais" not in plain.values
    b = evaluate(
        model, exact, x, [1, 5], batch_size=3, options={"ais": {"num_steps": 3, "num_chains": 2}}
    )
    torch.testing.assert_close(b.ais, truth.log_prob(x), atol=1e-10, rtol=0)
    opts = {"ais": {"num_steps": 2, "num_chains": 2}}
    again = evaluate(model, exact, x, [1, 5], estimators=["elbo"], options=opts)
    assert list(again.values) == ["elbo", "ais"]  # given options: asked for
    with pytest.raises(InputError, match="takes no options"):
        evaluate(model, exact, x, [1], options={"elbo": {"num_steps": 3}})


def test_same_seed_same_estimate():
    truth, model, _, poor = one_site()
    x = truth.sample(3, torch.Generator().manual_seed(7))
    runs = []
    for _ in range(2):
        torch.manual_seed(11)
        runs.append(ais(model, poor, x, num_steps=5, num_chains=4, num_leapfrog=2).log_w)
    assert torch.equal(*runs)
    chunked = ais(model, poor, x, num_steps=5, num_chains=4, num_leapfrog=2, chunk_size=1)
    assert chunked.log_w.shape == (4, 3) and torch.isfinite(chunked.log_w).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"num_chains": 0}, "num_chains"),
        ({"num_leapfrog": 0}, "num_leapfrog"),
        ({"num_steps": 2.5}, "num_steps"),
        ({"start": "posterior"}, "start"),
        ({"step_size": -1.0}, "step_size"),
        ({"target_accept": 1.0}, "target_accept"),
    ],
)
def test_bad_settings_say_what_would_do(kwargs, match):
    truth, model, exact, _ = one_site()
    with pytest.raises(InputError, match=match):
        ais(model, exact, truth.sample(2), **{"num_steps": 2, **kwargs})


def test_unknown_schedule():
    truth, model, exact, _ = one_site()
    with pytest.raises(UnknownNameError, match="sigmoid"):
        ais(model, exact, truth.sample(2), num_steps=2, schedule="sigmoud")


def _model_with(site_fn):
    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", site_fn(x))
            loc = z[..., :1].expand(*z.shape[:-1], x.shape[-1])
            pyro.sample("x", dist.Normal(loc, 1.0).to_event(1), obs=x)

    return model


def test_discrete_positive_and_non_differentiable_latents_are_refused():
    x = torch.randn(3, 2, dtype=torch.float64)
    discrete = _model_with(lambda x: dist.Bernoulli(x.new_full((1,), 0.5)).to_event(1))
    with pytest.raises(SiteError, match="discrete"):
        ais(discrete, None, x, num_steps=2, start="prior")
    positive = _model_with(lambda x: dist.Gamma(x.new_ones(1), 1.0).to_event(1))
    with pytest.raises(SiteError, match="real line"):
        ais(positive, None, x, num_steps=2, start="prior")

    def no_grad_model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", NoGradNormal(x.new_zeros(1), 1.0).to_event(1))
            pyro.factor("lik", -(x - z.detach()).square().sum(-1))

    with pytest.raises(SiteError, match="the model cannot be differentiated"):
        ais(no_grad_model, None, x, num_steps=2, num_chains=2, start="prior")

    def no_grad_guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", NoGradNormal(x.new_zeros(1), 1.0).to_event(1))

    with pytest.raises(SiteError, match="the start cannot be differentiated"):
        ais(
            _model_with(lambda x: dist.Normal(x.new_zeros(1), 1.0).to_event(1)),
            no_grad_guide,
            x,
            num_steps=2,
            num_chains=2,
        )
    with pytest.raises(InputError, match="guide"):
        ais(no_grad_model, None, x, num_steps=2)


class NoGradNormal(dist.Normal):
    """A Normal whose log density is computed off the autograd graph."""

    def log_prob(self, value):
        return super().log_prob(value.detach())


def test_nan_potentials_are_rejected_and_counted():
    """A likelihood that is NaN for z > 1: such proposals are rejected, counted, and the
    estimate stays finite."""

    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(1), 1.0).to_event(1))
            lik = -0.5 * (x - z).square().sum(-1)
            pyro.factor("lik", torch.where(z[..., 0] > 1.0, torch.nan, lik))

    x = torch.zeros(3, 1, dtype=torch.float64)

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x.new_full((1,), -1.0), 0.3).to_event(1))

    res = ais(model, guide, x, num_steps=20, num_chains=50, num_leapfrog=3, step_size=1.0)
    assert (res.nonfinite > 0).all() and torch.isfinite(res.log_p).all()


@pytest.mark.parametrize("start", ["q", "prior"])
@pytest.mark.parametrize("name", sorted(GUIDES))
def test_every_guide_gives_the_target_exact_gradients(name, start):
    """log p(x, z), log s(z) and their gradients in z, for every registered guide as the start:
    the gradients match central finite differences (float64)."""
    model = build_model(8, 3, likelihood="bernoulli", hidden=[6]).double()
    guide = build_guide(name, 8, 3, hidden=[6]).double()
    x = torch.bernoulli(torch.full((4, 8), 0.3, dtype=torch.float64))
    target = Target(model, guide, x, 2, 1, start)
    state = target.initial()
    h = 1e-6
    for f, g in (("log_p", "grad_p"), ("log_s", "grad_s")):
        e = torch.zeros_like(state.z)
        e[..., 1] = h
        fd = (getattr(target.score(state.z + e), f) - getattr(target.score(state.z - e), f)) / 2 / h
        torch.testing.assert_close(fd, getattr(state, g)[..., 1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("prior", "likelihood"), [("standard", "bernoulli"), ("mog", "gaussian"), ("vamp", "bernoulli")]
)
def test_the_direct_log_joint_is_the_traced_one_and_ais_agrees(prior, likelihood):
    """The VAE's log_joint (no trace at each leapfrog step) and q's closed-form score give what
    the traces give, and AIS the same weights as with the model traced (float64)."""
    from ppl_vae.model.parts import connect

    model = build_model(8, 3, likelihood=likelihood, prior=prior, hidden=[6]).double()
    guide = build_guide("diagonal", 8, 3, hidden=[6]).double()
    connect(model, guide)
    x = torch.bernoulli(torch.full((4, 8), 0.3, dtype=torch.float64))
    target = Target(model, guide, x, 5, 1, "q")
    state = target.initial()
    assert target.direct and target.q_score is not None
    values = target.unpack(state.z)
    for a, b in zip(model.log_joint(x, values["z"]), target._traced_joint(values), strict=True):
        torch.testing.assert_close(a, b.expand_as(a), atol=1e-12, rtol=1e-12)
    runs = []
    for direct in (True, False):
        if not direct:
            # a class without the capability (as LabelledVAE opts out): the model is traced
            model.__class__ = type("Traced", (type(model),), {"log_joint": None})
        torch.manual_seed(1)
        runs.append(ais(model, guide, x, num_steps=10, num_chains=5, num_leapfrog=2))
    assert not Target(model, guide, x, 5, 1, "q").direct
    torch.testing.assert_close(runs[0].log_w, runs[1].log_w, atol=1e-10, rtol=1e-10)


def test_a_model_whose_forward_is_not_the_vaes_is_traced():
    """A subclass that changes forward but inherits log_joint: the check at the first draws
    finds the values differ, and AIS reads traces; the toolkit's own subclasses opt out."""
    from ppl_vae.core import JointDensity, has
    from ppl_vae.model.hierarchical import HierarchicalVAE
    from ppl_vae.model.labelled import LabelledVAE
    from ppl_vae.model.vae import VAE

    class Doubled(VAE):
        def forward(self, x):
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", self.prior(x))
                pyro.sample("x", self.observation(2 * z), obs=x)

    model = build_model(8, 3, hidden=[6]).double()
    model.__class__ = Doubled
    guide = build_guide("diagonal", 8, 3, hidden=[6]).double()
    x = torch.bernoulli(torch.full((4, 8), 0.3, dtype=torch.float64))
    target = Target(model, guide, x, 3, 1, "q")
    state = target.initial()
    assert not target.direct
    traced = target._traced_joint(target.unpack(state.z))[0]
    torch.testing.assert_close(state.log_p, traced.expand_as(state.log_p))
    assert not has(LabelledVAE.__new__(LabelledVAE), JointDensity)
    assert not has(HierarchicalVAE.__new__(HierarchicalVAE), JointDensity)
