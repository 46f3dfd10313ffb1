"""Reports from tiny runs: ``ppl-vae compare`` tables against eval.json and the per-data-point
scores, the figures it writes, ``ppl-vae sample`` pictures, and AUROC of anomaly scores."""

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ppl_vae import LinearGaussian, build_guide
from ppl_vae.bounds import evaluate
from ppl_vae.cli import main
from ppl_vae.guides import ExactPosterior
from ppl_vae.model import linear_vae
from ppl_vae.reports import comparison_table, from_bounds, to_markdown
from ppl_vae.reports.anomaly import auroc, read_scores, separation, write_scores
from ppl_vae.reports.pictures import (
    interpolations,
    latent_2d,
    prior_samples,
    reconstructions,
    show_grid,
)

MODELS = Path(__file__).resolve().parents[1] / "models"
KS = [1, 10, 50]
QUIET = ["--no-progress"]


def _png(path: Path) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size > 0, path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two linear-Gaussian runs trained differently, evaluated on 120 test points."""
    root = tmp_path_factory.mktemp("runs")
    settings = {"well": ["train.epochs=2"], "poor": ["train.epochs=1", "train.lr=0.001"]}
    for name, sets in settings.items():
        sets = [a for s in [*sets, "data.subset=300"] for a in ("--set", s)]
        assert (
            main(
                [
                    "train",
                    str(MODELS / "linear_gaussian.toml"),
                    "--out",
                    str(root / name),
                    *sets,
                    *QUIET,
                ]
            )
            == 0
        )
        k = [str(k) for k in KS]
        assert (
            main(
                [
                    "evaluate",
                    str(root / name),
                    "--k",
                    *k,
                    "--subset",
                    "120",
                    "--batch-size",
                    "50",
                    "--chunk-size",
                    "25",
                    "--per-datapoint",
                    *QUIET,
                ]
            )
            == 0
        )
    return [root / name for name in settings]


def test_compare_table_matches_eval_json(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "compare.csv")))
    expected = ["run", "guide", "objective", "likelihood", "n", "k_max", "elbo", "elbo_se"]
    expected += [c for k in KS for c in (f"iwae_{k}", f"iwae_{k}_se")]
    expected += [c for k in KS for c in (f"gap_{k}", f"gap_{k}_se")]
    expected += ["ess", "khat_above_0.7", "current", "note"]
    assert list(rows[0]) == expected
    assert [r["run"] for r in rows] == ["well", "poor"]
    for row, run in zip(rows, runs, strict=True):
        assert (row["guide"], row["objective"], row["likelihood"]) == (
            "diagonal",
            "elbo",
            "gaussian",
        )
        saved = {
            (e["estimator"], e["k"]): e
            for e in json.loads((run / "eval.json").read_text())["estimates"]
        }
        assert int(row["n"]) == 120 and int(row["k_max"]) == 50
        # The CSV writes floats with repr, so they must equal eval.json exactly.
        assert float(row["elbo"]) == saved["elbo", 50]["mean"]
        assert float(row["elbo_se"]) == saved["elbo", 50]["stderr"]
        for k in KS:
            assert float(row[f"iwae_{k}"]) == saved["iwae", k]["mean"]
            assert float(row[f"iwae_{k}_se"]) == saved["iwae", k]["stderr"]
        assert float(row["ess"]) == saved["ess", 50]["mean"]
        assert float(row["khat_above_0.7"]) == saved["khat_above_0.7", 50]["mean"]
        # The gap and its paired standard error, recomputed from scores.csv (a second path).
        elbo = read_scores(run / "scores.csv", "elbo")
        for k in KS:
            gap = read_scores(run / "scores.csv", f"iwae_{k}") - elbo
            assert float(row[f"gap_{k}"]) == pytest.approx(gap.mean(), abs=1e-9)
            se = gap.std(ddof=1) / math.sqrt(len(gap))
            assert float(row[f"gap_{k}_se"]) == pytest.approx(se, rel=1e-9)
        assert float(row["gap_50"]) == pytest.approx(
            saved["iwae", 50]["mean"] - saved["elbo", 50]["mean"], abs=1e-9
        )
    md = (out / "compare.md").read_text()
    assert md in printed
    lines = md.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| run | guide | objective | likelihood | N")
    assert "IWAE_50" in lines[0] and "gap_10" in lines[0] and "k-hat > 0.7" in lines[0]
    well = lines[2].split(" | ")
    assert well[0] == "| well" and well[5].startswith(f"{float(rows[0]['elbo']):.2f} ± ")
    for name in ("bound_vs_k", "khat", "gap", "training_curves"):
        w, h = _png(out / f"{name}.png")
        assert w > 200 and h > 200
    assert _png(out / "khat.png")[1] > _png(out / "gap.png")[1]  # one row of panels per run


def test_compare_refuses_runs_without_evaluation(runs, tmp_path, capsys):
    bare = tmp_path / "bare"
    assert (
        main(
            [
                "train",
                str(MODELS / "linear_gaussian.toml"),
                "--out",
                str(bare),
                "--set",
                "train.max_steps=2",
                "--set",
                "data.subset=100",
                *QUIET,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["compare", str(runs[0]), str(bare), "--out", str(tmp_path / "r")]) == 2
    assert f"ppl-vae evaluate {bare}" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing")]) == 2


def test_per_datapoint_scores_match_netcdf(runs):
    import arviz as az

    ds = az.from_netcdf(runs[0] / "eval.nc")["bounds"]
    rows = list(csv.DictReader(line for line in open(runs[0] / "scores.csv") if line[0] != "#"))
    assert list(rows[0]) == ["datapoint", "log_p", "elbo", "iwae_1", "iwae_10", "iwae_50"]
    assert len(rows) == 120
    np.testing.assert_array_equal(read_scores(runs[0] / "scores.csv"), ds["iwae"].sel(k=50).values)
    np.testing.assert_array_equal(read_scores(runs[0] / "scores.csv", "elbo"), ds["elbo"].values)
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_scores(runs[0] / "scores.csv", "nope")


def test_table_with_the_exact_posterior_has_no_gap():
    """With q(z|x) = p(z|x) every log weight is log p(x): IWAE_K = ELBO = the exact mean,
    the gap is 0 and ESS = K (float64, so to rounding)."""
    truth = LinearGaussian.random(x_dim=6, z_dim=2, seed=3, dtype=torch.float64)
    x = truth.sample(40, torch.Generator().manual_seed(0))
    exact = truth.log_prob(x).mean().item()
    model, guide = linear_vae(truth), ExactPosterior(truth)
    a = from_bounds(
        "exact", evaluate(model, guide, x, [1, 10, 30], chunk_size=10, khat=False), "exact"
    )
    b = from_bounds("short", evaluate(model, guide, x, [1, 5], khat=False), "exact")
    rows = comparison_table([a, b])
    for k in (1, 10, 30):
        assert rows[0][f"iwae_{k}"] == pytest.approx(exact, abs=1e-8)
        assert rows[0][f"gap_{k}"] == pytest.approx(0.0, abs=1e-8)
    assert rows[0]["ess"] == pytest.approx(30, rel=1e-8)
    assert rows[1]["ess"] == pytest.approx(5, rel=1e-8)
    assert math.isnan(rows[1]["iwae_30"]) and math.isnan(rows[1]["gap_10"])
    assert rows[1]["iwae_5"] == pytest.approx(exact, abs=1e-8) and math.isnan(rows[0]["iwae_5"])
    md = to_markdown(rows).splitlines()
    assert "(K_max)" in md[0]  # the runs reach different K
    cells = md[3].split(" | ")
    assert cells[md[0].split(" | ").index("IWAE_30")] == ""
    with pytest.raises(ValueError, match="at least one run"):
        comparison_table([])


def _brute_auroc(s_in, s_out):
    greater = (s_out[:, None] > s_in[None, :]).mean()
    equal = (s_out[:, None] == s_in[None, :]).mean()
    return greater + equal / 2


def test_auroc_against_pairwise_counts():
    g = np.random.default_rng(0)
    for n_in, n_out in ((1, 1), (7, 3), (50, 80)):
        s_in = g.integers(0, 6, n_in).astype(float)  # many ties
        s_out = g.integers(2, 9, n_out).astype(float)
        assert auroc(s_in, s_out) == pytest.approx(_brute_auroc(s_in, s_out), abs=1e-12)
    a = np.arange(5.0)
    assert auroc(a, a + 10) == 1.0 and auroc(a + 10, a) == 0.0 and auroc(a, a) == 0.5
    res = separation(log_p_in=-a, log_p_out=-a - 10)
    assert res["auroc"] == 1.0 and res["mean_log_p_out"] == -12.0
    with pytest.raises(ValueError, match="at least one"):
        auroc([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan], [1.0])


def test_write_scores_round_trip(tmp_path):
    truth = LinearGaussian.random(x_dim=4, z_dim=2, seed=1, dtype=torch.float64)
    x = truth.sample(12, torch.Generator().manual_seed(0))
    guide = build_guide("diagonal", 4, 2, hidden=[]).double()
    b = evaluate(linear_vae(truth), guide, x, [1, 7], khat=False)
    path = write_scores(tmp_path / "s.csv", b, torch.arange(12) % 3)
    rows = list(csv.DictReader(open(path)))
    assert [int(r["label"]) for r in rows] == [i % 3 for i in range(12)]
    np.testing.assert_array_equal(read_scores(path), b.iwae[:, -1].numpy())
    np.testing.assert_array_equal(read_scores(path, "iwae_1"), b.iwae[:, 0].numpy())


def test_latent_2d_is_identity_in_2d_and_pca_otherwise():
    torch.manual_seed(0)
    x = torch.randn(300, 10)
    g2 = build_guide("diagonal", 10, 2, hidden=[16])
    z2, names = latent_2d(g2, x)
    assert names == ("z_1", "z_2")
    torch.testing.assert_close(z2, g2.distribution(x).mean.double())
    g5 = build_guide("diagonal", 10, 5, hidden=[16])
    p, names = latent_2d(g5, x)
    assert names[0].startswith("PC 1")
    z = g5.distribution(x).mean.double()
    top = torch.linalg.eigvalsh(torch.cov(z.T)).flip(0)[:2]
    cov = torch.cov(p.T)
    torch.testing.assert_close(cov.diagonal(), top, rtol=1e-6, atol=1e-9)
    assert abs(cov[0, 1].item()) < 1e-9 * top[0].item()


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    if not (Path(os.environ["PPL_VAE_DATA"]) / "MNIST" / "raw").is_dir():
        pytest.skip("real datasets not found; set PPL_VAE_DATA")
    out = tmp_path_factory.mktemp("mnist") / "run"
    assert (
        main(
            [
                "train",
                str(MODELS / "mnist_bernoulli_mlp.toml"),
                "--out",
                str(out),
                "--set",
                "train.max_steps=3",
                "--set",
                "data.subset=200",
                "--set",
                "train.batch_size=50",
                *QUIET,
            ]
        )
        == 0
    )
    return out


def test_sample_writes_pictures(mnist_run, tmp_path, capsys):
    out = tmp_path / "pics"
    assert main(["sample", str(mnist_run), "--out", str(out), "--n", "16", "--subset", "100"]) == 0
    paths = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(paths) == {
        "samples",
        "reconstructions",
        "interpolations",
        "latent",
        "training_curves",
    }
    tile = 28 + 2  # each image plus its padding
    grids = {
        "samples": (4 * tile + 2,) * 2,  # 16 samples, 4 per row
        "reconstructions": (8 * tile + 2, 2 * tile + 2),  # 8 in, 8 out
        "interpolations": (10 * tile + 2, 8 * tile + 2),  # 8 pairs x 10
    }
    for name, (w, h) in grids.items():
        width, height = _png(out / f"{name}.png")
        # The grid enlarged by a whole factor of 2 to 4, plus a title and labels around it.
        assert 2 * w <= width <= 4 * w + 200 and 2 * h + 20 <= height <= 4 * h + 100, name
    for name in ("latent", "training_curves"):
        assert min(_png(out / f"{name}.png")) > 200


def test_grids_put_the_inputs_where_they_belong(mnist_run):
    from ppl_vae import load_run

    run = load_run(mnist_run)
    x = run.data.test[:6]
    grid = reconstructions(run.model, run.guide, x, nrow=3)  # rows: in, out, in, out
    tile = lambda g, r, c: g[0, 2 + 30 * r : 30 * (r + 1), 2 + 30 * c : 30 * (c + 1)]
    for i in range(6):
        r, c = 2 * (i // 3), i % 3
        torch.testing.assert_close(tile(grid, r, c), x[i].reshape(28, 28))
    recon = run.model.likelihood(run.model.decoder(run.guide.distribution(x).mean)).mean
    torch.testing.assert_close(tile(grid, 1, 0), recon[0].reshape(28, 28).detach())
    grid = interpolations(run.model, run.guide, x[:2], x[2:4], steps=5)
    torch.testing.assert_close(tile(grid, 1, 0), x[1].reshape(28, 28))
    torch.testing.assert_close(tile(grid, 1, 6), x[3].reshape(28, 28))
    assert prior_samples(run.model, 16).shape == (3, 4 * 30 + 2, 4 * 30 + 2)  # 4 per row


def test_pictures_say_what_their_rows_and_columns_are(mnist_run):
    from ppl_vae import load_run

    run = load_run(mnist_run)
    x = run.data.test[:4]
    grid = reconstructions(run.model, run.guide, x, nrow=2)
    fig = show_grid(grid, "recon", rows=["input", "reconstruction"] * 2, groups=2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["input", "reconstruction"] * 2
    centres = ax.get_yticks()  # the middle of each row of images
    np.testing.assert_allclose(centres, [1 + 30 * (r + 0.5) for r in range(4)])
    assert ax.get_title() == "recon"
    cols = ["x_a", "t = 0", "t = 1", "x_b"]
    fig = show_grid(interpolations(run.model, run.guide, x[:1], x[1:2], 2), "interp", cols=cols)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == cols


def test_sample_refuses_vector_data(runs, capsys):
    assert main(["sample", str(runs[0]), "--out", str(runs[0] / "p")]) == 2
    assert "image" in capsys.readouterr().err


def test_evaluate_another_dataset_keeps_the_runs_own_results(mnist_run, capsys):
    common = ["--k", "1", "5", "--no-khat", "--subset", "30", "--per-datapoint", *QUIET]
    assert main(["evaluate", str(mnist_run), *common]) == 0
    own = (mnist_run / "eval.json").read_text()
    assert main(["evaluate", str(mnist_run), "--dataset", "fashion_mnist", *common]) == 0
    assert (mnist_run / "eval.json").read_text() == own
    other = mnist_run / "eval_fashion_mnist"
    assert json.loads((other / "eval.json").read_text())["dataset"] == "fashion_mnist"
    rows = list(csv.DictReader(line for line in open(other / "scores.csv") if line[0] != "#"))
    assert len(rows) == 30 and list(rows[0])[:3] == ["datapoint", "label", "log_p"]
    fashion_labels = [9, 2, 1, 1, 6]  # the first FashionMNIST test labels
    assert [int(r["label"]) for r in rows[:5]] == fashion_labels
    capsys.readouterr()


def test_labels_and_legends_do_not_repeat_themselves():
    from ppl_vae.reports import RunResult
    from ppl_vae.reports.plots import plot_training_curves

    label = lambda *parts: RunResult(*parts, estimates=[]).label
    assert label("diagonal", "diagonal", "elbo", "bernoulli") == "diagonal (elbo, bernoulli)"
    assert label("mnist_z20", "diagonal", "elbo", "bernoulli") == (
        "mnist_z20 (diagonal, elbo, bernoulli)"
    )
    assert label("exact posterior", "exact", "-", "gaussian") == "exact posterior (gaussian)"
    assert label("quickstart", "?", "?", "?") == "quickstart"
    # 8 runs of 3 epochs: one legend entry per line style and one per run, integer epochs.
    rows = [{"epoch": float(e), "train_elbo": -e, "valid_elbo": -e - 1.0} for e in (1, 2, 3)]
    fig = plot_training_curves({f"run {i}": rows for i in range(8)})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"run {i}" for i in range(8)]
    assert all(t == int(t) for t in ax.get_xticks())


def _tick_texts(axis) -> list[str]:
    axis.figure.canvas.draw()
    return [t.get_text() for t in axis.get_majorticklabels() + axis.get_minorticklabels()]


def test_bdmc_picture_says_its_steps_and_what_it_plots():
    from matplotlib.ticker import NullLocator

    from ppl_vae.reports.sandwich import plot_sandwich

    g = np.random.default_rng(0)
    rows = [
        {
            "steps": t,
            "lower": (g.normal(size=6) - 1 / t).tolist(),
            "upper": g.normal(size=6).tolist(),
        }
        for t in (3, 2, 10)
    ]
    fig = plot_sandwich(rows)
    ax, gap_ax = fig.axes[:2]
    # the step counts run, as plain integers: no "2x10^0" minor labels of a log axis
    assert [t for t in _tick_texts(gap_ax.xaxis) if t] == ["2", "3", "10"]
    assert isinstance(gap_ax.xaxis.get_minor_locator(), NullLocator)
    label = ax.get_ylabel()
    assert "midpoint of forward" in label and "reverse AIS at T = 10" in label
    assert "final midpoint" not in label


def test_k_axis_has_plain_integer_ticks():
    from ppl_vae.reports.figures import figure, k_axis

    fig, ((ax,),) = figure()
    ax.plot([1, 2, 3, 5], [0, 1, 2, 3])
    k_axis(ax, [1, 2, 3, 5])
    texts = [t for t in _tick_texts(ax.xaxis) if t]
    assert texts == ["1", "2", "3", "5"] and not any("10^" in t or "times" in t for t in texts)


def test_khat_histogram_counts_whole_data_points():
    import xarray as xr
    from matplotlib.ticker import MaxNLocator

    from ppl_vae.reports import RunResult
    from ppl_vae.reports.plots import plot_khat

    khat = xr.DataArray([0.1, 0.3, 0.45, 0.6, 0.8], dims=["datapoint"], name="khat")
    res = RunResult(
        "few", "diagonal", "elbo", "bernoulli",
        estimates=[{"estimator": "elbo", "k": 50, "mean": -1.0, "stderr": 0.1, "n": 5}],
        per_datapoint=xr.Dataset({"khat": khat}),
    )  # fmt: skip
    hist = plot_khat([res]).axes[0]
    locator = hist.yaxis.get_major_locator()
    assert isinstance(locator, MaxNLocator) and locator._integer
    hist.figure.canvas.draw()
    assert all(float(t) == int(t) for t in hist.get_yticks())  # 5 points: counts 0, 1, 2


def test_short_training_curves_have_markers_and_long_ones_do_not():
    from ppl_vae.reports.plots import FEW_POINTS, plot_training_curves

    one = [{"epoch": 1.0, "train_elbo": -100.0, "valid_elbo": -101.0}]
    fig = plot_training_curves({"quick": one})
    ax = fig.axes[0]
    assert "one epoch" in ax.get_title()
    assert all(line.get_marker() not in ("", "None", None) for line in ax.get_lines())
    assert all(h.get_marker() not in ("", "None") for h in ax.get_legend().legend_handles)
    n = FEW_POINTS + 5
    long = [{"epoch": float(e), "train_elbo": -e, "valid_elbo": -e - 1.0} for e in range(1, n)]
    ax = plot_training_curves({"long": long}).axes[0]
    assert "one epoch" not in ax.get_title()
    assert all(line.get_marker() in ("", "None") for line in ax.get_lines())


def test_latent_markers_grow_when_there_are_few_points():
    from ppl_vae.reports.plots import plot_latent

    g = np.random.default_rng(0)
    sizes = {}
    for n in (200, 10_000):
        fig = plot_latent(g.normal(size=(n, 2)), g.integers(0, 3, n))
        sizes[n] = fig.axes[0].collections[0].get_sizes()[0]
        # the legend's dots do not shrink with the points
        assert all(h.get_sizes()[0] >= 20 for h in fig.legends[0].legend_handles)
    assert sizes[200] >= 15 > 5 >= sizes[10_000] >= 2
