"""Run dirs: recipes in TOML (``recipe``), model kinds (``kinds``), the parts a recipe builds
(``build``), and the run-level entry points side by side: ``train_recipe`` and ``load_run``
(``run``), ``evaluate_run``, ``bdmc_run``, ``diagnose_run``, ``sample_run`` and
``load_result`` (the compare tables' input).

The names below are imported when first used, so that reading a recipe
(``ppl_vae.runs.recipe``, no torch) does not load the training stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MODEL_KINDS": "kinds",
    "ModelKind": "kinds",
    "Run": "run",
    "bdmc_run": "bdmc",
    "build_data": "build",
    "build_parts": "build",
    "build_recipe_objective": "build",
    "check_recipe": "build",
    "diagnose_run": "diagnose",
    "evaluate_run": "evaluate",
    "load_result": "compare",
    "load_run": "run",
    "sample_run": "sample",
    "train_recipe": "run",
    "write_diagnostics": "diagnose",
}
__all__ = [
    "MODEL_KINDS",
    "ModelKind",
    "Run",
    "bdmc_run",
    "build_data",
    "build_parts",
    "build_recipe_objective",
    "check_recipe",
    "diagnose_run",
    "evaluate_run",
    "load_result",
    "load_run",
    "sample_run",
    "train_recipe",
    "write_diagnostics",
]

if TYPE_CHECKING:  # what the lazy names are, for type checkers and the API reference
    from .bdmc import bdmc_run
    from .build import build_data, build_parts, build_recipe_objective, check_recipe
    from .compare import load_result
    from .diagnose import diagnose_run, write_diagnostics
    from .evaluate import evaluate_run
    from .kinds import MODEL_KINDS, ModelKind
    from .run import Run, load_run, train_recipe
    from .sample import sample_run


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ppl_vae.runs' has no attribute {name!r}")
