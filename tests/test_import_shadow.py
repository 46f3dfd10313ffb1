"""Python started in the folder that holds a clone named ``ppl_vae`` has that clone, a folder
without ``__init__.py``, on ``sys.path[0]``: the installed package must still be the one that
``import ppl_vae`` gives, not the clone as an empty namespace package (``module 'ppl_vae' has no
attribute 'load_data'``). pyproject.toml's ``package-dir`` makes ``pip install -e .`` put the
repository on sys.path, where the import system prefers a regular package to namespace folders.
"""

import subprocess
import sys
from pathlib import Path

import pytest

# the first entry of sys.path ("" for the working folder), then what ppl_vae is
WHERE = """\
import sys

print(sys.path[0])
import ppl_vae

print(getattr(ppl_vae, "__file__", None))
"""
# and that a name of the package works (it imports torch)
PROBE = WHERE + "print(ppl_vae.load_data.__module__)\n"


def _run(args: list[str], cwd: Path) -> list[str]:
    """The lines that ``python ARGS`` in ``cwd`` prints, then its error if it fails."""
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return done.stdout.splitlines() + (done.stderr.splitlines() if done.returncode else [])


@pytest.fixture
def installed(tmp_path) -> str:
    """The ``__init__.py`` that this interpreter imports from a folder with nothing in it."""
    bare = tmp_path / "bare"
    bare.mkdir()
    lines = _run(["-c", WHERE], bare)
    if len(lines) != 2 or lines[1] == "None":
        pytest.skip(f"ppl_vae is not installed in {sys.executable}: {lines}")
    return lines[1]


@pytest.fixture
def beside_clone(tmp_path) -> Path:
    """A folder holding a clone named ``ppl_vae``: its files and the package folder within."""
    parent = tmp_path / "work"
    clone = parent / "ppl_vae"
    (clone / "ppl_vae").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('[project]\nname = "ppl_vae"\n')
    (clone / "ppl_vae" / "__init__.py").write_text(
        'raise ImportError("the clone, not the install")\n'
    )
    (parent / "script.py").write_text(PROBE)
    return parent


@pytest.mark.parametrize("how", ["script.py", "-c"])
def test_python_beside_a_clone_imports_the_installed_package(how, installed, beside_clone):
    lines = _run(["script.py"] if how == "script.py" else ["-c", WHERE], beside_clone)
    first = beside_clone if how == "script.py" else ""  # "": the working folder
    if not lines or (Path(lines[0]).resolve() if lines[0] else "") != (first and first.resolve()):
        pytest.skip(f"sys.path[0] is {lines[:1]}, not {first or 'the working folder'}: no shadow")
    expected = [lines[0], installed] + (["ppl_vae.data"] if how == "script.py" else [])
    assert lines == expected, (
        f"python {how} in {beside_clone} imported the folder {beside_clone / 'ppl_vae'} (as a "
        f"namespace package) instead of the installed package {installed}: an editable install "
        "must put the repository on sys.path (pyproject.toml's [tool.setuptools] package-dir), "
        "not setuptools' import hook; reinstall with pip install -e .\n" + "\n".join(lines)
    )
