"""The replayed SVI step: Pyro's model and guide traced once into a plan of tensor operations
(the loss and every parameter's gradient), then replayed while the batch's shapes and the
run's structure stay the same.

Pyro's SVI step rebuilds its traces on every call: every ``pyro.param`` and ``pyro.sample``
statement passes through the handler stack, distributions are built and their log densities
summed in Python. At batch 20 that bookkeeping costs as much as a third of the step. Here the
first call for a given shape runs the objective's tensor loss (``objectives.tensor_loss``, the
same sums as Pyro's) under ``torch.fx``'s ``make_fx``, through ``torch.autograd.grad``, which
records the forward and the backward pass as one graph of aten operations; later calls run
that graph and hand its gradients to the optimizer, as ``SVI.step`` does. The graph reads the
parameters themselves (the optimizer updates them in place) and draws its noise from torch's
global generator in the same order as the eager step, so at a fixed seed it gives the eager
step's loss and gradients: bit for bit on the CPU in the tests, which run both paths.

A plan is traced again whenever its key changes: the shapes, dtypes and devices of the
arguments, their non-tensor values, the param store's parameters (a resume that loads new
tensors), the objective's numbers (a KL warm-up's weight), and the model's and guide's
``training`` flags. The eager step is taken instead, by Pyro's own code, where a plan cannot
hold:

- while Pyro's validation is on (its checks branch on the data), e.g. ``fit``'s first step;
- before the parameters exist (the first step creates them);
- under any Pyro handler around the step (per-point noise re-seeds at every step);
- for an objective with no tensor loss (M2's, which splits a batch by its labels), a guide
  site without a reparameterized sampler, or a model whose Python branches on tensor values.

Each reason is said once, as a warning, and kept in ``eager_reasons``.

What a plan does not keep: the Python of the model and guide runs when a plan is traced, not
at each replay, so a side effect there (a print, a counter, a Python random draw) happens once
per plan. The toolkit's models, guides and objectives have none (the tests compare every one
with the eager step); recipes replay by default, ``fit`` only when asked.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pyro
import torch
from pyro.infer import ELBO, SVI
from pyro.infer.util import is_validation_enabled, zero_grads
from pyro.poutine import runtime
from pyro.poutine.trace_messenger import TraceMessenger
from torch.fx.experimental.proxy_tensor import make_fx

from ..objectives.tensor_loss import NoTensorLoss, tensor_loss

__all__ = ["MAX_PLANS", "Plan", "ReplayedSVI"]

# plans kept per SVI object; a run whose shapes keep changing steps eagerly after that many
MAX_PLANS = 32


@dataclass
class Plan:
    """One traced step: ``graph(*tensors) -> (*terms, *grads)``, the loss's terms and the
    gradients of ``stepped``; ``params`` is every parameter the step read (what ``SVI.step``
    hands the optimizer); ``combine`` makes the loss of the terms' floats."""

    graph: torch.fx.GraphModule
    params: list[torch.Tensor]
    stepped: list[torch.Tensor]
    combine: Callable[[list[float]], float]
    num_terms: int

    def __post_init__(self) -> None:
        simplify(self.graph)
        self.run = straight_line(self.graph)
        self.param_set = frozenset(self.params)  # what the optimizer is handed, made once

    def __call__(self, tensors: list[torch.Tensor]) -> float:
        with torch.no_grad():  # the graph holds the backward pass itself
            out = self.run(*tensors)
        terms, grads = out[: self.num_terms], out[self.num_terms :]
        for p, g in zip(self.stepped, grads, strict=True):
            p.grad = g if p.grad is None else p.grad + g
        return self.combine([float(t) for t in terms])


aten = torch.ops.aten
# views whose twins (the same operation on the same arguments) are the same tensor's geometry
VIEWS = {aten.t.default, aten.expand.default, aten.view.default, aten.unsqueeze.default}


def _in_place_on(node: torch.fx.Node) -> bool:
    """Whether a user of ``node`` changes it in place (its data or its shape)."""
    return any(
        isinstance(u.target, torch._ops.OpOverload)
        and u.target._schema.is_mutable
        and u.args
        and u.args[0] is node
        for u in node.users
    )


def _key(a: Any) -> Hashable:
    return tuple(_key(v) for v in a) if isinstance(a, list | tuple) else a


def simplify(graph: torch.fx.GraphModule) -> None:
    """Drops the calls that produce nothing new, in place: ``alias(x)`` and ``t(t(x))`` are x
    itself, and a second view of the same tensor with the same arguments is the first one (the
    forward and backward passes both transpose every weight). Views share their base's data,
    so a caller sees the same values bit for bit; views changed in place are left alone."""
    g = graph.graph
    seen: dict[Hashable, torch.fx.Node] = {}
    for node in list(g.nodes):
        if node.op != "call_function" or _in_place_on(node):
            continue
        a = node.args[0] if node.args else None
        same = None
        if node.target is aten.alias.default:
            same = a
        elif node.target is aten.t.default and getattr(a, "target", None) is aten.t.default:
            same = a.args[0]
        elif node.target in VIEWS:
            key = (node.target, _key(node.args), _key(tuple(node.kwargs.items())))
            same = seen.setdefault(key, node)
            same = None if same is node else same
        if same is not None:
            node.replace_all_uses_with(same)
            g.erase_node(node)
    g.eliminate_dead_code()
    graph.recompile()


def straight_line(graph: torch.fx.GraphModule) -> Callable[..., tuple]:
    """``graph`` as one Python function that calls each aten operation's C++ entry point
    directly, with every constant bound in advance: the same calls, in the same order, as
    ``graph(*inputs)``, without FX's per-call attribute lookups and ``OpOverload`` wrapper
    (about a fifth of a small step's time)."""
    bound: dict[str, Any] = {}
    names: dict[torch.fx.Node, str] = {}
    inputs, lines = [], []

    def const(value: Any) -> str:
        name = f"c{len(bound)}"
        bound[name] = value
        return name

    def expr(a: Any) -> str:
        if isinstance(a, torch.fx.Node):
            return names[a]
        if isinstance(a, list | tuple) and any(isinstance(v, torch.fx.Node) for v in a):
            inner = ", ".join(expr(v) for v in a)
            return f"[{inner}]" if isinstance(a, list) else f"({inner},)"
        return const(a)

    for i, node in enumerate(graph.graph.nodes):
        names[node] = f"v{i}"
        if node.op == "placeholder":
            inputs.append(names[node])
        elif node.op == "get_attr":
            names[node] = const(getattr(graph, node.target))  # the tensor itself, not a copy
        elif node.op == "call_function":
            fn = node.target
            fn = getattr(fn, "_op", fn) if isinstance(fn, torch._ops.OpOverload) else fn
            call = [expr(a) for a in node.args]
            call += [f"{k}={expr(v)}" for k, v in node.kwargs.items()]
            lines.append(f"    v{i} = {const(fn)}({', '.join(call)})")
        elif node.op == "output":
            lines.append(f"    return {expr(list(node.args[0]))}")
        else:
            raise NotImplementedError(f"graph node {node.op}")
    source = f"def run({', '.join(inputs)}):\n" + "\n".join(lines) + "\n"
    exec(compile(source, "<replayed step>", "exec"), bound)  # noqa: S102 (our own graph)
    return bound["run"]


def _split(args: tuple, kwargs: dict) -> tuple[list[torch.Tensor], Hashable]:
    """The tensors among the arguments, and a hashable description of everything else."""
    tensors, shape = [], []
    for key, value in [*enumerate(args), *sorted(kwargs.items())]:
        if isinstance(value, torch.Tensor):
            tensors.append(value)
            shape.append((key, "tensor", tuple(value.shape), value.dtype, value.device))
        else:
            hash(value)  # a TypeError: no plan for an unhashable argument
            shape.append((key, "value", value))
    return tensors, tuple(shape)


def _join(tensors: list, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` with their tensors replaced, in order, by ``tensors``."""
    it = iter(tensors)
    new_args = tuple(next(it) if isinstance(a, torch.Tensor) else a for a in args)
    new_kwargs = {}
    for k in sorted(kwargs):
        v = kwargs[k]
        new_kwargs[k] = next(it) if isinstance(v, torch.Tensor) else v
    return new_args, new_kwargs


def _numbers(obj: Any, depth: int = 0) -> tuple:
    """The plain numbers and strings an objective holds (and those of the objectives it wraps):
    a traced plan bakes them in, so a change must trace again."""
    out = []
    for name, value in sorted(vars(obj).items()):
        if isinstance(value, bool | int | float | str | type(None)):
            out.append((name, value))
        elif isinstance(value, ELBO) and depth < 4:
            out.append((name, _numbers(value, depth + 1)))
    return tuple(out)


class ReplayedSVI(SVI):
    """``pyro.infer.SVI`` whose ``step`` replays a traced plan (see the module).

    Takes SVI's arguments and gives its results: ``step(*args, **kwargs)`` returns the loss as
    a float, after one optimizer step. ``replayed`` counts the steps a plan took, and
    ``eager_reasons`` lists why others went eagerly.
    """

    def __init__(self, model, guide, optim, loss):
        super().__init__(model, guide, optim, loss)
        self.objective = loss  # SVI keeps only its bound methods
        self.plans: dict[Hashable, Plan | None] = {}
        self.eager_reasons: list[str] = []
        self.replayed = 0  # steps a plan took

    def step(self, *args, **kwargs) -> float:
        reason = self._eager_now()
        if reason is None:
            try:
                tensors, shape = _split(args, kwargs)
            except TypeError:
                reason = "an argument that is neither a tensor nor hashable"
        if reason is not None:
            return super().step(*args, **kwargs)
        key = (shape, self._structure())
        if key not in self.plans:
            if len(self.plans) >= MAX_PLANS:
                self._say(f"shapes or numbers changed more than {MAX_PLANS} times")
                return super().step(*args, **kwargs)
            self.plans[key] = self._trace(tensors, args, kwargs)
        plan = self.plans[key]
        if plan is None:
            return super().step(*args, **kwargs)
        loss = plan(tensors)
        self.optim(plan.param_set)
        zero_grads(plan.params)
        self.replayed += 1
        return loss

    def _eager_now(self) -> str | None:
        if is_validation_enabled():
            return "Pyro's validation is on"
        if not len(pyro.get_param_store()):
            return "the parameters do not exist yet"
        if runtime._PYRO_STACK:
            self._say("a Pyro handler is active around the step (per-point noise, say)")
            return "a Pyro handler is active around the step"
        return None

    def _structure(self) -> Hashable:
        store = pyro.get_param_store()
        params = tuple((name, id(p)) for name, p in store.named_parameters())
        flags = tuple(
            m.training if isinstance(m, torch.nn.Module) else None for m in (self.model, self.guide)
        )
        return params, flags, _numbers(self.objective)

    def _trace(self, tensors: list[torch.Tensor], args: tuple, kwargs: dict) -> Plan | None:
        found: dict[str, Any] = {}

        def run(*tensors):
            a, kw = _join(list(tensors), args, kwargs)
            capture = TraceMessenger(param_only=True)
            with capture:
                loss = tensor_loss(self.objective, self.model, self.guide, a, kw)
            surrogate = loss.surrogate
            params = list({id(v): v for v in _unconstrained(capture.trace)}.values())
            wanted = [p for p in params if p.requires_grad]
            grads = (
                torch.autograd.grad(surrogate, wanted, allow_unused=True)
                if wanted and getattr(surrogate, "requires_grad", False)
                else [None] * len(wanted)
            )
            found["params"] = params
            found["stepped"] = [p for p, g in zip(wanted, grads, strict=True) if g is not None]
            found["combine"], found["num_terms"] = loss.combine, len(loss.terms)
            terms = [torch.as_tensor(t).detach() for t in loss.terms]
            return (*terms, *[g for g in grads if g is not None])

        devices = [t.device for t in tensors if t.device.type == "cuda"]
        try:
            with torch.random.fork_rng(devices=sorted(set(devices), key=str)):
                graph = make_fx(run)(*tensors)
        except NoTensorLoss as e:
            self._say(str(e))
            return None
        except RuntimeError as e:  # data-dependent control flow in the model or guide
            self._say(f"the step could not be traced ({str(e).splitlines()[0]})")
            return None
        shaped = _data_dependent_shape(graph)
        if shaped is not None:
            self._say(f"the step has an output shape that depends on the data ({shaped})")
            return None
        return Plan(graph, **found)

    def _say(self, reason: str) -> None:
        if reason not in self.eager_reasons:
            self.eager_reasons.append(reason)
            warnings.warn(
                f"train.replay: {reason}; these steps run eagerly through Pyro's SVI "
                f"(the same results, without the speed-up; train.replay = false skips the "
                f"attempt).",
                stacklevel=3,
            )


# aten operations whose output's shape depends on the values of their inputs: a plan would
# keep the shape of the batch it was traced on
_VALUE_SHAPED = {"nonzero", "masked_select", "unique", "_unique", "_unique2", "unique_dim"}
_INDEXING = {"index", "index_put", "index_put_", "_index_put_impl_"}


def _data_dependent_shape(graph: torch.fx.GraphModule) -> str | None:
    """The first operation in ``graph`` whose output shape depends on data (boolean-mask
    indexing, ``nonzero``, ``unique``), by name; None when there is none."""
    for node in graph.graph.nodes:
        if node.op != "call_function":
            continue
        op = getattr(node.target, "_opname", str(node.target))
        if op in _VALUE_SHAPED:
            return f"aten.{op}"
        if op in _INDEXING:
            indices = node.args[1] if len(node.args) > 1 else ()
            for index in indices or ():
                value = getattr(index, "meta", {}).get("val")
                if isinstance(value, torch.Tensor) and value.dtype == torch.bool:
                    return f"aten.{op} with a boolean mask"
    return None


def _unconstrained(trace) -> list[torch.Tensor]:
    return [site["value"].unconstrained() for site in trace.nodes.values()]
