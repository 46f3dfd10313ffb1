"""PIWAE and CIWAE (Rainforth et al. 2018) on the linear-Gaussian model, in float64.

Identities at a fixed seed are checked against a second code path (Pyro's ``Trace_ELBO`` and
``RenyiELBO``, and ``miwae``) to 1e-10, in value and in the gradient of every parameter of the
model and of the guide: the objectives draw the same particles from the same seed. Orderings in
expectation are checked with standard errors over independent batches of draws (4 of them).
"""

import math

import pyro
import pytest
import torch
from _compare import step as one_step

from ppl_vae import LinearGaussian, build_guide, build_model, build_objective
from ppl_vae.guides import ExactPosterior
from ppl_vae.model import linear_vae
from ppl_vae.objectives import CIWAE, PIWAE, WRAPPER_OPTIONS, ObjectiveError, objective_options

DTYPE = torch.float64
Z_MAX = 4.0  # standard errors


@pytest.fixture(scope="module")
def truth():
    return LinearGaussian.random(x_dim=5, z_dim=2, noise=0.5, correlation=0.5, dtype=DTYPE)


def _trainable(truth):
    """A model with a learned linear decoder and scale, and a linear diagonal guide."""
    likelihood = {"scale": 0.7, "learn_scale": "scalar"}
    model = build_model(
        truth.x_dim, truth.z_dim, likelihood="gaussian", likelihood_options=likelihood, hidden=[]
    )
    torch.manual_seed(3)
    model = model.to(DTYPE)
    torch.manual_seed(4)
    guide = build_guide("diagonal", truth.x_dim, truth.z_dim, hidden=[]).to(DTYPE)
    return model, guide


def _same(g, h):
    return torch.allclose(g, h, rtol=1e-10, atol=1e-12)


@pytest.fixture
def step(truth):
    """One step of an objective by name, on the trainable pair and a fixed batch."""
    model, guide = _trainable(truth)
    x = truth.sample(40, torch.Generator().manual_seed(6))

    def run(name, num_particles, seed=7, **options):
        return one_step(build_objective(name, num_particles, **options), model, guide, x, seed)

    return run


# -- PIWAE: the model's gradient is IWAE's, the guide's MIWAE's --------------------------------


@pytest.mark.parametrize("K,M", [(2, 2), (3, 2), (1, 4)])
@pytest.mark.parametrize("kl_weight", [1.0, 0.5])
def test_piwae_gives_the_model_iwae_and_the_guide_miwae_gradients(step, K, M, kl_weight):
    value, grads = step("piwae", K, M=M, kl_weight=kl_weight)
    iwae_value, iwae = step("iwae", K * M, kl_weight=kl_weight)
    _, miwae = step("miwae", K, M=M, kl_weight=kl_weight)
    assert value == pytest.approx(iwae_value, rel=1e-12)  # its value is IWAE_{MK}
    for key, g in grads.items():
        ref, other = (iwae, miwae) if key.startswith("model.") else (miwae, iwae)
        assert _same(g, ref[key]), key
        # and not the other objective's: the split is real at these settings
        assert not torch.allclose(g, other[key], rtol=1e-3), key


@pytest.mark.parametrize("K,M,ref,ref_k", [(1, 1, "elbo", 1), (4, 1, "iwae", 4)])
def test_piwae_with_one_group_is_iwae_and_with_one_particle_the_elbo(step, K, M, ref, ref_k):
    value, grads = step("piwae", K, M=M)
    ref_value, ref_grads = step(ref, ref_k)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for key, g in grads.items():
        assert _same(g, ref_grads[key]), key


def test_piwae_split_holds_in_float32_where_groups_trail_by_hundreds_of_nats(truth):
    """A wide guide puts particles far in the tails: some groups' weights are ~exp(-300) of the
    best group's, below float32's range. The guide still gets exactly MIWAE's gradient (those
    groups keep their 1/M share) and the model IWAE's, up to float32 rounding."""
    truth32 = LinearGaussian(truth.W.float(), truth.b.float(), truth.s)
    model, guide = (m.float() for m in _trainable(truth))
    with torch.no_grad():
        guide.encoder[0].bias[truth.z_dim :] = 8.0  # scales ~8 where the posterior's are < 1
    x = truth32.sample(40, torch.Generator().manual_seed(6))
    pyro.set_rng_seed(7)
    log_w = PIWAE(4, M=4).particles(model, guide, (x,), {}).log_w().detach()
    group_lse = torch.logsumexp(log_w.reshape(4, 4, -1), 1)
    assert (group_lse.max(0).values - group_lse.min(0).values).max() > 150
    _, grads = one_step(PIWAE(4, M=4), model, guide, x, seed=7)
    _, iwae = one_step(build_objective("iwae", 16), model, guide, x, seed=7)
    _, miwae = one_step(build_objective("miwae", 4, M=4), model, guide, x, seed=7)
    for key, g in grads.items():
        if key.startswith("guide."):
            assert torch.equal(g, miwae[key]), key
        else:
            assert torch.allclose(g, iwae[key], rtol=0, atol=1e-4 * iwae[key].abs().max()), key


def test_piwae_differentiable_loss_has_the_gradients_of_loss_and_grads(truth):
    model, guide = _trainable(truth)
    x = truth.sample(40, torch.Generator().manual_seed(6))
    loss = build_objective("piwae", 2, M=3)
    value, grads = one_step(loss, model, guide, x, seed=9)
    pyro.set_rng_seed(9)
    dl = loss.differentiable_loss(model, guide, x)
    assert dl.item() == pytest.approx(value, rel=1e-12)
    dl.backward()
    for prefix, module in (("model", model), ("guide", guide)):
        for name, p in module.named_parameters():
            assert _same(p.grad, grads[f"{prefix}.{name}"]), name


# -- CIWAE: the ELBO at beta = 1, IWAE at beta = 0, linear in between --------------------------


@pytest.mark.parametrize("beta,ref", [(1, "elbo"), (0, "iwae"), (1.0, "elbo"), (0.0, "iwae")])
def test_ciwae_at_the_ends_is_the_elbo_and_the_iwae_bound(step, beta, ref):
    value, grads = step("ciwae", 4, beta=beta)
    ref_value, ref_grads = step(ref, 4)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for key, g in grads.items():
        assert _same(g, ref_grads[key]), key


def test_ciwae_is_the_convex_combination_in_value_and_gradient(step):
    beta = 0.3
    value, grads = step("ciwae", 4, beta=beta)
    elbo_value, elbo = step("elbo", 4)
    iwae_value, iwae = step("iwae", 4)
    assert -value == pytest.approx(-beta * elbo_value - (1 - beta) * iwae_value, rel=1e-12)
    for key, g in grads.items():
        assert _same(g, beta * elbo[key] + (1 - beta) * iwae[key]), key
        assert not torch.allclose(g, iwae[key], rtol=1e-3), key


# -- Bounds: the same draws ordered by Jensen, log p(x) above them in expectation --------------


def test_every_bound_is_log_p_at_the_exact_posterior(truth):
    model, guide = linear_vae(truth), ExactPosterior(truth)
    x = truth.sample(30, torch.Generator().manual_seed(8))
    log_px = truth.log_prob(x).sum().item()
    for loss in (PIWAE(2, M=3), PIWAE(1, M=4), CIWAE(5, beta=0.4)):
        loss.loss(model, guide, x)
        assert -loss.loss(model, guide, x) == pytest.approx(log_px, rel=1e-10)


def _guide_off_the_posterior(truth):
    """A linear diagonal guide at the posterior mean + 0.5 sd, scales 1.3 times the best."""
    torch.manual_seed(0)
    guide = build_guide("diagonal", truth.x_dim, truth.z_dim, hidden=[]).to(DTYPE)
    precision = torch.eye(truth.z_dim, dtype=DTYPE) + truth.W.T @ truth.W / truth.s**2
    A = torch.linalg.inv(precision) @ truth.W.T / truth.s**2
    sd = precision.diagonal().rsqrt()
    raw = 1.3 * sd - guide.min_scale
    d, lin = truth.z_dim, guide.encoder[0]
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[:d] = A
        lin.bias[:d] = -A @ truth.b + 0.5 * sd
        lin.bias[d:] = raw + torch.log(-torch.expm1(-raw))  # softplus^-1
    return guide


def test_bounds_are_ordered_for_every_draw_and_below_log_p_in_expectation(truth):
    """Budget 8 particles: ELBO <= CIWAE <= IWAE_8 and MIWAE_{4,2} <= PIWAE = IWAE_8 for the
    same draws (Jensen); E[IWAE_8] <= log p(x); E[MIWAE_{4,2}] = E[IWAE_2] (independent draws)."""
    B, R = 20, 500  # batches of R draws for one data point
    model, guide = linear_vae(truth), _guide_off_the_posterior(truth)
    x = truth.sample(1, torch.Generator().manual_seed(1)).expand(R, -1).contiguous()
    log_px = truth.log_prob(x[:1]).item()
    losses = {
        "elbo": build_objective("elbo", 8),
        "ciwae_0.7": build_objective("ciwae", 8, beta=0.7),
        "ciwae_0.3": build_objective("ciwae", 8, beta=0.3),
        "iwae": build_objective("iwae", 8),
        "piwae": build_objective("piwae", 2, M=4),
        "miwae": build_objective("miwae", 2, M=4),
        "iwae_2": build_objective("iwae", 2),
    }
    for loss in losses.values():
        loss.loss(model, guide, x)
    v = {name: torch.empty(B, dtype=DTYPE) for name in losses}
    for b in range(B):
        for name, loss in losses.items():
            pyro.set_rng_seed(100 + b + (B if name == "iwae_2" else 0))
            v[name][b] = -loss.loss(model, guide, x) / R  # per data point, nats
    order = ["elbo", "ciwae_0.7", "ciwae_0.3", "iwae"]
    for lo, hi in zip(order, order[1:], strict=False):
        assert (v[lo] < v[hi]).all(), (lo, hi)
    assert (v["miwae"] < v["piwae"]).all()
    assert torch.allclose(v["piwae"], v["iwae"], rtol=1e-12)

    def se(*names):
        return math.sqrt(sum(v[n].var().item() / B for n in names))

    assert v["iwae"].mean() < log_px + Z_MAX * se("iwae")
    assert log_px - v["elbo"].mean() > 10 * se("elbo")  # the guide's gap is well resolved
    assert v["iwae"].mean() - v["miwae"].mean() > 10 * se("iwae", "miwae")
    assert abs(v["miwae"].mean() - v["iwae_2"].mean()) < Z_MAX * se("miwae", "iwae_2")


# -- Options ---------------------------------------------------------------------------------


def test_options_are_the_builders_keywords():
    assert objective_options("piwae") == ("M", *WRAPPER_OPTIONS)
    assert objective_options("ciwae") == ("beta", *WRAPPER_OPTIONS)
    loss = build_objective("piwae", 3, M=4)
    assert (loss.K, loss.M, loss.num_particles) == (3, 4, 12)
    assert build_objective("ciwae", 3, beta=1).beta == 1.0


BAD_OPTIONS = [
    ("ciwae", {}, r"objective\.options\.beta in \[0, 1\].*got None"),
    ("ciwae", {"beta": 1.5}, r"objective\.options\.beta in \[0, 1\].*got 1\.5"),
    ("ciwae", {"beta": -0.1}, r"objective\.options\.beta in \[0, 1\]"),
    ("ciwae", {"beta": float("nan")}, r"objective\.options\.beta in \[0, 1\]"),
    ("ciwae", {"beta": "0.5"}, r"'objective\.options\.beta' must be of type float"),
    ("ciwae", {"beta": True}, r"'objective\.options\.beta' must be of type float"),
    ("ciwae", {"M": 2}, "has no option 'M'"),
    ("ciwae", {"beta": 0.5, "free_bits": 0.1}, "'ciwae' has no separate KL term"),
    ("piwae", {"M": 0}, "M must be an integer >= 1"),
    ("piwae", {"M": 2.0}, r"'objective\.options\.M' must be of type int"),
    ("piwae", {"beta": 0.5}, "has no option 'beta'"),
    ("piwae", {"M": 2, "free_bits": 0.1}, "'piwae' has no separate KL term"),
    ("piwae", {"num_particles": 0}, "num_particles must be an integer >= 1"),
]


@pytest.mark.parametrize(
    "name,kwargs,match",
    BAD_OPTIONS,
    ids=[
        f"{n}-{','.join(f'{k}={v}' for k, v in kw.items()) or 'none'}" for n, kw, _ in BAD_OPTIONS
    ],
)
def test_bad_options_are_clear_errors(name, kwargs, match):
    with pytest.raises(ObjectiveError, match=match):
        build_objective(name, **kwargs)


def test_the_classes_check_their_arguments_too():
    with pytest.raises(ObjectiveError, match=r"beta in \[0, 1\]"):
        CIWAE(4, beta=2)
    with pytest.raises(ObjectiveError, match="num_particles"):
        PIWAE(0, M=2)
