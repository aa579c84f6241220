"""Shape vocabulary shared by every module.

Legend for the dimension names used in annotations and docstrings:

    b = batch            t = time (steps)          i = input features
    h = hidden size      g = gates (rnn 1, gru 3, lstm 4)
    l = layers           d = directions (1 or 2)

Arrays at the public boundary are batch-major, ``(batch, time, features)``; the
scan works time-major inside. Weights follow the textbook (and PyTorch): a matrix
maps column vectors, ``U: (h, i)`` so that ``U x_t`` is ``x @ U.T`` for a batch of
row vectors.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from jaxtyping import Array, Float, Int, PRNGKeyArray

PRNGKey: TypeAlias = PRNGKeyArray
Params: TypeAlias = Any
"""A cell's parameters: an immutable pytree (a NamedTuple of arrays)."""
Carry: TypeAlias = Any
"""A cell's recurrent state: an array ``(*b, h)`` or a NamedTuple of them (LSTM)."""

Xs = Float[Array, "b t i"]
Ys = Float[Array, "b t h"]
X = Float[Array, "*b i"]
H = Float[Array, "*b h"]
Lengths = Int[Array, " b"]

__all__ = ["Array", "Carry", "Float", "H", "Int", "Lengths", "PRNGKey", "Params", "X", "Xs", "Ys"]
