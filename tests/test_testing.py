"""The contract kit, ``ppl_vae.testing``, on models, guides, objectives and estimators broken on
purpose: each ``ContractError`` names the broken clause and its message says the fix; several
failures come in one error; the toolkit's own parts, the linear-Gaussian model and a model and
guide written by hand pass; and a check leaves the caller's random streams, param store and
gradients as they were. Tiny sizes, float64.
"""

from __future__ import annotations

import random

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.nn import PyroModule
from torch import nn

from ppl_vae import LinearGaussian, build_guide, build_model, build_objective
from ppl_vae.bounds import Estimator, elbo
from ppl_vae.bounds.folds import RunningMean
from ppl_vae.core.errors import UserError
from ppl_vae.guides import ExactPosterior
from ppl_vae.guides.conditional import CondGuide
from ppl_vae.guides.labelled import build_labelled_guide
from ppl_vae.model import linear_vae
from ppl_vae.model.cvae import build_cvae
from ppl_vae.model.labelled import build_labelled_model
from ppl_vae.testing import (
    CLAUSES,
    ContractError,
    ContractReport,
    check_estimator,
    check_guide,
    check_model,
    check_objective,
    check_pair,
)

D, Z, N = 6, 2, 4
DTYPE = torch.float64


@pytest.fixture
def x():
    g = torch.Generator().manual_seed(0)
    return torch.bernoulli(torch.full((N, D), 0.4, dtype=DTYPE), generator=g)


def _fails(check, *args, **kwargs) -> ContractError:
    with pytest.raises(ContractError) as info:
        check(*args, **kwargs)
    return info.value


# --- A model and a guide written by hand, and ways to break them ----------------------------


class Model(PyroModule):
    """z ~ N(0, I), x | z ~ Bernoulli(logits = W z + b); ``broken`` names a mistake."""

    def __init__(self, broken: str = ""):
        super().__init__(name="model")
        self.decoder = nn.Linear(Z, D).to(DTYPE)
        self.broken = broken

    def forward(self, x):
        n = x.shape[0]
        prior = dist.Normal(x.new_zeros(n, Z), 1.0).to_event(1)
        if self.broken == "global z":  # one z for the whole batch
            z = pyro.sample("z", dist.Normal(x.new_zeros(Z), 1.0).to_event(1))
        dim = -2 if self.broken == "pixels, plate at -2" else -1
        with pyro.plate("data", n, dim=dim):
            if self.broken == "pixels, plate at -2":
                z = pyro.sample("z", dist.Normal(x.new_zeros(n, 1, Z), 1.0).to_event(1))
                pyro.sample("x", dist.Bernoulli(logits=self.decoder(z).squeeze(-2)), obs=x)
                return
            if self.broken == "gamma prior":
                prior = dist.Gamma(x.new_ones(n, Z), 1.0).to_event(1)
            if self.broken != "global z":
                z = pyro.sample("z", prior)
            if self.broken == "two latents":
                z = pyro.sample("z2", dist.Normal(z, 1.0).to_event(1))
            px = dist.Bernoulli(logits=self.decoder(z))
            if self.broken == "pixels":
                pyro.sample("x", px, obs=x)  # no .to_event(1): one log density per pixel
            elif self.broken == "no x":
                pyro.sample("y", px.to_event(1), obs=x)
            else:
                pyro.sample("x", px.to_event(1), obs=x)


class Guide(PyroModule):
    """q(z|x) = N(mu(x), diag sigma(x)^2) at site "z"; ``broken`` names a mistake."""

    def __init__(self, broken: str = "", sites=("z",)):
        super().__init__(name="guide")
        self.encoder = nn.Linear(D, 2 * Z).to(DTYPE)
        self.broken, self.sites = broken, sites
        if broken == "unused parameter":
            self.temperature = nn.Parameter(torch.ones((), dtype=DTYPE))

    def distribution(self, x):
        loc, raw = self.encoder(x).chunk(2, -1)
        scale = nn.functional.softplus(raw) + 1e-3
        if self.broken == "torch mixture":  # MixtureSameFamily has no rsample
            mix = dist.Categorical(logits=x.new_zeros(x.shape[0], 2))
            parts = dist.Normal(torch.stack([loc, -loc], -2), scale.unsqueeze(-2)).to_event(1)
            return dist.MixtureSameFamily(mix, parts)
        return dist.Normal(loc, scale).to_event(1)

    def forward(self, x):
        n = 4 if self.broken == "fixed batch size" else x.shape[0]
        with pyro.plate("data", n, dim=-2 if self.broken == "plate at -2" else -1):
            for site in self.sites:
                pyro.sample(site, self.distribution(x))
            if self.broken == "observes x":
                pyro.sample("x", dist.Bernoulli(logits=torch.zeros_like(x)).to_event(1), obs=x)


# --- Correct ones pass ------------------------------------------------------------------------


def _builtin(x):
    torch.manual_seed(0)
    model = build_model(D, Z, likelihood="bernoulli", hidden=[8]).to(DTYPE)
    return model, build_guide("diagonal", D, Z, hidden=[8]).to(DTYPE), x


def _linear_gaussian(x):
    truth = LinearGaussian.random(x_dim=D, z_dim=Z, dtype=DTYPE)
    return (
        linear_vae(truth),
        ExactPosterior(truth),
        truth.sample(N, torch.Generator().manual_seed(1)),
    )


def _by_hand(x):
    return Model(), Guide(), x


@pytest.mark.parametrize("parts", [_builtin, _linear_gaussian, _by_hand])
def test_correct_models_and_guides_pass(parts, x):
    model, guide, x = parts(x)
    for report in (
        check_model(model, x, guide=guide),
        check_guide(guide, x, model=model),
        check_pair(model, guide, x),
    ):
        assert isinstance(report, ContractReport)
        ran = {"site outside the data plate", "wrong shapes", "sites do not match", "not finite"}
        assert ran <= set(report.passed)
        assert set(report.passed) | {c for c, _ in report.skipped} <= set(CLAUSES)
    alone = check_model(model, x)
    assert "sites do not match" not in alone.passed and "observed site" in alone.passed
    assert str(alone).startswith(f"check_model({type(model).__name__}): 6 clauses passed")


def test_conditional_models_pass_with_their_input():
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((N, 8), 0.3))
    model = build_labelled_model(8, 3, num_classes=2, label_prior=True, hidden=[4])
    guide = build_labelled_guide(build_guide("diagonal", 10, 3, hidden=[4]), 8, 2, True, [4])
    check_pair(model, guide, x)  # y enumerated by the guide, summed by the bounds
    check_pair(model, guide, x, cond=torch.tensor([0, 1, 1, 0]))  # y given
    cvae = build_cvae(8, 3, hidden=[4])
    cond = x.clone()
    cond[:, :4] = -1
    check_pair(cvae, CondGuide(build_guide("diagonal", 16, 3, hidden=[4])), x, cond=cond)


def test_the_report_of_a_pass_lists_what_ran_and_what_was_skipped(x):
    _, guide, x = _linear_gaussian(x)
    report = check_guide(guide, x)
    assert "not reparameterized" in report.passed
    assert dict(report.skipped) == {"no gradients": "the guide has no trainable parameters"}
    assert "skipped no gradients" in str(report)


# --- Broken models and guides: the clause, and the fix ------------------------------------


def test_latent_site_outside_the_data_plate(x):
    e = _fails(check_model, Model("global z"), x)
    assert e.clauses == ["site outside the data plate"]
    assert "latent site 'z' is not inside pyro.plate('data', N); sample it under the plate" in str(
        e
    )


def test_guide_sample_that_is_not_reparameterized(x):
    e = _fails(check_guide, Guide("torch mixture"), x)
    assert e.clauses == ["not reparameterized"]
    assert "guide site 'z' draws from MixtureSameFamily, which has no rsample" in str(e)
    assert "use a reparameterizable distribution" in str(e)


@pytest.mark.parametrize("broken", ["pixels", "pixels, plate at -2"])
def test_likelihood_without_to_event(broken, x):
    """Under a plate at dim -1 Pyro itself refuses the shapes (its error is translated); under
    a plate at dim -2 it does not, and the kit reads the per-pixel log density from the trace."""
    e = _fails(check_model, Model(broken), x)
    assert e.clauses == ["log density not per data point"]
    assert (
        f"site 'x' has log_prob of shape [{N}, {D}]: declare the pixels as one event with "
        f".to_event(1)" in str(e)
    )


def test_guide_with_the_wrong_batch_shape(x):
    e = _fails(check_guide, Guide("plate at -2"), x)
    assert e.clauses == ["wrong shapes"]
    assert f"guide site 'z' has batch shape [{N}, {N}], not one distribution per data point" in (
        str(e)
    )
    assert "check the plate's dim against the distribution's batch shape" in str(e)


def test_guide_that_only_works_at_one_batch_size(x):
    e = _fails(check_guide, Guide("fixed batch size"), x)
    assert e.clauses == ["wrong shapes"]
    assert f"on a batch of {N - 1} data points (not {N})" in str(e)
    assert "size the plate from the data, pyro.plate('data', x.shape[0])" in str(e)


def test_guide_whose_sites_do_not_match_the_model(x):
    e = _fails(check_guide, Guide(sites=("z", "w")), x, model=Model("two latents"))
    assert e.clauses == ["sites do not match"]
    assert "the model samples 'z2' but the guide does not" in str(e)
    assert "the guide samples 'w' which the model does not have" in str(e)
    assert len(e.failures) == 2


def test_observed_sites(x):
    e = _fails(check_model, Model("no x"), x)
    assert e.clauses == ["observed site"]
    assert "has no sample site 'x': observe the data as pyro.sample('x'" in str(e)
    e = _fails(check_guide, Guide("observes x"), x)
    assert e.clauses == ["observed site"]
    assert "guide site 'x' is observed" in str(e) and "drop obs" in str(e)


def test_guide_proposing_outside_the_prior_support(x):
    e = _fails(check_pair, Model("gamma prior"), Guide(), x)
    assert e.clauses == ["not finite"]
    assert "the guide's 'z' has support Real() but the model's only GreaterThanEq" in str(e)
    assert "give the guide's site the model's support" in str(e)


def test_guides_that_svi_could_not_train(x):
    def function_guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], Z), 1.0).to_event(1))

    class PlainModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(D, Z).to(DTYPE)

        def forward(self, x):
            with pyro.plate("data", x.shape[0]):
                pyro.sample("z", dist.Normal(self.encoder(x), 1.0).to_event(1))

    for guide, fix in [(function_guide, "subclass pyro.nn.PyroModule"), (PlainModule(), "SVI")]:
        e = _fails(check_guide, guide, x)
        assert e.clauses == ["not a module"] and fix in str(e)
    e = _fails(check_guide, Guide("unused parameter"), x)
    assert e.clauses == ["no gradients"]
    assert "'temperature' get no gradient" in str(e) and "use it in the distribution" in str(e)


def test_several_failures_come_in_one_error(x):
    class Careless(PyroModule):
        def __init__(self):
            super().__init__(name="guide")
            self.encoder = nn.Linear(D, Z).to(DTYPE)

        def forward(self, x):
            pyro.sample("z", dist.Normal(self.encoder(x).mean(0), 1.0).to_event(1))
            with pyro.plate("data", x.shape[0]):
                pyro.sample("k", dist.Poisson(x.new_ones(x.shape[0])))
                pyro.sample("x", dist.Bernoulli(logits=torch.zeros_like(x)).to_event(1), obs=x)

    e = _fails(check_guide, Careless(), x, model=Model())
    assert e.clauses == [
        "not reparameterized",
        "observed site",
        "site outside the data plate",
        "sites do not match",
    ]
    text = str(e)
    assert text.startswith("check_guide(Careless, model=Model) broke 4 contract clause(s):")
    assert "the guide samples 'k' which the model does not have" in text
    assert "guide site 'k' draws from Poisson" in text and "infer={'enumerate'" in text
    assert "guide latent site 'z' is not inside pyro.plate('data', N)" in text
    assert isinstance(e, UserError) and isinstance(e, AssertionError)


# --- Objectives ---------------------------------------------------------------------------


class NaNLoss(Trace_ELBO):
    def loss(self, model, guide, *args, **kwargs):
        return float("nan")


class NoGradients(Trace_ELBO):
    def loss_and_grads(self, model, guide, *args, **kwargs):
        return self.loss(model, guide, *args, **kwargs)  # computes the value, sets no .grad


class PrivateStream(Trace_ELBO):
    stream = torch.Generator().manual_seed(1)

    def loss(self, model, guide, *args, **kwargs):
        noise = torch.rand((), generator=self.stream).item()
        return super().loss(model, guide, *args, **kwargs) + noise


class TensorLoss:
    def loss(self, model, guide, *args, **kwargs):
        return Trace_ELBO().differentiable_loss(model, guide, *args, **kwargs)

    def loss_and_grads(self, model, guide, *args, **kwargs):
        return self.loss(model, guide, *args, **kwargs)


class OneAtATime(Trace_ELBO):
    """Says it vectorizes three particles, draws one."""

    def __init__(self):
        super().__init__(num_particles=3, vectorize_particles=True)

    def loss(self, model, guide, *args, **kwargs):
        return Trace_ELBO().loss(model, guide, *args, **kwargs)

    def loss_and_grads(self, model, guide, *args, **kwargs):
        return Trace_ELBO().loss_and_grads(model, guide, *args, **kwargs)


@pytest.mark.parametrize(
    "objective,clause,fix",
    [
        (NaNLoss(), "not finite", "loss() returned nan: the loss must be finite"),
        (NoGradients(), "no gradients", "put no gradient on the guide's parameter(s) 'encoder"),
        (PrivateStream(), "not deterministic", "no private torch.Generator"),
        (TensorLoss(), "not a float", "return the negative objective as a Python float"),
        (OneAtATime(), "fails with vectorized particles", "under no plate of 3 particles"),
        (object(), "missing method", "has no loss() and no loss_and_grads()"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_broken_objectives(objective, clause, fix, x):
    e = _fails(check_objective, objective, Model(), Guide(), x)
    assert e.clauses == [clause] and fix in str(e)


def test_built_objectives_pass_and_one_particle_skips_the_vectorized_clause(x):
    report = check_objective(build_objective("iwae", 3), Model(), Guide(), x)
    assert "fails with vectorized particles" in report.passed and "no gradients" in report.passed
    report = check_objective(build_objective("elbo", 1), Model(), Guide(), x)
    assert "fails with vectorized particles" in dict(report.skipped)
    wrapped = build_objective("elbo", 3, free_bits=0.1, kl_warmup_epochs=2)
    assert "fails with vectorized particles" in check_objective(wrapped, Model(), Guide(), x).passed


def test_no_gradient_on_the_model_is_named_too(x):
    e = _fails(check_objective, NoGradients(), Model(), Guide(), x)
    assert len(e.failures) == 2
    assert "on the model's parameter(s) 'decoder.weight', 'decoder.bias'" in str(e)


# --- Estimators ---------------------------------------------------------------------------


def _first(log_w):
    return log_w[0]


def _without_log_k(log_w):
    return torch.logsumexp(log_w, 0)


def _in_place(log_w):
    log_w -= log_w.max(0).values
    return log_w.mean(0)


def _log_mean_exp(log_w):
    return log_w.exp().mean(0).log()


def _noisy(log_w):
    return log_w.mean(0) + 1e-3 * torch.randn(log_w.shape[1], dtype=log_w.dtype)


class SkipsParticles(RunningMean):
    def add(self, part):
        super().add(part[:1])


@pytest.mark.parametrize(
    "estimator,clauses,fix",
    [
        (Estimator("first", _first, bound=True), ["depends on particle order"], "symmetrically"),
        (Estimator("lse", _without_log_k, bound=True), ["not exact at equal weights"], "- log K"),
        (lambda log_w: log_w.sum(), ["wrong shapes"], "reduce over the particles (dim 0) only"),
        (Estimator("in_place", _in_place), ["not pure"], "work on a copy"),
        (Estimator("lme", _log_mean_exp, bound=True), ["not finite"], "logsumexp, not log(sum"),
        (_noisy, ["not pure"], "must not draw random numbers"),
        (Estimator("fold", elbo, fold=SkipsParticles), ["fold disagrees"], "concatenated parts"),
    ],
    ids=["order", "no_log_k", "shape", "in_place", "overflow", "random", "fold"],
)
def test_broken_estimators(estimator, clauses, fix):
    e = _fails(check_estimator, estimator)
    assert e.clauses == clauses and fix in str(e)
    assert len(e.failures) == len(clauses)  # one message per clause, not one per K


def test_an_ordered_estimator_can_opt_out_of_the_order_clause():
    report = check_estimator(_first, order_invariant=False)
    assert ("depends on particle order", "order_invariant=False") in report.skipped


def test_unknown_estimator_name_suggests_the_closest():
    with pytest.raises(KeyError, match="Did you mean 'iwae'"):
        check_estimator("iwea")


# --- The caller's state -------------------------------------------------------------------


def test_checks_leave_random_streams_param_store_and_gradients_alone(x):
    model, guide, broken = Model(), Guide(), Model("pixels")
    pyro.param("kept", torch.ones(2))
    guide.encoder.weight.grad = torch.full_like(guide.encoder.weight, 7.0)
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    values = {k: v.clone() for k, v in guide.state_dict().items()}
    check_pair(model, guide, x)
    check_objective(build_objective("iwae_dreg", 3), model, guide, x)  # seeds every stream
    check_estimator("iwae")
    with pytest.raises(ContractError):
        check_model(broken, x)
    assert random.getstate() == before[0]
    assert np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])
    assert list(pyro.get_param_store().keys()) == ["kept"]
    assert torch.equal(guide.encoder.weight.grad, torch.full_like(guide.encoder.weight, 7.0))
    assert guide.encoder.bias.grad is None
    assert all(torch.equal(v, values[k]) for k, v in guide.state_dict().items())


def test_bad_arguments_are_input_errors():
    with pytest.raises(ValueError, match=r"x must be a batch of data, a tensor \[N, \.\.\.\]"):
        check_model(Model(), [[0.0] * D])
    with pytest.raises(ValueError, match="cond must be a tensor with one row per data point"):
        check_guide(Guide(), torch.zeros(N, D, dtype=DTYPE), cond=torch.zeros(N + 1))


def test_check_pair_reports_the_model_and_the_guide_together(x):
    e = _fails(check_pair, Model("global z"), Guide("torch mixture"), x)
    assert e.clauses == ["site outside the data plate", "not reparameterized"]
    assert "model latent site 'z'" in str(e) and "guide site 'z' draws from" in str(e)
