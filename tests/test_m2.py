"""M2: exact answers on a Gaussian mixture whose components are linear-Gaussian, labels, errors.

The model: y ~ Cat(1/C), z ~ N(0, I_d), x | y, z ~ N(A z + c_y, s^2 I), so that
p(x | y) = N(c_y, A A^T + s^2 I) and p(x) = sum_y p(y) p(x | y) are exact. With A's columns
orthogonal the posterior p(z | x, y) is a diagonal Gaussian whose mean is linear in
[x, onehot(y)]: the built-in guide can hold it exactly, and then every log weight is exact.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyro
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from ppl_vae.bounds import log_weights
from ppl_vae.core.errors import DataError, ObjectiveError
from ppl_vae.data import Splits
from ppl_vae.data.labels import labelled_subset, semi_supervised
from ppl_vae.guides import build_guide
from ppl_vae.guides.labelled import LabelledLinear, build_labelled_guide
from ppl_vae.model.labelled import build_labelled_model
from ppl_vae.model.likelihoods import softplus_inverse
from ppl_vae.objectives import build_objective
from ppl_vae.objectives.semi_supervised import SemiSupervisedELBO, check_objective
from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import build_recipe_objective

C, D, Z, S = 3, 5, 2, 0.7
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def mixture():
    """(model, guide, x, A, c): the model with exact q(z|x,y) and a random classifier."""
    torch.set_default_dtype(torch.float64)
    try:
        g = torch.Generator().manual_seed(1)
        q, _ = torch.linalg.qr(torch.randn(D, Z, generator=g))
        a = q * torch.tensor([1.5, 0.8])  # orthogonal columns: A^T A diagonal
        c = 2 * torch.randn(C, D, generator=g)
        model = build_labelled_model(
            D,
            Z,
            num_classes=C,
            label_prior=True,
            likelihood="gaussian",
            likelihood_options={"scale": S},
            hidden=[],
        )
        with torch.no_grad():
            model.decoder[0].weight.copy_(torch.cat([a, c.T], 1))
            model.decoder[0].bias.zero_()
        z_guide = build_guide("diagonal", D + C, Z, hidden=[])
        guide = build_labelled_guide(z_guide, D, C, True, hidden=[])
        prec = 1 + (a * a).sum(0) / S**2  # diagonal of M = I + A^T A / s^2
        b = (a / S**2 / prec).T  # posterior mean B (x - c_y)
        first = guide.z_guide.encoder[0]
        assert isinstance(first, LabelledLinear)
        with torch.no_grad():
            first.weight.zero_()
            first.weight[:Z, :D] = b
            first.weight[:Z, D:] = -(b @ c.T)
            first.bias.zero_()
            sd = prec.rsqrt() - z_guide.min_scale
            first.bias[Z:] = torch.tensor([softplus_inverse(float(v)) for v in sd])
        x = torch.randn(7, D, generator=g) * 2
        yield model, guide, x, a, c
    finally:
        torch.set_default_dtype(torch.float32)


def num(t: torch.Tensor) -> float:
    """A scalar tensor's value (some carry a gradient)."""
    return float(t.detach())


def log_joint(x, a, c):
    """log p(x, y) for every y, ``[N, C]``."""
    cov = a @ a.T + S**2 * torch.eye(D)
    comps = torch.distributions.MultivariateNormal(c, cov)
    return comps.log_prob(x[:, None, :]) - math.log(C)


def test_enumerated_elbo_is_the_sum_over_y(mixture):
    model, guide, x, a, c = mixture
    log_q = guide.classify(x).log_softmax(-1)
    # with q(z|x,y) exact, L(x, y) = log p(x, y) for every z: U(x) is a finite sum over y
    hand = (log_q.exp() * (log_joint(x, a, c) - log_q)).sum()
    parts = SemiSupervisedELBO().parts(model, guide, x)
    assert num(-parts["unlabelled"].detach()) == pytest.approx(num(hand), rel=1e-9)
    assert num(parts["labelled"]) == 0.0
    # the same through Pyro's TraceEnum_ELBO directly
    direct = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model, guide, x)
    assert num(direct) == pytest.approx(num(-hand), rel=1e-9)


def test_enumerated_elbo_gradient_reaches_the_classifier_exactly(mixture):
    # the unlabelled term is the classifier's only signal from unlabelled data: its gradient
    # with respect to q(y|x)'s weights is that of the finite sum over y computed by hand
    model, guide, x, a, c = mixture
    weights = list(guide.classifier.parameters())
    loss = SemiSupervisedELBO().parts(model, guide, x)["unlabelled"]
    got = torch.autograd.grad(loss, weights)
    log_q = guide.classify(x).log_softmax(-1)
    hand = -(log_q.exp() * (log_joint(x, a, c) - log_q)).sum()
    want = torch.autograd.grad(hand, weights)
    assert any(float(w.abs().max()) > 1e-3 for w in want)  # a real signal, not zero
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def test_labelled_terms_are_exact(mixture):
    model, guide, x, a, c = mixture
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    loss = SemiSupervisedELBO(alpha=2.5)
    parts = loss.parts(model, guide, x, y)
    exact = log_joint(x, a, c).gather(1, y[:, None]).sum()
    assert num(-parts["labelled"]) == pytest.approx(num(exact), rel=1e-9)
    log_q = guide.classify(x).log_softmax(-1).gather(1, y[:, None]).sum()
    assert num(-parts["classification"]) == pytest.approx(num(log_q), rel=1e-9)
    total = loss.differentiable_loss(model, guide, x, y)
    assert num(total) == pytest.approx(num(-exact - 2.5 * log_q), rel=1e-9)
    # a batch of both kinds splits by cond >= 0
    mixed = y.clone()
    mixed[:3] = -1
    p = loss.parts(model, guide, x, mixed)
    assert num(-p["labelled"]) == pytest.approx(
        float(log_joint(x, a, c)[3:].gather(1, y[3:, None]).sum()), rel=1e-9
    )


def test_labelled_scale_counts_each_labelled_point_once(mixture):
    # a labelled point shown r times with labelled_scale = 1 / r weighs what it weighs once
    model, guide, x, a, c = mixture
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    y[:3] = -1
    once = SemiSupervisedELBO(alpha=3.0).differentiable_loss(model, guide, x, y)
    lab = y >= 0
    x3, y3 = torch.cat([x[~lab], x[lab].repeat(3, 1)]), torch.cat([y[~lab], y[lab].repeat(3)])
    thrice = SemiSupervisedELBO(alpha=3.0, labelled_scale=1 / 3)
    assert num(thrice.differentiable_loss(model, guide, x3, y3)) == pytest.approx(num(once), 1e-9)
    with pytest.raises(ObjectiveError, match="labelled_scale must be > 0"):
        SemiSupervisedELBO(labelled_scale=0.0)


def test_the_run_derives_labelled_scale_from_the_repeats():
    recipe = config.load(
        REPO / "models" / "mnist_m2.toml",
        ["data.labels=50", "model.options.labelled_fraction=0.25"],
    )
    data = semi_supervised(_splits(), 50, seed=0, labelled_fraction=0.25)
    rows = int((data.cond["train"] >= 0).sum())
    assert rows > 50
    assert build_recipe_objective(recipe, data).labelled_scale == pytest.approx(50 / rows)
    assert build_recipe_objective(recipe).labelled_scale == 1.0  # no data: nothing to derive
    with pytest.raises(ObjectiveError, match="comes from data.labels"):
        build_objective("semi_supervised", labelled_scale=0.5)


def test_log_px_with_y_summed_is_exact_for_the_exact_posterior(mixture):
    model, guide, x, a, c = mixture
    log_w = log_weights(model, guide, x, num_particles=4)
    exact = log_joint(x, a, c).logsumexp(-1)
    assert log_w.shape == (4, len(x))
    torch.testing.assert_close(log_w, exact.expand(4, -1), rtol=0, atol=1e-9)
    # given the label, the weights bound log p(x, y)
    y = torch.zeros(len(x), dtype=torch.long)
    torch.testing.assert_close(
        log_weights(model, guide, x, 3, cond=y)[0], log_joint(x, a, c)[:, 0], rtol=0, atol=1e-9
    )


def test_log_px_bounds_with_an_inexact_guide(mixture):
    model, guide, x, a, c = mixture
    with torch.no_grad():
        guide.z_guide.encoder[0].bias[:Z] += 0.8  # a biased q(z|x,y)
    k = 4000
    log_w = log_weights(model, guide, x, num_particles=k, chunk_size=1000)
    exact = log_joint(x, a, c).logsumexp(-1)
    # E[w] = p(x): the mean of w / p(x) is 1 within 5 standard errors
    ratio = (log_w - exact).exp()
    se = ratio.std(0) / math.sqrt(k)
    assert ((ratio.mean(0) - 1).abs() < 5 * se).all()
    # E[log w] <= log p(x), and here the gap is many standard errors wide
    elbo, elbo_se = log_w.mean(0), log_w.std(0) / math.sqrt(k)
    assert (elbo + 5 * elbo_se < exact).all()


def test_labelled_subset_is_balanced_and_seeded():
    y = torch.arange(10).repeat(30)[torch.randperm(300, generator=torch.Generator().manual_seed(3))]
    idx = labelled_subset(y, 50, seed=7, num_classes=10)
    assert torch.bincount(y[idx], minlength=10).tolist() == [5] * 10
    assert torch.equal(idx, labelled_subset(y, 50, seed=7, num_classes=10))
    assert not torch.equal(idx, labelled_subset(y, 50, seed=8, num_classes=10))


def _splits(n=300, labels=True):
    y = torch.arange(n) % 10
    x = torch.rand(n, 4)
    return Splits(x, x[:10], x[:10], labels={"train": y} if labels else {})


def test_semi_supervised_split_repeats_the_labelled_points():
    s = semi_supervised(_splits(), 50, seed=0, labelled_fraction=0.25)
    cond = s.cond["train"]
    n_lab = int((cond >= 0).sum())
    assert int((cond < 0).sum()) == 250
    assert n_lab % 50 == 0 and abs(n_lab / len(cond) - 0.25) < 0.05
    assert torch.bincount(cond[cond >= 0], minlength=10).unique().numel() == 1
    assert torch.equal(semi_supervised(_splits(), "all").cond["train"], torch.arange(300) % 10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": 5000}, "more labelled points"),
        ({"labels": 55}, "multiple of the 10 classes"),
        ({"labels": 1.5}, "number of labels or 'all'"),
    ],
)
def test_bad_label_requests(kwargs, match):
    with pytest.raises(DataError, match=match):
        semi_supervised(_splits(), **kwargs)


def test_labels_on_a_dataset_without_them():
    with pytest.raises(DataError, match="has no labels"):
        semi_supervised(_splits(labels=False), 100)


def test_labels_out_of_range(mixture):
    model, guide, x, a, c = mixture
    with pytest.raises(DataError, match=r"lie in \[0, 3\)"):
        model(x, cond=torch.full((len(x),), 3))
    with pytest.raises(DataError, match=r"lie in \[0, 3\)"):
        model.sample(2, label=7)


def test_objectives_other_than_semi_supervised_are_refused_for_m2():
    check_objective("semi_supervised")
    for name in ("elbo", "iwae_dreg", "elbo_stl"):
        with pytest.raises(ObjectiveError, match="enumeration"):
            check_objective(name)


def _m2_fit(run_dir, max_steps, resume=False):
    """A tiny M2 trained by fit() on labelled + unlabelled binary data."""
    from ppl_vae.training.svi import fit

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 4
    x = torch.bernoulli(torch.rand(4, 16, generator=g)[y])
    data = semi_supervised(
        Splits(x[:100], x[100:], x[100:], labels={"train": y[:100], "test": y[100:]}),
        8,
        seed=1,
        num_classes=4,
    )
    model = build_labelled_model(16, 3, num_classes=4, label_prior=True, hidden=[8])
    guide = build_labelled_guide(build_guide("diagonal", 20, 3, hidden=[8]), 16, 4, True, [8])
    result = fit(
        model,
        guide,
        data,
        epochs=3,
        batch_size=16,
        lr=1e-2,
        objective=SemiSupervisedELBO(),
        run_dir=run_dir,
        resume=resume,
        max_steps=max_steps,
        progress=False,
    )
    return result, model, guide


def test_m2_trains_and_resumes_exactly(tmp_path):
    one, m1, g1 = _m2_fit(tmp_path / "a", 12)
    _m2_fit(tmp_path / "b", 5)
    two, m2, g2 = _m2_fit(tmp_path / "b", 12, resume=True)
    for a, b in zip(
        [*m1.parameters(), *g1.parameters()], [*m2.parameters(), *g2.parameters()], strict=True
    ):
        assert torch.equal(a, b)
    assert [r["train_elbo"] for r in one.history] == [r["train_elbo"] for r in two.history]
    assert "test_accuracy" in one.history[-1] and 0 <= one.history[-1]["test_accuracy"] <= 1
