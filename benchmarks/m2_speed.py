"""M2 training speed: our model, guide and objective against Pyro's own ss_vae example, and
against a plain PyTorch M2 step of the same networks.

Both train on the same batches of dynamically binarized MNIST images, in one process, with
``pyro.infer.SVI`` and ``pyro.optim.Adam`` (lr 4.2e-4): an unlabelled step (y enumerated,
TraceEnum_ELBO) on ``--batch`` images, and a labelled step (+ the classification loss, weight 46).
Steps alternate between the two implementations in blocks, so that a change of machine load
hits both alike; each reports the median seconds per step. Pyro's example is read from a
fetched copy (``--pyro-example``: the folder holding ss_vae_M2.py and utils/); its visdom
import is stubbed, nothing else of it changes.

With ``--plain``, our step as ``fit`` takes it (the toolkit's fused Adam) is timed against the
same loss written out in PyTorch (``plain``: y summed over the ten classes by hand, one z per
class, the same networks, ``torch.optim.Adam(fused=True)``) in the same blocks; Pyro's example
is then optional.

    python benchmarks/m2_speed.py --pyro-example /path/to/pyro/examples/vae --steps 100
    python benchmarks/m2_speed.py --plain --steps 30
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
import types
from pathlib import Path

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, config_enumerate
from pyro.optim import Adam

from ppl_vae.data import load_data
from ppl_vae.guides import build_guide
from ppl_vae.guides.labelled import build_labelled_guide
from ppl_vae.model.labelled import build_labelled_model
from ppl_vae.objectives.semi_supervised import SemiSupervisedELBO
from ppl_vae.training.optimizers import build_optimizer

ALPHA = 46.0


def pyro_ssvae(folder: Path):
    """Pyro's SSVAE class, imported from the example's own file."""
    sys.modules.setdefault("visdom", types.SimpleNamespace(Visdom=None))
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("ss_vae_M2", folder / "ss_vae_M2.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SSVAE


def m2_parts():
    """models/mnist_m2.toml's networks, from a fixed seed."""
    pyro.set_rng_seed(0)
    model = build_labelled_model(
        784, 50, num_classes=10, label_prior=True, hidden=[500], activation="softplus"
    )
    z = build_guide("diagonal", 794, 50, hidden=[500], activation="softplus")
    return model, build_labelled_guide(z, 784, 10, True, [500], "softplus")


def ours(lr: float, fused: bool = False):
    """Our M2 and one SVI step function per batch kind; ``fused``: the optimizer ``fit``
    uses (else Pyro's Adam, as Pyro's example has)."""
    model, guide = m2_parts()
    optim = build_optimizer("adam", lr) if fused else Adam({"lr": lr})
    svi = SVI(model, guide, optim, SemiSupervisedELBO(alpha=ALPHA))
    return {
        "unlabelled": lambda x, y: svi.step(x, cond=torch.full_like(y, -1)),
        "labelled": lambda x, y: svi.step(x, cond=y),
    }


def plain_losses(model, guide) -> dict:
    """M2's two losses written out in PyTorch, on our networks: no Pyro."""
    c = model.num_classes

    def elbo_terms(x, y):  # log p(x, y, z) - log q(z | x, y), one z per (class, point)
        qz = guide.z_distribution(x, y)
        z = qz.rsample()
        log_pxz = model.observation_given(z, y).log_prob(x) + model.prior(x).log_prob(z)
        return log_pxz - qz.log_prob(z) - math.log(c)

    def unlabelled(x, y):
        log_qy = guide.classify(x).log_softmax(-1).T  # [C, N]
        terms = elbo_terms(x, torch.arange(c).view(c, 1))  # [C, N], every class at once
        return -(log_qy.exp() * (terms - log_qy)).sum()

    def labelled(x, y):
        ce = torch.nn.functional.cross_entropy(guide.classify(x), y, reduction="sum")
        return -elbo_terms(x, y).sum() + ALPHA * ce

    return {"unlabelled": unlabelled, "labelled": labelled}


def plain(lr: float):
    """The plain PyTorch M2 step on the same networks, with a fused torch Adam."""
    model, guide = m2_parts()
    opt = torch.optim.Adam([*model.parameters(), *guide.parameters()], lr=lr, fused=True)

    def step(loss):
        def run(x, y):
            opt.zero_grad()
            loss(x, y).backward()
            opt.step()

        return run

    return {kind: step(loss) for kind, loss in plain_losses(model, guide).items()}


def theirs(ssvae_cls, lr: float):
    """Pyro's example as its main() sets it up: two SVI objects, stepped on every batch."""
    net = ssvae_cls(
        z_dim=50,
        hidden_layers=[500],
        use_cuda=False,
        config_enum="parallel",
        aux_loss_multiplier=46,
    )
    opt = Adam({"lr": lr, "betas": (0.9, 0.999)})
    guide = config_enumerate(net.guide, "parallel", expand=True)
    elbo = TraceEnum_ELBO(max_plate_nesting=1, strict_enumeration_warning=False)
    basic = SVI(net.model, guide, opt, loss=elbo)
    aux = SVI(net.model_classify, net.guide_classify, opt, loss=Trace_ELBO())

    def step(x, y=None):
        return basic.step(x, y) + aux.step(x, y)

    onehot = lambda y: torch.nn.functional.one_hot(y, 10).float()  # noqa: E731
    return {
        "unlabelled": lambda x, y: step(x),
        "labelled": lambda x, y: step(x, onehot(y)),
    }


def timed(fn, x, y) -> float:
    t0 = time.perf_counter()
    fn(x, y)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pyro-example", type=Path, help="the folder of Pyro's ss_vae_M2.py")
    p.add_argument("--plain", action="store_true", help="ours against a plain PyTorch step")
    p.add_argument("--steps", type=int, default=100, help="steps of each kind per implementation")
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--block", type=int, default=10, help="steps in a row before switching")
    p.add_argument("--data-dir")
    args = p.parse_args()
    torch.manual_seed(0)
    data = load_data("mnist", args.data_dir, "none", subset=0)
    if not args.plain and args.pyro_example is None:
        p.error("give --pyro-example, --plain, or both")
    impls = {"ours": ours(4.2e-4, fused=args.plain)}
    if args.pyro_example is not None:
        impls["pyro_example"] = theirs(pyro_ssvae(args.pyro_example), 4.2e-4)
    if args.plain:
        impls["plain"] = plain(4.2e-4)
    g = torch.Generator().manual_seed(0)
    times = {(n, k): [] for n in impls for k in ("unlabelled", "labelled")}
    for kind in ("unlabelled", "labelled"):
        for impl in impls.values():  # a first step of each (Pyro's checks, allocations)
            idx = torch.randint(len(data.train), (args.batch,), generator=g)
            impl[kind](torch.bernoulli(data.train[idx], generator=g), data.labels["train"][idx])
        done = 0
        while done < args.steps:
            for name, impl in impls.items():
                for _ in range(args.block):
                    idx = torch.randint(len(data.train), (args.batch,), generator=g)
                    x = torch.bernoulli(data.train[idx], generator=g)
                    times[name, kind].append(timed(impl[kind], x, data.labels["train"][idx]))
            done += args.block
    median = {f"{n}/{k}": statistics.median(v) for (n, k), v in times.items()}
    kinds = ("unlabelled", "labelled")
    ratio = {
        f"{other}_over_ours": {k: median[f"{other}/{k}"] / median[f"ours/{k}"] for k in kinds}
        for other in impls
        if other != "ours"
    }
    if args.plain:  # the goal's figure: ours / plain, per step kind
        ratio["ours_over_plain"] = {k: median[f"ours/{k}"] / median[f"plain/{k}"] for k in kinds}
    print(
        json.dumps(
            {
                "batch": args.batch,
                "steps": args.steps,
                "threads": torch.get_num_threads(),
                "median_seconds_per_step": median,
                **ratio,
                "pyro": pyro.__version__,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
