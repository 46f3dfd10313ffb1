"""Diagnostics of the latent space: active units, KL per unit, the information split, clusters,
pictures and the bad inputs of ``ppl_vae.analysis``, against exact answers.

Dead units: a guide whose mean ignores x in some units and equals the prior there, so their
variance and KL are exactly 0. Information split: the linear-Gaussian model with its exact
posterior as guide and data drawn from the model, where q(z) = p(z) = N(0, I) (a Gaussian
aggregate posterior), so I_q(x; z) = E_x KL(q(z|x) || p(z)) = -1/2 log det Sigma with
Sigma = (I + W^T W / s^2)^-1, and KL(q(z) || p(z)) = 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule
from torch.distributions.transforms import AffineTransform

from ppl_vae.analysis import (
    active_units,
    cluster_codes,
    diagnose,
    information_split,
    kl_per_unit,
    posterior_means,
)
from ppl_vae.core.errors import InputError
from ppl_vae.data.linear_gaussian import LinearGaussian
from ppl_vae.guides import ExactPosterior
from ppl_vae.model import build_model, linear_vae
from ppl_vae.reports.latent_pictures import STEPS, traversal_grid
from ppl_vae.runs.diagnose import write_diagnostics

Z, LIVE, X_DIM = 5, 3, 64  # units 0..2 are live, 3..4 dead; 8 x 8 "images"
LIVE_SCALE = 0.5


class DeadUnitGuide(PyroModule):
    """q(z|x) = N(x A, diag(scale^2)): A's columns are 0 for the dead units, whose scale is 1,
    so q(z_u|x) = p(z_u) = N(0, 1) there. ``flow=True`` writes the same Gaussian as an affine
    map of N(0, I), which torch gives no closed-form mean or KL for (the Monte Carlo path)."""

    def __init__(self, flow: bool = False):
        super().__init__(name="guide")
        g = torch.Generator().manual_seed(1)
        self.A = torch.randn(X_DIM, Z, generator=g, dtype=torch.float64) / 4
        self.A[:, LIVE:] = 0
        self.scale = torch.ones(Z, dtype=torch.float64)
        self.scale[:LIVE] = LIVE_SCALE
        self.flow = flow

    def distribution(self, x):
        loc = x.double() @ self.A
        scale = self.scale.expand_as(loc)
        if not self.flow:
            return dist.Normal(loc, scale).to_event(1)
        base = dist.Normal(torch.zeros_like(loc), torch.ones_like(loc)).to_event(1)
        return dist.TransformedDistribution(base, [AffineTransform(loc, scale, event_dim=1)])

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self.distribution(x))


def _dead_unit_model():
    """A VAE over 8 x 8 Bernoulli images whose linear decoder ignores the dead units."""
    model = build_model(X_DIM, Z, likelihood="bernoulli", hidden=[], image_shape=(1, 8, 8)).double()
    with torch.no_grad():
        model.decoder[0].weight[:, LIVE:] = 0
    return model


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.rand(n, X_DIM, generator=g, dtype=torch.float64), generator=g)


def _exact(guide, x):
    """The exact per-unit variance of the means and mean KL(N(m, s^2) || N(0, 1))."""
    m = x @ guide.A
    s2 = guide.scale.square()
    kl = 0.5 * (s2 + m.square() - 1 - s2.log())
    return m.var(0, unbiased=False), kl.mean(0)


def test_dead_units_are_exact_with_a_closed_form_guide():
    x, guide = _images(400), DeadUnitGuide()
    variance, kl = _exact(guide, x)
    au = active_units(guide, x, batch_size=64)["z"]
    assert au.count == LIVE and au.mean_estimate == "closed form"
    assert au.active.tolist() == [True] * LIVE + [False] * (Z - LIVE)
    torch.testing.assert_close(au.variance, variance, rtol=1e-12, atol=1e-14)
    assert (au.variance[LIVE:] == 0).all()
    site = kl_per_unit(_dead_unit_model(), guide, x, batch_size=64)["z"]
    assert site.method == "closed form"
    torch.testing.assert_close(site.per_unit, kl, rtol=1e-12, atol=1e-14)
    assert (site.per_unit[LIVE:].abs() < 1e-15).all() and (site.per_unit_se == 0).all()
    assert site.total == pytest.approx(float(kl.sum()), rel=1e-12)


def test_dead_units_with_a_guide_that_has_no_closed_form():
    """Monte Carlo means: the noise correction puts a dead unit's variance near 0 (its
    sampling error is ~ sqrt(2 / N) / S = 6e-4 here, far below the 0.01 threshold)."""
    x, guide = _images(500), DeadUnitGuide(flow=True)
    variance, kl = _exact(guide, x)
    au = active_units(guide, x, num_samples=100)["z"]
    assert au.count == LIVE and au.mean_estimate.startswith("Monte Carlo")
    assert au.variance[LIVE:].max() < 5 * 0.01 * math.sqrt(2 / len(x))
    sd = _mc_variance_sd(variance[:LIVE], LIVE_SCALE**2 / 100, len(x))
    assert ((au.variance[:LIVE] - variance[:LIVE]).abs() < 5 * sd).all()
    pyro.set_rng_seed(0)
    site = kl_per_unit(_dead_unit_model(), guide, x, num_samples=200)["z"]
    assert site.method.startswith("Monte Carlo, spacing entropy")
    # the total is the plain Monte Carlo mean of log q - log p: unbiased, 5 standard errors
    assert abs(site.total - float(kl.sum())) < 5 * site.total_se
    # per unit: the spacing entropy's bias at S = 200 is ~ +0.004 nats (module docstring)
    assert (site.per_unit - kl).abs().max() < 0.02


def _mc_variance_sd(var: torch.Tensor, noise: float, n: int) -> torch.Tensor:
    """The sd of Var_x of means estimated with error variance ``noise`` each (less that noise):
    the cross term 2 cov(m, e) has variance 4 var noise / N, the noise's own 2 noise^2 / N."""
    return torch.sqrt(4 * var * noise / n + 2 * noise**2 / n)


class TwoLevelGuide(PyroModule):
    """q(z1|x) = N(x A, 1), q(z2|z1) = N(z1 B^T, 0.5^2): E_q[z2|x] = x A B^T, which no single
    trace gives in closed form."""

    def __init__(self):
        super().__init__(name="guide")
        g = torch.Generator().manual_seed(2)
        self.A = torch.randn(4, 3, generator=g, dtype=torch.float64) / 2
        self.B = torch.tensor([[1.0, 0, 0], [0, 0, 0]], dtype=torch.float64)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.Normal(x @ self.A, 1.0).to_event(1))
            pyro.sample("z2", dist.Normal(z1 @ self.B.T, 0.5).to_event(1))


def test_active_units_of_several_latent_sites():
    x = torch.randn(1000, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    guide = TwoLevelGuide()
    au = active_units(guide, x, num_samples=100)
    assert set(au) == {"z1", "z2"} and au["z1"].count == 3 and au["z2"].count == 1
    torch.testing.assert_close(au["z1"].variance, (x @ guide.A).var(0, unbiased=False))
    # z2's first unit: Var_x of x A_0, from means averaged over S = 100 draws of z1_0, whose
    # conditional variance is 1: an error of variance 1 / S per point
    exact = (x @ guide.A[:, 0]).var(unbiased=False)
    assert abs(au["z2"].variance[0] - exact) < 5 * _mc_variance_sd(exact, 1 / 100, len(x))
    assert au["z2"].variance[1] == 0
    assert au["z2"].mean_estimate == "closed form, averaged over 100 guide samples"


def _linear_gaussian(n: int):
    truth = LinearGaussian.random(x_dim=6, z_dim=2, noise=1.5, seed=0, dtype=torch.float64)
    x = truth.sample(n, torch.Generator().manual_seed(1))
    return truth, x


def test_information_split_matches_the_gaussian_closed_form():
    """With q(z) = p(z) in the population: I = E_x KL = -1/2 log det Sigma, marginal KL = 0.
    On N points the aggregate posterior is an N-component mixture, whose KL to p(z) is
    chi^2 / (2N) to first order, chi^2 = E_x int q(z|x)^2 / p(z) dz - 1 (computed below in
    closed form per point); the tolerance is 5 standard errors plus that bias."""
    truth, x = _linear_gaussian(2000)
    model, guide = linear_vae(truth), ExactPosterior(truth)
    post = truth.posterior(x)
    sigma = post.covariance_matrix[0]
    mi = -0.5 * float(torch.logdet(sigma))
    chi2 = float(_chi_square(post.loc, sigma).mean()) - 1
    bias = chi2 / (2 * len(x))
    split = information_split(model, guide, x, num_samples=4)
    assert split.kl == pytest.approx(split.mutual_information + split.marginal_kl, abs=1e-10)
    assert abs(split.kl - mi) < 5 * split.kl_se
    assert abs(split.mutual_information - mi) < 5 * split.mutual_information_se + bias
    assert abs(split.marginal_kl - bias) < 5 * split.marginal_kl_se + bias
    assert split.log_n == pytest.approx(math.log(2000))


def _chi_square(m: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """int N(z; m, S)^2 / N(z; 0, I) dz per row of ``m``: with P = 2 S^-1 - I and
    b = 2 S^-1 m, it is (2 pi)^(d/2) det(2 pi S)^-1 det(P)^-1/2 exp(b^T P^-1 b / 2 - m^T S^-1 m)."""
    d = m.shape[-1]
    s_inv = torch.linalg.inv(sigma)
    p = 2 * s_inv - torch.eye(d, dtype=m.dtype)
    b = 2 * m @ s_inv
    quad = 0.5 * (b @ torch.linalg.inv(p) * b).sum(-1) - (m @ s_inv * m).sum(-1)
    log = 0.5 * d * math.log(2 * math.pi) - torch.logdet(2 * math.pi * sigma)
    return torch.exp(log - 0.5 * torch.logdet(p) + quad)


def test_information_split_does_not_depend_on_the_batch_size():
    truth, x = _linear_gaussian(700)
    model, guide = linear_vae(truth), ExactPosterior(truth)
    splits = [information_split(model, guide, x, batch_size=b) for b in (50, 128, 700)]
    for s in splits[1:]:
        for key in ("kl", "mutual_information", "marginal_kl"):
            assert getattr(s, key) == pytest.approx(getattr(splits[0], key), abs=1e-10)


def test_clusters_use_the_best_matching():
    # three well separated blobs whose labels are a permutation of the cluster ids
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = torch.arange(3).repeat_interleave(50)
    codes = centres[labels] + 0.1 * torch.randn(150, 2, generator=g)
    c = cluster_codes(codes, (labels + 1) % 3)
    assert c.k == 3 and c.nmi == pytest.approx(1.0) and c.accuracy == 1.0
    assert sorted(c.mapping.values()) == [0, 1, 2]
    with pytest.raises(InputError, match="at least 3 points"):
        cluster_codes(codes[:2], labels[:2] * 0 + torch.tensor([0, 1]), k=3)


def test_pictures_have_the_expected_sizes(tmp_path):
    from matplotlib.image import imread

    x, guide, model = _images(300), DeadUnitGuide(), _dead_unit_model()
    labels = torch.arange(300) % 3
    doc = write_diagnostics(model, guide, x, tmp_path, labels)
    assert (tmp_path / "diagnostics.json").is_file() and doc["notes"] == []
    paths = {k: Path(v) for k, v in doc["pictures"].items()}
    assert set(paths) == {"traversals", "clusters", "kl_units"}
    assert all(p.parent == tmp_path / "pictures" for p in paths.values())
    code = posterior_means(guide, x[:2]).mean["z"][0]
    grid = traversal_grid(model, code, [0, 1, 2], torch.ones(Z))
    assert grid.shape == (3, 2 + 3 * (8 + 2), 2 + STEPS * (8 + 2))  # make_grid, padding 2
    # the dead units do not change the image: a traversal of unit 4 is one image repeated
    dead = traversal_grid(model, code, [4], torch.ones(Z))
    torch.testing.assert_close(dead[:, 2:10, 2:10], dead[:, 2:10, -10:-2], rtol=0, atol=1e-12)
    assert imread(paths["clusters"]).shape[:2] == (400, 1000)  # 2 panels of 5 x 4 in, 100 dpi
    assert imread(paths["kl_units"]).shape[:2] == (300, 800)  # one site: 8 x 3 in
    height, width = imread(paths["traversals"]).shape[:2]
    assert width >= 2 * grid.shape[2] and height >= 2 * grid.shape[1]  # enlarged >= 2x


def _kl_doc(active: list[int], units: int = 4) -> dict:
    site = {"kl_per_unit": [0.5 + u for u in range(units)], "kl_per_unit_se": [0.0] * units}
    site |= {"units": units, "active": active, "kl": 1.0, "active_units": len(active)}
    return {"threshold": 0.01, "sites": {"z": site}}


@pytest.mark.parametrize("active", [[0, 1, 2, 3], [0, 2], []])
def test_kl_bars_and_their_legend_share_the_colours(active):
    from matplotlib.colors import to_rgba

    from ppl_vae.reports.latent_pictures import ACTIVE, INACTIVE, plot_kl_units

    ax = plot_kl_units(_kl_doc(active)).axes[0]
    swatches = {t.get_text(): h.get_facecolor() for t, h in zip(
        ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True
    )}  # fmt: skip
    n = len(active)
    # with no unit in a group, its swatch still shows the group's colour
    assert swatches[f"active ({n})"] == to_rgba(ACTIVE)
    assert swatches[f"inactive ({4 - n})"] == to_rgba(INACTIVE) != to_rgba(ACTIVE)
    bars = [p.get_facecolor() for p in ax.patches]
    assert bars == [to_rgba(ACTIVE if u in active else INACTIVE) for u in range(4)]
    assert all(t == int(t) for t in ax.get_xticks())  # whole units


def _cluster_figure(n: int, k: int = 3):
    from ppl_vae.reports.latent_pictures import plot_clusters

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % k
    codes = 4.0 * torch.nn.functional.one_hot(labels, k).double() + torch.randn(n, k, generator=g)
    assignment = ((labels + 1) % k).numpy()  # cluster a holds label a - 1
    mapping = {str(a): (a - 1) % k for a in range(k)}
    scores = {"k": k, "nmi": 1.0, "accuracy": 1.0, "mapping": mapping}
    return plot_clusters(codes, assignment, labels, scores)


def test_cluster_picture_has_legends_and_markers_sized_for_the_points():
    few, many = _cluster_figure(200), _cluster_figure(2000)
    size = {f: f.axes[0].collections[0].get_sizes()[0] for f in (few, many)}
    assert size[few] >= 15 and size[many] <= 10 and size[few] > size[many]
    by_cluster, by_label = few.axes[:2]
    entries = [t.get_text() for t in by_cluster.get_legend().get_texts()]
    assert entries == ["0 \u2192 2", "1 \u2192 0", "2 \u2192 1"]  # cluster -> matched label
    assert [t.get_text() for t in by_label.get_legend().get_texts()] == ["0", "1", "2"]

    # a cluster has the colour of its matched label: the panels agree where they should
    def colours(ax):
        legend = ax.get_legend()
        return {
            t.get_text().split()[-1]: tuple(h.get_facecolor()[0][:3])
            for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)
        }

    of_label, of_cluster = colours(by_label), colours(by_cluster)  # keyed by matched label
    assert of_cluster == of_label and len(set(of_label.values())) == 3
    for ax in (by_cluster, by_label):  # the legend's dots do not shrink with the points
        assert all(h.get_sizes()[0] >= 20 for h in ax.get_legend().legend_handles)


def test_bad_input_is_said_and_skipped():
    x, model = _images(4), _dead_unit_model()
    doc = diagnose(model, DeadUnitGuide(flow=True), x, num_samples=20)
    notes = " ".join(doc["notes"])
    assert doc["clusters"] is None and "no labels" in notes
    assert "fewer data points (4) than latent units (5)" in notes
    assert "no closed-form KL" in notes and "Monte Carlo" in notes
    assert doc["sites"]["z"]["kl_method"].startswith("Monte Carlo")
    doc = diagnose(model, DeadUnitGuide(), x, torch.arange(4) % 2)  # 2 classes, 4 points: fine
    assert doc["clusters"]["k"] == 2 and not any("Monte Carlo" in n for n in doc["notes"])
    with pytest.raises(InputError, match="at least 2"):
        active_units(DeadUnitGuide(), x[:1])
    with pytest.raises(InputError, match="num_samples"):
        active_units(DeadUnitGuide(flow=True), x, num_samples=1)


def test_beta_is_a_fixed_kl_weight():
    from ppl_vae.core.errors import ObjectiveError
    from ppl_vae.objectives import KLWarmup, build_objective, warmup_weight

    loss = build_objective("elbo", kl_weight=4.0)
    assert isinstance(loss, KLWarmup) and loss.kl_weight == 4.0
    assert loss.begin_epoch(7)["kl_weight"] == 4.0
    assert [warmup_weight(e, 2, 0.0, 4.0) for e in range(4)] == [0.0, 2.0, 4.0, 4.0]
    assert not isinstance(build_objective("elbo"), KLWarmup)
    with pytest.raises(ObjectiveError, match="kl_weight"):
        build_objective("elbo", kl_weight=0.0)
