"""The model side, opened: models built from parts (a prior, a likelihood sized by its outputs
per pixel, a decoder net), parts that share the guide, the capabilities the contract names, and
model kinds as specs."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

import ppl_vae as pv
from ppl_vae.core import (
    Analogies,
    ChecksData,
    Completes,
    Conditioned,
    EncoderDistribution,
    HasPrior,
    Likelihood,
    ReusesDistribution,
    Shared,
    SumsOutLabel,
    has,
)
from ppl_vae.core.errors import RecipeError, UnknownNameError
from ppl_vae.guides.conditional import CondGuide
from ppl_vae.model import LIKELIHOODS, PRIORS, build_cvae, build_labelled_model, connect
from ppl_vae.model.likelihoods import Likelihood as LikelihoodBase
from ppl_vae.runs.build import check_recipe
from ppl_vae.runs.kinds import MODEL_KINDS
from ppl_vae.runs.recipe import from_dict


class TwoPerPixel(LikelihoodBase):
    """N(mu, sigma^2) with both read from the decoder: two outputs per pixel."""

    outputs_per_pixel = 2

    def forward(self, params: torch.Tensor) -> dist.Distribution:
        loc, raw = params.unflatten(-1, (2, self.x_dim)).unbind(-2)
        return dist.Normal(loc, raw.exp())


class GuidePrior(nn.Module):
    """q(z | u) at one learned pseudo-input u: a prior that reads the guide's encoder."""

    def __init__(self, z_dim: int, x_dim: int = 6):
        super().__init__()
        self.z_dim = z_dim
        self.u = nn.Parameter(torch.rand(1, x_dim))
        self.guide: Shared | None = None

    def share_guide(self, guide) -> None:
        self.guide = Shared(guide)

    def forward(self, like: torch.Tensor) -> dist.Distribution:
        q = self.guide.module.distribution(self.u.to(like))
        return dist.Normal(q.mean[0], q.stddev[0]).to_event(1)


@pytest.fixture
def registered():
    LIKELIHOODS["two_per_pixel"] = TwoPerPixel
    PRIORS["guide_prior"] = GuidePrior
    yield
    del LIKELIHOODS["two_per_pixel"], PRIORS["guide_prior"]


def test_the_decoder_is_sized_from_the_likelihood(registered):
    mlp = pv.build_model(6, 2, likelihood="two_per_pixel", hidden=[5])
    assert mlp.decoder[-1].out_features == 12
    conv = pv.build_model(
        64, 2, likelihood="two_per_pixel", net="conv", hidden=[4, 4], image_shape=(1, 8, 8)
    )
    assert conv.decoder.deconv[-1].out_channels == 2  # k x C channels
    assert conv.decoder(torch.zeros(3, 2)).shape == (3, 128)
    for model in (mlp, conv):
        x = torch.randn(4, model.x_dim)
        tr = pyro.poutine.trace(model).get_trace(x)
        tr.compute_log_prob()
        assert tr.nodes["x"]["log_prob"].shape == (4,)
    labelled = build_labelled_model(6, 2, num_classes=3, likelihood="two_per_pixel", hidden=[4])
    cvae = build_cvae(6, 2, likelihood="two_per_pixel", hidden=[4])
    assert labelled.decoder[-1].out_features == cvae.generation_net[-1].out_features == 12


def test_one_output_per_pixel_builds_the_same_decoder_as_before():
    torch.manual_seed(0)
    model = pv.build_model(784, 20, hidden=[400])
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(20, 400), torch.nn.ReLU(), torch.nn.Linear(400, 784))
    for a, b in zip(model.decoder.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)
    assert sorted(model.state_dict()) == ["decoder.0.bias", "decoder.0.weight"] + [
        "decoder.2.bias",
        "decoder.2.weight",
    ]


def test_a_prior_that_shares_the_guide_registers_nothing_twice(registered):
    model = pv.build_model(6, 2, prior="guide_prior", hidden=[4])
    guide = pv.build_guide("diagonal", 6, 2, hidden=[4])
    connect(model, guide)
    assert [n for n, _ in model.named_parameters() if n.startswith("prior")] == ["prior.u"]
    x = torch.bernoulli(torch.full((20, 6), 0.4))
    before = {n: p.clone() for n, p in guide.named_parameters()}
    objective = pv.build_objective("elbo")
    pv.fit(model, guide, x, epochs=3, batch_size=10, lr=0.05, objective=objective, progress=False)
    names = list(pyro.get_param_store().keys())
    assert len(names) == len(set(names))
    # the prior's log density reads the guide's encoder, so training moved it through both
    assert any(not torch.equal(before[n], p) for n, p in guide.named_parameters())
    log_w = pv.log_weights(model, guide, x, 5)
    assert log_w.shape == (5, 20) and torch.isfinite(log_w).all()


def test_recipes_pick_the_prior_by_name_with_clear_errors():
    with pytest.raises(UnknownNameError, match="unknown prior 'standrd'.*Did you mean 'standard'"):
        check_recipe(from_dict({"model": {"prior": "standrd"}}))
    with pytest.raises(RecipeError, match="model.prior_options"):
        check_recipe(from_dict({"model": {"prior_options": {"scale": 2.0}}}))
    with pytest.raises(RecipeError, match="its own prior network"):
        check_recipe(
            from_dict({"model": {"name": "cvae", "prior": "standard", "prior_options": {"a": 1}}})
        )


def test_capabilities_of_the_built_in_parts():
    vae = pv.build_model(6, 2, hidden=[])
    guide = pv.build_guide("diagonal", 6, 2, hidden=[])
    m2 = build_labelled_model(6, 2, num_classes=3, hidden=[])
    cvae = build_cvae(6, 2, hidden=[])
    assert has(vae, HasPrior) and has(vae, ChecksData) and not has(vae, SumsOutLabel)
    assert has(vae.likelihood, Likelihood) and vae.likelihood.outputs_per_pixel == 1
    assert has(guide, EncoderDistribution) and has(guide, ReusesDistribution)
    assert has(m2, SumsOutLabel) and has(m2, Analogies) and has(m2, Conditioned)
    assert has(cvae, Completes) and has(cvae, Conditioned) and not has(vae, Conditioned)
    assert has(CondGuide(guide), Conditioned) and not has(guide, Conditioned)


def test_every_kind_is_one_spec_with_its_options():
    assert sorted(MODEL_KINDS) == ["conditional", "cvae", "hierarchical", "m1", "m1m2", "m2", "vae"]
    for name, kind in MODEL_KINDS.items():
        assert kind.name == name and callable(kind.parts) and kind.description
    recipe = from_dict({"model": {"name": "m2", "options": {"num_classes": 4}}})
    assert MODEL_KINDS["m2"].resolve(recipe) == {
        "num_classes": 4,
        "classifier_hidden": [500],
        "labelled_fraction": 0.1,
    }
    with pytest.raises(RecipeError, match="takes no options"):
        MODEL_KINDS["vae"].resolve(from_dict({"model": {"options": {"z": 1}}}))
    with pytest.raises(RecipeError, match="model.options.labels: the 'cvae' model takes"):
        MODEL_KINDS["cvae"].resolve(
            from_dict({"model": {"name": "cvae", "options": {"labels": 1}}})
        )
