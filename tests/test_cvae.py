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
