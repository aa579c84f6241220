"""Parameter and state containers of the cells: NamedTuples in the textbook's names.

Gated cells stack their gates' blocks in one ``U``, ``W`` and ``b`` (one fused matmul per step);
each gate's matrix over ``[h_{t-1}, x_t]`` is a view by its textbook name, e.g. ``params.W_f``.
``rnnjax.cells`` re-exports every name here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from rnnjax.types import Array

__all__ = ["GRUParams", "LSTMParams", "LSTMState", "RNNParams"]


def _blocks(params: Any, names: str, gate: str) -> tuple[Array, Array]:
    """The ``(h, h + i)`` matrix over ``[h_{t-1}, x_t]`` and the bias of one gate."""
    h = params.W.shape[-1]
    k = names.index(gate)
    rows = slice(k * h, (k + 1) * h)
    return jnp.concatenate([params.W[rows], params.U[rows]], axis=1), params.b[rows]


class RNNParams(NamedTuple):
    """Elman RNN parameters: ``U: (h, i)``, ``W: (h, h)``, ``b: (h,)``."""

    U: Array
    W: Array
    b: Array


class LSTMParams(NamedTuple):
    """LSTM parameters with the gates stacked in the order f, i, C, o.

    ``U: (4h, i)``, ``W: (4h, h)``, ``b: (4h,)``. The textbook's per-gate matrices over the
    concatenation ``[h_{t-1}, x_t]`` are views: ``W_f, W_i, W_C, W_o: (h, h + i)`` and
    ``b_f, b_i, b_C, b_o: (h,)``.
    """

    U: Array
    W: Array
    b: Array

    W_f = property(lambda self: _blocks(self, "fico", "f")[0])
    W_i = property(lambda self: _blocks(self, "fico", "i")[0])
    W_C = property(lambda self: _blocks(self, "fico", "c")[0])
    W_o = property(lambda self: _blocks(self, "fico", "o")[0])
    b_f = property(lambda self: _blocks(self, "fico", "f")[1])
    b_i = property(lambda self: _blocks(self, "fico", "i")[1])
    b_C = property(lambda self: _blocks(self, "fico", "c")[1])
    b_o = property(lambda self: _blocks(self, "fico", "o")[1])


class LSTMState(NamedTuple):
    """The LSTM carry: hidden state ``h: (*b, h)`` and cell state ``c: (*b, h)``."""

    h: Array
    c: Array


class GRUParams(NamedTuple):
    """GRU parameters with the gates stacked in the order r, z, n (as in PyTorch).

    ``U: (3h, i)``, ``W: (3h, h)``, ``b: (3h,)``; ``b_hn: (h,)`` is the recurrent bias of the
    candidate, which sits inside the reset, ``r * (W_n h + b_hn)`` (``None`` when
    ``reset_after=False``). Views: ``W_r, W_z, W_n: (h, h + i)``, ``b_r, b_z, b_n: (h,)``.
    """

    U: Array
    W: Array
    b: Array
    b_hn: Array | None

    W_r = property(lambda self: _blocks(self, "rzn", "r")[0])
    W_z = property(lambda self: _blocks(self, "rzn", "z")[0])
    W_n = property(lambda self: _blocks(self, "rzn", "n")[0])
    b_r = property(lambda self: _blocks(self, "rzn", "r")[1])
    b_z = property(lambda self: _blocks(self, "rzn", "z")[1])
    b_n = property(lambda self: _blocks(self, "rzn", "n")[1])
