"""The one-pass data checks and the allocator setting."""

from __future__ import annotations

import platform

import pytest
import torch

from ppl_vae._malloc import keep_freed_memory
from ppl_vae.model.checks import DataError, check_finite
from ppl_vae.model.likelihoods import build_likelihood


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("at", [0, 4321, -1])
def test_check_finite_finds_one_bad_value_anywhere(dtype, bad, at):
    x = torch.rand(100, 784).to(dtype)
    check_finite(x)
    x.view(-1)[at] = bad
    with pytest.raises(DataError, match="NaN|Inf"):
        check_finite(x)


@pytest.mark.parametrize("bad", [0.999, 1e-30, 2.0, -1.0])
def test_bernoulli_check_finds_one_non_binary_value(bad):
    lik = build_likelihood("bernoulli", 784)
    x = torch.bernoulli(torch.full((50, 784), 0.3))
    lik.check(x)
    x[49, 783] = bad
    with pytest.raises(DataError, match="binary data"):
        lik.check(x)


def test_keep_freed_memory_applies_under_glibc():
    applied = keep_freed_memory()
    assert isinstance(applied, bool)
    if platform.libc_ver()[0] == "glibc":
        assert applied
