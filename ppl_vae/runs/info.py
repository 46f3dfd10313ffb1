"""``ppl-vae info RUN``: what a run is, its state, its last checkpoint and each of its results
with whether it is current (``runs.state``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .recipe import load_recipe
from .state import result_files, run_status


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """The record ``ppl-vae info --json`` prints: ``what`` (the recipe's name, model kind,
    prior, likelihood, guide, objective and latent size), ``status`` (``RunStatus.as_dict``)
    and ``results`` (``result_files``)."""
    status = run_status(run_dir)  # first: it refuses a folder that holds no run
    r = load_recipe(run_dir)
    what = {
        "name": r.name,
        "model": r.model.name,
        # the hierarchical kind's layer sizes, bottom first, where its recipe names them
        "z_dim": r.model.options.get("z_dims", r.model.z_dim),
        "prior": r.model.prior,
        "likelihood": r.model.likelihood,
        "guide": r.guide.name,
        "objective": r.objective.name,
        "data": r.data.name,
        "epochs": r.train.epochs,
    }
    return {"what": what, "status": status.as_dict(), "results": result_files(run_dir)}


def format_info(doc: dict[str, Any]) -> str:
    """The record of ``run_info`` as a few lines for people."""
    w, st = doc["what"], doc["status"]
    lines = [
        f"run:        {st['run']}",
        f"what:       {w['name']}: {w['model']} model, z_dim {w['z_dim']}, {w['prior']} prior, "
        f"{w['likelihood']} likelihood, {w['guide']} guide, {w['objective']} objective, "
        f"on {w['data']}",
        f"state:      {st['description']}",
    ]
    ck = st["checkpoint"]
    lines.append(
        f"checkpoint: step {ck['step']}, epoch {ck['epoch']} of {w['epochs']}, "
        f"sha256 {ck['sha256'][:12]}"
        if ck
        else "checkpoint: none yet"
    )
    if not doc["results"]:
        lines.append("results:    none")
    for i, res in enumerate(doc["results"]):
        head = "results:   " if i == 0 else "           "
        at = f"step {res['step']}" if res["step"] is not None else "an unrecorded checkpoint"
        verdict = {True: "current", False: "STALE", None: "unverified"}[res["current"]]
        line = f"{head} {res['file']:<24} {verdict:<10} (scored {at})"
        if res["refresh"]:
            line += f"; refresh: {res['refresh']}"
        lines.append(line)
    return "\n".join(lines)
