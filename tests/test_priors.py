"""The learned priors (``mog``, ``vamp``, ``flow``) against exact answers, through every tool.

Exact answers (float64): a linear-Gaussian decoder x = W z + b + s eps under a mixture prior
p(z) = sum_k pi_k N(mu_k, S_k) (S_k diagonal) has the marginal
p(x) = sum_k pi_k N(x; W mu_k + b, W S_k W^T + s^2 I) and the posterior
p(z|x) = sum_k r_k(x) N(m_k(x), C_k), with r_k proportional to pi_k times the k-th marginal,
C_k = (S_k^-1 + W^T W / s^2)^-1 and m_k = C_k (S_k^-1 mu_k + W^T (x - b) / s^2). A VampPrior
whose guide is linear-Gaussian (the diagonal guide without hidden units) is such a mixture, its
components q(z | u_k), pi uniform. With the exact posterior as guide every log weight is log p(x);
with an approximate one IWAE_10 <= log p(x) and IWAE_2000 reaches it, each within Z = 4 Monte
Carlo standard errors. A flow prior at the identity is ``standard`` bit for bit.
"""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from _compare import assert_same
from pyro.distributions import Categorical, MixtureSameFamily, MultivariateNormal, Normal
from pyro.nn import PyroModule
from torch.utils._python_dispatch import TorchDispatchMode

import ppl_vae as pv
from ppl_vae import LinearGaussian
from ppl_vae.analysis import diagnose
from ppl_vae.bounds import ais, log_weights
from ppl_vae.bounds.simulate import simulate
from ppl_vae.core.errors import CheckpointError, InputError, RecipeError, UnknownNameError
from ppl_vae.data import Splits
from ppl_vae.guides import HIERARCHICAL_GUIDES, NoLatents
from ppl_vae.model import PRIORS, StandardNormal, build_hierarchical, connect, linear_vae
from ppl_vae.model.flow_prior import FlowPrior
from ppl_vae.model.mixture import Mixture
from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import check_recipe
from ppl_vae.storage import load_checkpoint
from ppl_vae.testing import check_model
from ppl_vae.training.checkpoint import load_weights
from ppl_vae.training.svi import CHECKPOINT

DTYPE = torch.float64
Z = 4.0  # standard errors


# --- exact answers of a linear-Gaussian decoder under a mixture prior --------------------------


def mixture_answers(truth: LinearGaussian, logits, loc, scale, x):
    """log p(x) ``[N]`` and p(z | x) (a mixture of K Gaussians, batch ``[N]``)."""
    W, b, s = truth.W, truth.b, truth.s
    n, (k, d) = len(x), loc.shape
    S = torch.diag_embed(scale**2)
    eye = torch.eye(truth.x_dim, dtype=DTYPE)
    marginal = MultivariateNormal(loc @ W.T + b, W @ S @ W.T + s**2 * eye)  # batch [K]
    joint = marginal.log_prob(x[:, None, :]) + logits.log_softmax(-1)  # [N, K]
    C = torch.linalg.inv(torch.linalg.inv(S) + W.T @ W / s**2)  # [K, D, D]
    rhs = (loc / scale**2)[None] + ((x - b) @ W / s**2)[:, None, :]
    m = (C[None] @ rhs[..., None]).squeeze(-1)  # [N, K, D]
    post = MixtureSameFamily(Categorical(logits=joint), MultivariateNormal(m, C.expand(n, k, d, d)))
    return joint.logsumexp(-1), post


class FixedGuide(PyroModule):
    """A test guide sampling ``"z"`` from ``fn(x)``, a distribution of batch ``[N]``."""

    def __init__(self, fn):
        super().__init__(name="guide")
        self.fn = fn

    def distribution(self, x):
        return self.fn(x)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self.fn(x))


def moment_matched(post: MixtureSameFamily, inflate: float = 2.0) -> MultivariateNormal:
    """N(E[z|x], inflate * Cov[z|x]): a proposal that covers the mixture posterior."""
    r = post.mixture_distribution.probs[..., None]  # [N, K, 1]
    c = post.component_distribution
    mean = (r * c.mean).sum(-2)
    dev = c.mean - mean[:, None]
    cov = (r[..., None] * (c.covariance_matrix + dev[..., None] * dev[..., None, :])).sum(-3)
    return MultivariateNormal(mean, inflate * cov)


def mog_case():
    """A linear-Gaussian decoder under a mog prior with set weights, means and scales."""
    truth = LinearGaussian.random(x_dim=5, z_dim=2, noise=0.5, seed=3, dtype=DTYPE)
    model = linear_vae(truth, prior="mog", prior_options={"num_components": 3})
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        p = model.prior
        p.logits.copy_(torch.randn(3, generator=g, dtype=DTYPE))
        p.loc.copy_(2 * torch.randn(3, 2, generator=g, dtype=DTYPE))
        p.log_scale.copy_(0.4 * torch.randn(3, 2, generator=g, dtype=DTYPE))

    def answers(x):
        p = model.prior
        return mixture_answers(truth, p.logits, p.loc, p.log_scale.exp(), x)

    return truth, model, None, answers


def vamp_case():
    """A linear-Gaussian decoder under a VampPrior over a linear-Gaussian guide."""
    truth = LinearGaussian.random(x_dim=5, z_dim=2, noise=0.5, seed=5, dtype=DTYPE)
    model = linear_vae(truth, prior="vamp", prior_options={"num_pseudo": 4})
    guide = pv.build_guide("diagonal", 5, 2, hidden=[]).to(DTYPE)
    connect(model, guide)
    with torch.no_grad():
        model.prior.pseudo_inputs.copy_(2 * torch.randn(4, 5, dtype=DTYPE))

    def answers(x):
        q = guide.distribution(model.prior.pseudo_inputs)  # components N(A u_k + c, S(u_k))
        loc, scale = q.base_dist.loc, q.base_dist.scale
        return mixture_answers(truth, torch.zeros(4, dtype=DTYPE), loc, scale, x)

    return truth, model, guide, answers


CASES = {"mog": mog_case, "vamp": vamp_case}


@pytest.mark.parametrize("name", CASES)
def test_the_exact_posterior_gives_every_log_weight_log_p(name):
    _, model, _, answers = CASES[name]()
    x, _ = simulate(model, 12)
    with torch.no_grad():
        log_p, _ = answers(x)
        exact = FixedGuide(lambda v: answers(v)[1])
        log_w = log_weights(model, exact, x, num_particles=50, chunk_size=20)
    assert log_w.shape == (50, 12)
    assert torch.allclose(log_w, log_p.expand(50, -1), atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_bounds_are_ordered_and_iwae_reaches_log_p(name):
    _, model, shared, answers = CASES[name]()
    x, _ = simulate(model, 10)
    with torch.no_grad():
        log_p, _ = answers(x)
    proposals = {"moment-matched": FixedGuide(lambda v: moment_matched(answers(v)[1]))}
    if shared is not None:
        proposals["the vamp's own guide"] = shared
    for what, guide in proposals.items():
        log_w = log_weights(model, guide, x, num_particles=4000, chunk_size=1000)
        elbo = log_w.mean(0)
        groups = log_w.reshape(400, 10, -1).logsumexp(1) - math.log(10)  # IWAE_10 [400, N]
        iwae = groups.mean(0)
        assert (iwae >= elbo - 1e-9).all(), what  # Jensen, per point, for these draws
        gap = (groups - log_p).mean()
        assert gap <= Z * (groups - log_p).std() / math.sqrt(groups.numel()), what
        if what == "moment-matched":
            big = log_w[:2000]
            w = torch.exp(big - big.max(0).values)
            se = w.std(0) / (math.sqrt(2000) * w.mean(0))  # delta method, per point
            iwae_2000 = big.logsumexp(0) - math.log(2000)
            assert ((iwae_2000 - log_p).abs() < Z * se).all(), what
            assert (iwae_2000 - log_p).mean().abs() < Z * se.pow(2).sum().sqrt() / len(x)


def assert_ais_unbiased(model, x, log_p, chains: int = 1000) -> None:
    """AIS from the prior: its weights w / p(x) average to 1 within Z standard errors."""
    res = ais(model, None, x, 30, chains, start="prior", schedule="linear", num_leapfrog=3)
    w = torch.exp(res.log_w - log_p)
    assert ((w.mean(0) - 1).abs() < Z * w.std(0) / math.sqrt(chains)).all()


@pytest.mark.parametrize("name", CASES)
def test_ais_from_the_prior_is_unbiased_in_p(name):
    _, model, _, answers = CASES[name]()
    x, _ = simulate(model, 2)
    with torch.no_grad():
        log_p, _ = answers(x)
    assert_ais_unbiased(model, x, log_p)


def test_vamp_is_the_mixture_of_its_guide_at_the_pseudo_inputs():
    _, model, guide, _ = vamp_case()
    z = torch.randn(7, 3, 2, dtype=DTYPE)
    u = model.prior.pseudo_inputs
    q = guide.distribution(u)
    by_hand = (q.log_prob(z[..., None, :]).logsumexp(-1) - math.log(4)).detach()
    with torch.no_grad():
        assert torch.allclose(model.prior(z).log_prob(z), by_hand, atol=1e-12, rtol=0)


# --- the mixture's lean log density ---------------------------------------------------------


def _mixtures(k=6, d=3, dtype=DTYPE):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(k, generator=g, dtype=dtype)
    loc = 2 * torch.randn(k, d, generator=g, dtype=dtype)
    scale = torch.rand(k, d, generator=g, dtype=dtype) + 0.2
    comps = Normal(loc, scale).to_event(1)
    return Mixture(logits, comps), MixtureSameFamily(Categorical(logits=logits), comps)


def test_mixture_log_prob_matches_torch_on_both_paths(monkeypatch):
    ours, reference = _mixtures()
    z = 3 * torch.randn(5, 4, 3, dtype=DTYPE)
    assert torch.allclose(ours.log_prob(z), reference.log_prob(z), atol=1e-12, rtol=0)
    # the generic path (any component family), in blocks of a few rows
    scale = ours.components.base_dist.scale
    mvn = MultivariateNormal(ours.components.mean, torch.diag_embed(scale**2))
    monkeypatch.setattr("ppl_vae.model.mixture.BLOCK", 40)
    generic = Mixture(ours.logits, mvn)
    assert torch.allclose(generic.log_prob(z), reference.log_prob(z), atol=1e-12, rtol=0)
    loc32, scale32 = ours.components.mean.float(), scale.float()
    f32 = Mixture(ours.logits.float(), Normal(loc32, scale32).to_event(1))
    assert torch.allclose(f32.log_prob(z.float()).double(), reference.log_prob(z), atol=1e-4)


def test_mixture_expands_without_copying_and_samples_its_components():
    ours, reference = _mixtures()
    wide = ours.expand([100, 30])
    assert wide.batch_shape == (100, 30) and wide.components is ours.components
    torch.manual_seed(1)
    z = wide.sample((2,))
    assert z.shape == (2, 100, 30, 3)
    flat = z.reshape(-1, 3)
    se = reference.variance.sqrt() / math.sqrt(len(flat))
    assert ((flat.mean(0) - reference.mean).abs() < Z * se).all()
    assert wide.log_prob(z).shape == (2, 100, 30)


class Allocations(TorchDispatchMode):
    """Records the largest tensor any operation returns and all of them together (numbers)."""

    def __init__(self):
        super().__init__()
        self.largest = self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
                self.total += t.numel()
        return out


def test_vamp_memory_is_k_times_rows_for_500_pseudo_inputs():
    """K = 500 pseudo-inputs, 100 particles of 100 points, z_dim = 50: no tensor holds more than
    K x P x N numbers, and forward and backward together allocate a few such tensors (one
    broadcast [P, N, K, D] would be D = 50 of them; torch's MixtureSameFamily allocates
    several)."""
    k, p, n, d = 500, 100, 100, 50
    model = pv.build_model(30, d, prior="vamp", prior_options={"num_pseudo": k}, hidden=[16])
    guide = pv.build_guide("diagonal", 30, d, hidden=[16])
    connect(model, guide)
    z = torch.randn(p, n, d, requires_grad=True)
    with Allocations() as seen:
        lp = model.prior(z).expand([n]).log_prob(z)
        lp.sum().backward()
    assert lp.shape == (p, n)
    assert seen.largest <= k * p * n and seen.total <= 16 * k * p * n


def test_vamp_runs_the_encoder_once_per_model_run():
    k = 6
    model = pv.build_model(12, 3, prior="vamp", prior_options={"num_pseudo": k}, hidden=[8])
    guide = pv.build_guide("diagonal", 12, 3, hidden=[8])
    connect(model, guide)
    rows = []
    guide.encoder.register_forward_hook(lambda m, inp, out: rows.append(inp[0].shape[0]))
    x = torch.bernoulli(torch.full((20, 12), 0.4))
    log_weights(model, guide, x, num_particles=40, chunk_size=10)
    # one pass per chunk of particles, and one for the plate-nesting probe on x[:1]; the
    # guide's own q(z|x) is built once (its reusing_distribution)
    assert rows.count(k) == 4 + 1 and rows.count(20) == 1 and rows.count(1) == 1
    rows.clear()
    pv.fit(model, guide, x, epochs=1, batch_size=20, progress=False)
    assert rows.count(k) == 1  # one SVI step


# --- the flow prior ------------------------------------------------------------------------------


def _perturbed(flow: FlowPrior, sd: float = 0.3) -> FlowPrior:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for step in flow.steps:
            last = step.arn.layers[-1]
            last.weight.copy_(sd * torch.randn(last.weight.shape, generator=g))
            last.bias.copy_(sd * torch.randn(last.bias.shape, generator=g))
    return flow


def test_flow_at_the_identity_is_standard_exactly():
    flow, standard = FlowPrior(3).to(DTYPE), StandardNormal(3)
    z = torch.randn(4, 5, 3, dtype=DTYPE)
    assert torch.equal(flow(z).log_prob(z), standard(z).log_prob(z))
    torch.manual_seed(2)
    a = flow(z).sample((6,))
    torch.manual_seed(2)
    assert torch.equal(a, standard(z).sample((6,)))
    # the whole model: the same log weights, draw for draw
    models = {}
    for name in ("standard", "flow"):
        torch.manual_seed(0)
        models[name] = pv.build_model(12, 3, prior=name, hidden=[8])
    models["flow"].decoder.load_state_dict(models["standard"].decoder.state_dict())
    guide = pv.build_guide("diagonal", 12, 3, hidden=[8])
    x = torch.bernoulli(torch.full((9, 12), 0.4))
    log_w = {}
    for name, model in models.items():
        pyro.set_rng_seed(3)
        log_w[name] = log_weights(model, guide, x, num_particles=5)
    assert torch.equal(log_w["flow"], log_w["standard"])


def test_a_trained_flow_is_a_density_and_samples_it():
    flow = _perturbed(FlowPrior(2, num_flows=2)).to(DTYPE)
    step = 0.04
    t = torch.arange(-9, 9, step, dtype=DTYPE)
    grid = torch.cartesian_prod(t, t)
    with torch.no_grad():
        p = flow(grid).log_prob(grid).exp()
        assert abs(float(p.sum() * step**2) - 1) < 2e-3
        mean = (p[:, None] * grid).sum(0) * step**2
        torch.manual_seed(0)
        z = flow(grid).sample((20000,))
    assert not torch.allclose(mean, torch.zeros(2, dtype=DTYPE), atol=0.05)  # not standard
    se = z.std(0) / math.sqrt(len(z))
    assert ((z.mean(0) - mean).abs() < Z * se).all()


def test_flow_layers_are_registered_modules():
    model = pv.build_model(12, 3, prior="flow", prior_options={"num_flows": 2, "hidden": 16})
    keys = set(model.state_dict())
    assert {"prior.steps.1.arn.permutation", "prior.steps.1.arn.layers.2.weight"} <= keys
    assert sum(n.startswith("prior.") for n, _ in model.named_parameters()) == 2 * 6


# --- every tool takes every prior ------------------------------------------------------------

OPTIONS = {"mog": {"num_components": 3}, "vamp": {"num_pseudo": 5}, "flow": {"num_flows": 2}}


def _parts(name):
    torch.manual_seed(0)
    model = pv.build_model(12, 3, prior=name, prior_options=OPTIONS[name], hidden=[8])
    guide = pv.build_guide("diagonal", 12, 3, hidden=[8])
    connect(model, guide)
    if name == "flow":
        _perturbed(model.prior, 0.2)
    x = torch.bernoulli(torch.rand(30, 12, generator=torch.Generator().manual_seed(1)))
    return model, guide, x


@pytest.mark.parametrize("name", OPTIONS)
def test_contract_kit_passes(name):
    model, guide, x = _parts(name)
    report = check_model(model, x, guide=guide)
    assert "sites do not match" in str(report)


@pytest.mark.parametrize("name", OPTIONS)
def test_bounds_ais_sample_and_diagnose_take_the_prior(name):
    model, guide, x = _parts(name)
    log_w = log_weights(model, guide, x, num_particles=20, chunk_size=7)
    assert log_w.shape == (20, 30) and torch.isfinite(log_w).all()
    b = pv.evaluate(model, guide, x, ks=[1, 20], khat=False)
    assert (b.iwae[:, 1] >= b.elbo - 1e-6).all()
    res = ais(model, None, x[:3], num_steps=20, num_chains=8, start="prior")
    assert torch.isfinite(res.log_p).all() and (res.acceptance > 0).all()
    samples = model.sample(7)
    assert samples.shape == (7, 12) and ((samples >= 0) & (samples <= 1)).all()
    sim_x, sim_z = simulate(model, 5)
    assert sim_x.shape == (5, 12) and sim_z["z"].shape == (5, 3)
    doc = diagnose(model, guide, x)
    site = doc["sites"]["z"]
    assert site["units"] == 3 and math.isfinite(doc["kl"]) and doc["kl"] > 0
    assert doc["mutual_information"] is not None


@pytest.mark.parametrize("name", OPTIONS)
def test_training_moves_the_prior(name):
    model, guide, x = _parts(name)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "prior" in n}
    pv.fit(model, guide, x, epochs=2, batch_size=10, lr=1e-2, progress=False)
    moved = [
        n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])
    ]
    assert moved and set(moved) <= set(before)
    if name == "vamp":
        assert moved == ["prior.pseudo_inputs"]


@pytest.mark.parametrize("name", ["mog", "flow"])
def test_the_hierarchical_top_layer_takes_the_prior(name):
    model = build_hierarchical(12, [4, 2], [[8], [6]], prior=name, prior_options=OPTIONS[name])
    guide = HIERARCHICAL_GUIDES["bottom_up"](12, [4, 2], [[8], [6]])
    x = torch.bernoulli(torch.full((10, 12), 0.4))
    check_model(model, x, guide=guide)
    res = ais(model, None, x[:2], num_steps=5, num_chains=4, start="prior")
    assert torch.isfinite(res.log_p).all()


def _vamp_chain():
    """test_hierarchical's linear-Gaussian chain with a VampPrior over z2 read from a linear
    bottom-up guide: p(z2) = (1/K) sum_k N(mu_k, diag(v_k)) with the guide's top step at the
    mean of q(z1 | u_k), so p(x) = (1/K) sum_k N(W (A mu_k + a) + b,
    W diag(A^2 v_k + S1^2) W^T + s^2 I)."""
    from test_hierarchical import S1, A, W, a, b, chain_model, s

    torch.manual_seed(0)
    chain = chain_model()
    model = build_hierarchical(
        4,
        [2, 2],
        [[], []],
        likelihood="gaussian",
        likelihood_options={"scale": s},
        prior="vamp",
        prior_options={"num_pseudo": 3},
    ).to(DTYPE)
    model.load_state_dict({**chain.state_dict(), "prior.pseudo_inputs": 2 * torch.randn(3, 4)})
    guide = HIERARCHICAL_GUIDES["bottom_up"](4, [2, 2], [[], []]).to(DTYPE)
    connect(model, guide)

    def log_p(x):
        u = model.prior.pseudo_inputs
        m1 = guide.first.loc_scale(u)[0]
        mu, sd = guide.steps[0].loc_scale(m1)  # [K, 2] each
        cov = W @ torch.diag_embed(A**2 * sd**2 + S1**2) @ W.T + s**2 * torch.eye(4, dtype=DTYPE)
        marginal = MultivariateNormal((A * mu + a) @ W.T + b, cov)  # batch [K]
        return (marginal.log_prob(x[:, None, :]) - math.log(3)).logsumexp(-1), (mu, sd)

    return model, guide, log_p


def test_the_hierarchical_top_vamp_is_the_guides_top_step_at_the_pseudo_inputs():
    model, guide, log_p = _vamp_chain()
    with torch.no_grad():
        _, (mu, sd) = log_p(torch.zeros(1, 4, dtype=DTYPE))
        z = torch.randn(9, 2, dtype=DTYPE)
        want = (Normal(mu, sd).log_prob(z[:, None]).sum(-1) - math.log(3)).logsumexp(-1)
        assert torch.allclose(model.prior(z).log_prob(z), want, atol=1e-12, rtol=0)
    one = build_hierarchical(12, [3], [[8]], prior="vamp", prior_options={"num_pseudo": 4})
    g = HIERARCHICAL_GUIDES["bottom_up"](12, [3], [[8]])
    connect(one, g)  # one layer: the VampPrior of q(z1 | u) itself
    u = one.prior.pseudo_inputs
    assert_same(g.top_distribution(u).base_dist.loc, g.distribution(u).base_dist.loc)


def test_the_hierarchical_top_vamp_against_its_closed_form():
    """AIS from the prior is unbiased in p(x) (its weights average to 1 within Z standard
    errors), and the guide's IWAE_10 stays below the closed-form log p(x)."""
    model, guide, log_p = _vamp_chain()
    torch.manual_seed(1)
    x, _ = simulate(model, 3)
    with torch.no_grad():
        truth, _ = log_p(x)
    assert_ais_unbiased(model, x, truth)
    log_w = log_weights(model, guide, x, num_particles=4000, chunk_size=1000)
    groups = log_w.reshape(400, 10, -1).logsumexp(1) - math.log(10)
    gap = groups - truth
    assert gap.mean() <= Z * gap.std() / math.sqrt(gap.numel())


def test_a_hierarchical_guide_without_a_top_density_is_refused_for_vamp():
    options = {"num_pseudo": 3}
    model = build_hierarchical(12, [4, 2], [[8], [6]], prior="vamp", prior_options=options)
    with pytest.raises(InputError, match=r"needs top_distribution\(x\).*'bottom_up'"):
        connect(model, NoLatents())
    guide = HIERARCHICAL_GUIDES["bottom_up"](12, [4, 2], [[8], [6]])
    connect(model, guide)
    check_model(model, torch.bernoulli(torch.full((10, 12), 0.4)), guide=guide)


# --- checkpoints ---------------------------------------------------------------------------------


def _data():
    gray = torch.rand(50, 12, generator=torch.Generator().manual_seed(0))
    fixed = torch.bernoulli(gray[30:], generator=torch.Generator().manual_seed(1))
    return Splits(gray[:30], fixed[:10], fixed[10:], binarize="dynamic")


def _train(name, run_dir, **kw):
    model, guide, _ = _parts(name)
    kw = {"batch_size": 16, "lr": 0.02, "seed": 3, "progress": False, **kw}
    objective = pv.build_objective("iwae", num_particles=3)
    result = pv.fit(model, guide, _data(), objective=objective, run_dir=run_dir, **kw)
    return result, model


@pytest.mark.parametrize("name", OPTIONS)
def test_two_epochs_equal_one_and_a_resumed_one(name, tmp_path):
    one_go, _ = _train(name, tmp_path / "a", epochs=2)
    _train(name, tmp_path / "b", epochs=1)
    resumed, model = _train(name, tmp_path / "b", epochs=2, resume=True)
    a, b = (load_checkpoint(tmp_path / d / CHECKPOINT) for d in "ab")
    assert any(k.startswith("prior.") for k in a["model"])
    assert_same(a["model"], b["model"])
    assert_same(a["guide"], b["guide"])
    assert_same(a["optim"], b["optim"])
    rows = [
        [{k: v for k, v in r.items() if k != "seconds"} for r in h.history]
        for h in (one_go, resumed)
    ]
    assert rows[0] == rows[1]


def test_a_checkpoint_of_another_prior_is_refused(tmp_path):
    _train("mog", tmp_path, max_steps=1)
    for other in ("vamp", "flow", "standard"):
        model = pv.build_model(12, 3, prior=other, hidden=[8])
        guide = pv.build_guide("diagonal", 12, 3, hidden=[8])
        with pytest.raises(CheckpointError, match=r"does not match this run.*prior\."):
            load_weights(tmp_path / CHECKPOINT, model, guide)


# --- bad input: each a clear error naming the key and the fix -----------------------------------


def _recipe(**model):
    return config.from_dict({"name": "r", "model": {"z_dim": 3, **model}})


def test_unknown_prior_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match=r"'vampp'.*'vamp'"):
        check_recipe(_recipe(prior="vampp"))
    with pytest.raises(UnknownNameError, match=r"'mogg'.*'mog'"):
        pv.build_model(12, 3, prior="mogg")


def test_options_of_another_prior_do_not_apply():
    cases = [
        ("mog", {"num_pseudo": 5}, r"num_pseudo' does not apply to prior 'mog'.*choose 'vamp'"),
        ("flow", {"num_flow": 5}, r"unknown key 'model\.prior_options\.num_flow'.*num_flows'"),
        ("vamp", {"x_dim": 5}, r"x_dim' cannot be set here: it comes from the data"),
    ]
    for name, options, message in cases:
        with pytest.raises(RecipeError, match=message):
            check_recipe(_recipe(prior=name, prior_options=options))
    with pytest.raises(RecipeError, match=r"num_components' must be of type int"):
        check_recipe(_recipe(prior="mog", prior_options={"num_components": "ten"}))


@pytest.mark.parametrize(
    "name, options, key",
    [
        ("mog", {"num_components": 0}, "num_components"),
        ("vamp", {"num_pseudo": 0}, "num_pseudo"),
        ("flow", {"num_flows": 0}, "num_flows"),
        ("flow", {"hidden": 2}, "hidden"),
        ("mog", {"init_scale": -1.0}, "init_scale"),
    ],
)
def test_counts_below_one_are_refused(name, options, key):
    with pytest.raises(InputError, match=rf"model\.prior_options\.{key}"):
        pv.build_model(12, 3, prior=name, prior_options=options)


def test_mis_shaped_pseudo_inputs_name_the_key_and_the_fix():
    bad = {"num_pseudo": 4, "pseudo_inputs": torch.rand(4, 10)}
    shape = r"pseudo_inputs must be a float tensor \[num_pseudo, x_dim\] = \[4, 12\]"
    with pytest.raises(InputError, match=shape + r".*got shape \[4, 10\].*x\[:K\]"):
        pv.build_model(12, 3, prior="vamp", prior_options=bad)
    good = torch.rand(4, 12)
    model = pv.build_model(
        12, 3, prior="vamp", prior_options={"num_pseudo": 4, "pseudo_inputs": good}
    )
    assert torch.equal(model.prior.pseudo_inputs, good)
    with pytest.raises(InputError, match=r"cannot read the pseudo-inputs.*x_dim = 12.*same x_dim"):
        connect(model, pv.build_guide("diagonal", 10, 3, hidden=[8]))
    with pytest.raises(InputError, match=r"event shape \[3\] \(model\.z_dim\).*event \[2\]"):
        connect(model, pv.build_guide("diagonal", 12, 2, hidden=[8]))


def test_vamp_before_connect_says_to_connect():
    model = pv.build_model(12, 3, prior="vamp", prior_options={"num_pseudo": 4}, hidden=[8])
    guide = pv.build_guide("diagonal", 12, 3, hidden=[8])
    x = torch.bernoulli(torch.full((5, 12), 0.4))
    with pytest.raises(InputError, match=r"ppl_vae\.model\.connect\(model, guide\)"):
        log_weights(model, guide, x, num_particles=2)
    with pytest.raises(InputError, match=r"connect\(model, guide\)"):
        model.sample(3)
    with pytest.raises(InputError, match=r"needs distribution\(x\)"):
        connect(model, NoLatents())


def test_a_hierarchical_recipe_takes_vamp_on_top():
    table = {"name": "r", "model": {"name": "hierarchical", "prior": "vamp"}}
    table["guide"] = {"name": "bottom_up"}
    check_recipe(config.from_dict(table))


@pytest.mark.parametrize("kind", ["m2", "conditional"])
def test_kinds_whose_guide_has_no_q_of_u_refuse_vamp(kind):
    table = {"name": "r", "model": {"name": kind, "prior": "vamp"}}
    if kind == "m2":
        table["objective"] = {"name": "semi_supervised"}
    with pytest.raises(RecipeError, match=rf"model\.prior = 'vamp' cannot be the '{kind}' model's"):
        check_recipe(config.from_dict(table))
    table["model"]["prior"] = "mog"
    check_recipe(config.from_dict(table))


def test_the_cvae_takes_no_prior():
    table = {"name": "r", "model": {"name": "cvae", "prior": "flow"}}
    with pytest.raises(RecipeError, match="has its own prior network"):
        check_recipe(config.from_dict(table))


def test_every_prior_is_registered():
    assert {"standard", "mog", "vamp", "flow"} <= set(PRIORS)
