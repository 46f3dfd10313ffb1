"""Module paths of ppl_vae 0.1, kept importable with a DeprecationWarning.

``ppl_vae.train``, ``ppl_vae.config`` and the other flat modules of 0.1 moved into the layer
packages. ``import ppl_vae.train``, ``from ppl_vae.train import fit`` and ``ppl_vae.train``
still work: a finder on ``sys.meta_path`` answers for the old name with the new module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old module (ppl_vae 0.1) -> where it lives now
MOVED = {
    "anomaly": "reports.anomaly",
    "checkpoint": "training.checkpoint",
    "checks": "model.checks",
    "config": "runs.recipe",
    "distributions": "model.bernoulli",
    "likelihoods": "model.likelihoods",
    "loop": "training.loop",
    "malloc": "_malloc",
    "nets": "model.nets",
    "noise": "training.noise",
    "optim": "training.optim",
    "pictures": "reports.pictures",
    "plots": "reports.plots",
    "run": "runs.run",
    "traces": "objectives.tracing",
    "train": "training.svi",
}


def moved_module(old: str):
    """The module that ``ppl_vae.<old>`` became, imported, with a DeprecationWarning."""
    new = f"ppl_vae.{MOVED[old]}"
    warnings.warn(
        f"ppl_vae.{old} moved to {new}; import it from there.", DeprecationWarning, stacklevel=3
    )
    return importlib.import_module(new)


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package == "ppl_vae" and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None  # a placeholder, replaced in sys.modules by exec_module

    def exec_module(self, module) -> None:
        # the import system returns what sys.modules holds under the name after this call
        sys.modules[module.__name__] = moved_module(module.__name__.rpartition(".")[2])


def install() -> None:
    """Puts the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
