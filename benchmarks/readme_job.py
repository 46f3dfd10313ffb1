"""The README's main job, timed: ``ppl-vae train models/mnist_bernoulli_mlp.toml`` then
``ppl-vae evaluate`` on it, as the README runs them, each in its own process. Prints JSON with
the wall seconds of each, the seconds per epoch, the test ELBO and the largest K's IWAE
estimate (``run_all.py`` dates them and puts the machine's GEMM rate beside them).

    python benchmarks/readme_job.py --out runs/readme_job            # about three minutes
    python benchmarks/readme_job.py --quick --out runs/readme_quick  # seconds
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "models" / "mnist_bernoulli_mlp.toml"
QUICK_TRAIN = ["--set", "train.epochs=1", "--set", "data.subset=1000"]
QUICK_EVAL = ["--k", "1", "10", "--subset", "100"]


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/readme_job", help="the run dir (replaced)")
    p.add_argument("--quick", action="store_true", help="one epoch on 1,000 images")
    p.add_argument("--data-dir")
    a = p.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    cli = [sys.executable, "-m", "ppl_vae"]
    data = ["--data-dir", a.data_dir] if a.data_dir else []
    train = [*cli, "train", str(RECIPE), "--out", str(out), "--no-progress", *data]
    train_s = timed(train + (QUICK_TRAIN if a.quick else []))
    evaluate = [*cli, "evaluate", str(out), "--no-progress", *data]
    eval_s = timed(evaluate + (QUICK_EVAL if a.quick else []))
    summary = json.loads((out / "summary.json").read_text())
    found = json.loads((out / "eval.json").read_text())["estimates"]
    iwae = max((e for e in found if e["estimator"] == "iwae"), key=lambda e: e["k"])
    result = {
        "quick": a.quick,
        "train_seconds": round(train_s, 1),
        "epochs": summary["epochs"],
        "seconds_per_epoch": round(summary["seconds_per_epoch"], 2),
        "test_elbo": round(summary["test_elbo"], 2),
        "evaluate_seconds": round(eval_s, 1),
        "iwae_k": iwae["k"],
        "iwae": round(iwae["mean"], 2),
        "iwae_stderr": round(iwae["stderr"], 2),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
