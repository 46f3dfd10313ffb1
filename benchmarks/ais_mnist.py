"""AIS against IWAE_K on MNIST, and BDMC sandwiches on data simulated from the same model.

On the first ``--n`` test images of a trained run: IWAE_K for K up to 5000 (``evaluate``) and
AIS at each ``--steps`` count, per image, with the paired difference AIS_T - IWAE_K (mean and
standard error over images) and the wall time of each. On ``--n`` points simulated from the
model: BDMC (forward and reverse AIS) at each ``--bdmc-steps`` count, the gap upper - lower.

Every stage is saved to ``OUT/ais_mnist.json`` (and its per-point values to ``OUT/points.pt``)
as soon as it is done; a rerun skips the stages that are there, and a stage that would end
after ``--until`` (UTC, HH:MM) is skipped, its estimate printed.

    python benchmarks/ais_mnist.py RUN --out /tmp/ais --n 100 --steps 100 1000 --bdmc-steps 10 100
    python benchmarks/ais_mnist.py RUN --out /tmp/ais --figures-only --figures docs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import torch

from ppl_vae.bounds import evaluate
from ppl_vae.bounds.ais import ais
from ppl_vae.bounds.bdmc import bdmc
from ppl_vae.bounds.simulate import simulate
from ppl_vae.runs.run import load_run

KS = [1, 10, 100, 1000, 5000]


def paired(a: torch.Tensor, b: torch.Tensor) -> dict:
    """Mean and standard error over points of a - b."""
    d = (a - b).double()
    return {"mean": d.mean().item(), "stderr": (d.std() / len(d) ** 0.5).item()}


def summary(v: torch.Tensor) -> dict:
    v = v.double()
    return {"mean": v.mean().item(), "stderr": (v.std() / len(v) ** 0.5).item()}


class Stages:
    """The results so far, saved after every stage; stages are skipped past the deadline."""

    def __init__(self, out: Path, until: str | None):
        self.out = out
        self.json = out / "ais_mnist.json"
        self.pt = out / "points.pt"
        self.results = json.loads(self.json.read_text()) if self.json.exists() else {}
        self.points = torch.load(self.pt) if self.pt.exists() else {}
        self.until = until
        self.cost_per_step: float | None = self.results.get("_seconds_per_step_per_point")

    def fits(self, name: str, steps: int, points: int) -> bool:
        if self.until is None or self.cost_per_step is None:
            return True
        hh, mm = map(int, self.until.split(":"))
        now = dt.datetime.now(dt.UTC)
        end = now.replace(hour=hh, minute=mm, second=0)
        need = self.cost_per_step * steps * points
        ok = now + dt.timedelta(seconds=need) <= end
        if not ok:
            print(f"skipping {name}: about {need:.0f} s needed, deadline {self.until} UTC")
        return ok

    def save(self, name: str, result: dict, points: dict) -> None:
        self.results[name] = result
        self.points.update({f"{name}/{k}": v for k, v in points.items()})
        torch.save(self.points, self.pt)
        self.json.write_text(json.dumps(self.results, indent=2))
        print(name, json.dumps(result), flush=True)


def figures(st: Stages, docs: Path) -> list[Path]:
    """``ais_sandwich.png`` (the BDMC runs) and ``ais_vs_iwae.png`` (the paired differences)."""
    from ppl_vae.reports.figures import figure, finish
    from ppl_vae.reports.sandwich import plot_sandwich

    docs.mkdir(parents=True, exist_ok=True)
    paths = []
    rows = [
        {
            "steps": int(k[len("bdmc_T") :].split("/")[0]),
            "lower": v.tolist(),
            "upper": st.points[k.replace("/lower", "/upper")].tolist(),
        }
        for k, v in st.points.items()
        if k.startswith("bdmc_T") and k.endswith("/lower")
    ]
    if rows:
        paths.append(docs / "ais_sandwich.png")
        plot_sandwich(rows, paths[-1])
    ais_runs = sorted(
        (int(k[len("ais_T") :]), v) for k, v in st.results.items() if k.startswith("ais_T")
    )
    if ais_runs:
        fig, ((ax,),) = figure(1, 1, width=5.5, height=3.6)
        for i, (t, res) in enumerate(ais_runs):
            d = [res[f"minus_iwae_K={k}"] for k in KS]
            shift = 1 + 0.08 * (i - (len(ais_runs) - 1) / 2)  # side by side, not on top
            ax.errorbar(
                [k * shift for k in KS],
                [r["mean"] for r in d],
                yerr=[2 * r["stderr"] for r in d],
                marker="o",
                capsize=3,
                color=f"C{i}",
                label=f"AIS, T = {t}",
            )
        ax.axhline(0, color="k", lw=0.8)
        ax.axhline(1, color="k", ls=":", lw=0.8, label="1 nat")
        ax.set_xscale("log")
        ax.set_xlabel("IWAE particles K")
        ax.set_ylabel("AIS - IWAE_K, nats (mean, 2 s.e.)")
        ax.set_title(f"MNIST, {len(st.points['iwae/iwae'])} test images")
        ax.legend(fontsize=8)
        paths.append(docs / "ais_vs_iwae.png")
        finish(fig, paths[-1])
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 3000])
    p.add_argument("--bdmc-steps", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--leapfrog", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--until", help="UTC HH:MM: skip a stage that would end later")
    p.add_argument("--figures", help="draw the figures into this folder (e.g. docs) at the end")
    p.add_argument("--figures-only", action="store_true", help="only draw them from OUT")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    st = Stages(out, a.until)
    if a.figures_only:
        print(json.dumps([str(q) for q in figures(st, Path(a.figures or "docs"))]))
        return
    run = load_run(a.run)
    model, guide = run.model, run.guide
    x = run.data.split("test")[: a.n]
    st.results["_settings"] = vars(a) | {"threads": torch.get_num_threads()}

    if "iwae" not in st.results:
        t0 = time.perf_counter()
        b = evaluate(model, guide, x, KS, batch_size=a.n, seed=a.seed, khat=False)
        sec = time.perf_counter() - t0
        iw = b.iwae
        st.save(
            "iwae",
            {f"K={k}": summary(iw[:, i]) for i, k in enumerate(KS)} | {"seconds": sec},
            {"iwae": iw},
        )
    iw = st.points["iwae/iwae"]

    jobs = [("ais", t) for t in a.steps] + [("bdmc", t) for t in a.bdmc_steps]
    jobs.sort(key=lambda j: j[1] * (2 if j[0] == "bdmc" else 1))
    for kind, t in jobs:
        name = f"{kind}_T{t}"
        if name in st.results:
            continue
        pilot = min(t, max(20, t // 10))
        if not st.fits(name, (2 if kind == "bdmc" else 1) * t + pilot, a.n):
            continue
        torch.manual_seed(a.seed + t)
        t0 = time.perf_counter()
        if kind == "ais":
            r = ais(model, guide, x, t, a.chains, num_leapfrog=a.leapfrog)
            sec = time.perf_counter() - t0
            res = {
                "log_p": summary(r.log_p),
                "stderr_per_point_mean": r.stderr.mean().item(),
                "acceptance": r.acceptance.mean().item(),
                "nonfinite": int(r.nonfinite.sum()),
                "seconds": sec,
            }
            res |= {f"minus_iwae_K={k}": paired(r.log_p, iw[:, i]) for i, k in enumerate(KS)}
            st.save(name, res, {"log_p": r.log_p, "stderr": r.stderr})
        else:
            torch.manual_seed(a.seed + 12345)  # the same simulated points at every T
            xs, zs = simulate(model, a.n)
            torch.manual_seed(a.seed + t)
            r = bdmc(model, guide, xs, zs, t, a.chains, num_leapfrog=a.leapfrog)
            sec = time.perf_counter() - t0
            res = {
                "lower": summary(r.lower),
                "upper": summary(r.upper),
                "gap": summary(r.gap),
                "gap_median": r.gap.median().item(),
                "gap_max": r.gap.max().item(),
                "acceptance": r.forward.acceptance.mean().item(),
                "nonfinite": int(r.forward.nonfinite.sum() + r.reverse.nonfinite.sum()),
                "seconds": sec,
            }
            st.save(name, res, {"lower": r.lower, "upper": r.upper})
        steps = (2 if kind == "bdmc" else 1) * t + pilot
        st.cost_per_step = sec / (steps * a.n)
        st.results["_seconds_per_step_per_point"] = st.cost_per_step
        st.json.write_text(json.dumps(st.results, indent=2))
    if a.figures:
        print(json.dumps([str(q) for q in figures(st, Path(a.figures))]))


if __name__ == "__main__":
    main()
