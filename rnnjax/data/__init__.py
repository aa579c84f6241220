"""Data: synthetic tasks and loaders of data sets that ship inside packages (numpy in, numpy out)."""

from rnnjax.data.synthetic import adding_problem
from rnnjax.data.text import CharVocab, windows

__all__ = ["CharVocab", "adding_problem", "windows"]
