"""Computations on a trained model and guide, inside the latent space: active units, KL per
unit, the ELBO-surgery information split, clusters of latent codes, and ``diagnose``, which
gathers them into one document. Training's hooks and the reports both use them; nothing here
draws or writes.

>>> from ppl_vae.analysis import active_units
>>> au = active_units(guide, x_test)          # {site: ActiveUnits}
>>> au["z"].count, au["z"].variance
"""

from .clusters import Clusters, best_matching, cluster_codes
from .diagnose import diagnose, diagnose_parts, summary_line
from .information import InformationSplit, information_split
from .kl import SiteKL, kl_per_unit, marginals
from .units import THRESHOLD, ActiveUnits, PosteriorMeans, active_units, posterior_means
from .watch import epoch_latent, watch_points

__all__ = [
    "THRESHOLD",
    "ActiveUnits",
    "Clusters",
    "InformationSplit",
    "PosteriorMeans",
    "SiteKL",
    "active_units",
    "best_matching",
    "cluster_codes",
    "diagnose",
    "diagnose_parts",
    "epoch_latent",
    "information_split",
    "kl_per_unit",
    "marginals",
    "posterior_means",
    "summary_line",
    "watch_points",
]
