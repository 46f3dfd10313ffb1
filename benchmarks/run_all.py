"""The speed suite in one command: every speed benchmark, each in its own process, one at a time.

Runs ``svi_throughput.py``, ``iwae_eval.py``, ``objective_step_time.py``, ``step_speed.py``,
``checkpoint_cost.py``, ``threads.py``, ``ais_speed.py``, ``readme_job.py`` (the README's
main job) and ``ais_accuracy.py`` (on the linear-Gaussian truth, against the plain HMC-AIS),
writes each one's JSON to
``OUT/<name>.json`` and prints a summary of the figures the performance goals are stated in
(docs/performance.md), dated, with the machine's float32 GEMM rate. Each script times its
reference (a hand-written PyTorch loop, the GEMM rate) in the same process, so the ratios hold
on a noisy machine better than the absolute figures; run on a quiet one.

    python benchmarks/run_all.py                        # the full figures (about 12 minutes)
    python benchmarks/run_all.py --quick                # a smoke run (about a minute)
    python benchmarks/run_all.py --device cuda          # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

AIS_SAME = ["--leapfrog", "2", "--accept", "0.65", "--schedules", "sigmoid"]
AIS_SAME += ["--plain-leapfrog", "2", "10", "--plain-step", "0.05", "0.1", "0.2", "0.4"]
# name: (full arguments, --quick arguments); --device is added where the script takes it
SUITE = {
    "svi_throughput": ([], ["--images", "2000", "--repeats", "1"]),
    "iwae_eval": ([], ["--n", "20", "--k", "200", "--batch", "10", "--memory-repeats", "1"]),
    "objective_step_time": ([], ["--steps", "3", "--repeats", "1"]),
    "step_speed": ([], ["--steps", "5", "--repeats", "1"]),
    "checkpoint_cost": ([], ["--repeats", "2"]),
    "threads": ([], ["--steps", "3", "--repeats", "1"]),
    "ais_speed": (["--n", "100", "--steps", "20"], ["--n", "10", "--steps", "3", "--repeats", "1"]),
    # ours at its defaults (L = 2, step sizes from the pilot) against the plain HMC-AIS at
    # every fixed step size of the grid, the same T and chains, on the linear-Gaussian truth
    "readme_job": ([], ["--quick"]),
    "ais_accuracy": (
        [*AIS_SAME, "--n", "100", "--steps", "200", "--chains", "8", "--repeats", "2"],
        [*AIS_SAME, "--n", "12", "--steps", "15", "--chains", "4", "--repeats", "1"],
    ),
}
ON_DEVICE = {"svi_throughput", "iwae_eval"}


def summary(results: dict) -> dict:
    """The figures the goals are stated in, from the scripts' JSON."""
    out = {}
    svi = results.get("svi_throughput")
    if svi:
        for row in svi["results"]:
            b = row["batch"]
            out[f"svi_slowdown_vs_plain_loop_batch{b}"] = round(row["slowdown_vs_plain_loop"], 3)
            out[f"svi_images_per_s_batch{b}"] = round(row["ppl_vae_fit"]["images_per_s"])
    steps = results.get("step_speed")
    if steps:
        for name, row in steps["results"].items():
            for path in ("pyro_eager", "replayed"):
                out[f"{path}_step_vs_plain_{name}"] = round(row["vs_plain"][path], 3)
    ev = results.get("iwae_eval")
    if ev:
        out["iwae_fraction_of_matmul_peak"] = round(ev["ppl_vae"]["fraction_of_peak"], 3)
        out["iwae_plain_loop_fraction_of_peak"] = round(ev["plain_loop"]["fraction_of_peak"], 3)
        out["iwae_images_per_s"] = round(ev["ppl_vae"]["images_per_s"], 1)
        out["iwae_speed_vs_plain_loop"] = round(ev["speed_vs_plain"], 2)
        out["iwae_peak_mib_by_k"] = ev["ppl_vae_peak_mib_by_k"]
    threads = results.get("threads")
    if threads:
        for what in ("batch20", "batch128", "eval"):
            out[f"threads_2_over_1_{what}"] = round(threads["results"][f"{what}_2_over_1"], 3)
    ais = results.get("ais_speed")
    if ais:
        out["ais_speed_vs_plain_same_step_size"] = ais["speed_vs_plain"]
    job = results.get("readme_job")
    if job:
        out["readme_train_seconds"] = job["train_seconds"]
        out["readme_seconds_per_epoch"] = job["seconds_per_epoch"]
        out["readme_evaluate_seconds"] = job["evaluate_seconds"]
    acc = results.get("ais_accuracy")
    if acc:
        out["ais_time_vs_plain_at_equal_variance"] = round(
            acc["ppl_vae_time_vs_plain_at_equal_variance"], 3
        )
    return out


def machine(device: str) -> dict:
    """When and where: the date, the processor, torch's threads and the machine's float32 GEMM
    rate (``iwae_eval.matmul_peak``), so a reader can scale the times to their own machine."""
    import datetime
    import platform

    import torch
    from iwae_eval import matmul_peak

    import ppl_vae as pv

    dev = pv.distributed.resolve_device(device)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "matmul_gflops": round(matmul_peak(4096, dev)["peak"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/benchmarks", help="folder for the JSON results")
    p.add_argument("--quick", action="store_true", help="small sizes: checks that all run")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--run", help="a trained run dir for iwae_eval (default: fresh weights)")
    p.add_argument("--only", nargs="+", choices=list(SUITE), help="run only these")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in a.only or SUITE:
        full, quick = SUITE[name]
        args = [sys.executable, str(HERE / f"{name}.py"), *(quick if a.quick else full)]
        if name in ON_DEVICE:
            args += ["--device", a.device]
        if name == "iwae_eval" and a.run:
            args += ["--run", a.run]
        if name == "readme_job":
            args += ["--out", str(out / "readme_run")]
        t0 = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            print(f"run_all: {name} failed (exit {done.returncode})", file=sys.stderr)
            return 1
        text = done.stdout[done.stdout.index("{") :]  # the JSON report follows any log lines
        results[name] = json.loads(text)
        (out / f"{name}.json").write_text(json.dumps(results[name], indent=2) + "\n")
        print(
            f"{name}: {time.perf_counter() - t0:.0f} s -> {out / (name + '.json')}", file=sys.stderr
        )
    figures = {**machine(a.device), **summary(results)}
    (out / "summary.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
