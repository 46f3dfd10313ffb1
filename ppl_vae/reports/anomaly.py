"""Anomaly scores: per-data-point IWAE estimates of log p(x) on disk, and the AUROC they reach.

A model of one dataset gives low log p(x) to data unlike it; with s(x) = -log p(x) as the
anomaly score, the AUROC is the chance that a random anomaly scores above a random normal point,

    AUROC = P(s(x_out) > s(x_in)) + P(s(x_out) = s(x_in)) / 2
          = (R_out - n_out (n_out + 1) / 2) / (n_out n_in),

with R_out the sum of the anomalies' ranks among all n_in + n_out scores (ties get their mean
rank): the Mann-Whitney U statistic over n_out n_in.

References: Mann & Whitney (1947); Hanley & McNeil (1982), The meaning and use of the area under
a receiver operating characteristic (ROC) curve.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..bounds.results import write_scores  # noqa: F401  (kept importable from here)
from ..core.errors import InputError


def read_scores(path: str | Path, column: str = "log_p") -> np.ndarray:
    """One column of a scores CSV (default: ``log_p``) as float64."""
    with open(path, newline="") as f:  # past the comment lines (provenance) at the top
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    if rows and column not in rows[0]:
        raise InputError(f"{path} has no column {column!r}; it has {', '.join(rows[0])}.")
    return np.array([float(r[column]) for r in rows], dtype=np.float64)


def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``v``, ties sharing their mean rank."""
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], len(v)]
    mean_rank = (starts + ends + 1) / 2  # ranks starts+1 .. ends, averaged
    ranks = np.empty(len(v))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """P(s_out > s_in) + P(s_out = s_in) / 2 for anomaly scores s (higher = more anomalous) of
    normal data ``scores_in`` and anomalies ``scores_out``; 1 separates them perfectly, 0.5 is
    chance. For log p(x), pass ``-log_p``."""
    s_in = np.asarray(scores_in, dtype=np.float64).ravel()
    s_out = np.asarray(scores_out, dtype=np.float64).ravel()
    if len(s_in) == 0 or len(s_out) == 0:
        raise InputError("auroc needs at least one normal and one anomalous score.")
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise InputError("auroc got NaN or infinite scores; check the evaluation that made them.")
    ranks = _ranks(np.concatenate([s_in, s_out]))
    n_in, n_out = len(s_in), len(s_out)
    u = ranks[n_in:].sum() - n_out * (n_out + 1) / 2
    return float(u / (n_in * n_out))


def separation(log_p_in: np.ndarray, log_p_out: np.ndarray) -> dict[str, float]:
    """AUROC of the score -log p(x) for telling ``out`` data from ``in`` data, with the mean
    log p(x) of each."""
    return {
        "auroc": auroc(-np.asarray(log_p_in), -np.asarray(log_p_out)),
        "n_in": len(log_p_in),
        "n_out": len(log_p_out),
        "mean_log_p_in": float(np.mean(log_p_in)),
        "mean_log_p_out": float(np.mean(log_p_out)),
    }
