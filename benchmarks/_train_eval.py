"""Shared by the comparison scripts: train a recipe and evaluate it through the CLI, timed."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Trained:
    """One run: its summary.json, eval.json estimates, wall times and the commands."""

    summary: dict
    estimates: list[dict]
    train_seconds: float
    eval_seconds: float
    commands: list[str]

    def estimate(self, name: str, k: int) -> dict:
        return next(r for r in self.estimates if r["estimator"] == name and r["k"] == k)


def add_budget_args(p: argparse.ArgumentParser, out: str, k: int, what: str) -> None:
    """The options every comparison shares: budget, evaluation, device and data."""
    p.add_argument("--epochs", type=int, default=20, help=f"the same for every {what}")
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--eval-subset", type=int, default=0, help="score the first N test images")
    p.add_argument("--k", type=int, default=k, help="importance samples for the test bounds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", default=out, help="parent folder of the runs")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a further recipe override for every {what} (repeatable)",
    )


def _run(cmd: list[str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return done.stdout, seconds


def train_and_evaluate(recipe: Path, out: Path, sets: list[str], a) -> Trained:
    """``ppl-vae train recipe --out out --set ...`` then ``ppl-vae evaluate out --k a.k``."""
    sets = [
        f"train.epochs={a.epochs}",
        f"train.seed={a.seed}",
        f"train.device={a.device}",
        f"data.subset={a.subset}",
        *sets,
        *a.set,
    ]
    data = ["--data-dir", a.data_dir] if a.data_dir else []
    train = [
        sys.executable,
        "-m",
        "ppl_vae",
        "train",
        str(recipe),
        "--out",
        str(out),
        "--overwrite",
        "--no-progress",
        *data,
    ]
    train += [arg for s in sets for arg in ("--set", s)]
    stdout, train_seconds = _run(train)
    summary = json.loads(stdout.strip().splitlines()[-1])
    evaluate = [
        sys.executable,
        "-m",
        "ppl_vae",
        "evaluate",
        str(out),
        "--k",
        str(a.k),
        "--json",
        "--no-progress",
        "--device",
        a.device,
        "--seed",
        str(a.seed),
        *data,
    ]
    if a.eval_subset:
        evaluate += ["--subset", str(a.eval_subset)]
    stdout, eval_seconds = _run(evaluate)
    estimates = json.loads(stdout)["estimates"]
    commands = [" ".join(train), " ".join(evaluate)]
    return Trained(summary, estimates, train_seconds, eval_seconds, commands)


def paired_scores(run: Path, baseline: Path, column: str = "log_p") -> tuple[float, float]:
    """Mean and standard error over data points of ``column`` in ``run``'s scores.csv minus the
    same in ``baseline``'s (both scored on the same points, ``evaluate --per-datapoint``)."""
    import torch

    from ppl_vae.bounds.estimators import mean_and_stderr
    from ppl_vae.reports.anomaly import read_scores

    a, b = (read_scores(Path(r) / "scores.csv", column) for r in (run, baseline))
    if len(a) != len(b):
        raise ValueError(f"{run} and {baseline} scored different numbers of points")
    return mean_and_stderr(torch.as_tensor(a - b))


def train_or_resume(recipe: Path, overrides: list[str], out: Path, data_dir=None) -> float:
    """Trains ``recipe`` with ``overrides`` into ``out`` in this process, resuming from its
    checkpoint if a run stopped there, and doing nothing if it finished (has summary.json);
    returns the seconds spent."""
    from ppl_vae.layout import CHECKPOINT, SUMMARY
    from ppl_vae.runs.recipe import load
    from ppl_vae.runs.run import train_recipe

    t0 = time.perf_counter()
    if not (out / SUMMARY).is_file():
        resume = (out / CHECKPOINT).is_file()
        train_recipe(
            load(recipe, overrides),
            out,
            data_dir=data_dir,
            overwrite=not resume,
            resume=resume,
            progress=False,
        )
    return time.perf_counter() - t0
