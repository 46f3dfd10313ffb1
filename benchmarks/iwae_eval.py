"""IWAE-K evaluation speed and memory: ppl_vae.bounds vs a hand-written loop (and RenyiELBO).

Runs IWAE-5000 on 1,000 MNIST test images with the 784-400-20 Bernoulli VAE and prints JSON,
all in one process on the same weights and data:

- images/s, achieved GFLOP/s and peak resident memory (above the process's baseline) for each
  code path. FLOPs are the matrix products of the encoder (once per image) and the decoder
  (once per particle), counted by ``torch.utils.flop_counter`` on the model itself;
- the machine's matmul rate, measured in the same run: the best of float32 GEMMs of a large
  square size and of the decoder's own shape. ``fraction_of_peak`` is achieved / that rate;
- the toolkit's peak memory at K = 100, 1000 and 5000 (it should stay flat).

    python benchmarks/iwae_eval.py                      # the full figure (about two minutes)
    python benchmarks/iwae_eval.py --n 50 --k 500       # a quick check
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import math
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pyro
import torch
from pyro.infer import RenyiELBO
from torch.nn.functional import binary_cross_entropy_with_logits
from torch.utils.flop_counter import FlopCounterMode

import ppl_vae as pv
from ppl_vae._malloc import keep_freed_memory
from ppl_vae.bounds import auto_chunk, evaluate, log_weights


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@contextmanager
def peak_memory(out: dict):
    """Samples the resident set size every 5 ms; stores the peak rise in MiB in out['mib']."""
    base, peak, stop = _rss(), [0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        out["mib"] = max(peak[0] - base, 0) / 2**20


@torch.no_grad()
def plain_iwae(model, guide, x, k, chunk, batch):
    """The reference: the same networks and the same estimator, written out in PyTorch."""
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        loc, scale = guide.loc_scale(xb)
        lse = torch.full((len(xb),), -math.inf, dtype=torch.float64, device=x.device)
        for s in range(0, k, chunk):
            c = min(chunk, k - s)
            eps = torch.randn(c, *loc.shape, device=x.device)
            z = loc + scale * eps
            logits = model.decoder(z)
            log_px = -binary_cross_entropy_with_logits(
                logits, xb.expand_as(logits), reduction="none"
            ).sum(-1)
            log_pz = -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
            log_qz = (-0.5 * eps**2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
            lw = (log_px + log_pz - log_qz).double()
            lse = torch.logaddexp(lse, torch.logsumexp(lw, 0))
        out.append(lse - math.log(k))
    return torch.cat(out)


@torch.no_grad()
def renyi_iwae(model, guide, x, k, batch):
    loss = RenyiELBO(alpha=0, num_particles=k, vectorize_particles=True, max_plate_nesting=1)
    total = 0.0
    with pyro.validation_enabled(False):
        for i in range(0, len(x), batch):
            total += -loss.loss(model, guide, x[i : i + batch])
    return total / len(x)


def matmul_peak(rows: int, device: torch.device, repeats: int = 10) -> dict:
    """The machine's float32 GEMM rate in GFLOP/s: a large square product and the decoder's."""

    def rate(m: int, k: int, n: int) -> float:
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        best = math.inf
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            a @ b
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        return 2 * m * k * n / best / 1e9

    square = 8192 if device.type == "cuda" else 2048
    rates = {
        f"square_{square}": rate(square, square, square),
        "decoder_shape": rate(rows, 400, 784),
    }
    return {**rates, "peak": max(rates.values())}


def flops_per_image(model, guide, x: torch.Tensor, k: int) -> float:
    """Matmul FLOPs of IWAE-k for one image: counted at 2 and 4 particles, then extrapolated."""

    def count(particles: int) -> int:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            log_weights(model, guide, x[:1], particles)
        return counter.get_total_flops()

    two, four = count(2), count(4)
    per_particle = (four - two) / 2
    return two - 2 * per_particle + k * per_particle


def timed(fn, n):
    mem = {}
    t0 = time.perf_counter()
    with peak_memory(mem):
        value = fn()
    seconds = time.perf_counter() - t0
    return value, {"images_per_s": n / seconds, "seconds": seconds, "peak_mib": mem["mib"]}


def load(a) -> tuple:
    device = pv.distributed.resolve_device(a.device)
    if a.run:
        run = pv.load_run(a.run, device=str(device))
        model, guide, x = run.model, run.guide, run.data.test[: a.n]
    else:
        x = pv.load_data("mnist", binarize="dynamic").test[: a.n].to(device)
        model = pv.build_model(784, 20, likelihood="bernoulli", hidden=[400]).to(device)
        guide = pv.build_guide("diagonal", 784, 20, hidden=[400]).to(device)
    return model.eval(), guide.eval(), x


def peak_by_k(a, repeats: int = 3) -> dict:
    """The toolkit's peak memory rise (MiB) per K for one batch of images, k-hat on, as the
    smallest and largest over ``repeats`` fresh processes: the resident set's high-water mark on
    the CPU (Linux's VmHWM, reset just before), allocated memory on a GPU."""
    out = {}
    for k in sorted({100, 1000, a.k}):
        args = [
            sys.executable,
            __file__,
            "--peak-of-k",
            str(k),
            "--n",
            str(a.batch),
            "--batch",
            str(a.batch),
            "--chunk",
            str(a.chunk),
            "--device",
            a.device,
        ]
        args += ["--run", a.run] if a.run else []
        # every block over 64 KiB mmapped and unmapped when freed: the resident set then tracks
        # the memory in use, not what glibc's heap happens to keep
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        peaks = []
        for _ in range(repeats):
            done = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
            peaks.append(json.loads(done.stdout.strip().splitlines()[-1]))
        out[str(k)] = {"min": round(min(peaks), 1), "max": round(max(peaks), 1)}
    return out


def measure_peak(a) -> float:
    model, guide, x = load(a)
    evaluate(model, guide, x[:1], [30])  # code paths (and arviz) warmed up, at little memory
    if x.is_cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        evaluate(model, guide, x, [a.peak_of_k], chunk_size=a.chunk, batch_size=a.batch)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)  # what loading freed goes back
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the kernel's high-water mark of the resident set (VmHWM)
    before = _status_kib("VmRSS")
    evaluate(model, guide, x, [a.peak_of_k], chunk_size=a.chunk, batch_size=a.batch)
    return max(_status_kib("VmHWM") - before, 0) / 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="test images")
    p.add_argument("--k", type=int, default=5000, help="importance samples")
    p.add_argument("--batch", type=int, default=100, help="images per batch")
    p.add_argument("--chunk", type=int, help="particles per chunk (default: the toolkit's)")
    p.add_argument("--run", help="a trained run dir (default: fresh weights; speed is the same)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--renyi", action="store_true", help="also time Pyro's RenyiELBO (slow)")
    p.add_argument("--memory-repeats", type=int, default=3, help="fresh processes per K (0: skip)")
    p.add_argument("--peak-of-k", type=int, help=argparse.SUPPRESS)  # one K, in a child process
    a = p.parse_args()
    torch.manual_seed(0)
    if a.peak_of_k:  # glibc's default allocator here, so that freed memory leaves the process
        print(json.dumps(measure_peak(a)))
        return
    keep_freed_memory()
    model, guide, x = load(a)
    a.chunk = a.chunk or auto_chunk(a.batch, x.device)
    report = {
        "n": a.n,
        "k": a.k,
        "chunk": a.chunk,
        "batch": a.batch,
        "device": str(x.device),
        "threads": torch.get_num_threads(),
    }
    report["matmul_gflops"] = matmul_peak(a.chunk * a.batch, x.device)
    flops = flops_per_image(model, guide, x, a.k) * a.n
    report["gflop"] = flops / 1e9
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def run(fn):
        def timed_fn():
            value = fn()
            sync()
            return value

        return timed(timed_fn, a.n)

    ours, report["ppl_vae"] = run(
        lambda: evaluate(model, guide, x, [a.k], chunk_size=a.chunk, batch_size=a.batch, khat=False)
    )
    plain, report["plain_loop"] = run(lambda: plain_iwae(model, guide, x, a.k, a.chunk, a.batch))
    report["ppl_vae"]["iwae"] = ours.iwae[:, 0].mean().item()
    report["plain_loop"]["iwae"] = plain.mean().item()
    if a.renyi:
        value, report["pyro_renyi_elbo"] = run(lambda: renyi_iwae(model, guide, x, a.k, a.batch))
        report["pyro_renyi_elbo"]["iwae"] = value
    for path in ("ppl_vae", "plain_loop", "pyro_renyi_elbo"):
        if path in report:
            r = report[path]
            r["gflops"] = flops / r["seconds"] / 1e9
            r["fraction_of_peak"] = r["gflops"] / report["matmul_gflops"]["peak"]
    report["speed_vs_plain"] = (
        report["ppl_vae"]["images_per_s"] / report["plain_loop"]["images_per_s"]
    )
    if a.memory_repeats:
        report["ppl_vae_peak_mib_by_k"] = peak_by_k(a, a.memory_repeats)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
