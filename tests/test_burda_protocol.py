"""The pieces of Burda et al.'s training protocol, each as a recipe option any recipe can use.

- The ``burda`` schedule: stage i lasts 3^i epochs at 1e-3 * 10^(-i/7), rounded to two digits
  as the paper's code rounds it; 3,280 epochs in all.
- ``adam_iwae``: the update of yburda/iwae's ``optimizers.py`` written out by hand here (a
  second code path), and torch's Adam one step behind it when v starts at 0 and eps is 0.
- The settings in a recipe reach the torch optimizer that trained the run (its checkpoint).
- ``model.output_bias = "logit_mean"``: the decoder's output bias is logit(training mean).
- A truncated 2-stage run stopped mid-stage and resumed equals the run that never stopped.
- Active units count the units a guide was built without (dead by construction).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from _smoke import MODELS

from ppl_vae.core.errors import InputError, RecipeError, UserError
from ppl_vae.guides.hierarchical import BottomUpGaussian
from ppl_vae.layout import CHECKPOINT
from ppl_vae.model.hierarchical import build_hierarchical
from ppl_vae.model.output_bias import init_output_bias
from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import build_data, build_parts, check_recipe
from ppl_vae.storage import load_checkpoint
from ppl_vae.training.optimizers import IWAEAdam
from ppl_vae.training.schedule import Stages, build_schedule
from ppl_vae.training.svi import fit

PAPER_RATES = [1e-3, 7.2e-4, 5.2e-4, 3.7e-4, 2.7e-4, 1.9e-4, 1.4e-4, 1e-4]


def test_burda_schedule_stage_lengths_and_rates():
    s = build_schedule("burda", 1e-3)
    assert s.lengths() == [1, 3, 9, 27, 81, 243, 729, 2187] and s.epochs == 3280
    starts = [sum(s.lengths()[:i]) for i in range(8)]
    assert [s(e) for e in starts] == pytest.approx(PAPER_RATES, rel=1e-12)
    assert [s(e - 1) for e in starts[1:]] == pytest.approx(PAPER_RATES[:-1], rel=1e-12)
    assert s(3279) == s(10**6) == pytest.approx(1e-4)  # the last stage's rate goes on
    exact = Stages(1e-3, digits=0)  # unrounded: 1e-3 * 10^(-i/7)
    assert [exact.rate(i) for i in range(8)] == pytest.approx(
        [1e-3 * 10 ** (-i / 7) for i in range(8)]
    )
    assert build_schedule("constant", 0.01)(123) == 0.01
    with pytest.raises(UserError, match="stages"):
        build_schedule("burda", 1e-3, stagez=2)


def _reference_adam(grads, lr, b1, b2, eps, theta):
    """yburda/iwae's Adam, transcribed: m = 0, v = 1, t = 1; each update reads the old m, v, t,
    then m, v and t move (the Theano updates are simultaneous). Descent on the loss."""
    m, v, t = torch.zeros_like(theta), torch.ones_like(theta), 1.0
    path = []
    for g in grads:
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        theta = theta - alpha * m / (v.sqrt() + eps)
        m, v, t = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g, t + 1
        path.append(theta)
    return path


def _run(opt_cls, grads, theta, **kw):
    p = torch.nn.Parameter(theta.clone())
    opt = opt_cls([p], **kw)
    path = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        path.append(p.detach().clone())
    return path


def test_iwae_adam_is_the_paper_update():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(5, dtype=torch.float64, generator=g)
    grads = [3 * torch.randn(5, dtype=torch.float64, generator=g) for _ in range(6)]
    ours = _run(IWAEAdam, grads, theta, lr=1e-2, betas=(0.99, 0.999), eps=1e-4)
    ref = _reference_adam(grads, 1e-2, 0.99, 0.999, 1e-4, theta)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-15)
    assert torch.equal(ours[0], theta)  # the first step moves nothing (m starts at 0)
    # With v starting at 0 and no eps, each step is torch's Adam step from the same moments,
    # one gradient behind, but bias-corrected with t one larger (the code's t starts at 1): the
    # displacement of step s is torch's of step s - 1 times c_s (an eps of 1e-300 only turns
    # the first step's 0 / 0 into 0).
    b1, b2 = 0.9, 0.99
    lagged = _run(IWAEAdam, grads, theta, lr=1e-2, betas=(b1, b2), eps=1e-300, v_init=0.0)
    torch_adam = _run(torch.optim.Adam, grads, theta, lr=1e-2, betas=(b1, b2), eps=0.0)
    ours, theirs = [theta, *lagged], [theta, *torch_adam]

    def size(t: int) -> float:
        return math.sqrt(1 - b2**t) / (1 - b1**t)

    for s in range(2, len(grads) + 1):
        c = size(s) / size(s - 1)
        step, torch_step = ours[s] - ours[s - 1], theirs[s - 1] - theirs[s - 2]
        torch.testing.assert_close(step, c * torch_step, rtol=1e-10, atol=1e-14)


PROTOCOL = [
    "train.optimizer=adam_iwae",
    "train.optimizer_options={betas = [0.99, 0.999], eps = 1e-4}",
    "train.lr_schedule=burda",
    "train.epochs=2",
    "train.batch_size=500",
    "data.options={n_train = 1000, n_test = 100}",
]


def test_adam_settings_and_scheduled_rate_reach_the_optimizer(tmp_path):
    from ppl_vae.runs.run import train_recipe

    recipe = config.load(MODELS / "linear_gaussian.toml", PROTOCOL)
    run, result = train_recipe(recipe, tmp_path / "run", progress=False)
    groups = [
        s["param_groups"][0]
        for s in load_checkpoint(tmp_path / "run" / CHECKPOINT)["optim"].values()
    ]
    assert groups and all(gr["betas"] == (0.99, 0.999) and gr["eps"] == 1e-4 for gr in groups)
    assert all(gr["v_init"] == 1.0 for gr in groups)  # IWAEAdam's own setting: it is that class
    lr = recipe.train.lr
    assert all(gr["lr"] == pytest.approx(0.72 * lr) for gr in groups)  # epoch 2: stage 1
    assert [row["lr"] for row in result.history] == pytest.approx([lr, 0.72 * lr])
    with pytest.raises(UserError, match="betaz"):
        train_recipe(
            config.load(
                MODELS / "linear_gaussian.toml",
                [*PROTOCOL[:1], "train.optimizer_options={betaz = 1}"],
            ),
            tmp_path / "bad",
            progress=False,
        )


def test_output_bias_is_the_logit_of_the_training_mean(data_root):
    for name in ("burda_1layer", "mnist_bernoulli_mlp"):
        recipe = config.load(
            MODELS / f"{name}.toml", ["data.subset=300", "model.output_bias=logit_mean"]
        )
        data = build_data(recipe, data_root)
        model, _ = build_parts(recipe, data)
        last = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)][-1]
        want = torch.logit(data.train.double().mean(0).clamp(1e-3, 1 - 1e-3))
        torch.testing.assert_close(last.bias.double(), want, rtol=0, atol=1e-5)
        assert data.train.unique().numel() > 2  # gray values: dynamic binarization's mean
    model = build_hierarchical(4, [2], [[3]], likelihood="gaussian")
    with pytest.raises(InputError, match="bernoulli"):
        init_output_bias(model, torch.rand(10, 4), "logit_mean")


def test_hierarchical_recipe_needs_a_hierarchical_guide():
    recipe = config.load(MODELS / "burda_2layer.toml", ["guide.name=diagonal"])
    with pytest.raises(RecipeError, match="bottom_up"):
        check_recipe(recipe)
    with pytest.raises(RecipeError, match="model.z_dim"):
        check_recipe(config.load(MODELS / "burda_2layer.toml", ["model.z_dim=5"]))


def _fit(run_dir, max_steps=0, resume=False):
    torch.manual_seed(0)
    model = build_hierarchical(12, [4, 3], [[8], [6]], init="glorot")
    guide = BottomUpGaussian(12, [4, 3], [[8], [6]], init="glorot")
    g = torch.Generator().manual_seed(5)
    x = torch.rand(40, 12, generator=g)
    data = torch.bernoulli(x, generator=g)
    result = fit(
        model, guide, data, epochs=4, batch_size=10, lr=1e-2, run_dir=run_dir, resume=resume,
        max_steps=max_steps, progress=False, optimizer="adam_iwae",
        optimizer_options={"betas": [0.99, 0.999], "eps": 1e-4},
        lr_schedule="burda", lr_schedule_options={"stages": 2},
    )  # fmt: skip
    return model, guide, result


def test_truncated_two_stage_run_resumed_mid_stage_equals_the_uninterrupted_run(tmp_path):
    """2 stages: 1 epoch at lr, 3 at 0.72 lr, 4 steps an epoch; stopped at step 9 (in epoch 3,
    mid-stage 1), resumed, it must end bit for bit where the run that never stopped ends."""
    whole = _fit(tmp_path / "whole")
    _fit(tmp_path / "cut", max_steps=9)
    resumed = _fit(tmp_path / "cut", resume=True)
    for a, b in zip(whole[:2], resumed[:2], strict=True):
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(p, q), name
    assert resumed[2].steps == whole[2].steps == 16
    assert [r["lr"] for r in resumed[2].history] == pytest.approx([1e-2] + [7.2e-3] * 3)
    assert [r["train_elbo"] for r in resumed[2].history] == [
        r["train_elbo"] for r in whole[2].history
    ]


def test_active_units_count_the_dead_ones():
    """Units whose posterior mean ignores its input are dead (variance exactly 0); the others
    move with x. Layer 1's variance is the closed-form mean's, computed directly here."""
    from ppl_vae.analysis.units import active_units

    torch.manual_seed(0)
    guide = BottomUpGaussian(12, [6, 5], [[16], [8]])
    with torch.no_grad():
        guide.first.net[-1].weight[:2] = 0  # loc of z1 units 0, 1: constant
        guide.steps[0].net[-1].weight[:3] = 0  # loc of z2 units 0, 1, 2: constant
        guide.first.net[-1].weight[2:6] *= 20  # the live ones clearly above 0.01
        guide.steps[0].net[-1].weight[3:5] *= 20
    x = torch.bernoulli(torch.full((400, 12), 0.5), generator=torch.Generator().manual_seed(1))
    found = active_units(guide, x, num_samples=20)
    assert found["z1"].count == 4 and found["z2"].count == 2
    direct = guide.first.loc_scale(x)[0].detach().double().var(0, unbiased=False)
    torch.testing.assert_close(found["z1"].variance, direct, rtol=1e-5, atol=1e-9)
    assert (found["z2"].variance[:3] < 1e-12).all()


@pytest.mark.slow
def test_the_table_command_continues_a_killed_run(tmp_path, data_root, monkeypatch):
    """A cell stopped mid-epoch (as by a kill: only its checkpoint and recipe remain useful)
    and run again by the same command ends with the scores of a cell that never stopped."""
    import importlib.util

    path = MODELS.parent / "benchmarks" / "burda_table1.py"
    spec = importlib.util.spec_from_file_location("burda_table1", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    quick = ["--cells", "L1-iwae-k5", "--epochs", "2", "--test-size", "20", "--eval-k", "30"]
    quick += ["--set", "data.subset=200", "--set", "train.batch_size=50"]
    quick += ["--data-dir", str(data_root)]
    assert bench.main([*quick, "--out", str(tmp_path / "whole")]) == 0
    cut = [*quick, "--out", str(tmp_path / "cut")]
    assert bench.main([*cut, "--set", "train.max_steps=6"]) == 0  # stops in epoch 2 of 2
    (stopped,) = (tmp_path / "cut").glob("L1-iwae-k5/burda_eval_*.json")
    stopped.unlink()  # a killed run has not scored yet
    assert bench.main(cut) == 0
    whole, resumed = (
        json.loads(p.read_text())
        for p in (tmp_path / "whole" / "table.json", tmp_path / "cut" / "table.json")
    )
    assert resumed["L1-iwae-k5"]["nll"] == whole["L1-iwae-k5"]["nll"]
    assert resumed["L1-iwae-k5"]["epochs"] == 2


def _table_module():
    import importlib.util

    path = MODELS.parent / "benchmarks" / "burda_table1.py"
    spec = importlib.util.spec_from_file_location("burda_table1", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_table_says_when_it_has_no_orderings_and_counts_one_epoch():
    from types import SimpleNamespace

    bench = _table_module()
    cell = {"nll": 90.0, "se": 0.5, "active_units": [20], "epochs": 1, "train_seconds": 60.0}
    cell |= {"eval_seconds": 5.0, "test_size": 4, "per_point": [90.0, 91.0, 89.0, 90.0]}
    one = bench.table({(1, "vae", 1): cell}, SimpleNamespace(eval_k=5000, epochs=1))
    assert "1 epoch of" in one and "1 epochs" not in one
    assert "Orderings: none to show" in one and "NLL a − b" not in one
    two = {(1, "vae", 1): cell, (1, "vae", 5): {**cell, "per_point": [89.0, 90.5, 88.0, 89.0]}}
    both = bench.table(two, SimpleNamespace(eval_k=5000, epochs=2))
    assert "2 epochs of" in both
    assert "- L1-vae-k1 − L1-vae-k5: +0.88 ± 0.12" in both  # d = 1, .5, 1, 1: SE = 0.25 / 2
