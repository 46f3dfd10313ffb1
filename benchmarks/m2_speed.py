"""M2 training speed: our model, guide and objective against Pyro's own ss_vae example.

Both train on the same batches of dynamically binarized MNIST images, in one process, with
``pyro.infer.SVI`` and ``pyro.optim.Adam`` (lr 4.2e-4): an unlabelled step (y enumerated,
TraceEnum_ELBO) on ``--batch`` images, and a labelled step (+ the classification loss, weight 46).
Steps alternate between the two implementations in blocks, so that a change of machine load
hits both alike; each reports the median seconds per step. Pyro's example is read from a
fetched copy (``--pyro-example``: the folder holding ss_vae_M2.py and utils/); its visdom
import is stubbed, nothing else of it changes.

    python benchmarks/m2_speed.py --pyro-example /path/to/pyro/examples/vae --steps 100
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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


def pyro_ssvae(folder: Path):
    """Pyro's SSVAE class, imported from the example's own file."""
    sys.modules.setdefault("visdom", types.SimpleNamespace(Visdom=None))
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("ss_vae_M2", folder / "ss_vae_M2.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SSVAE


def ours(lr: float):
    """Our M2 (models/mnist_m2.toml's networks) and one SVI step function per batch kind."""
    model = build_labelled_model(
        784, 50, num_classes=10, label_prior=True, hidden=[500], activation="softplus"
    )
    z = build_guide("diagonal", 794, 50, hidden=[500], activation="softplus")
    guide = build_labelled_guide(z, 784, 10, True, [500], "softplus")
    svi = SVI(model, guide, Adam({"lr": lr}), SemiSupervisedELBO(alpha=46.0))
    return {
        "unlabelled": lambda x, y: svi.step(x, cond=torch.full_like(y, -1)),
        "labelled": lambda x, y: svi.step(x, cond=y),
    }


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
    p.add_argument("--pyro-example", required=True, type=Path)
    p.add_argument("--steps", type=int, default=100, help="steps of each kind per implementation")
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--block", type=int, default=10, help="steps in a row before switching")
    p.add_argument("--data-dir")
    args = p.parse_args()
    torch.manual_seed(0)
    data = load_data("mnist", args.data_dir, "none", subset=0)
    impls = {"ours": ours(4.2e-4), "pyro_example": theirs(pyro_ssvae(args.pyro_example), 4.2e-4)}
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
    ratio = {
        k: median[f"pyro_example/{k}"] / median[f"ours/{k}"] for k in ("unlabelled", "labelled")
    }
    print(
        json.dumps(
            {
                "batch": args.batch,
                "steps": args.steps,
                "threads": torch.get_num_threads(),
                "median_seconds_per_step": median,
                "pyro_over_ours": ratio,
                "pyro": pyro.__version__,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
