"""``bdmc_run``: the BDMC sandwich of a trained run on data simulated from its own model.

``n`` points (x, z) are drawn from the run's model at ``seed``; for each number of annealing
steps, forward AIS from the guide gives a lower bound and reverse AIS from z an upper bound on
each log p(x). ``bdmc.json`` gets the means and standard errors, the gap upper - lower and the
per-point values; ``bdmc.png`` the picture (``reports.sandwich``). Batches of points are
shared out over torchrun's processes as ``evaluate`` shares them, each batch from its own seed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..bounds.ais import check_counts
from ..bounds.bdmc import bdmc
from ..bounds.simulate import simulate
from ..core.heartbeat import Heartbeat
from ..core.rng import derive_seed, forked_rng
from ..distributed import SINGLE, World, all_gather
from ..layout import BDMC_JSON, BDMC_PNG
from ..provenance import record, utc_now
from ..storage import write_json
from .state import load_scored


def _mean_se(v: torch.Tensor) -> tuple[float, float]:
    v = v.double()
    se = (v.std() / len(v) ** 0.5).item() if len(v) > 1 else float("nan")
    return v.mean().item(), se


def bdmc_run(
    run_dir: str | Path,
    n: int = 100,
    steps: Sequence[int] = (100,),
    *,
    num_chains: int = 16,
    num_leapfrog: int = 2,
    start: str = "q",
    schedule: str = "sigmoid",
    batch_size: int = 100,
    seed: int = 0,
    device: str | torch.device = "cpu",
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    progress: bool = False,
    world: World = SINGLE,
) -> dict[str, Any]:
    """Writes ``bdmc.json`` and ``bdmc.png`` into the run dir (or ``out``); returns the JSON."""
    check_counts(n=n, batch_size=batch_size)
    steps = sorted({int(t) for t in steps})
    check_counts(**{f"steps[{i}]": t for i, t in enumerate(steps)})
    started = utc_now()
    run, scored, _ = load_scored(run_dir, data_dir, device, world, what="bdmc")
    with forked_rng(run.device, derive_seed(seed, 0)):
        x, z = simulate(run.model, n)
    settings = dict(
        num_chains=num_chains, num_leapfrog=num_leapfrog, start=start, schedule=schedule
    )
    records = []
    starts = range(0, n, batch_size)[world.rank :: world.size]
    # the work is about proportional to the annealing steps: timed on the first batch
    total, done = sum(steps) * len(starts), 0
    show = progress and world.is_main
    beat = Heartbeat("bdmc", progress=show, enabled=world.is_main)
    detail = f"{n} points x {num_chains} chains x T = {', '.join(map(str, steps))}, both ways"
    for t in steps:
        t0 = time.perf_counter()
        parts = {}
        bar = tqdm(starts, desc=f"bdmc T={t}", disable=not show)
        for s in bar:
            sl = slice(s, s + batch_size)
            with forked_rng(run.device, derive_seed(seed, t, s)):
                r = bdmc(
                    run.model, run.guide, x[sl], {k: v[sl] for k, v in z.items()}, t, **settings
                )
            parts[s] = (
                r.lower,
                r.upper,
                r.forward.acceptance,
                r.forward.nonfinite + r.reverse.nonfinite,
            )
            done += t
            beat.estimate(beat.elapsed() * total / done, detail)
            beat.beat(done / total)
        merged = {}
        for shard in all_gather(parts, world):
            merged.update(shard)
        cols = [torch.cat([merged[s][i].cpu() for s in sorted(merged)]) for i in range(4)]
        lower, upper, acc, bad = cols
        gap = upper - lower
        records.append(
            {
                "steps": t,
                **{
                    f"{k}_{w}": v
                    for k, vals in (("lower", lower), ("upper", upper), ("gap", gap))
                    for w, v in zip(("mean", "stderr"), _mean_se(vals), strict=True)
                },
                "gap_median": gap.median().item(),
                "gap_max": gap.max().item(),
                "acceptance": acc.mean().item(),
                "nonfinite": int(bad.sum()),
                "seconds": time.perf_counter() - t0,
                "lower": lower.tolist(),
                "upper": upper.tolist(),
            }
        )
    result = {
        "run": str(run.path),
        "n": n,
        "seed": seed,
        "processes": world.size,
        **settings,
        "results": records,
        "provenance": record(
            run.path, started=started, seed=seed, device=run.device, checkpoint=scored
        ),
    }
    if world.is_main:
        folder = Path(out) if out is not None else run.path
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / BDMC_JSON, result)
        from ..reports.sandwich import plot_sandwich

        plot_sandwich(records, folder / BDMC_PNG)
    return result
