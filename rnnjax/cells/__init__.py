"""Recurrent cells as pure functions, one module a family, and the registry that every check runs over.

::

    cell = rj.cells.lstm(hidden_size=64)              # or rj.cells.make("lstm", 64)
    params = cell.init(key, input_size)               # LSTMParams(U, W, b), gate views W_f, ...
    carry = cell.initial_carry(params, batch_shape)   # zeros
    carry, y = cell.step(params, carry, x)            # x: (*batch, input_size)

The contract (:class:`Cell`, :class:`Spec`) is in :mod:`rnnjax.cells.base`. Adding a cell is its own
module and one line in :data:`CELLS` (``docs/adding_a_cell.md``); ``tests/test_conformance.py`` then runs
every check on it. Factories are cached: ``lstm(64) is lstm(64)``, so configs holding cells compare equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rnnjax.cells.base import Cell, Linear, Parts, Prepared, Spec, check_params, input_size, output_of, with_output
from rnnjax.cells.gru import GRUParams, gru
from rnnjax.cells.indrnn import IndRNNParams, constrain_indrnn, indrnn
from rnnjax.cells.lnlstm import LNLSTMParams, ln_lstm
from rnnjax.cells.lru import LRUParams, lru
from rnnjax.cells.lstm import LSTMParams, LSTMState, ProjectedLSTMParams, lstm
from rnnjax.cells.minimal import MinGRUParams, MinLSTMParams, mingru, minlstm
from rnnjax.cells.rnn import RNNParams, irnn, rnn

__all__ = [
    "CELLS", "Cell", "GRUParams", "IndRNNParams", "LNLSTMParams", "LRUParams", "LSTMParams", "LSTMState", "Linear",
    "MinGRUParams", "MinLSTMParams", "Parts", "Prepared", "ProjectedLSTMParams", "RNNParams", "Spec", "check_params",
    "constrain_indrnn", "gru", "indrnn", "input_size", "irnn", "ln_lstm", "lru", "lstm", "make", "mingru", "minlstm",
    "output_of", "rnn", "with_output",
]  # fmt: skip

CELLS: dict[str, Callable[..., Cell]] = {
    "rnn": rnn,
    "irnn": irnn,
    "lstm": lstm,
    "gru": gru,
    "indrnn": indrnn,
    "ln_lstm": ln_lstm,
    "lru": lru,
    "mingru": mingru,
    "minlstm": minlstm,
}
"""Every cell by name: ``make``, ``rj.RNN(cell=name)`` and the conformance suite read it."""


def make(name: str, hidden_size: int, **options: Any) -> Cell:
    """A cell by its name in :data:`CELLS`, with its options."""
    if not isinstance(name, str) or name not in CELLS:
        raise ValueError(f"cell: expected one of {tuple(CELLS)}, got {name!r}")
    return CELLS[name](hidden_size, **options)
