import pyro
import pyro.poutine as poutine
import pytest
import torch

from ppl_vae import GUIDES, build_guide, build_model
from ppl_vae.core.registry import UnknownNameError
from ppl_vae.model.checks import DataError
from ppl_vae.model.nets import build_net


def _trace(model, x):
    return poutine.trace(model).get_trace(x)


def test_model_sites_and_plate():
    model = build_model(12, 3, likelihood="bernoulli", hidden=[8])
    x = torch.bernoulli(torch.full((5, 12), 0.3))
    tr = _trace(model, x)
    assert tr.nodes["z"]["value"].shape == (5, 3)
    assert tr.nodes["x"]["is_observed"] and torch.equal(tr.nodes["x"]["value"], x)
    for site in ("z", "x"):
        assert [f.name for f in tr.nodes[site]["cond_indep_stack"]] == ["data"]
        assert tr.nodes[site]["fn"].batch_shape == (5,)
    assert tr.nodes["x"]["fn"].event_shape == (12,)
    assert tr.nodes["z"]["fn"].event_shape == (3,)


def test_prior_is_standard_normal():
    model = build_model(6, 4, likelihood="gaussian", hidden=[])
    p = model.prior(torch.zeros(1))
    z = torch.randn(10, 4)
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert torch.allclose(p.log_prob(z), ref)


def test_bernoulli_refuses_grayscale_with_a_fix():
    model = build_model(4, 2, likelihood="bernoulli", hidden=[])
    with pytest.raises(DataError, match="binary.*binarize.*continuous_bernoulli"):
        model(torch.full((3, 4), 0.5))


def test_checks_hold_with_pyro_validation_off():
    model = build_model(4, 2, likelihood="bernoulli", hidden=[])
    with pyro.validation_enabled(False), pytest.raises(DataError, match="binary"):
        model(torch.full((3, 4), 0.5))


def test_nan_and_shape_errors():
    model = build_model(4, 2, likelihood="gaussian", hidden=[])
    with pytest.raises(DataError, match="NaN"):
        model(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(DataError, match=r"shape \[N, 4\]"):
        model(torch.zeros(3, 5))
    with pytest.raises(DataError, match="empty"):
        model(torch.zeros(0, 4))


def test_continuous_bernoulli_range():
    model = build_model(4, 2, likelihood="continuous_bernoulli", hidden=[])
    tr = _trace(model, torch.full((3, 4), 0.25))
    assert torch.isfinite(tr.log_prob_sum())
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        model(torch.full((3, 4), 1.5))


@pytest.mark.parametrize("learn,shape", [("none", None), ("scalar", (1,)), ("pixel", (6,))])
def test_gaussian_scales(learn, shape):
    model = build_model(
        6,
        2,
        likelihood="gaussian",
        likelihood_options={"scale": 0.3, "learn_scale": learn},
        hidden=[],
    )
    params = dict(model.likelihood.named_parameters())
    if shape is None:
        assert not params
    else:
        assert params["raw_scale"].shape == shape
    assert torch.allclose(model.likelihood.scale, torch.tensor(0.3))


def test_unknown_names_list_valid_ones():
    with pytest.raises(UnknownNameError, match="Did you mean 'gaussian'.*bernoulli"):
        build_model(4, 2, likelihood="gausian")
    with pytest.raises(UnknownNameError, match="Valid names: diagonal"):
        build_guide("diagnal", 4, 2)
    with pytest.raises(UnknownNameError, match="activation"):
        build_model(4, 2, likelihood="gaussian", activation="relux")


@pytest.mark.parametrize("kind,out", [("encoder", 10), ("decoder", 784)])
def test_conv_nets_keep_leading_dims(kind, out):
    inp = 784 if kind == "encoder" else 5
    hidden = [8, 16] if kind == "encoder" else [16, 8]
    net = build_net(kind, "conv", inp, out, hidden, "relu", (1, 28, 28))
    assert net(torch.rand(3, 7, inp)).shape == (3, 7, out)


def test_diagonal_guide_samples_under_the_data_plate():
    guide = GUIDES["diagonal"](12, 3, hidden=[8])
    tr = _trace(guide, torch.rand(5, 12))
    site = tr.nodes["z"]
    assert site["value"].shape == (5, 3) and site["fn"].has_rsample
    assert [f.name for f in site["cond_indep_stack"]] == ["data"]


def test_model_samples():
    model = build_model(6, 2, likelihood="bernoulli", hidden=[4])
    x = model.sample(7)
    assert x.shape == (7, 6) and ((x > 0) & (x < 1)).all()


class _ExtraSiteGuide(pyro.nn.PyroModule):
    """A diagonal guide that also samples a site the model does not have."""

    def __init__(self):
        super().__init__(name="guide")
        self.inner = build_guide("diagonal", 12, 3, hidden=[8])

    def forward(self, x):
        self.inner(x)
        pyro.sample("stray", pyro.distributions.Normal(0.0, 1.0))


def test_pyro_validation_runs_on_the_first_step_only():
    from pyro.infer.util import is_validation_enabled

    from ppl_vae import fit

    model = build_model(12, 3, likelihood="bernoulli", hidden=[8])
    x = torch.bernoulli(torch.full((40, 12), 0.3))
    with pytest.warns(UserWarning, match="vars in guide but not model") as caught:
        result = fit(model, _ExtraSiteGuide(), x, epochs=1, batch_size=10, progress=False)
    assert result.steps == 4
    assert sum("vars in guide but not model" in str(w.message) for w in caught) == 1
    assert is_validation_enabled() and model.validate_data  # both restored afterwards
