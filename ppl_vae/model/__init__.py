"""The Pyro models: the VAE p(z) p(x|z), its likelihoods and networks, and data checks."""

from .hierarchical import HierarchicalVAE, build_hierarchical
from .likelihoods import LIKELIHOODS, Likelihood, build_likelihood
from .nets import ACTIVATIONS, build_net
from .vae import VAE, build_model

__all__ = [
    "ACTIVATIONS",
    "LIKELIHOODS",
    "VAE",
    "HierarchicalVAE",
    "Likelihood",
    "build_hierarchical",
    "build_likelihood",
    "build_model",
    "build_net",
]
