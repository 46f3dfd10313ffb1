"""Inside the latent space: active units, KL per unit, the ELBO-surgery information split,
clusters of latent codes, and ``diagnose``, which writes them all for a run.

>>> from ppl_vae.reports.latent import active_units
>>> au = active_units(guide, x_test)          # {site: ActiveUnits}
>>> au["z"].count, au["z"].variance
"""

from .clusters import Clusters, best_matching, cluster_codes
from .diagnose import diagnose, diagnose_run, summary_line
from .information import InformationSplit, information_split
from .kl import SiteKL, kl_per_unit, marginals
from .units import THRESHOLD, ActiveUnits, PosteriorMeans, active_units, posterior_means

__all__ = [
    "Clusters",
    "InformationSplit",
    "best_matching",
    "cluster_codes",
    "diagnose",
    "diagnose_run",
    "information_split",
    "summary_line",
    "SiteKL",
    "kl_per_unit",
    "marginals",
    "THRESHOLD",
    "ActiveUnits",
    "PosteriorMeans",
    "active_units",
    "posterior_means",
]
