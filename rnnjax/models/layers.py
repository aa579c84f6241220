"""Building blocks shared by the models: the output layer, token checks, reading final states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.cells import Cell, output_of
from rnnjax.checks import check_key, check_nonnegative_int, check_positive_int, describe, is_concrete
from rnnjax.network import RNN, NetCarry, NetParams
from rnnjax.types import Array, PRNGKey

__all__ = ["Dense", "check_fields", "check_tokens", "dense", "dense_init", "last_hidden", "last_outputs", "token_step"]


def check_fields(
    model: Any, sizes: tuple[str, ...] = (), ids: tuple[str, ...] = (), nets: tuple[str, ...] = ()
) -> None:
    """A model config's fields: ``sizes`` positive ints, ``ids`` token ids (ints >= 0), ``nets`` ``rj.RNN``s."""
    for name in sizes:
        check_positive_int(getattr(model, name), name)
    for name in ids:
        check_nonnegative_int(getattr(model, name), name)
    for name in nets:
        value = getattr(model, name)
        if not isinstance(value, RNN):
            raise ValueError(
                f"{name}: expected an rj.RNN such as rj.RNN(cell='lstm', hidden_size=64), got {describe(value)}"
            )


class Dense(NamedTuple):
    """An affine layer ``V a + c``: ``V: (out, in)``, ``c: (out,)``."""

    V: Array
    c: Array


def dense_init(key: PRNGKey, in_size: int, out_size: int, dtype: Any = jnp.float32) -> Dense:
    """Glorot-uniform ``V`` and zero ``c``."""
    check_key(key)
    check_positive_int(in_size, "in_size")
    check_positive_int(out_size, "out_size")
    V = jax.nn.initializers.glorot_uniform()(key, (in_size, out_size), dtype).T
    return Dense(V, jnp.zeros((out_size,), dtype))


def dense(params: Dense, a: Array) -> Array:
    """``V a + c`` for a batch of row vectors ``a: (..., in)``."""
    return a @ params.V.T + params.c


def check_tokens(tokens: Any, vocab_size: int, name: str = "tokens", rank: int = 2) -> Array:
    """Integer ids of the given rank, in ``[0, vocab_size)`` where the values are known."""
    tokens = jnp.asarray(tokens)
    if tokens.ndim != rank or not jnp.issubdtype(tokens.dtype, jnp.integer):
        shape = "(batch, time)" if rank == 2 else "(batch,)"
        raise ValueError(f"{name}: expected integer ids of shape {shape}, got {tokens.dtype}{tokens.shape}")
    if is_concrete(tokens) and tokens.size:
        values = np.asarray(tokens)
        if values.min() < 0 or values.max() >= vocab_size:
            raise ValueError(
                f"{name}: expected ids in [0, {vocab_size}), got min {values.min()} and max {values.max()}"
            )
    return tokens


def last_hidden(finals: NetCarry, cell: Cell | None = None) -> Array:
    """The last layer's final output ``h`` of each direction, concatenated: ``(batch, output_size)``.

    Args:
        finals: the final carries ``[layer][direction]`` of :meth:`rnnjax.RNN.apply`.
        cell: the network's cell (``net.step_cell``), which says which part of its carry is ``h``; None: the
            carry's ``h`` field, or the carry itself when it is one array.
    """
    hs = [getattr(c, "h", c) if cell is None else output_of(cell, c) for c in finals[-1]]
    return jnp.concatenate(hs, axis=-1)


def last_outputs(ys: Array, lengths: Array | None, num_directions: int) -> Array:
    """Each sequence's output after reading all of it, per direction: the forward half of ``ys`` at its last
    valid step, the backward half at its first (where the backward direction ends). ``(batch, features)``;
    zeros for a sequence of length 0."""
    batch, time, features = ys.shape
    last = jnp.full((batch,), time - 1) if lengths is None else jnp.maximum(jnp.asarray(lengths) - 1, 0)
    forward = jnp.take_along_axis(ys, last[:, None, None], axis=1)[:, 0]
    if lengths is not None:
        forward = jnp.where((jnp.asarray(lengths) > 0)[:, None], forward, jnp.zeros((), ys.dtype))
    if num_directions == 1:
        return forward
    half = features // 2
    return jnp.concatenate([forward[:, :half], ys[:, 0, half:]], axis=-1)


def token_step(
    rnn: RNN, rnn_params: NetParams, E: Array, head: Dense, extra: Array | None = None
) -> Callable[[NetCarry, Array], tuple[Array, NetCarry]]:
    """``step(carry, token) -> (logits, carry)``: embed one token, run one step, read out."""

    def step(carry: NetCarry, token: Array) -> tuple[Array, NetCarry]:
        x = E[token]
        if extra is not None:
            x = jnp.concatenate([x, extra], axis=-1)
        ys, carry = rnn.apply(rnn_params, x[:, None], carry=carry)
        return dense(head, ys[:, 0]), carry

    return step
