"""The quadrant task: which pixels are given, the data step, completions, and a training smoke
run through the recipe of every kind with a condition (train, evaluate, exact resume)."""

from __future__ import annotations

import pytest
import torch

from ppl_vae.core.errors import DataError
from ppl_vae.data import Splits
from ppl_vae.data.quadrants import HIDDEN, given_mask, quadrant_split
from ppl_vae.model.cvae import build_cvae


@pytest.mark.parametrize(("given", "pixels"), [(1, 196), (2, 392), (3, 588)])
def test_given_quadrants(given, pixels):
    m = given_mask(given).reshape(28, 28)
    assert int(m.sum()) == pixels
    assert bool(m[27, 0]) and not bool(m[27, 27])  # bottom left always given, bottom right never
    assert bool(m[0, 0]) == (given >= 2) and bool(m[0, 27]) == (given == 3)


def test_bad_quadrants():
    with pytest.raises(DataError, match="1, 2 or 3"):
        given_mask(4)
    x = torch.rand(4, 784)
    with pytest.raises(DataError, match="single-channel images"):
        quadrant_split(Splits(x, x, x), 2)


def test_dynamic_bits_condition_on_the_gray_input():
    # under dynamic binarization the input is the gray given part; the scored pixels are bits
    gray = torch.rand(30, 784)
    bits = torch.bernoulli(gray)
    s = Splits(
        gray,
        bits[:5],
        bits[5:10],
        image_shape=(1, 28, 28),
        binarize="dynamic",
        gray={"valid": gray[:5], "test": gray[5:10]},
    )
    q = quadrant_split(s, 3)
    mask = given_mask(3)
    for split, g in (("train", gray), ("valid", gray[:5]), ("test", gray[5:10])):
        assert torch.equal(q.cond[split][:, mask], g[:, mask])
        assert bool((q.cond[split][:, ~mask] == HIDDEN).all())
    assert torch.equal(q.test, bits[5:10])


def test_split_hides_the_rest_and_completions_keep_the_input():
    x = torch.bernoulli(torch.full((5, 784), 0.3))
    s = quadrant_split(Splits(x, x, x, image_shape=(1, 28, 28), binarize="static"), 1)
    cond = s.cond["test"]
    mask = given_mask(1)
    assert torch.equal(cond[:, mask], x[:, mask]) and bool((cond[:, ~mask] == HIDDEN).all())
    for baseline in (False, True):
        model = build_cvae(784, 4, baseline=baseline, hidden=[16])
        done = model.complete(cond)
        assert torch.equal(done[:, mask], x[:, mask])
        assert bool(((done[:, ~mask] >= 0) & (done[:, ~mask] <= 1)).all())


def test_completions_picture_says_what_is_gray():
    from ppl_vae.reports.label_pictures import completions, plot_completions

    x = torch.bernoulli(torch.full((2, 784), 0.3))
    cond = quadrant_split(Splits(x, x, x, image_shape=(1, 28, 28), binarize="static"), 1)
    cond = cond.cond["test"]
    shape = {"hidden": [16], "image_shape": (1, 28, 28)}
    grid = completions(build_cvae(784, 4, **shape), x, cond, draws=2)
    # the input column: hidden pixels gray (0.5); the given ones as they are
    cell = grid[0, 2:30, 2:30].reshape(-1)
    assert bool((cell[~given_mask(1)] == 0.5).all())
    for baseline, fill in ((False, "z ~ p(z | x_in)"), (True, "E[x_out | x_in]")):
        model = build_cvae(784, 4, baseline=baseline, **shape)
        title = plot_completions(model, x, cond, draws=2).axes[0].get_title()
        assert "Gray in the input: the quadrants hidden from the model" in title
        assert "fills in" in title and fill in title


def _baseline_and_pyro_cvae():
    torch.manual_seed(0)
    baseline = build_cvae(784, 4, baseline=True, hidden=[16])
    return baseline, build_cvae(784, 4, hidden=[16], variant="pyro", guess=baseline)


def test_pyro_variant_reads_the_frozen_guess_and_generates_from_z_alone():
    import pyro
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam

    from ppl_vae import build_guide
    from ppl_vae.guides.conditional import CondGuide

    baseline, model = _baseline_and_pyro_cvae()
    x = torch.bernoulli(torch.full((6, 784), 0.3))
    cond = quadrant_split(Splits(x, x, x, image_shape=(1, 28, 28), binarize="static"), 2)
    cond = cond.cond["train"]
    hidden = ~given_mask(2)
    guess = baseline.complete(cond)  # the baseline's mean in the hidden pixels, x_in elsewhere
    assert torch.equal(model.prior_input(cond), guess)
    assert model.generation_net[0].in_features == 4  # z alone
    assert not torch.equal(guess[:, hidden], cond[:, hidden])
    # the baseline's weights are buffers: no parameter, no Pyro param site, never trained
    assert not [n for n, _ in model.named_parameters() if n.startswith("guess")]
    frozen = {n: b.clone() for n, b in model.named_buffers() if n.startswith("guess")}
    assert len(frozen) == 4  # two linear layers' weights and biases
    guide = CondGuide(build_guide("diagonal", 2 * 784, 4, hidden=[16]))
    pyro.clear_param_store()
    svi = SVI(model, guide, Adam({"lr": 0.1}), Trace_ELBO())
    for _ in range(3):
        svi.step(x, cond=cond)
    assert not [n for n in pyro.get_param_store() if "guess" in n]
    assert all(torch.equal(b, frozen[n]) for n, b in model.named_buffers() if n in frozen)
    moved = model.prior_net[0].weight.detach().clone()
    svi.step(x, cond=cond)
    assert not torch.equal(moved, model.prior_net[0].weight)  # the prior network does train


def test_pyro_variant_needs_a_baseline():
    from ppl_vae.core.errors import InputError

    with pytest.raises(InputError, match="guess="):
        build_cvae(784, 4, hidden=[16], variant="pyro")


def test_pyro_variant_recipe_checks_its_baseline(tmp_path):
    from pathlib import Path

    from ppl_vae.core.errors import RecipeError, UnknownNameError
    from ppl_vae.layout import CHECKPOINT, RECIPE
    from ppl_vae.runs import recipe as config
    from ppl_vae.runs.build import check_recipe

    file = Path(__file__).resolve().parents[1] / "models" / "mnist_cvae_quadrants.toml"
    base = tmp_path / "base_q1"
    base.mkdir()
    config.save(config.load(file, ["model.options.baseline=true"]), base / RECIPE)
    (base / CHECKPOINT).touch()  # the check reads the recipe; the weights are read at build

    def check(*sets):
        check_recipe(config.load(file, ['model.options.variant="pyro"', *sets]), "r.toml")

    check(f'model.options.baseline_run="{base}"')  # a baseline of the same task: accepted
    with pytest.raises(RecipeError, match="baseline_run = ''.*train one first"):
        check()
    with pytest.raises(RecipeError, match="its data.given_quadrants is 1, this recipe needs 2"):
        check(f'model.options.baseline_run="{base}"', "data.given_quadrants=2")
    with pytest.raises(RecipeError, match="no latent and no variant"):
        check(f'model.options.baseline_run="{base}"', "model.options.baseline=true")
    with pytest.raises(UnknownNameError, match="Did you mean 'pyro'"):
        check('model.options.variant="pyr"')
