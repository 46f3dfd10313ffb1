"""Model kinds: what a recipe's ``model.name`` selects. Each kind is one file holding one
``ModelKind`` (its options with defaults, data step, parts, derived objective options, checks
and pictures); to add one, write its file and add one line below."""

from . import conditional, cvae, hierarchical, m1, m1m2, m2, vae
from .spec import ModelKind, Pictures

MODEL_KINDS: dict[str, ModelKind] = {
    "vae": vae.KIND,
    "hierarchical": hierarchical.KIND,
    "m1": m1.KIND,
    "m1m2": m1m2.KIND,
    "m2": m2.KIND,
    "conditional": conditional.KIND,
    "cvae": cvae.KIND,
}

__all__ = ["MODEL_KINDS", "ModelKind", "Pictures"]
