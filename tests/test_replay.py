"""The replayed SVI step (training.replay) against Pyro's eager step: at a fixed seed, the same
parameters bit for bit after many steps, for every objective, guide and model kind; the same
losses to float rounding; a new plan where a shape or a number changes; eager steps, said
once, where no plan can hold."""

from __future__ import annotations

import copy
import warnings

import pyro
import pytest
import torch
from _smoke import MODELS
from pyro.infer import SVI
from pyro.infer.util import torch_item

import ppl_vae as pv
from ppl_vae import build_objective
from ppl_vae.guides import GUIDES
from ppl_vae.objectives import OBJECTIVES
from ppl_vae.objectives.tensor_loss import NoTensorLoss, tensor_loss
from ppl_vae.runs import recipe as config
from ppl_vae.runs.kinds import MODEL_KINDS
from ppl_vae.runs.run import train_recipe
from ppl_vae.training import replay as replay_module
from ppl_vae.training.optim import adam
from ppl_vae.training.replay import ReplayedSVI

X_DIM, Z_DIM = 12, 3
# options an objective needs to build (renyi's order, the group sizes of MIWAE and PIWAE)
NEEDS = {"renyi": {"alpha": 0.5}, "miwae": {"M": 2}, "piwae": {"M": 2}, "ciwae": {"beta": 0.3}}
WRAPPED = {  # build_objective's wrappers around objectives
    "kl_warmup": ("elbo", {"kl_warmup_epochs": 4, "kl_start": 0.2}),
    "free_bits": ("elbo", {"free_bits": 0.5}),
    "beta": ("iwae", {"kl_weight": 2.0}),
}


def _data(n: int = 24) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.bernoulli(torch.full((n, X_DIM), 0.3, dtype=torch.float64), generator=g)


def _parts(guide: str = "diagonal"):
    pyro.clear_param_store()
    torch.manual_seed(0)
    model = pv.build_model(X_DIM, Z_DIM, likelihood="bernoulli", hidden=[8]).double()
    guide = pv.build_guide(guide, X_DIM, Z_DIM, hidden=[8]).double()
    return model, guide


def _train(svi_class, objective, guide="diagonal", steps=12, batch=8, x=None):
    """``steps`` steps over batches of ``x`` (the last one smaller, when it does not divide)."""
    x = _data() if x is None else x
    model, guide = _parts(guide)
    svi = svi_class(model, guide, adam(1e-2), copy.deepcopy(objective))
    pyro.set_rng_seed(1)
    losses, starts = [], range(0, len(x), batch)
    with pv.model.checks.checked_once(model, x):
        for i in range(steps):
            start = starts[i % len(starts)]
            losses.append(svi.step(x[start : start + batch]))
    params = {n: p.detach().clone() for n, p in pyro.get_param_store().named_parameters()}
    return losses, params, svi


def _same(objective, guide="diagonal", **kw):
    """Eager and replayed training agree: parameters bit for bit, losses to float rounding."""
    eager_losses, eager, _ = _train(SVI, objective, guide, **kw)
    losses, params, svi = _train(ReplayedSVI, objective, guide, **kw)
    assert params.keys() == eager.keys()
    for name in eager:
        assert torch.equal(params[name], eager[name]), name
    assert losses == eager_losses  # the terms' floats, added up in Pyro's order
    return svi


def _objective(name: str, k: int = 3):
    return build_objective(name, k, **NEEDS.get(name, {}))


@pytest.mark.parametrize("name", sorted(set(OBJECTIVES) - {"semi_supervised"}))
def test_every_objective_steps_the_same_and_replays(name):
    svi = _same(_objective(name))
    assert svi.eager_reasons == []
    assert any(plan is not None for plan in svi.plans.values())


@pytest.mark.parametrize("wrapper", sorted(WRAPPED))
def test_the_wrappers_step_the_same_and_replay(wrapper):
    name, options = WRAPPED[wrapper]
    svi = _same(build_objective(name, 2, **options))
    assert svi.eager_reasons == []


def test_a_warmup_weight_change_traces_a_new_plan():
    x = _data()
    runs = []
    for svi_class in (SVI, ReplayedSVI):
        loss = build_objective("elbo", 1, kl_warmup_epochs=4)
        model, guide = _parts()
        svi = svi_class(model, guide, adam(1e-2), loss)
        pyro.set_rng_seed(1)
        losses = []
        with pv.model.checks.checked_once(model, x):
            for epoch in range(3):  # the weight is 0, 0.25, 0.5: baked into each plan
                loss.begin_epoch(epoch)
                losses += [svi.step(x[:8]), svi.step(x[8:16])]
        runs.append((losses, [p.detach().clone() for p in guide.parameters()], svi))
    (eager_losses, eager, _), (losses, params, svi) = runs
    assert losses == eager_losses
    assert all(torch.equal(a, b) for a, b in zip(params, eager, strict=True))
    assert len([p for p in svi.plans.values() if p is not None]) == 3  # one per weight


def test_a_smaller_last_batch_gets_its_own_plan():
    svi = _same(_objective("iwae"), steps=9, batch=10)  # batches of 10, 10, 4
    shapes = {key[0][0][2] for key, plan in svi.plans.items() if plan is not None}
    assert shapes == {(10, X_DIM), (4, X_DIM)}


# guides that step eagerly, and why: the spline flow picks its bins by boolean masks, so the
# shapes inside its step depend on the data (a plan would keep the first batch's)
EAGER_GUIDES = {"nsf": "output shape that depends on the data (aten.index with a boolean mask)"}


@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_every_guide_steps_the_same(guide):
    if guide in EAGER_GUIDES:
        with pytest.warns(UserWarning, match="depends on the data"):
            svi = _same(_objective("elbo"), guide=guide, steps=6)
        assert [EAGER_GUIDES[guide] in r for r in svi.eager_reasons] == [True]
        assert all(plan is None for plan in svi.plans.values())
    else:
        svi = _same(_objective("elbo"), guide=guide, steps=6)
        assert svi.eager_reasons == []
        assert all(plan is not None for plan in svi.plans.values())


def test_the_tensor_loss_is_the_objectives_own_value():
    """The plan's loss is what Pyro's own loss says, at the same random draws."""
    x = _data()[:8]
    for name in sorted(set(OBJECTIVES) - {"semi_supervised"}):
        objective = _objective(name)
        model, guide = _parts()
        SVI(model, guide, adam(1e-2), objective).step(x)  # creates the parameters
        pyro.set_rng_seed(5)
        with torch.no_grad():
            ours = tensor_loss(objective, model, guide, (x,), {}).value()
        pyro.set_rng_seed(5)
        assert ours == torch_item(objective.loss_and_grads(model, guide, x)), name


def test_an_objective_without_a_tensor_loss_steps_eagerly_and_says_so():
    class Custom(pyro.infer.Trace_ELBO):  # a loss of its own: the plan must not guess it
        def loss_and_grads(self, model, guide, *args, **kwargs):
            return 2 * super().loss_and_grads(model, guide, *args, **kwargs)

    with pytest.raises(NoTensorLoss, match="Custom"):
        tensor_loss(Custom(), *_parts(), (_data(),), {})
    with pytest.warns(UserWarning, match="Custom has no tensor loss; these steps run eagerly"):
        svi = _same(Custom())
    assert svi.eager_reasons == ["Custom has no tensor loss"]


def test_a_model_that_branches_on_tensor_values_steps_eagerly():
    class Branching(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.inner = model

        def forward(self, x):
            if bool(x.sum() > 0):  # Python control flow on data: no plan can hold it
                return self.inner(x)
            return self.inner(x)

    x = _data()
    model, guide = _parts()
    svi = ReplayedSVI(Branching(model), guide, adam(1e-2), _objective("elbo"))
    with pv.model.checks.checked_once(model, x):
        svi.step(x)  # the parameters now exist
        with pytest.warns(UserWarning, match="could not be traced"):
            loss = svi.step(x)
    assert isinstance(loss, float) and svi.plans and all(p is None for p in svi.plans.values())


def test_a_handler_around_the_step_makes_it_eager():
    x = _data()
    model, guide = _parts()
    svi = ReplayedSVI(model, guide, adam(1e-2), _objective("elbo"))
    with pv.model.checks.checked_once(model, x):
        svi.step(x)  # the parameters now exist
        with pytest.warns(UserWarning, match="handler"), pyro.poutine.scale(scale=0.5):
            svi.step(x)
    assert not svi.plans


def test_validation_on_makes_the_step_eager():
    x = _data()
    model, guide = _parts()
    svi = ReplayedSVI(model, guide, adam(1e-2), _objective("elbo"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reason that passes is not one to warn about
        with pyro.validation_enabled(True):
            svi.step(x)
            svi.step(x)
    assert not svi.plans


def test_per_point_noise_steps_eagerly():
    """Per-point noise re-seeds at every step: no plan, and the eager run's results."""
    fits = []
    for replay in (False, True):
        model, guide = _parts()
        x = _data().float()
        fits.append(
            pv.fit(
                model.float(),
                guide.float(),
                x,
                epochs=2,
                batch_size=8,
                noise="per_point",
                replay=replay,
                progress=False,
            )
        )
        fits[-1].params = [p.detach().clone() for p in guide.parameters()]
    assert fits[1].replayed == 0
    assert fits[1].history[-1]["train_elbo"] == fits[0].history[-1]["train_elbo"]
    assert all(torch.equal(a, b) for a, b in zip(fits[0].params, fits[1].params, strict=True))


# the recipes that cover every model kind, and the priors and likelihoods of the model side
RECIPES = {
    "vae": "mnist_bernoulli_mlp.toml",
    "hierarchical": "burda_2layer.toml",
    "m1": "mnist_m1.toml",
    "m1m2": "mnist_m1m2.toml",
    "m2": "mnist_m2.toml",
    "conditional": "mnist_conditional.toml",
    "cvae": "mnist_cvae_quadrants.toml",
    "cvae, pyro variant": "mnist_cvae_quadrants.toml",
    "mog prior": "mnist_mog.toml",
    "vamp prior": "mnist_vamp.toml",
    "logistic likelihood": "mnist_8bit_logistic.toml",
}
SMALL = ["data.subset=120", "data.valid_size=20", "train.batch_size=25", "train.epochs=2"]


def _fit_recipe(file: str, replay: bool, out, extra=()):
    overrides = [*SMALL, f"train.replay={str(replay).lower()}", *extra]
    recipe = config.load(MODELS / file, overrides)
    run, result = train_recipe(recipe, out, progress=False)
    params = {n: p.detach().clone() for n, p in pyro.get_param_store().named_parameters()}
    params = params or {
        n: p.detach().clone() for part in (run.model, run.guide) for n, p in part.named_parameters()
    }
    return params, result


def test_the_recipes_cover_every_model_kind():
    kinds = {config.load(MODELS / f).model.name for f in RECIPES.values()}
    assert kinds == set(MODEL_KINDS)


@pytest.mark.parametrize("what", sorted(RECIPES))
def test_every_model_kind_trains_the_same(what, tmp_path, data_root):
    extra = []
    if what == "m1m2":  # M1 + M2 needs a trained M1 to read its codes from
        m1 = tmp_path / "m1"
        _fit_recipe(RECIPES["m1"], False, m1, ["data.labels=20"])
        extra = [f'model.options.m1_run="{m1}"', "data.labels=20"]
    elif what in ("m1", "m2"):
        extra = ["data.labels=20"]
    elif what == "cvae, pyro variant":  # its prior network reads a trained baseline's guess
        baseline = tmp_path / "baseline"
        _fit_recipe(RECIPES[what], False, baseline, ["model.options.baseline=true"])
        extra = ['model.options.variant="pyro"', f'model.options.baseline_run="{baseline}"']
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", UserWarning)
        eager, eager_fit = _fit_recipe(RECIPES[what], False, tmp_path / "eager", extra)
        ours, fit = _fit_recipe(RECIPES[what], True, tmp_path / "replay", extra)
    reasons = [str(w.message) for w in said if "train.replay" in str(w.message)]
    if what in ("m2", "m1m2"):  # SemiSupervisedELBO splits each batch by its labels
        assert fit.replayed == 0
        assert reasons == [
            "train.replay: SemiSupervisedELBO has no tensor loss; these steps run eagerly "
            "through Pyro's SVI (the same results, without the speed-up; train.replay = false "
            "skips the attempt)."
        ]
    else:  # every step but the first (validation on, parameters not yet made) replayed
        assert (fit.replayed, reasons) == (fit.steps - 1, [])
    assert ours.keys() == eager.keys()
    for name in eager:
        assert torch.equal(ours[name], eager[name]), name
    for a, b in zip(fit.history, eager_fit.history, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }


def test_after_max_plans_new_shapes_step_eagerly(monkeypatch):
    monkeypatch.setattr(replay_module, "MAX_PLANS", 2)
    x = _data()
    model, guide = _parts()
    svi = ReplayedSVI(model, guide, adam(1e-2), _objective("elbo"))
    with pv.model.checks.checked_once(model, x):
        svi.step(x)  # makes the parameters
        svi.step(x[:5])
        svi.step(x[:6])
        with pytest.warns(UserWarning, match="changed more than 2 times"):
            svi.step(x[:7])
    assert len(svi.plans) == 2 and svi.replayed == 2


def test_recipes_replay_by_default_but_m2s_do_not_and_fit_asks():
    assert config.load(MODELS / "mnist_bernoulli_mlp.toml").train.replay
    assert not config.load(MODELS / "mnist_m2.toml").train.replay
    assert not config.load(MODELS / "mnist_m1m2.toml").train.replay
    model, guide = _parts()
    result = pv.fit(model.float(), guide.float(), _data().float(), epochs=1, progress=False)
    assert result.replayed == 0  # fit replays only when asked (replay=True)


def test_simplify_drops_aliases_double_transposes_and_twin_views_but_not_mutated_ones():
    from torch.fx.experimental.proxy_tensor import make_fx

    aten = torch.ops.aten

    def f(w, x):
        a, b = w.t(), w.t()  # twins: one call
        c = torch.ops.aten.alias(x).t().t()  # x itself
        d, e = x.t(), x.t()
        e.mul_(2.0)  # changed in place: kept apart from its twin
        return a @ x, b @ x, c + 1, d + 0, e

    w, x = torch.randn(3, 3), torch.randn(3, 3)
    graph = make_fx(f)(w, x)
    want = f(w.clone(), x.clone())
    replay_module.simplify(graph)
    calls = [n.target for n in graph.graph.nodes if n.op == "call_function"]
    assert aten.alias.default not in calls
    assert calls.count(aten.t.default) == 3  # w.t() once, x.t() twice (one is mutated)
    got = graph(w.clone(), x.clone())
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_a_burda_plan_holds_no_alias_and_no_twin_view():
    model, guide = _parts()
    x = _data()
    svi = ReplayedSVI(model, guide, adam(1e-2), _objective("elbo"))
    with pv.model.checks.checked_once(model, x):
        svi.step(x)
        svi.step(x)
    (plan,) = svi.plans.values()
    views = [
        (n.target, str(n.args))
        for n in plan.graph.graph.nodes
        if n.op == "call_function" and n.target in replay_module.VIEWS
    ]
    assert len(views) == len(set(views))
    assert not [n for n in plan.graph.graph.nodes if n.target is torch.ops.aten.alias.default]
