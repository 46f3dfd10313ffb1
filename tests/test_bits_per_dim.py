"""Bits per dimension beside every bound of a model with a discrete likelihood: the records of
``evaluate`` and ``eval.json``, the table ``ppl-vae evaluate`` prints and the ``compare`` tables;
and nothing new anywhere for the other likelihoods (their files stay byte for byte the same,
``test_outputs_unchanged.py``)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import pytest
import torch
from _smoke import MODELS, SMOKE

import ppl_vae as pv
from ppl_vae.bounds import format_table
from ppl_vae.bounds.bits import bits_per_dim, bpd_dims, with_bpd
from ppl_vae.cli import main
from ppl_vae.reports.tables import comparison_table, from_bounds, to_csv, to_markdown

LN2 = math.log(2)


def _eight_bit(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, d), generator=g).float() / 255


def _pair(likelihood: str, d: int = 12):
    model = pv.build_model(d, 2, likelihood=likelihood, hidden=[8])
    return model, pv.build_guide("diagonal", d, 2, hidden=[8])


def test_bits_per_dim_is_nats_over_d_log_2():
    assert bits_per_dim(-784 * LN2 * 3.5, 784) == pytest.approx(3.5, rel=1e-15)
    record = {"estimator": "iwae", "k": 10, "mean": -100.0, "stderr": 2.0, "n": 5}
    assert with_bpd(record, None) is record  # untouched: the same keys, in the same order
    out = with_bpd(record, 50)
    assert list(out) == [*record, "bpd", "bpd_stderr"]
    assert out["bpd"] == 100 / (50 * LN2) and out["bpd_stderr"] == 2 / (50 * LN2)


def test_only_a_discrete_likelihood_gives_dims():
    x = _eight_bit(4, 12)
    assert bpd_dims(_pair("discretized_logistic")[0], x) == 12
    assert bpd_dims(_pair("discretized_logistic_mixture")[0], x) == 12
    for name in ("gaussian", "bernoulli", "continuous_bernoulli"):
        assert bpd_dims(_pair(name)[0], x) is None
    assert bpd_dims(lambda x: None, x) is None  # a hand-written model without a likelihood


def test_the_records_of_the_bounds_carry_bpd():
    x = _eight_bit(30, 12)
    model, guide = _pair("discretized_logistic_mixture")
    bounds = pv.evaluate(model, guide, x, ks=[1, 5, 25], batch_size=10)
    assert bounds.bpd_dims == 12
    for r in bounds.estimates():
        if r["estimator"] in ("elbo", "iwae"):
            assert r["bpd"] == -r["mean"] / (12 * LN2)
            assert r["bpd_stderr"] == r["stderr"] / (12 * LN2) and r["bpd_stderr"] > 0
        else:  # ESS, k-hat: not estimates of log p(x)
            assert "bpd" not in r and "bpd_stderr" not in r
    table = format_table(bounds.estimates())
    assert table.splitlines()[0].split()[-2:] == ["bits/dim", "stderr"]
    iwae = next(r for r in bounds.estimates() if r["estimator"] == "iwae" and r["k"] == 25)
    assert f"{iwae['bpd']:.4f}" in table


def test_other_likelihoods_keep_their_records_and_table():
    x = torch.rand(20, 12)
    model, guide = _pair("gaussian")
    bounds = pv.evaluate(model, guide, x, ks=[1, 5], batch_size=10)
    assert bounds.bpd_dims is None
    assert all(list(r) == ["estimator", "k", "mean", "stderr", "n"] for r in bounds.estimates())
    lines = format_table(bounds.estimates()).splitlines()
    assert lines[0] == f"{'estimator':<16}{'K':>7}{'mean':>14}{'stderr':>10}{'n':>8}"
    assert all(len(line) == len(lines[0]) for line in lines)


def test_compare_tables_get_a_bpd_column_only_with_a_discrete_run():
    x8, xg = _eight_bit(20, 12), torch.rand(20, 12)
    m8, g8 = _pair("discretized_logistic")
    mg, gg = _pair("gaussian")
    b8 = pv.evaluate(m8, g8, x8, ks=[1, 10], batch_size=10, khat=False)
    bg = pv.evaluate(mg, gg, xg, ks=[1, 10], batch_size=10, khat=False)
    r8 = from_bounds("eight", b8, likelihood="discretized_logistic")
    rg = from_bounds("gray", bg, likelihood="gaussian")
    plain = comparison_table([rg])
    assert not any(k.startswith("bpd") for k in plain[0])
    rows = comparison_table([r8, rg])
    iwae = next(r for r in b8.estimates() if r["estimator"] == "iwae" and r["k"] == 10)
    assert (rows[0]["bpd"], rows[0]["bpd_se"]) == (iwae["bpd"], iwae["bpd_stderr"])
    assert math.isnan(rows[1]["bpd"]) and math.isnan(rows[1]["bpd_se"])
    assert "ais_bpd" not in rows[0]
    md = to_markdown(rows)
    head = md.splitlines()[0]
    assert head.rstrip(" |").endswith("bits/dim (K=10)")
    assert f"{iwae['bpd']:.2f} ± {iwae['bpd_stderr']:.2f}" in md.splitlines()[2]
    assert to_csv(rows).splitlines()[0].endswith("bpd,bpd_se,current,note")  # then currency


@pytest.fixture(scope="module")
def eight_bit_run(tmp_path_factory):
    if not (Path(os.environ["PPL_VAE_DATA"]) / "MNIST" / "raw").is_dir():
        pytest.skip("real datasets not found; set PPL_VAE_DATA")
    out = tmp_path_factory.mktemp("runs") / "mnist_8bit"
    assert main(["train", str(MODELS / "mnist_8bit_logistic.toml"), "--out", str(out), *SMOKE]) == 0
    return out


def test_evaluate_and_compare_show_bits_per_dim(eight_bit_run, tmp_path, capsys):
    args = ["--k", "1", "5", "--subset", "20", "--no-khat", "--no-progress"]
    assert main(["evaluate", str(eight_bit_run), *args]) == 0
    printed = capsys.readouterr().out
    assert "bits/dim" in printed.splitlines()[0]
    saved = json.loads((eight_bit_run / "eval.json").read_text())
    iwae = next(r for r in saved["estimates"] if r["estimator"] == "iwae" and r["k"] == 5)
    assert iwae["bpd"] == pytest.approx(-iwae["mean"] / (784 * LN2), rel=1e-12)
    assert f"{iwae['bpd']:.4f}" in printed
    assert main(["compare", str(eight_bit_run), "--out", str(tmp_path / "cmp")]) == 0
    capsys.readouterr()
    row = next(csv.DictReader(open(tmp_path / "cmp" / "compare.csv")))
    assert float(row["bpd"]) == iwae["bpd"] and float(row["bpd_se"]) == iwae["bpd_stderr"]
