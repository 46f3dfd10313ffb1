"""JointOptim: one torch Adam behind Pyro's optimizer interface, in PyroOptim's state format."""

from __future__ import annotations

import copy

import pyro
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam, PyroOptim

import ppl_vae as pv
from ppl_vae.distributed import World
from ppl_vae.training.optim import AllReduceOptim, JointOptim, adam


def _setup():
    pyro.clear_param_store()
    torch.manual_seed(0)
    model = pv.build_model(12, 3, likelihood="bernoulli", hidden=[8]).double()
    guide = pv.build_guide("diagonal", 12, 3, hidden=[8]).double()
    x = torch.bernoulli(torch.full((16, 12), 0.3, dtype=torch.float64))
    return model, guide, x


def _train(optim, steps, model=None, guide=None, x=None, seed=1):
    """``steps`` SVI steps; ``seed=None`` continues the current random stream."""
    if model is None:
        model, guide, x = _setup()
    svi = SVI(model, guide, optim, Trace_ELBO())
    if seed is not None:
        pyro.set_rng_seed(seed)
    losses = [svi.step(x) for _ in range(steps)]
    params = torch.cat([p.detach().reshape(-1) for p in [*model.parameters(), *guide.parameters()]])
    return losses, params, (model, guide, x)


def test_same_steps_as_pyros_per_parameter_adam():
    _, ours, _ = _train(adam(1e-2), 30)
    _, pyros, _ = _train(Adam({"lr": 1e-2}), 30)
    assert torch.allclose(ours, pyros, rtol=0, atol=1e-10)  # float64: the same arithmetic


def _restore(snapshot):
    with torch.no_grad():
        for name, p in pyro.get_param_store().named_parameters():
            p.copy_(snapshot[name])


def test_state_round_trip_continues_exactly():
    _, whole, _ = _train(adam(1e-2), 20)
    optim = adam(1e-2)
    _, _, parts = _train(optim, 10)
    state = copy.deepcopy(optim.get_state())  # what a checkpoint holds
    rng = torch.get_rng_state()
    fresh = adam(1e-2)
    fresh.set_state(state)
    torch.set_rng_state(rng)
    _, resumed, _ = _train(fresh, 10, *parts, seed=None)
    assert torch.equal(resumed, whole)
    assert set(state) == {name for name, _ in pyro.get_param_store().named_parameters()}
    assert all(set(v) == {"state", "param_groups"} for v in state.values())


def test_loads_pyro_optim_state_and_continues_like_it():
    pyro_optim = Adam({"lr": 1e-2})
    _, _, parts = _train(pyro_optim, 10)
    state = copy.deepcopy(pyro_optim.get_state())  # a checkpoint written before JointOptim
    snapshot = {k: v.detach().clone() for k, v in pyro.get_param_store().named_parameters()}

    def resume(optim):
        _restore(snapshot)
        optim.set_state(copy.deepcopy(state))
        return _train(optim, 10, *parts, seed=3)[1]

    assert torch.allclose(resume(adam(1e-2)), resume(Adam({"lr": 1e-2})), rtol=0, atol=1e-10)


def test_set_state_after_steps_takes_effect_at_once():
    optim = adam(1e-2)
    _, _, parts = _train(optim, 5)
    saved = copy.deepcopy(optim.get_state())
    _train(optim, 5, *parts)
    store = pyro.get_param_store()
    moved = {n: optim.optimizer.state[p]["exp_avg"].clone() for n, p in store.named_parameters()}
    optim.set_state(saved)
    for name, p in store.named_parameters():
        assert torch.equal(optim.optimizer.state[p]["exp_avg"], saved[name]["state"][0]["exp_avg"])
        assert not torch.equal(moved[name], saved[name]["state"][0]["exp_avg"])


def test_resume_uses_the_learning_rate_given_now():
    optim = adam(1e-2)
    _, _, parts = _train(optim, 3)
    slower = adam(1e-4)
    slower.set_state(optim.get_state())
    _train(slower, 1, *parts)
    assert all(group["lr"] == 1e-4 for group in slower.optimizer.param_groups)


def test_refuses_per_parameter_arguments():
    with pytest.raises(TypeError, match="PyroOptim"):
        JointOptim(torch.optim.Adam, lambda name, param: {"lr": 1e-3})
    assert isinstance(adam(1e-3), PyroOptim)


def test_gradients_are_dropped_after_the_step():
    optim = adam(1e-2)
    _, _, (model, guide, _) = _train(optim, 2)
    assert all(p.grad is None for p in [*model.parameters(), *guide.parameters()])


def test_adam_sums_gradients_over_ranks_only_in_a_data_parallel_run():
    assert type(adam(1e-3)) is JointOptim
    shared = adam(1e-3, World(rank=1, size=2))
    assert isinstance(shared, AllReduceOptim) and shared.world.size == 2
    assert shared.pt_optim_args == {"lr": 1e-3}


def test_state_for_parameters_not_yet_stepped_waits_in_the_optimizer():
    """set_state() before the first step (a resume) keeps the states itself until SVI hands
    the parameters over, whatever Pyro does with its own pending states."""
    optim = adam(1e-2)
    _, _, parts = _train(optim, 3)
    state = copy.deepcopy(optim.get_state())
    fresh = adam(1e-2)
    fresh.set_state(state)
    assert fresh.optimizer is None and set(fresh._pending) == set(state)
    _train(fresh, 1, *parts)
    assert fresh._pending == {}
    assert all(s["step"] == 4 for s in fresh.optimizer.state.values())
