"""Data: synthetic tasks, loaders of data sets that ship inside packages, and the helpers that turn them into
batches (numpy in, numpy out).

The loaders live one source a module (``rj.data.shakespeare``, ``rj.data.digits``, ...) and are imported when
first used, so ``import rnnjax`` needs none of the optional data packages; a missing one raises
:class:`~rnnjax.data.packages.MissingDataPackage` with the command that installs it.
"""

import importlib.util

from rnnjax.data.packages import INSTALL_DATA, MissingDataPackage
from rnnjax.data.sequences import Vocab, batch_indices, group_split, pad, tokenize
from rnnjax.data.synthetic import adding_problem
from rnnjax.data.text import CharVocab, windows

__all__ = [
    "INSTALL_DATA",
    "CharVocab",
    "MissingDataPackage",
    "Vocab",
    "adding_problem",
    "batch_indices",
    "group_split",
    "pad",
    "tokenize",
    "windows",
]


def __getattr__(name: str):
    """``rj.data.<source>``: the loader module of one data source, imported on first use."""
    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")
