"""Every notebook under ``notebooks/`` runs to the end in a tiny configuration (STYLE.md, points 13 and 16).

A notebook keeps all its sizes in one code cell tagged ``parameters``. The test inserts a cell after it that
assigns the tiny values of ``TINY`` (as papermill does), runs every cell in a fresh kernel of this interpreter
with the working directory in ``tmp_path``, and fails on the first cell that raises.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

TINY: dict[str, dict[str, object]] = {
    "vanishing_exploding_gradients": dict(
        INPUT_SIZE=2, NUM_CLASSES=3, HIDDEN=4, T=6, BATCH=2, GAINS=(0.8, 1.5), CELL_HIDDEN=4, CELL_T=6,
        TRAIN_T=6, TRAIN_STEPS=3, BATCH_SIZE=4, PROBE_SIZE=8,
    ),
}  # fmt: skip
"""Per notebook (file stem): the values that replace its parameters for the test, unless the notebook's own
metadata carries them (``"rnnjax": {"tiny": {...}}``, see :func:`tiny_of`)."""


def tiny_of(path: Path, nb: nbformat.NotebookNode) -> dict[str, object]:
    """A notebook's tiny parameters: its metadata's ``rnnjax.tiny``, else ``TINY[stem]``."""
    own = nb.metadata.get("rnnjax", {}).get("tiny")
    if own is not None:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in own.items()}
    assert path.stem in TINY, f"give {path.name} metadata rnnjax.tiny, or add it to TINY in {Path(__file__).name}"
    return TINY[path.stem]


CELL_TIMEOUT = 300
"""Seconds one cell may run (a tiny cell takes a few; JAX compiles on first use)."""

KERNEL = "rnnjax-tests"


def parameters_cell(nb: nbformat.NotebookNode) -> int:
    """The index of the one code cell tagged ``parameters``."""
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(found) == 1, f"expected one code cell tagged 'parameters', found {len(found)}"
    return found[0]


def assigned_names(source: str) -> set[str]:
    """Names bound at the top level of a cell by plain or annotated assignments."""
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def with_tiny_parameters(nb: nbformat.NotebookNode, overrides: dict[str, object]) -> nbformat.NotebookNode:
    """The notebook with a cell after its parameters cell that assigns ``overrides``."""
    index = parameters_cell(nb)
    unknown = set(overrides) - assigned_names(nb.cells[index].source)
    assert not unknown, f"overrides {sorted(unknown)} are not parameters of the notebook"
    source = "\n".join(f"{name} = {value!r}" for name, value in overrides.items())
    tiny = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, tiny)
    return nb


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A kernelspec that starts this interpreter, found first on JUPYTER_PATH, so the notebook runs in the
    environment under test whatever other ``python3`` kernels the machine has."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no history or profile outside tmp_path
    # Inline, not Agg: plt.show() then draws every figure, so an error that only shows when drawing fails the test.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return KERNEL


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"cell {i} has stored outputs: clear them"
    if tiny := tiny_of(path, nb):
        with_tiny_parameters(nb, tiny)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_tiny(path, kernel, tmp_path):
    nb = nbformat.read(path, as_version=4)
    if tiny := tiny_of(path, nb):
        nb = with_tiny_parameters(nb, tiny)
    # The kernel must be this interpreter's environment (the one `pip install -e .[dev]` filled).
    check = f"import sys\nassert sys.prefix == {sys.prefix!r}, sys.prefix"
    nb.cells.insert(0, nbformat.v4.new_code_cell(check))
    workdir = tmp_path / "work"
    workdir.mkdir()
    resources = {"metadata": {"path": str(workdir)}}  # the kernel's working directory
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel, resources=resources)
    client.execute()  # raises CellExecutionError, naming the cell and the error, if any cell raises
