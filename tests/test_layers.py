"""The package's layers hold: no module imports a folder above its own, not even inside a
function. Every import statement of ``ppl_vae/`` is read (``ast.walk`` sees those in function
bodies too), resolved to the module it names, and compared by layer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ppl_vae"

# bottom first; a folder may import its own layer and those below it
LAYERS = [
    {"core", "distributed", "storage", "layout", "provenance", "_malloc"},
    {"data"},
    {"model"},
    {"guides"},
    {"objectives"},
    {"analysis"},
    {"bounds"},
    {"reports"},
    {"training"},
    {"runs"},
    {"testing"},
    {"cli"},
    {"__init__", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _top(module: str) -> str:
    """The layer name of ``ppl_vae.<top>...``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every ``ppl_vae`` import in the file at ``path``."""
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [
            (node.lineno, n) for n in names if n == root.name or n.startswith(root.name + ".")
        ]
    return found


def upward_imports(root: Path) -> list[str]:
    """Every import in the package at ``root`` that names a higher layer, as
    ``file:line: a -> b``; a folder missing from ``LAYERS`` counts as a violation too."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        here = _top(".".join(rel.with_suffix("").parts))
        if here not in RANK:
            bad.append(f"{rel}: folder '{here}' has no layer in LAYERS")
            continue
        for line, module in _imports(path, root):
            there = _top(module)
            if there == "__version__":
                continue
            if there not in RANK:
                bad.append(f"{rel}:{line}: imports {module}, whose folder has no layer")
            elif RANK[there] > RANK[here]:
                bad.append(f"{rel}:{line}: {here} imports {module} (layer {there} is above)")
    return bad


def test_no_module_imports_a_higher_layer():
    assert upward_imports(PACKAGE) == []


def test_an_upward_import_is_caught_even_inside_a_function(tmp_path):
    pkg = tmp_path / "ppl_vae"
    for folder in ("core", "model", "runs"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "model" / "vae.py").write_text(
        "from ..core import errors\n\ndef f():\n    from ..runs.build import build_parts\n"
    )
    (pkg / "core" / "tracing.py").write_text("import ppl_vae.model.vae\n")
    bad = upward_imports(pkg)
    assert len(bad) == 2, bad
    assert "model/vae.py:4: model imports ppl_vae.runs.build" in bad[1]
    assert "core/tracing.py:1: core imports ppl_vae.model.vae" in bad[0]
