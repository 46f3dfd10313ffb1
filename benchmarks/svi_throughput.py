"""SVI training throughput against hand-written PyTorch loops, in the same process.

All train the 784-400-20 Bernoulli VAE with Adam on the same binarized MNIST images and the
same batch size, one epoch each, the code paths taking turns so that machine noise hits them
alike (the best of ``--repeats`` epochs counts):

- ``ppl_vae_fit``: ``ppl_vae.fit``, i.e. Pyro SVI on ``Trace_ELBO`` with everything ``fit`` does
  around it (the data check, the loop, the progress bookkeeping);
- ``plain_loop``: the loop users write: the same networks and the same single-sample ELBO in
  PyTorch, ``binary_cross_entropy_with_logits`` and ``torch.optim.Adam`` with its defaults;
- ``plain_loop_same_kernels``: that loop with the two kernels the toolkit uses (the fused
  Bernoulli log-likelihood and one fused Adam), so that what is left is Pyro's own overhead.

Prints JSON: images/s and ms per step for each, and the toolkit's slowdown against each loop.

    python benchmarks/svi_throughput.py                   # batch 128 and 1024, a few minutes
    python benchmarks/svi_throughput.py --images 5000 --repeats 2     # a quick check
"""

from __future__ import annotations

import argparse
import json
import time

import pyro
import torch
from torch.nn.functional import binary_cross_entropy_with_logits, softplus

import ppl_vae as pv
from ppl_vae._malloc import keep_freed_memory
from ppl_vae.model.bernoulli import bernoulli_log_prob_sum


def standard_log_px(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def plain_elbo_step(model, guide, opt, xb: torch.Tensor, log_px=standard_log_px) -> None:
    """One step of the single-sample ELBO written out by hand: no Pyro."""
    loc, raw = guide.encoder(xb).split(guide.z_dim, -1)
    scale = softplus(raw) + guide.min_scale
    eps = torch.randn_like(loc)
    z = loc + scale * eps
    log_pz = -0.5 * (z**2).sum(-1)
    log_qz = (-0.5 * eps**2 - scale.log()).sum(-1)  # the 2 pi terms cancel
    loss = -(log_px(model.decoder(z), xb) + log_pz - log_qz).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()


def plain_loop(
    model, guide, x: torch.Tensor, batch: int, lr: float, log_px=standard_log_px, **adam
) -> None:
    """One epoch of the same ELBO written out by hand: no Pyro."""
    opt = torch.optim.Adam([*model.parameters(), *guide.parameters()], lr=lr, **adam)
    perm = torch.randperm(len(x), device=x.device)
    for i in range(0, len(x), batch):
        plain_elbo_step(model, guide, opt, x[perm[i : i + batch]], log_px)


def build(device):
    pyro.set_rng_seed(0)
    model = pv.build_model(784, 20, likelihood="bernoulli", hidden=[400]).to(device)
    return model, pv.build_guide("diagonal", 784, 20, hidden=[400]).to(device)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=0, help="images per timed epoch (0: all)")
    p.add_argument("--batch", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--repeats", type=int, default=5, help="best of this many epochs")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    a = p.parse_args()
    keep_freed_memory()
    device = pv.distributed.resolve_device(a.device)
    x = pv.load_data("mnist", binarize="static").train[: a.images or None].to(device)
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    paths = {
        "ppl_vae_fit": lambda m, g, b: pv.fit(
            m, g, x, epochs=1, batch_size=b, device=a.device, progress=False
        ),
        "plain_loop": lambda m, g, b: plain_loop(m, g, x, b, 1e-3),
        "plain_loop_same_kernels": lambda m, g, b: plain_loop(
            m, g, x, b, 1e-3, bernoulli_log_prob_sum, **fused
        ),
    }
    report = {
        "images": len(x),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "repeats": a.repeats,
        "results": [],
    }
    for batch in a.batch:
        times = {name: [] for name in paths}
        for _ in range(a.repeats):  # interleaved, so that machine noise hits all alike
            for name, run in paths.items():
                model, guide = build(device)
                _sync(device)
                t0 = time.perf_counter()
                run(model, guide, batch)
                _sync(device)
                times[name].append(time.perf_counter() - t0)
        best = {k: min(v) for k, v in times.items()}
        steps = -(-len(x) // batch)
        row = {"batch": batch}
        for name, seconds in best.items():
            row[name] = {"images_per_s": len(x) / seconds, "ms_per_step": 1e3 * seconds / steps}
        row["slowdown_vs_plain_loop"] = best["ppl_vae_fit"] / best["plain_loop"]
        row["slowdown_vs_same_kernels"] = best["ppl_vae_fit"] / best["plain_loop_same_kernels"]
        report["results"].append(row)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
