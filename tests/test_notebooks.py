"""The notebooks execute in smoke mode (``PPL_VAE_SMOKE``) on this interpreter's kernel, and are
stored in git without outputs."""

import os
import sys
from pathlib import Path

import nbformat
import pytest

import ppl_vae

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
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
    client = NotebookClient(
        nb, km=kernel_manager_factory(), timeout=300, resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    assert nb.cells[-1].outputs[0]["text"].split() == [sys.executable, ppl_vae.__file__]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 2, "the notebook should show its figures and pictures inline"
    assert os.listdir(tmp_path) in ([], ["runs"])  # writes only under its own runs/
    if os.environ.get("PPL_VAE_KEEP_NOTEBOOKS"):  # to look at the executed notebooks
        nbformat.write(nb, Path(os.environ["PPL_VAE_KEEP_NOTEBOOKS"]) / path.name)
