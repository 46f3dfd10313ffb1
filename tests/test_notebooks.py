"""The notebooks execute in smoke mode (``PPL_VAE_SMOKE``) on this interpreter's kernel, and are
stored in git without outputs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import ppl_vae

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNEL = "ppl_vae_tests"


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart",
        "02_bound_comparison",
        "03_custom_guide",
        "04_semi_supervised",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (path.name, cell.source)


@pytest.fixture(scope="module")
def kernel_manager_factory(tmp_path_factory):
    """Kernels started from a kernelspec whose argv is this test's own Python, so that the
    notebooks run on the interpreter (and virtual environment) under test, whatever other
    ``python3`` kernels are installed."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    specs = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(specs / KERNEL)
    return lambda: KernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)])
    )


def _not_ignored(paths: list[str]) -> list[str] | None:
    """The paths (relative to the repository) that its ``.gitignore`` does not cover, whether or
    not they exist; None where git cannot tell (no git, or not a clone)."""
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        return None
    done = subprocess.run(
        [git, "-C", str(REPO), "check-ignore", "--no-index", "--stdin"],
        input="".join(f"{p}\n" for p in paths),
        capture_output=True,
        text=True,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: none of them is ignored
    ignored = set(done.stdout.splitlines())
    return [p for p in paths if p not in ignored]


def _table_problems(markdown: str) -> list[str]:
    """The rows of the markdown tables in ``markdown`` whose cell count differs from their
    header's (an unescaped ``|`` in a cell) or that show an unknown ("?") cell."""
    problems, width = [], None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        width = len(cells) if width is None else width
        if len(cells) != width or "?" in cells:
            problems.append(line)
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(
    path, data_root, kernel_manager_factory, tmp_path, monkeypatch
):
    from nbclient import NotebookClient

    monkeypatch.setenv("PPL_VAE_SMOKE", "1")
    monkeypatch.setenv("PPL_VAE_DATA", str(data_root))
    # The kernel imports the ppl_vae under test, even where another copy is installed.
    package_root = Path(ppl_vae.__file__).resolve().parents[1]
    paths = [str(package_root), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    nb = nbformat.read(path, as_version=4)
    probe = "import sys\nimport ppl_vae\nprint(sys.executable)\nprint(ppl_vae.__file__)"
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    # The repository's layout: the kernel starts in notebooks/, beside pyproject.toml.
    (tmp_path / "pyproject.toml").touch()
    here = tmp_path / "notebooks"
    here.mkdir()
    client = NotebookClient(
        nb, km=kernel_manager_factory(), timeout=300, resources={"metadata": {"path": here}}
    )
    client.execute()
    assert nb.cells[-1].outputs[0]["text"].split() == [sys.executable, ppl_vae.__file__]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 2, "the notebook should show its figures and pictures inline"
    tables = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert not [p for md in tables for p in _table_problems(md)]
    # it writes only under the repository's runs/, which git ignores: `git status` stays clean
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    written = [f for f in files if f != "pyproject.toml"]
    assert all(f.startswith("runs/notebooks/") for f in written), written
    assert _not_ignored(written) in ([], None)
    if os.environ.get("PPL_VAE_KEEP_NOTEBOOKS"):  # to look at the executed notebooks
        nbformat.write(nb, Path(os.environ["PPL_VAE_KEEP_NOTEBOOKS"]) / path.name)
