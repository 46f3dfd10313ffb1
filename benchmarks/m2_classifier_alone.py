"""The reference M2 must beat: its classifier q(y|x) trained on the labelled points alone.

For each number of labels and label draw, builds models/mnist_m2.toml's data and guide (the
same labelled subset, the same classifier network and initial weights as the M2 run of that
draw), then trains the classifier by cross-entropy on the labelled points only: Adam at the
recipe's learning rate, minibatches of at most the recipe's batch size, new dynamically
binarized bits at every step as M2's classifier sees them. Prints JSON with the test accuracy
after --steps steps (no selection on the test set), mean and spread over the draws.

    python benchmarks/m2_classifier_alone.py --labels 100 1000 --draws 3 --steps 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pyro
import torch

from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import build_data, build_parts

REPO = Path(__file__).resolve().parents[1]


def classifier_alone(labels: int, draw: int, steps: int, data_dir: str | None) -> float:
    """Test accuracy of M2's classifier trained on draw ``draw``'s ``labels`` points alone."""
    recipe = config.load(
        REPO / "models" / "mnist_m2.toml",
        [f"data.labels={labels}", f"data.label_seed={draw}", f"train.seed={draw}"],
    )
    data = build_data(recipe, data_dir)
    pyro.set_rng_seed(recipe.train.seed)
    _, guide = build_parts(recipe, data)
    cond = data.cond["train"]
    # the labelled rows are the labelled points repeated as a block: the first block is each once
    x, y = data.train[cond >= 0][:labels], cond[cond >= 0][:labels]
    net = guide.classifier
    opt = torch.optim.Adam(net.parameters(), lr=recipe.train.lr)
    g = torch.Generator().manual_seed(draw)
    batch = min(recipe.train.batch_size, labels)
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=g)[:batch]
        bits = torch.bernoulli(x[idx], generator=g)
        loss = torch.nn.functional.cross_entropy(net(bits), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return guide.accuracy(data.test, data.labels["test"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--data-dir")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    table = {}
    for n in args.labels:
        acc = [classifier_alone(n, d, args.steps, args.data_dir) for d in range(args.draws)]
        table[str(n)] = {
            "mean": statistics.fmean(acc),
            "sd": statistics.stdev(acc) if len(acc) > 1 else None,
            "draws": acc,
        }
        print(json.dumps({"labels": n, **table[str(n)]}), flush=True)
    result = {"steps": args.steps, "accuracy": table}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
