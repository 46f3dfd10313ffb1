"""Clusters of latent codes: k-means on the posterior means, scored against the labels.

With k = the number of classes, scikit-learn's ``KMeans`` clusters the codes E_q[z | x_n]; the
agreement with the labels is the normalized mutual information (``normalized_mutual_info_score``,
arithmetic normalization) and the accuracy under the best one-to-one matching of clusters to
labels, found by ``scipy.optimize.linear_sum_assignment`` on the contingency table
(``sklearn.metrics.cluster.contingency_matrix``). scikit-learn is imported when this runs.

References: MacQueen (1967); Strehl & Ghosh (2002), Cluster ensembles, for NMI; the matched
accuracy is the unsupervised clustering accuracy of Xie, Girshick & Farhadi (2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import InputError


@dataclass(frozen=True)
class Clusters:
    """k-means clusters of latent codes and their agreement with the labels.

    Attributes:
        assignment: the cluster of each point, ``[N]`` (numpy ints).
        k: the number of clusters (the number of classes).
        nmi: normalized mutual information between clusters and labels, in [0, 1].
        accuracy: the share of points whose cluster maps to their label under the best
            one-to-one matching of clusters to labels.
        mapping: cluster -> the label it is matched to.
    """

    assignment: np.ndarray
    k: int
    nmi: float
    accuracy: float
    mapping: dict[int, int]


def best_matching(clusters: np.ndarray, labels: np.ndarray) -> tuple[float, dict[int, int]]:
    """Accuracy under the one-to-one matching of clusters to labels that maximizes it, and that
    matching (Hungarian algorithm on the contingency table)."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(labels, clusters)  # [labels, clusters], sorted unique values
    rows, cols = linear_sum_assignment(table, maximize=True)
    label_values, cluster_values = np.unique(labels), np.unique(clusters)
    mapping = {
        int(cluster_values[c]): int(label_values[r]) for r, c in zip(rows, cols, strict=True)
    }
    return float(table[rows, cols].sum() / len(labels)), mapping


def cluster_codes(
    codes: torch.Tensor, labels: torch.Tensor, *, k: int | None = None, seed: int = 0
) -> Clusters:
    """k-means (scikit-learn, ``n_init=10``) on ``codes [N, d]`` with k = the number of
    distinct ``labels`` unless given; NMI and matched accuracy against ``labels [N]``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    z = codes.detach().double().cpu().numpy().reshape(len(codes), -1)
    y = labels.detach().cpu().numpy().reshape(-1)
    if len(y) != len(z):
        raise InputError(f"clustering needs one label per code: {len(z)} codes, {len(y)} labels.")
    k = int(k or len(np.unique(y)))
    if len(z) < k:
        raise InputError(
            f"k-means with k = {k} clusters needs at least {k} points, got {len(z)}; evaluate "
            f"more data points."
        )
    assignment = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(z)
    nmi = float(normalized_mutual_info_score(y, assignment))
    accuracy, mapping = best_matching(assignment, y)
    return Clusters(assignment, k, nmi, accuracy, mapping)
