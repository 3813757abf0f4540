"""The notebooks in notebooks/ run top to bottom in a fresh python3 kernel with this checkout's jaxhw, and are
committed without outputs."""
import importlib.util
import os
import pathlib
import re
import tempfile
import time

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("homework.ipynb", "pytorch_to_jax.ipynb")
CELL_TIMEOUT = 600  # seconds; the quick budget runs each notebook in about a minute on 2 CPU cores
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def execute(path: pathlib.Path, environment: dict[str, str] | None = None) -> tuple[nbformat.NotebookNode, float]:
    """The notebook executed in its own folder by a python3 kernel that imports this checkout's jaxhw (with
    ``environment`` added to this process's), and the seconds it took; a failing cell fails the test with its
    source and its error."""
    notebook = nbformat.read(path, as_version=4)
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    started = time.perf_counter()
    # The kernel listens on files, not on TCP ports: ports picked as free can be taken by another process before the
    # kernel binds them (two notebooks started at once by two test workers).
    with tempfile.TemporaryDirectory(prefix="jaxhw-kernel-") as sockets:
        kernel = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(pathlib.Path(sockets) / "kernel"))
        client = NotebookClient(notebook, km=kernel, timeout=CELL_TIMEOUT, startup_timeout=180,
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute(env={**os.environ, **(environment or {}), "PYTHONPATH": python_path})
        except CellExecutionError as error:
            failed = next((index for index, cell in enumerate(notebook.cells)
                           if any(output.get("output_type") == "error" for output in cell.get("outputs", []))), None)
            # The error names the cell's source, its printed lines and the traceback.
            pytest.fail(f"{path.name}: cell {failed} failed:\n{ANSI.sub('', str(error))}", pytrace=False)
    return notebook, time.perf_counter() - started


def outputs_of(notebook: nbformat.NotebookNode, output_type: str) -> list:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
            if output.output_type == output_type]


@pytest.mark.slow
@pytest.mark.notebooks
def test_homework_notebook_runs_shows_its_figures_and_asserts_its_numbers(quick_report, session_cache_environment):
    # After the --quick report, whose programs (problems 1-4 at the same budget) it loads from the session's cache.
    notebook, seconds = execute(NOTEBOOKS / "homework.ipynb", session_cache_environment)
    pictures = [output for output in outputs_of(notebook, "display_data") if "image/png" in output.data]
    # problem 1's gradients, problem 2's four, problem 4's curves and confusion matrices, 3E, problem 5's bars
    assert len(pictures) >= 10, f"only {len(pictures)} figures shown"
    printed = "".join(output.text for output in outputs_of(notebook, "stream") if output.name == "stdout")
    for number in ("0.916", "-1.111", "1.461", "2.461"):  # -ln 0.4, -1/0.9, the double softmax's bounds
        assert number in printed, number
    print(f"homework.ipynb: {seconds:.0f} s")


@pytest.mark.slow
@pytest.mark.notebooks
def test_pytorch_to_jax_notebook_runs_every_comparison():
    notebook, seconds = execute(NOTEBOOKS / "pytorch_to_jax.ipynb")
    printed = "".join(output.text for output in outputs_of(notebook, "stream") if output.name == "stdout")
    # Every section agrees at least once on the JAX side (by hand) and, with torch, again against PyTorch.
    assert printed.count(": agree, max |difference|") >= (60 if importlib.util.find_spec("torch") else 25)
    print(f"pytorch_to_jax.ipynb: {seconds:.0f} s")


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_carry_no_outputs_or_execution_counts(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{name}: cell {index} was committed with outputs or an execution count: clear them"


def test_the_notebooks_share_one_install_cell():
    first_cells = {name: next(cell.source for cell in nbformat.read(NOTEBOOKS / name, as_version=4).cells
                              if cell.cell_type == "code") for name in NAMES}
    assert len(set(first_cells.values())) == 1, "the first code cells (install jaxhw) of the notebooks differ"
    assert "REPO_URL" in first_cells[NAMES[0]] and "import jaxhw" in first_cells[NAMES[0]]


def test_every_notebook_is_tested():
    assert sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.notebooks
def test_a_failing_cell_fails_the_test_with_its_source_and_its_error(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 41"),
                                               nbformat.v4.new_code_cell("assert answer == 42, 'off by one'")])
    nbformat.write(notebook, tmp_path / "broken.ipynb")
    with pytest.raises(pytest.fail.Exception) as failure:
        execute(tmp_path / "broken.ipynb")
    message = str(failure.value)
    assert "broken.ipynb: cell 1 failed" in message
    assert "assert answer == 42, 'off by one'" in message and "AssertionError: off by one" in message
