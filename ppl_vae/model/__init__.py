"""The Pyro models and the parts they are built from: priors (``PRIORS``: standard, mog, vamp,
flow), likelihoods (``LIKELIHOODS``, each declaring its decoder outputs per pixel) and decoder
nets; the VAE, the hierarchical VAE, the models with a label (M2, class-conditional) and the
CVAE compose them."""

from .cvae import CVAE, Baseline, build_cvae
from .flow_prior import FlowPrior
from .hierarchical import HierarchicalVAE, build_hierarchical
from .labelled import LabelledVAE, build_labelled_model
from .likelihoods import LIKELIHOODS, Likelihood, build_likelihood
from .linear_gaussian import linear_vae
from .mixture import Mixture
from .mog_prior import MixturePrior
from .nets import ACTIVATIONS, DECODERS, ENCODERS, build_net
from .parts import build_decoder, connect
from .priors import PRIORS, StandardNormal, build_prior
from .vae import VAE, build_model
from .vamp_prior import VampPrior

__all__ = [
    "ACTIVATIONS",
    "CVAE",
    "DECODERS",
    "ENCODERS",
    "LIKELIHOODS",
    "PRIORS",
    "VAE",
    "Baseline",
    "FlowPrior",
    "HierarchicalVAE",
    "LabelledVAE",
    "Likelihood",
    "Mixture",
    "MixturePrior",
    "StandardNormal",
    "VampPrior",
    "build_cvae",
    "build_decoder",
    "build_hierarchical",
    "build_labelled_model",
    "build_likelihood",
    "build_model",
    "build_net",
    "build_prior",
    "connect",
    "linear_vae",
]
