"""Run dirs: recipes in TOML (``recipe``), the parts a recipe builds (``build``), training and
loading runs (``run``) and evaluating them (``evaluate``).

This package imports nothing itself, so that reading a recipe (``ppl_vae.runs.recipe``, no
torch) does not load the training stack.
"""
