"""SVI training throughput against a hand-written PyTorch loop, in the same process.

Both train the 784-400-20 Bernoulli VAE with Adam on the same binarized MNIST images and the
same batch size: ``ppl_vae.fit`` (Pyro SVI, Trace_ELBO) and a plain loop that computes the same
networks and the same single-sample ELBO by hand. Prints JSON: images/s for each and their
ratio, per batch size.

    python benchmarks/svi_throughput.py                   # batch 128 and 1024
    python benchmarks/svi_throughput.py --images 5000     # a quicker check
"""

from __future__ import annotations

import argparse
import json
import time

import pyro
import torch
from torch.nn.functional import binary_cross_entropy_with_logits, softplus

import ppl_vae as pv


def plain_loop(model, guide, x: torch.Tensor, batch: int, lr: float) -> None:
    """One epoch of the same ELBO written out by hand: no Pyro."""
    opt = torch.optim.Adam([*model.parameters(), *guide.parameters()], lr=lr)
    perm = torch.randperm(len(x))
    for i in range(0, len(x), batch):
        xb = x[perm[i : i + batch]]
        loc, raw = guide.encoder(xb).split(guide.z_dim, -1)
        scale = softplus(raw) + guide.min_scale
        eps = torch.randn_like(loc)
        z = loc + scale * eps
        log_px = -binary_cross_entropy_with_logits(model.decoder(z), xb, reduction="none").sum(-1)
        log_pz = -0.5 * (z**2).sum(-1)
        log_qz = (-0.5 * eps**2 - scale.log()).sum(-1)  # the 2 pi terms cancel
        loss = -(log_px + log_pz - log_qz).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()


def build():
    pyro.set_rng_seed(0)
    return (pv.build_model(20, 784, "bernoulli", hidden=[400]),
            pv.build_guide("diagonal", 784, 20, hidden=[400]))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=20000, help="images per timed epoch")
    p.add_argument("--batch", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--repeats", type=int, default=3, help="best of this many epochs")
    a = p.parse_args()
    x = pv.load_data("mnist", binarize="static").train[: a.images]
    report = {"images": len(x), "threads": torch.get_num_threads(), "results": []}
    for batch in a.batch:
        times = {"ppl_vae_fit": [], "plain_loop": []}
        for _ in range(a.repeats):  # interleaved, so that machine noise hits both alike
            model, guide = build()
            t0 = time.perf_counter()
            pv.fit(model, guide, x, epochs=1, batch_size=batch, progress=False)
            times["ppl_vae_fit"].append(time.perf_counter() - t0)
            model, guide = build()
            t0 = time.perf_counter()
            plain_loop(model, guide, x, batch, 1e-3)
            times["plain_loop"].append(time.perf_counter() - t0)
        best = {k: min(v) for k, v in times.items()}
        report["results"].append({
            "batch": batch,
            **{f"{k}_images_per_s": len(x) / s for k, s in best.items()},
            "slowdown_vs_plain": best["ppl_vae_fit"] / best["plain_loop"],
        })  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
