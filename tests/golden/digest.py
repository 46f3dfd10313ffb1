"""Digests of what a run writes, through the command line only, so that the same script runs on
any version of ppl_vae: ``python tests/golden/digest.py OUT_DIR`` prints them as JSON.

Three runs, trained one epoch and evaluated with per-point scores: the linear-Gaussian VAE
(Gaussian likelihood, learned scale), the two-layer hierarchical VAE and M2 (labels, a summed
label), on synthetic data or on small subsets of MNIST when ``$PPL_VAE_DATA`` holds it. The
digests are SHA-256 of ``scores.csv`` (less its provenance comment), of ``eval.json`` without its
timings, paths and provenance, of every checkpoint tensor (by name), of the per-point arrays of
``eval.nc`` and of ``compare.csv`` (less the columns on whether an evaluation is current).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
RUNS = {
    "linear_gaussian": (
        "linear_gaussian.toml",
        [
            "train.epochs=1",
            "data.options.n_train=600",
            "data.options.n_test=50",
            "data.valid_size=100",
        ],
    ),
    "hierarchical": (
        "burda_2layer.toml",
        [
            "train.epochs=1",
            "data.subset=300",
            "data.valid_size=100",
            "train.lr_schedule=constant",
            "model.options.z_dims=[6,3]",
            "model.options.hidden=[[16],[8]]",
        ],
    ),
    "m2": (
        "mnist_m2.toml",
        [
            "train.epochs=1",
            "data.subset=400",
            "data.valid_size=100",
            "data.labels=100",
            "model.z_dim=4",
            "model.decoder.hidden=[16]",
            "guide.encoder.hidden=[16]",
            "model.options.classifier_hidden=[16]",
        ],
    ),
}
NEEDS_MNIST = {"hierarchical", "m2"}


PROVENANCE = ("current", "note")  # compare.csv's columns on whether an evaluation is current


def _without(path: Path, columns: tuple[str, ...]) -> bytes:
    """The CSV at ``path`` without ``columns`` (where it has them), as bytes."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, c in enumerate(rows[0]) if c not in columns]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    return buf.getvalue().encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cli(args: list[str]) -> None:
    from ppl_vae.cli import main

    with redirect_stdout(io.StringIO()):
        code = main(args)
    if code:
        raise SystemExit(f"ppl-vae {' '.join(args)} exited with {code}")


def digest_run(name: str, out: Path) -> dict[str, str]:
    recipe, sets = RUNS[name]
    run = out / name
    args = ["train", str(REPO / "models" / recipe), "--out", str(run), "--no-progress"]
    _cli(args + [a for s in sets for a in ("--set", s)])
    _cli(
        [
            "evaluate",
            str(run),
            "--k",
            "1",
            "5",
            "--subset",
            "40",
            "--per-datapoint",
            "--no-progress",
        ]
    )
    _cli(["compare", str(run), "--out", str(out / f"{name}_compare")])
    # the provenance (ppl_vae 0.2: times, versions, the command) is the run's, not its outputs'
    scores = (run / "scores.csv").read_bytes().splitlines(keepends=True)
    found = {"scores.csv": _sha(b"".join(line for line in scores if not line.startswith(b"#")))}
    doc = json.loads((run / "eval.json").read_text())
    for key in ("seconds", "run", "provenance"):
        doc.pop(key, None)
        doc.get("meta", {}).pop(key, None)
    found["eval.json"] = _sha(json.dumps(doc, sort_keys=True).encode())
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    for part in ("model", "guide"):
        for k, v in sorted(state[part].items()):
            found[f"checkpoint.{part}.{k}"] = _sha(v.numpy().tobytes())
    import arviz as az

    nc = az.from_netcdf(run / "eval.nc")
    for group in nc.groups():
        for var, arr in nc[group].data_vars.items():
            found[f"eval.nc.{group}.{var}"] = _sha(arr.values.tobytes())
    found["compare.csv"] = _sha(_without(out / f"{name}_compare" / "compare.csv", PROVENANCE))
    return found


def main(out: str) -> dict[str, dict[str, str]]:
    have_mnist = (Path(os.environ.get("PPL_VAE_DATA", "")) / "MNIST" / "raw").is_dir()
    return {
        name: digest_run(name, Path(out)) for name in RUNS if have_mnist or name not in NEEDS_MNIST
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(main(sys.argv[1]), indent=1, sort_keys=True))
