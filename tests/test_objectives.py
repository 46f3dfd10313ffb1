"""Objectives on the linear-Gaussian model, in float64: exact identities, a second code path
(Pyro's own losses and ``ppl_vae.bounds`` at the same seed) and Monte Carlo checks.

Gradient checks look at the gradient of the loss with respect to the guide's encoder outputs
(mean and raw scale of q(z|x)), one row per data point. Repeating one data point R times gives R
independent draws of that gradient in one vectorized call. Two estimators of the same gradient
agree when the difference of their means is within 4 standard errors,
sqrt(var_a / R + var_b / R), in every coordinate; each test also shows that a deliberately
biased variant fails the same check, so the check has the power to see a bias.
"""

import csv
import math

import pyro
import pytest
import torch
from _compare import step
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from ppl_vae import LinearGaussian, bounds, build_guide, build_model, build_objective, fit
from ppl_vae.bounds.log_weights import max_plate_nesting
from ppl_vae.core.registry import UnknownNameError
from ppl_vae.core.tracing import settle_plate_nesting
from ppl_vae.guides import ExactPosterior
from ppl_vae.model import linear_vae
from ppl_vae.objectives import (
    FREE_BITS_KL,
    MIWAE,
    OBJECTIVES,
    STL_ELBO,
    WRAPPER_OPTIONS,
    FreeBits,
    FreeBitsELBO,
    IWAE_DReG,
    KLWarmup,
    ObjectiveError,
    kl_estimate_of,
    objective_options,
    warmup_weight,
)

DTYPE = torch.float64
Z_MAX = 4.0  # standard errors


@pytest.fixture(scope="module")
def truth():
    return LinearGaussian.random(x_dim=5, z_dim=2, noise=0.5, correlation=0.5, dtype=DTYPE)


def _guide(truth, seed=0):
    torch.manual_seed(seed)
    return build_guide("diagonal", truth.x_dim, truth.z_dim, hidden=[]).to(DTYPE)


def _posterior_encoder(truth):
    """Weights of the linear map x -> posterior mean, and the best diagonal scale."""
    precision = torch.eye(truth.z_dim, dtype=DTYPE) + truth.W.T @ truth.W / truth.s**2
    A = torch.linalg.inv(precision) @ truth.W.T / truth.s**2
    return A, -A @ truth.b, precision.diagonal().rsqrt()


def _set_guide(guide, truth, shift=0.0, factor=1.0):
    """Puts q at the posterior mean + shift sd, with the best diagonal scale times factor."""
    A, a, sd = _posterior_encoder(truth)
    d, lin = truth.z_dim, guide.encoder[0]
    raw = sd * factor - guide.min_scale
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[:d] = A
        lin.bias[:d] = a + shift * sd
        lin.bias[d:] = raw + torch.log(-torch.expm1(-raw))  # softplus^-1
    return guide


def _output_grads(loss, model, guide, x, seed):
    """d loss / d (encoder outputs), ``[N, 2 z_dim]``, for one step at ``seed``."""
    loss.loss(model, guide, x[:2])  # first call: Pyro guesses the plate nesting
    outs = []

    def keep(module, inputs, out):
        if out.requires_grad:  # skips the re-run with detached parameters (STL, DReG)
            out.retain_grad()
            outs.append(out)

    handle = guide.encoder.register_forward_hook(keep)
    try:
        pyro.set_rng_seed(seed)
        loss.loss_and_grads(model, guide, x)
    finally:
        handle.remove()
    for p in guide.parameters():
        p.grad = None
    return sum(o.grad for o in outs)


def _z(a, b):
    """Difference of the column means of two [R, D] samples, in standard errors."""
    n = a.shape[0]
    return (a.mean(0) - b.mean(0)) / (a.var(0) / n + b.var(0) / n).sqrt()


def _repeat(truth, n, seed=1):
    return truth.sample(1, torch.Generator().manual_seed(seed)).expand(n, -1).contiguous()


# -- IWAE: the value is the bound of ppl_vae.bounds ------------------------------------------


def test_iwae_matches_bounds_at_the_same_seed(truth):
    model, guide = linear_vae(truth), _guide(truth)
    x = truth.sample(64, torch.Generator().manual_seed(2))
    loss = build_objective("iwae", num_particles=10)
    loss.loss(model, guide, x)  # Pyro guesses max_plate_nesting on its first call
    pyro.set_rng_seed(5)
    log_w = bounds.log_weights(model, guide, x, num_particles=10)
    pyro.set_rng_seed(5)
    max_plate_nesting(model, guide, x[:1])  # log_weights draws once for this; do the same
    value = -loss.loss(model, guide, x)
    assert value == pytest.approx(bounds.iwae(log_w).sum().item(), rel=1e-12)
    # Different draws give a different value: the match is not a coincidence of the bound.
    assert abs(-loss.loss(model, guide, x) - value) > 1e-3


# -- Second code path: each objective against a Pyro loss at the same seed --------------------


def _trainable(truth):
    likelihood = {"scale": 0.7, "learn_scale": "scalar"}
    model = build_model(
        truth.x_dim, truth.z_dim, likelihood="gaussian", likelihood_options=likelihood, hidden=[]
    )
    torch.manual_seed(3)
    return model.to(DTYPE), _guide(truth, seed=4)


SAME_SEED = [
    # (objective, options, reference, options, gradients that must agree)
    ("miwae", {}, "iwae", {}, "all"),
    ("iwae_dreg", {}, "iwae", {}, "model"),
    ("iwae_dreg", {"M": 2}, "miwae", {"M": 2}, "model"),
    ("elbo_stl", {}, "elbo", {}, "model"),
]


@pytest.mark.parametrize("name,opts,ref,ref_opts,same", SAME_SEED, ids=lambda v: str(v))
def test_objective_against_a_second_code_path(truth, name, opts, ref, ref_opts, same):
    model, guide = _trainable(truth)
    x = truth.sample(40, torch.Generator().manual_seed(6))
    value, grads = step(build_objective(name, 4, **opts), model, guide, x, seed=7)
    ref_value, ref_grads = step(build_objective(ref, 4, **ref_opts), model, guide, x, seed=7)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for key, g in grads.items():
        if same == "all" or key.startswith("model."):
            assert torch.allclose(g, ref_grads[key], rtol=1e-10, atol=1e-12), key
        else:  # the guide's gradient is a different estimator of the same gradient
            assert not torch.allclose(g, ref_grads[key], rtol=1e-3), key


def test_miwae_with_one_particle_per_group_is_the_elbo(truth):
    model, guide = _trainable(truth)
    x = truth.sample(40, torch.Generator().manual_seed(6))
    value, grads = step(build_objective("miwae", 1, M=6), model, guide, x, seed=8)
    ref_value, ref_grads = step(build_objective("elbo", 6), model, guide, x, seed=8)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for key, g in grads.items():
        assert torch.allclose(g, ref_grads[key], rtol=1e-10, atol=1e-12), key


@pytest.mark.parametrize(
    "kl,ref", [("sample", "elbo"), ("analytic", "elbo_analytic_kl"), ("stl", "elbo_stl")]
)
def test_free_bits_at_zero_is_the_base_elbo(truth, kl, ref):
    model, guide = _trainable(truth)
    x = truth.sample(40, torch.Generator().manual_seed(6))
    value, grads = step(FreeBitsELBO(3, free_bits=0.0, kl=kl), model, guide, x, seed=9)
    ref_value, ref_grads = step(build_objective(ref, 3), model, guide, x, seed=9)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for key, g in grads.items():
        assert torch.allclose(g, ref_grads[key], rtol=1e-10, atol=1e-12), key


# -- DReG: unbiased for the IWAE gradient, with a lower variance -------------------------------


class _NoSecondReparam(IWAE_DReG):
    """IWAE with log q's parameters detached but weights w~ instead of w~^2: biased for K > 1."""

    def _objective(self, p):
        log_w = p.log_w().reshape(self.M, self.K, -1)
        w = torch.softmax(log_w.detach(), dim=1)
        return log_w.sum().detach(), (w * log_w).sum(1).mean(0).sum()


class _IgnoresKLWeight(IWAE_DReG):
    """DReG with the w~^2 coefficient whatever the KL weight: biased when the weight is not 1."""

    def _objective(self, p):
        log_w = p.log_w().reshape(self.M, self.K, -1)
        w = torch.softmax(log_w.detach(), dim=1)
        p.scale_guide_gradient(w.reshape(self.M * self.K, -1))
        return log_w.sum().detach(), (w * log_w).sum(1).mean(0).sum()


@pytest.mark.parametrize("kl_weight", [1.0, 0.5])
def test_dreg_is_unbiased_for_the_iwae_gradient_with_lower_variance(truth, kl_weight):
    K, R = 10, 20000
    model = linear_vae(truth)
    guide = _set_guide(
        _guide(truth),
        truth,
        shift=torch.tensor([0.5, -0.3], dtype=DTYPE),
        factor=torch.tensor([1.3, 0.8], dtype=DTYPE),
    )
    x = _repeat(truth, R)

    def annealed(loss):  # KL weight 0.5: the second epoch of a two-epoch warm-up
        if kl_weight == 1.0:
            return loss
        loss = KLWarmup(loss, warmup_epochs=2)
        loss.begin_epoch(1)
        assert loss.kl_weight == kl_weight
        return loss

    reference = _output_grads(annealed(build_objective("iwae", K)), model, guide, x, seed=1)
    dreg = _output_grads(annealed(IWAE_DReG(K)), model, guide, x, seed=2)
    z = _z(dreg, reference)
    assert z.abs().max() < Z_MAX, z
    assert (dreg.var(0) < reference.var(0)).all(), (dreg.var(0), reference.var(0))
    assert dreg.var(0).sum() < 0.5 * reference.var(0).sum()
    wrong = _IgnoresKLWeight(K) if kl_weight != 1.0 else _NoSecondReparam(K)
    biased = _output_grads(annealed(wrong), model, guide, x, seed=3)
    assert _z(biased, reference).abs().max() > 3 * Z_MAX


# -- STL: unbiased, and zero variance at the exact posterior -----------------------------------


def _diagonal_posterior_model():
    """A linear-Gaussian model with orthogonal columns in W: its posterior is diagonal, so the
    diagonal guide can be exact."""
    g = torch.Generator().manual_seed(11)
    q, _ = torch.linalg.qr(torch.randn(5, 2, generator=g, dtype=DTYPE))
    W = q * torch.tensor([2.0, 0.7], dtype=DTYPE)
    return LinearGaussian(W, torch.randn(5, generator=g, dtype=DTYPE), 0.5)


def test_stl_gradient_is_zero_for_every_draw_at_the_exact_posterior():
    truth = _diagonal_posterior_model()
    model, guide = linear_vae(truth), _set_guide(_guide(truth), truth)
    with torch.no_grad():  # the likelihood's scale buffer is born float32: set it in float64
        model.likelihood.raw_scale.fill_(truth.s + math.log(-math.expm1(-truth.s)))
    assert model.likelihood.scale.item() == pytest.approx(truth.s, rel=1e-15)
    x = truth.sample(2000, torch.Generator().manual_seed(12))
    post = truth.posterior(x)
    loc, scale = guide.loc_scale(x)
    assert torch.allclose(loc, post.mean, atol=1e-12)
    assert torch.allclose(scale, post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt())
    stl = _output_grads(build_objective("elbo_stl", 3), model, guide, x, seed=1)
    elbo = _output_grads(build_objective("elbo", 3), model, guide, x, seed=1)
    assert stl.abs().max() < 1e-10
    assert elbo.std(0).min() > 0.1  # the score term the STL estimator drops is noise here


def test_stl_is_unbiased_for_the_elbo_gradient(truth):
    R = 20000
    model = linear_vae(truth)
    guide = _set_guide(_guide(truth), truth, shift=0.5, factor=1.3)
    x = _repeat(truth, R)
    reference = _output_grads(build_objective("elbo"), model, guide, x, seed=1)
    stl = _output_grads(build_objective("elbo_stl"), model, guide, x, seed=2)
    assert _z(stl, reference).abs().max() < Z_MAX
    assert stl.var(0).sum() < reference.var(0).sum()


# -- KL warm-up and free bits ------------------------------------------------------------------


def test_warmup_schedule_produces_the_stated_weights():
    assert [warmup_weight(e, 4) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    loss = build_objective("elbo", kl_warmup_epochs=2, kl_start=0.2)
    weights = [loss.begin_epoch(e)["kl_weight"] for e in range(4)]
    assert weights == pytest.approx([0.2, 0.6, 1.0, 1.0])


@pytest.mark.parametrize("name", ["elbo", "iwae"])
def test_warmup_weights_the_latent_terms_of_the_log_weights(truth, name):
    model, guide = linear_vae(truth), _guide(truth)
    x = truth.sample(30, torch.Generator().manual_seed(13))
    K = 1 if name == "elbo" else 4
    loss = build_objective(name, K, kl_warmup_epochs=4)
    assert loss.begin_epoch(1) == {"kl_weight": 0.25}
    loss.loss(model, guide, x)
    pyro.set_rng_seed(14)
    value = -loss.loss(model, guide, x)
    pyro.set_rng_seed(14)  # the same draws, by hand: log p(x|z) + 0.25 (log p(z) - log q(z|x))
    with torch.no_grad():
        q = guide.distribution(x)
        z = q.rsample((K,) if K > 1 else ())
        log_w = model.observation(z).log_prob(x) + 0.25 * (
            model.prior(x).log_prob(z) - q.log_prob(z)
        )
    expected = log_w.sum() if K == 1 else (torch.logsumexp(log_w, 0) - math.log(K)).sum()
    assert value == pytest.approx(expected.item(), rel=1e-12)


def test_free_bits_floor_each_dimension_in_value_and_gradient(truth):
    model, guide = linear_vae(truth), _set_guide(_guide(truth), truth)
    with torch.no_grad():  # latent dimension 1 ignores x and sits near the prior: small KL
        lin = guide.encoder[0]
        lin.weight[1] = 0.0
        lin.bias[1] = 0.1
        lin.bias[3] = 1.0 + math.log(-math.expm1(-1.0))  # softplus^-1(1): scale ~ 1
    x = truth.sample(200, torch.Generator().manual_seed(15))
    loc, scale = guide.loc_scale(x)
    kl = (0.5 * (loc**2 + scale**2 - 1) - scale.log()).mean(0).detach()  # analytic, per dim
    floor = 0.5
    assert kl[0] > floor > kl[1]

    def run(free_bits):
        loss = FreeBitsELBO(1, free_bits=free_bits, kl="analytic")
        g = _output_grads(loss, model, guide, x, seed=16)
        pyro.set_rng_seed(16)
        return -loss.loss(model, guide, x), g, loss

    value, grads, loss = run(floor)
    elbo_value, elbo_grads, _ = run(0.0)
    recon_value, recon_grads, _ = run(1e6)  # every dimension floored: no KL gradient at all
    assert torch.allclose(loss.last_kl["z"], kl, rtol=1e-12)
    # The floored dimension costs lambda nats per point, the other its KL, as in the ELBO.
    assert value - elbo_value == pytest.approx(len(x) * (kl[1].item() - floor), rel=1e-10)
    cols = {0: [0, 2], 1: [1, 3]}  # (mean, raw scale) columns of each latent dimension
    assert torch.allclose(grads[:, cols[0]], elbo_grads[:, cols[0]], rtol=1e-10)
    assert torch.allclose(grads[:, cols[1]], recon_grads[:, cols[1]], rtol=1e-10)
    assert not torch.allclose(grads[:, cols[1]], elbo_grads[:, cols[1]], rtol=1e-3)
    assert recon_value < value < elbo_value


def test_fit_logs_the_kl_weight_and_free_bits_each_epoch(truth, tmp_path):
    model, guide = linear_vae(truth), _guide(truth)
    x = truth.sample(200, torch.Generator().manual_seed(17))
    loss = build_objective("elbo", kl_warmup_epochs=2, free_bits=0.1)
    result = fit(
        model,
        guide,
        x,
        epochs=3,
        batch_size=100,
        lr=1e-2,
        objective=loss,
        run_dir=tmp_path,
        progress=False,
    )
    assert [r["kl_weight"] for r in result.history] == [0.0, 0.5, 1.0]
    assert [r["free_bits"] for r in result.history] == [0.1] * 3
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [float(r["kl_weight"]) for r in rows] == [0.0, 0.5, 1.0]


def test_free_bits_inside_a_warmup_by_hand(truth):
    model, guide = linear_vae(truth), _set_guide(_guide(truth), truth, shift=0.3)
    x = truth.sample(50, torch.Generator().manual_seed(20))
    floor, analytic = 1.8, build_objective("elbo_analytic_kl")
    loss = KLWarmup(FreeBits(analytic, floor), warmup_epochs=2)
    assert loss.begin_epoch(1) == {"kl_weight": 0.5, "free_bits": floor}
    pyro.set_rng_seed(21)
    value = -loss.loss(model, guide, x)
    pyro.set_rng_seed(21)  # the same draws: recon - beta N sum_j max(lambda, mean_n KL_j)
    with torch.no_grad():
        q = guide.distribution(x)
        recon = model.observation(q.rsample()).log_prob(x).sum()
        prior = model.prior(x)
        kl = torch.distributions.kl_divergence(q.base_dist, prior.base_dist).mean(0)
    assert (kl < floor).any() and (kl > floor).any()
    expected = recon - 0.5 * len(x) * kl.clamp(min=floor).sum()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    with pytest.raises(ObjectiveError, match=r"KLWarmup\(FreeBits"):
        FreeBits(KLWarmup(analytic, 2), floor)


def test_free_bits_take_the_kl_estimate_of_the_objective_they_wrap():
    assert FREE_BITS_KL == {"elbo": "sample", "elbo_analytic_kl": "analytic", "elbo_stl": "stl"}
    assert kl_estimate_of(Trace_ELBO()) == "sample"
    assert kl_estimate_of(TraceMeanField_ELBO()) == "analytic"
    stl = FreeBits(STL_ELBO(3), 0.1, group="site")
    assert (stl.kl, stl.detach_guide, stl.num_particles, stl.group) == ("stl", True, 3, "site")
    for loss in (MIWAE(2), IWAE_DReG(2), build_objective("renyi", 2, alpha=0.5)):
        assert kl_estimate_of(loss) is None
        with pytest.raises(ObjectiveError, match="no separate KL term"):
            FreeBits(loss, 0.1)
    for name in ("miwae", "iwae_dreg", "renyi"):
        with pytest.raises(ObjectiveError, match=f"'{name}' has no separate KL term"):
            build_objective(name, 2, free_bits=0.1, **OPTIONS.get(name, {}))


def test_options_are_the_builders_keywords_and_the_wrappers():
    assert objective_options("miwae") == ("M", *WRAPPER_OPTIONS)
    assert objective_options("elbo") == WRAPPER_OPTIONS
    with pytest.raises(ObjectiveError, match="its options: .alpha., .kl_warmup_epochs., .kl_st"):
        build_objective("renyi", alpha=0.5, beta=1)


# -- Tracing: written once, probed without drawing ------------------------------------------


def test_objectives_and_bounds_trace_the_same_particles(truth):
    model, guide = linear_vae(truth), _guide(truth)
    x = truth.sample(30, torch.Generator().manual_seed(22))
    pyro.set_rng_seed(23)
    log_w = MIWAE(7).particles(model, guide, (x,), {}).log_w()
    pyro.set_rng_seed(23)
    assert torch.equal(log_w.detach(), bounds.log_weights(model, guide, x, 7))


def test_plate_nesting_is_settled_without_drawing(truth):
    model, guide = linear_vae(truth), _guide(truth)
    x = truth.sample(3, torch.Generator().manual_seed(24))
    iwae = build_objective("iwae", 4)
    inner = Trace_ELBO(num_particles=3, vectorize_particles=True)
    loss = KLWarmup(FreeBits(inner, 0.1), 2)
    state = torch.random.get_rng_state()
    settle_plate_nesting(loss, model, guide, x)
    settle_plate_nesting(iwae, model, guide, x)
    assert torch.equal(state, torch.random.get_rng_state())
    assert loss.base.max_plate_nesting == inner.max_plate_nesting == 2
    assert iwae.max_plate_nesting == 2  # the data plate and the particles


# -- Every objective trains, in Pyro's units ---------------------------------------------------

OPTIONS = {"renyi": {"alpha": 0.5}, "miwae": {"M": 2}, "piwae": {"M": 2}, "ciwae": {"beta": 0.5}}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_trains_and_bounds_log_p(truth, name):
    x = truth.sample(1000, torch.Generator().manual_seed(18))
    model, guide = linear_vae(truth), _guide(truth)
    loss = build_objective(name, 4, **OPTIONS.get(name, {}))
    result = fit(model, guide, x, epochs=8, batch_size=100, lr=8e-2, objective=loss, progress=False)
    values = [r["train_elbo"] for r in result.history]
    log_px = truth.log_prob(x).mean().item()
    # Per data point and in nats: below log p(x) (every one is a lower bound in expectation),
    # and within a nat of it after training (the diagonal guide's own gap here is ~0.1 nat).
    assert log_px - 1.0 < values[-1] < log_px + 0.05, (values, log_px)
    assert values[-1] > values[0]


# -- Clear errors --------------------------------------------------------------------------------


def test_analytic_kl_refuses_a_guide_without_a_closed_form(truth):
    loss = build_objective("elbo_analytic_kl")
    x = truth.sample(5, torch.Generator().manual_seed(19))
    guide = build_guide("mixture", truth.x_dim, truth.z_dim, hidden=[]).double()
    with pytest.raises(ObjectiveError, match=r"site 'z'.*MixtureOfDiagNormals.*'elbo'"):
        loss.loss(linear_vae(truth), guide, x)


def test_free_bits_per_dimension_need_a_factorized_guide(truth):
    x = truth.sample(5, torch.Generator().manual_seed(19))
    with pytest.raises(ObjectiveError, match="free_bits_group = 'site'"):
        build_objective("elbo", free_bits=0.1).loss(linear_vae(truth), ExactPosterior(truth), x)
    loss = build_objective("elbo", free_bits=0.1, free_bits_group="site")
    assert math.isfinite(loss.loss(linear_vae(truth), ExactPosterior(truth), x))


def test_stl_needs_a_module_guide(truth):
    guide = _guide(truth)
    x = truth.sample(5, torch.Generator().manual_seed(19))
    with pytest.raises(ObjectiveError, match="torch.nn.Module"):
        build_objective("elbo_stl").loss(linear_vae(truth), lambda x: guide(x), x)


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("iwae", {"free_bits": 0.5}, "no separate KL term"),
        ("renyi", {}, "alpha"),
        ("renyi", {"alpha": 1}, "alpha"),
        ("iwae", {"M": 2}, "has no option 'M'"),
        ("miwae", {"M": 0}, "M must be an integer"),
        ("elbo", {"kl_start": 0.5}, "kl_warmup_epochs"),
        ("elbo", {"num_particles": 0}, "num_particles"),
    ],
)
def test_bad_options_are_clear_errors(name, kwargs, match):
    with pytest.raises(ObjectiveError, match=match):
        build_objective(name, **kwargs)


def test_unknown_objective_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'iwae_dreg'"):
        build_objective("iwae_dreq")


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_passes_check_objective(truth, name):
    """The contract kit users run on their own objectives (``ppl_vae.testing``), on every
    entry, with three vectorized particles and a model that has a parameter to train."""
    from ppl_vae.testing import check_objective

    model, guide = _trainable(truth)
    x = truth.sample(6, torch.Generator().manual_seed(25))
    report = check_objective(build_objective(name, 3, **OPTIONS.get(name, {})), model, guide, x)
    assert {"no gradients", "fails with vectorized particles"} <= set(report.passed)
