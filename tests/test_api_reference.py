"""The API reference (``docs/api/*.md``, built by mkdocs with mkdocstrings) covers every public
name: each name of ``ppl_vae.__all__`` and of every documented package's ``__all__`` is rendered
by some ``::: IDENTIFIER`` block, named directly or as a member of a rendered module.

The fast tests read the pages and the source with ``ast``, as griffe (mkdocstrings' reader)
does, without mkdocs or importing the package. What a module block renders (``filters: public``
in mkdocs.yml): the names of its ``__all__``, or, where it has none, what it defines without a
leading underscore. Griffe's one blind spot: a name that is also a submodule (``from .ais
import ais`` in ``ppl_vae.bounds``) is the module to griffe, so its package's block does not
render the function, which needs a block of its own (``::: ppl_vae.bounds.ais.ais``).

``test_the_built_site_has_every_name`` builds the site (about 10 s, marked slow) and looks for
each name's anchor in the HTML; it skips where mkdocs is not installed (the ``docs`` extra).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
API = REPO / "docs" / "api"
BLOCK = re.compile(r"^:::\s+(?P<ident>[\w.]+)\s*$")

# Public modules of a package without __all__ that have no block yet, and why. Remove an
# entry when its page is written (the test says so).
NOT_YET: dict[str, str] = {}


# --- the pages -------------------------------------------------------------------------------


def _members_option(lines: list[str]) -> set[str] | None:
    """The ``members:`` option of a block's indented YAML options: the names it keeps, an empty
    set for ``false``, None where all public members are rendered."""
    for i, line in enumerate(lines):
        m = re.match(r"^(\s+)members:\s*(.*?)\s*$", line)
        if not m:
            continue
        value = m[2]
        if not value:  # a YAML list on the lines below
            items = []
            for item in lines[i + 1 :]:
                if not (im := re.match(r"^\s+-\s*(\S+)\s*$", item)):
                    break
                items.append(im[1])
            return set(items)
        if value.lower() in ("true", "yes"):
            return None
        if value.lower() in ("false", "no", "[]"):
            return set()
        return {v.strip().strip("'\"") for v in value.strip("[]").split(",") if v.strip()}
    return None


@cache
def page_blocks(page: Path) -> dict[str, set[str] | None]:
    """``{identifier: members}`` of the ``:::`` blocks of one page."""
    found: dict[str, set[str] | None] = {}
    lines = page.read_text().splitlines()
    for i, line in enumerate(lines):
        if m := BLOCK.match(line):
            options = []
            for opt in lines[i + 1 :]:
                if not opt.startswith((" ", "\t")):
                    break
                options.append(opt)
            found[m["ident"]] = _members_option(options)
    return found


@cache
def blocks() -> dict[str, set[str] | None]:
    """``{identifier: members}`` of every ``:::`` block in docs/api/*.md."""
    found: dict[str, set[str] | None] = {}
    for page in sorted(API.glob("*.md")):
        found.update(page_blocks(page))
    return found


# --- the source, read as griffe reads it -----------------------------------------------------


def _path(module: str) -> Path | None:
    """The source file of a module of this repository: ``pkg/__init__.py`` or ``mod.py``."""
    base = REPO.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def is_package(module: str) -> bool:
    path = _path(module)
    return path is not None and path.name == "__init__.py"


def is_submodule(path: str) -> bool:
    """Whether ``a.b.c`` is a module of its own (griffe then sees the module under that name)."""
    parent, _, _ = path.rpartition(".")
    return bool(parent) and is_package(parent) and _path(path) is not None


@cache
def module_info(module: str) -> tuple[list[str] | None, dict[str, tuple[str, str]], set[str]]:
    """A module's ``__all__`` (None without one), its imports ``{name: (module, attribute)}``
    (``TYPE_CHECKING`` blocks included) and the names it defines itself."""
    path = _path(module)
    assert path is not None, f"no source for {module}"
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    exports: list[str] | None = None
    imports: dict[str, tuple[str, str]] = {}
    defined: set[str] = set()
    statements = list(tree.body)
    while statements:  # the module level, with its if/try blocks (TYPE_CHECKING)
        node = statements.pop(0)
        if isinstance(node, ast.If | ast.Try):
            statements[:0] = [*node.body, *getattr(node, "orelse", [])]
            continue
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                imports[alias.asname or alias.name] = (source, alias.name)
            continue
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            targets = [node.name]
        if targets == ["__all__"]:  # __all__ = [...] or __all__ += [...]
            names = list(ast.literal_eval(node.value))
            exports = [*(exports or []), *names] if isinstance(node, ast.AugAssign) else names
            continue
        defined.update(targets)
    return exports, imports, defined


def renders(block_members: set[str] | None, module: str, name: str) -> bool:
    """Whether a block of ``module`` (with that ``members`` option) renders ``module.name``."""
    if is_submodule(f"{module}.{name}"):
        return False  # griffe sees the submodule there, which a module block does not render
    if block_members is not None:
        return name in block_members
    exports, _, defined = module_info(module)
    if exports is not None:
        return name in exports
    return name in defined and not name.startswith("_")


def chain(module: str, name: str) -> list[tuple[str, str]]:
    """Where ``module.name`` comes from: ``(module, name)`` and then each module it is imported
    from, down to the one that defines it."""
    hops = [(module, name)]
    while True:
        _, imports, defined = module_info(module)
        if name in defined or name not in imports:
            return hops
        module, name = imports[name]
        if _path(module) is None or (module, name) in hops:
            return hops  # from outside the package, or a cycle
        hops.append((module, name))


def covered(module: str, name: str) -> bool:
    """Whether some block renders ``module.name``: named directly, or as a member of a rendered
    module, at any step of the import chain (each step is the same object)."""
    found = blocks()
    for parent, attr in chain(module, name):
        if f"{parent}.{attr}" in found:
            return True
        if parent in found and renders(found[parent], parent, attr):
            return True
    return False


def public_subpackages() -> list[str]:
    return sorted(
        f"ppl_vae.{d.name}"
        for d in (REPO / "ppl_vae").iterdir()
        if d.is_dir() and not d.name.startswith("_") and (d / "__init__.py").is_file()
    )


def public_modules(package: str) -> list[str]:
    directory = REPO.joinpath(*package.split("."))
    found = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("_"):
            continue
        if entry.suffix == ".py" or (entry.is_dir() and (entry / "__init__.py").is_file()):
            found.append(f"{package}.{entry.stem}")
    return found


def documented_modules() -> list[str]:
    """``ppl_vae``, its public subpackages and every module a block names, that have ``__all__``:
    the modules whose every exported name must be on some page."""
    names = {"ppl_vae", *public_subpackages()}
    names.update(i for i in blocks() if _path(i) is not None)
    return sorted(m for m in names if module_info(m)[0] is not None)


def required_names() -> list[tuple[str, str]]:
    return [(m, n) for m in documented_modules() for n in module_info(m)[0] or []]


# --- the tests -------------------------------------------------------------------------------


def test_every_public_package_has_a_page():
    """docs/api/PACKAGE.md, with a block for the package or for modules in it."""
    missing = []
    for package in ["ppl_vae", *public_subpackages()]:
        page = API / f"{package}.md"
        names = page_blocks(page) if page.is_file() else {}
        if not any(i == package or i.startswith(f"{package}.") for i in names):
            missing.append(package)
    assert not missing, (
        f"no API page for {missing}: write docs/api/<package>.md with a '::: <package>' block "
        "(see docs/api/index.md) and add it to the nav in mkdocs.yml"
    )


def test_every_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    missing = [p.name for p in API.glob("*.md") if f"api/{p.name}" not in nav]
    assert not missing, f"docs/api pages missing from the nav in mkdocs.yml: {missing}"


def test_every_block_names_something_that_exists():
    """A typo in a ``:::`` line fails the build too, but only in a build; this says it here."""
    missing = []
    for ident in blocks():
        if _path(ident) is not None:
            continue
        parent, _, name = ident.rpartition(".")
        if _path(parent) is None or not (
            name in module_info(parent)[2] or name in module_info(parent)[1]
        ):
            missing.append(ident)
    assert not missing, f"::: blocks that name nothing in ppl_vae: {missing}"


def test_the_shadowed_names_are_found():
    """The reader's one blind spot is handled: a function named like its own module."""
    assert is_submodule("ppl_vae.bounds.ais") and not renders(None, "ppl_vae.bounds", "ais")
    assert ("ppl_vae.analysis", "diagnose") in chain("ppl_vae", "diagnose")
    assert chain("ppl_vae", "load_recipe_file")[-1] == ("ppl_vae.runs.recipe", "load")


def test_every_exported_name_is_rendered():
    assert ("ppl_vae", "fit") in required_names()
    assert len(documented_modules()) >= 10
    missing = [f"{m}.{n}" for m, n in required_names() if not covered(m, n)]
    assert not missing, (
        f"names in an __all__ that no ::: block in docs/api/*.md renders: {missing}. Add a block "
        "(or, for a name that is also a submodule, a block for the object in that module)."
    )


def test_packages_without_all_have_every_public_module_rendered():
    missing, stale = [], []
    for package in public_subpackages():
        if module_info(package)[0] is not None:
            continue
        for module in public_modules(package):
            documented = module in blocks() or package in blocks()
            if module in NOT_YET:
                if documented:
                    stale.append(module)
            elif not documented:
                missing.append(module)
    assert not missing, f"public modules without a ::: block in docs/api/*.md: {missing}"
    assert not stale, f"documented now; remove from NOT_YET in this test: {stale}"


# --- the site, built -------------------------------------------------------------------------


@pytest.mark.slow
def test_the_built_site_has_every_name(tmp_path):
    """Checks the model above against mkdocs itself: a strict build, then each required name's
    anchor (at some step of its import chain) in the HTML of the API pages."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    ids = set()
    for page in (site / "api").glob("*/index.html"):
        ids.update(re.findall(r'\bid="([^"]+)"', page.read_text()))
    missing = [
        f"{m}.{n}"
        for m, n in required_names()
        if not any(f"{p}.{a}" in ids for p, a in chain(m, n))
    ]
    assert not missing, f"names without an anchor in the built API pages: {missing}"
