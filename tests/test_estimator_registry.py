"""The estimator registry: a toy estimator registered in one place is computed by ``evaluate``
and shows up in eval.json, eval.nc, scores.csv, the compare tables and the bound-vs-K figure,
with the values of the same estimator applied to the log weights drawn at the same seed.

Three toys cover the three ways an estimator reaches its log weights: ``max_log_w`` (streamed
by a running fold, with a summary row), ``median_log_w`` (per K, from each batch's kept
``[K, N]``) and ``exact_iwae`` (its own particles, from the exact posterior, as annealed
importance sampling would draw its own).
"""

import csv
import json
import math

import numpy as np
import pytest
import torch

from ppl_vae import LinearGaussian, build_guide
from ppl_vae.bounds import (
    ESTIMATORS,
    Estimator,
    Summary,
    batch_seed,
    evaluate,
    iwae,
    log_weights,
    mean_and_stderr,
    read_inference_data,
    register,
    unregister,
    write_results,
    write_scores,
)
from ppl_vae.guides import ExactPosterior
from ppl_vae.model import linear_vae
from ppl_vae.reports.tables import RunResult, comparison_table, from_bounds, write_comparison

KS, BATCH, SEED = [1, 5, 25], 20, 3
BUILT_IN = ["elbo", "iwae", "ess", "khat", "ais"]
DEFAULT = ["elbo", "iwae", "ess", "khat"]  # AIS is opt-in: computed only when asked for


class RunningMax:
    """The largest log weight so far, per data point."""

    def __init__(self, n, device):
        self.max = torch.full((n,), -math.inf, dtype=torch.float64, device=device)

    def add(self, part):
        self.max = torch.maximum(self.max, part.max(0).values)

    def value(self):
        return self.max


def max_log_w(log_w):
    return log_w.max(0).values.double()


def median_log_w(log_w):
    return log_w.median(0).values.double()


def _positive(v):
    return (v > 0).double()


@pytest.fixture(scope="module")
def lg():
    truth = LinearGaussian.random(x_dim=6, z_dim=2, seed=2, dtype=torch.float64)
    x = truth.sample(60, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    guide = build_guide("diagonal", 6, 2, hidden=[]).double()  # untrained: weights vary
    return truth, linear_vae(truth), guide, x


@pytest.fixture
def toys(lg):
    """Registers the three toys for one test; the registry is as it was afterwards."""
    truth = lg[0]

    def exact_particles(model, guide, x, k, chunk_size):
        return log_weights(model, ExactPosterior(truth), x, k, chunk_size)

    saved = dict(ESTIMATORS)
    summary = Summary("max_log_w_positive", _positive, "max log w > 0")
    register(
        Estimator("max_log_w", max_log_w, fold=RunningMax, title="max log w", summaries=(summary,))
    )
    register(Estimator("median_log_w", median_log_w, per_k=True, title="median log w"))
    register(Estimator("exact_iwae", iwae, source=exact_particles, title="exact", bound=True))
    yield
    ESTIMATORS.clear()
    ESTIMATORS.update(saved)
    assert list(ESTIMATORS) == BUILT_IN


def _materialized(model, guide, x):
    """The log weights ``[max K, N]`` that ``evaluate`` draws, batch by batch at its seeds."""
    parts = []
    for start in range(0, len(x), BATCH):
        with torch.random.fork_rng():
            torch.manual_seed(batch_seed(SEED, start))
            parts.append(log_weights(model, guide, x[start : start + BATCH], KS[-1], 7))
    return torch.cat(parts, 1)


def _evaluate(lg, **kw):
    _, model, guide, x = lg
    return evaluate(model, guide, x, KS, chunk_size=7, batch_size=BATCH, seed=SEED, **kw)


def test_a_registered_estimator_is_computed_and_written_everywhere(lg, toys, tmp_path):
    truth, model, guide, x = lg
    b = _evaluate(lg)
    log_w = _materialized(model, guide, x)
    assert list(b.values) == [*DEFAULT, "max_log_w", "median_log_w", "exact_iwae"]
    assert torch.equal(b.max_log_w, max_log_w(log_w))  # the fold equals the function
    assert b.median_log_w.shape == (60, 3)
    for i, k in enumerate(KS):
        assert torch.equal(b.median_log_w[:, i], median_log_w(log_w[:k]))
    assert torch.allclose(b.exact_iwae, truth.log_prob(x), atol=1e-6, rtol=0)
    # The built-ins are as without the toys: the toys' own particles come from their own seed.
    plain = _evaluate(lg, estimators=DEFAULT)
    for name in DEFAULT:
        assert torch.equal(b.values[name], plain.values[name]), name

    # eval.json and eval.nc.
    run = tmp_path / "run"
    run.mkdir()
    labels = torch.arange(60) % 3
    saved = write_results(run, b, {"seed": SEED}, labels)
    records = {
        (r["estimator"], r["k"]): r
        for r in json.loads((run / "eval.json").read_text())["estimates"]
    }
    assert records == {(r["estimator"], r["k"]): r for r in saved["estimates"]}
    expected = {
        ("max_log_w", 25): max_log_w(log_w),
        ("max_log_w_positive", 25): _positive(max_log_w(log_w)),
        ("exact_iwae", 25): b.exact_iwae,
        **{("median_log_w", k): median_log_w(log_w[:k]) for k in KS},
    }
    for key, values in expected.items():
        mean, se = mean_and_stderr(values)
        assert records[key]["mean"] == pytest.approx(mean, abs=1e-12), key
        assert records[key]["stderr"] == pytest.approx(se, abs=1e-12), key
    ds = read_inference_data(run)["bounds"]
    assert ds["max_log_w"].dims == ("datapoint",) and ds["median_log_w"].dims == ("datapoint", "k")
    np.testing.assert_array_equal(ds["max_log_w"].values, max_log_w(log_w).numpy())
    np.testing.assert_array_equal(
        ds["median_log_w"].sel(k=5).values, median_log_w(log_w[:5]).numpy()
    )

    # scores.csv: the toys' columns after the built-in ones, exact (repr) values.
    write_scores(run / "scores.csv", b, labels)
    rows = list(csv.DictReader(open(run / "scores.csv")))
    median_cols = [f"median_log_w_{k}" for k in KS]
    head = ["datapoint", "label", "log_p", "elbo", "iwae_1", "iwae_5", "iwae_25", "max_log_w"]
    assert list(rows[0]) == [*head, *median_cols, "exact_iwae"]
    assert [float(r["max_log_w"]) for r in rows] == max_log_w(log_w).tolist()
    assert [float(r["median_log_w_1"]) for r in rows] == median_log_w(log_w[:1]).tolist()

    # The compare tables, from the files on disk, beside a run evaluated without the toys
    # (as a run dir written before they were registered is).
    on_disk = RunResult("toy", "diagonal", "elbo", "gaussian", saved["estimates"], ds.load())
    old = from_bounds("old", plain, "diagonal", "elbo", "gaussian")
    paths = write_comparison([on_disk, old], tmp_path / "report")
    table = list(csv.DictReader(open(paths["csv"])))
    toy_cols = ["max_log_w", "max_log_w_se", "max_log_w_positive"]  # a summary follows its own
    toy_cols += [c for k in KS for c in (f"median_log_w_{k}", f"median_log_w_{k}_se")]
    toy_cols += ["exact_iwae", "exact_iwae_se"]
    # then the two columns on whether each evaluation is current
    assert list(table[0])[-len(toy_cols) - 3 :] == ["khat_above_0.7", *toy_cols, "current", "note"]
    assert float(table[0]["max_log_w"]) == records["max_log_w", 25]["mean"]
    assert float(table[0]["max_log_w_se"]) == records["max_log_w", 25]["stderr"]
    assert float(table[0]["median_log_w_5"]) == records["median_log_w", 5]["mean"]
    assert float(table[0]["max_log_w_positive"]) == records["max_log_w_positive", 25]["mean"]
    assert all(math.isnan(float(table[1][c])) for c in toy_cols)
    assert comparison_table([on_disk, old])[0]["exact_iwae"] == records["exact_iwae", 25]["mean"]
    md = [[c.strip() for c in line.strip("|").split("|")] for line in paths["markdown"].open()]
    head = md[0]
    for title in ("max log w (K=25)", "median log w_5", "exact (K=25)", "max log w > 0"):
        assert title in head, title
    toy = dict(zip(head, md[2], strict=True))
    mean, se = records["max_log_w", 25]["mean"], records["max_log_w", 25]["stderr"]
    assert toy["max log w (K=25)"] == f"{mean:.2f} ± {se:.2f}"
    assert toy["max log w > 0"] == f"{records['max_log_w_positive', 25]['mean']:.1%}"
    assert dict(zip(head, md[3], strict=True))["max log w (K=25)"] == ""

    # The bound-vs-K figure draws the registered estimator of log p(x).
    from ppl_vae.reports.plots import plot_bound_vs_k

    fig = plot_bound_vs_k([on_disk, old])
    assert fig.axes[0].get_title() == "IWAE_K (solid), ELBO (dashed), exact (dash-dot)"


def test_estimators_needing_more_particles_are_skipped_unless_asked_for(lg, toys):
    register(Estimator("tail", max_log_w, min_particles=30))
    assert _evaluate(lg).tail is None  # K_max = 25: not asked for, skipped
    with pytest.raises(ValueError, match="tail needs at least 30 particles.*largest K is 25"):
        _evaluate(lg, estimators=["elbo", "tail"])
    only = _evaluate(lg, estimators=["elbo", "max_log_w"])
    assert list(only.values) == ["elbo", "max_log_w"] and only.iwae is None
    with pytest.raises(KeyError, match="unknown estimator 'max_log'.*max_log_w"):
        _evaluate(lg, estimators=["max_log"])


def test_register_refuses_names_that_would_clash(toys):
    with pytest.raises(ValueError, match="column 'elbo' is taken by estimator 'elbo'"):
        register(Estimator("elbo", max_log_w))
    with pytest.raises(ValueError, match="column 'iwae_5' is taken by estimator 'iwae'"):
        register(Estimator("iwae_5", max_log_w))
    with pytest.raises(ValueError, match="column 'max_log_w_positive' is taken"):
        register(Estimator("max_log_w_positive", max_log_w))
    with pytest.raises(ValueError, match="reserved"):
        Estimator("log_p", max_log_w)
    with pytest.raises(ValueError, match="not both"):
        Estimator("both", max_log_w, fold=RunningMax, source=lambda *a: None)
    replaced = register(Estimator("elbo", max_log_w), replace=True)
    assert ESTIMATORS["elbo"] is replaced and list(ESTIMATORS)[0] == "elbo"
    assert unregister("median_log_w").per_k and "median_log_w" not in ESTIMATORS
    with pytest.raises(KeyError, match="no estimator 'median_log_w'"):
        unregister("median_log_w")


def test_every_estimator_passes_check_estimator(toys):
    """The contract kit users run on their own estimators (``ppl_vae.testing``), on every entry
    of the registry: the built-in ones and the toys registered above."""
    from ppl_vae.testing import check_estimator

    for estimator in ESTIMATORS.values():
        report = check_estimator(estimator)
        assert {"wrong shapes", "not pure", "depends on particle order"} <= set(report.passed)
        if estimator.bound:
            assert "not exact at equal weights" in report.passed, estimator.name
