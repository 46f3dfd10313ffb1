"""The conditioning input of the model contract: bounds on log p(x | cond), which reduce to the
unconditional ones when the condition is empty; the class-conditional VAE; recipe checks."""

from __future__ import annotations

import pyro
import pytest
import torch

from ppl_vae.bounds import evaluate, log_weights
from ppl_vae.core.errors import DataError, InputError, RecipeError
from ppl_vae.guides import build_guide
from ppl_vae.guides.conditional import CondGuide, NoLatents
from ppl_vae.model import build_model
from ppl_vae.model.cvae import build_cvae
from ppl_vae.model.likelihoods import softplus_inverse
from ppl_vae.runs.build import check_recipe
from ppl_vae.runs.recipe import from_dict

X, Z = 12, 3


def _vae_and_cvae():
    """A linear VAE and a CVAE that is the same VAE when nothing is given (cond all -1)."""
    vae = build_model(X, Z, hidden=[])
    guide = build_guide("diagonal", X, Z, hidden=[])
    cvae = build_cvae(X, Z, hidden=[])
    cguide = CondGuide(build_guide("diagonal", 2 * X, Z, hidden=[]))
    with torch.no_grad():
        prior = cvae.prior_net[0]  # p(z | x_in) = N(0, I) whatever x_in
        prior.weight.zero_()
        prior.bias[:Z] = 0
        prior.bias[Z:] = softplus_inverse(1 - cvae.min_scale)
        gen = cvae.generation_net[0]  # reads [z, x_in]: the x_in part off
        gen.weight.zero_()
        gen.weight[:, :Z] = vae.decoder[0].weight
        gen.bias.copy_(vae.decoder[0].bias)
        enc = cguide.z_guide.encoder[0]  # reads [x, x_in]
        enc.weight.zero_()
        enc.weight[:, :X] = guide.encoder[0].weight
        enc.bias.copy_(guide.encoder[0].bias)
    return vae, guide, cvae, cguide


def test_conditional_bound_reduces_to_the_unconditional_one():
    vae, guide, cvae, cguide = _vae_and_cvae()
    x = torch.bernoulli(torch.full((9, X), 0.4))
    empty = torch.full_like(x, -1.0)  # no pixel given: every pixel is scored
    pyro.set_rng_seed(5)
    plain = log_weights(vae, guide, x, num_particles=6, chunk_size=4)
    pyro.set_rng_seed(5)
    given = log_weights(cvae, cguide, x, num_particles=6, chunk_size=4, cond=empty)
    torch.testing.assert_close(given, plain, rtol=1e-5, atol=1e-5)
    # and every estimator over them: evaluate draws the same particles from the same seed
    a = evaluate(vae, guide, x, ks=(1, 5), batch_size=4, seed=3).estimates()
    b = evaluate(cvae, cguide, x, ks=(1, 5), batch_size=4, seed=3, cond=empty).estimates()
    for ra, rb in zip(a, b, strict=True):
        assert ra["estimator"] == rb["estimator"] and ra["k"] == rb["k"]
        assert ra["mean"] == pytest.approx(rb["mean"], rel=1e-5)


def test_cond_none_is_the_unconditional_path():
    vae, guide, _, _ = _vae_and_cvae()
    x = torch.bernoulli(torch.full((5, X), 0.5))
    pyro.set_rng_seed(1)
    a = log_weights(vae, guide, x, 4)
    pyro.set_rng_seed(1)
    b = log_weights(vae, guide, x, 4, cond=None)
    assert torch.equal(a, b)


def test_given_pixels_are_not_scored():
    x = torch.bernoulli(torch.full((6, X), 0.5))
    cond = x.clone()
    cond[:, X // 2 :] = -1  # the first half given
    flipped = x.clone()
    flipped[:, : X // 2] = 1 - flipped[:, : X // 2]  # change only given pixels of x
    base = build_cvae(X, Z, baseline=True, hidden=[])  # no latent: its weight is exact
    wa = log_weights(base, NoLatents(), x, 1, cond=cond)
    wb = log_weights(base, NoLatents(), flipped, 1, cond=cond)
    torch.testing.assert_close(wa, wb)
    # the baseline's weight is its exact log-likelihood of the hidden pixels
    logits = base.net(cond)
    exact = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, X // 2 :], x[:, X // 2 :], reduction="none"
    ).sum(-1)
    torch.testing.assert_close(wa[0], exact)


def test_models_that_need_a_condition_say_so():
    _, _, cvae, cguide = _vae_and_cvae()
    x = torch.bernoulli(torch.full((2, X), 0.5))
    with pytest.raises(InputError, match="cond=x_in"):
        cvae(x)
    with pytest.raises(DataError, match="shape of x"):
        cvae(x, cond=x[:, :3])
    from ppl_vae.model.labelled import build_labelled_model

    m = build_labelled_model(X, Z, num_classes=4, label_prior=False, hidden=[])
    with pytest.raises(InputError, match="needs the labels"):
        m(x)
    with pytest.raises(DataError, match=r"lie in \[0, 4\)"):
        m(x, cond=torch.tensor([0, 4]))


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"model": {"name": "m2"}, "objective": {"name": "iwae_dreg"}}, "enumeration"),
        (
            {"model": {"name": "conditional"}, "objective": {"name": "semi_supervised"}},
            "no discrete latent",
        ),
        ({"model": {"name": "cvae", "options": {"labels": 3}}}, "takes the options"),
    ],
)
def test_recipe_checks(table, match):
    with pytest.raises(RecipeError, match=match):
        check_recipe(from_dict(table))


def test_estimators_with_their_own_draws_are_refused_with_a_condition():
    from ppl_vae.bounds.registry import ESTIMATORS

    if "ais" not in ESTIMATORS:
        pytest.skip("no estimator with its own draws is registered")
    _, _, cvae, cguide = _vae_and_cvae()
    x = torch.bernoulli(torch.full((2, X), 0.5))
    with pytest.raises(InputError, match="conditioning input"):
        evaluate(cvae, cguide, x, ks=(2,), cond=-torch.ones_like(x), options={"ais": {}})


def test_label_flag_errors():
    from ppl_vae.model.labelled import build_labelled_model
    from ppl_vae.reports.label_pictures import check_label

    vae, _, cvae, _ = _vae_and_cvae()
    for unconditional in (vae, cvae):
        with pytest.raises(InputError, match="no class labels"):
            check_label(unconditional, 3)
        check_label(unconditional, None)
    m = build_labelled_model(X, Z, num_classes=4, hidden=[])
    check_label(m, 3)
    with pytest.raises(InputError, match=r"class in 0\.\.3, got 4"):
        check_label(m, 4)
