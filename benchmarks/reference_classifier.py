"""Trains the reference classifier of label fidelity (``ppl_vae.analysis.fidelity``): a small
conv net on all 60,000 labelled MNIST training images (gray), scored on the 10,000 test images.
Prints JSON (test accuracy, seconds) and saves the net to ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/reference_classifier.py      # to runs/reference/, ~5 min
    python benchmarks/reference_classifier.py --epochs 1 --subset 2000 --out /tmp/ref.pt  # smoke
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/reference/mnist_convnet.pt")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    a = p.parse_args(argv)

    from ppl_vae import load_data
    from ppl_vae.analysis.fidelity import save_reference, train_reference

    data = load_data("mnist", a.data_dir, "none", a.subset, valid_size=0)
    t0 = time.perf_counter()
    net, accuracy = train_reference(
        data.train,
        data.labels["train"],
        data.test,
        data.labels["test"],
        epochs=a.epochs,
        seed=a.seed,
    )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    save_reference(a.out, net, accuracy)
    doc = {"out": a.out, "train_images": len(data.train), "epochs": a.epochs}
    doc |= {"test_images": len(data.test), "test_accuracy": accuracy}
    doc["seconds"] = time.perf_counter() - t0
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
