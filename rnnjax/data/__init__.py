"""Data: synthetic tasks and loaders of data sets that ship inside packages (numpy in, numpy out)."""

from rnnjax.data.synthetic import adding_problem

__all__ = ["adding_problem"]
