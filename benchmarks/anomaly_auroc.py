"""AUROC of IWAE log p(x) as an anomaly score: normal data against anomalies.

Reads two ``scores.csv`` files written by ``ppl-vae evaluate RUN --per-datapoint`` (the model's
own test data, and another dataset scored by the same model with ``--dataset``) and prints
JSON: the AUROC of the score -log p(x) for telling the second from the first (1: perfectly
separated, 0.5: chance, below 0.5: the anomalies look *more* likely) and each set's mean log p(x).

    python benchmarks/anomaly_auroc.py RUN/anomaly_mnist/scores.csv \\
        RUN/eval_fashion_mnist/scores.csv --names mnist fashion_mnist --figure docs/anomaly.png
"""

from __future__ import annotations

import argparse
import json

from ppl_vae.reports.anomaly import read_scores, separation
from ppl_vae.reports.plots import plot_scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("normal", help="scores.csv of the data the model was trained on")
    p.add_argument("anomalies", help="scores.csv of the other data")
    p.add_argument("--names", nargs=2, default=["normal", "anomalies"], help="two labels")
    p.add_argument("--column", default="log_p", help="score column (default: log_p)")
    p.add_argument("--figure", help="also write overlaid histograms of log p(x) to this PNG")
    a = p.parse_args()
    log_p_in, log_p_out = read_scores(a.normal, a.column), read_scores(a.anomalies, a.column)
    result = {"normal": a.names[0], "anomalies": a.names[1], "column": a.column}
    result.update(separation(log_p_in, log_p_out))
    if a.figure:
        title = f"{a.names[0]} model: {a.names[1]} vs {a.names[0]}, AUROC {result['auroc']:.3f}"
        scores = dict(zip(a.names, (log_p_in, log_p_out), strict=True))
        plot_scores(scores, a.figure, title, f"{a.column} (nats)")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
