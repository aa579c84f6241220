"""The vanilla (Elman) RNN and the IRNN.

::

    a_t = f(U x_t + W a_{t-1} + b)        f = tanh, ReLU or the identity; the cell outputs a_t

The output layer ``y_t = g(V a_t + c)`` of the textbook belongs to the models (``rj.models.Dense``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as inits
from rnnjax.cells.base import Cell, Parts, Prepared, make_cell
from rnnjax.checks import check_float
from rnnjax.precision import check_matmul_dtype, matmul
from rnnjax.types import Array, PRNGKey

__all__ = ["RNNParams", "irnn", "rnn"]


class RNNParams(NamedTuple):
    """Elman RNN parameters: ``U: (h, i)``, ``W: (h, h)``, ``b: (h,)``."""

    U: Array
    W: Array
    b: Array


def dense_prepare(params: Any) -> Prepared:
    """``U^T``, ``b`` and ``W^T`` laid out once for the loop (the cells with one dense recurrent matmul)."""
    return Prepared(params.U.T, params.b, params.W.T)


def dense_project(loop: Prepared, xs: Array) -> Array:
    """The input side of every gate, ``U x_t + b``, for any leading dims."""
    return matmul(xs, loop.U_T) + loop.b


_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "linear": lambda z: z}
# f'(pre) written in a = f(pre): tanh' = 1 - tanh^2; ReLU' = 1 where a > 0 (0 at 0, as jax.nn.relu)
_SLOPES = {"tanh": lambda a: 1 - a * a, "relu": lambda a: (a > 0).astype(a.dtype), "linear": jnp.ones_like}


@functools.cache
def rnn(
    hidden_size: int,
    activation: str = "tanh",
    *,
    input_init: str | inits.Initializer = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    gain: float = 1.0,
    bias: float = 0.0,
    dtype: Any = jnp.float32,
    matmul_dtype: Any = None,
) -> Cell:
    """The vanilla (Elman) RNN, ``a_t = f(U x_t + W a_{t-1} + b)``.

    Args:
        hidden_size: size of ``a_t``.
        activation: ``"tanh"``, ``"relu"`` or ``"linear"`` (no non-linearity: the linear RNN, whose
            Jacobian products are exactly powers of ``W``).
        input_init: initialiser of ``U`` (a name in ``rnnjax.init.INPUT_INITS`` or a
            ``jax.nn.initializers`` callable).
        recurrent_init: initialiser of ``W``: ``"orthogonal"``, ``"gaussian"``, ``"identity"`` (the IRNN
            of Le et al. 2015, see :func:`irnn`) or ``"torch"``.
        gain: scale of ``W`` (spectral radius for ``"orthogonal"``, ``"identity"``, and asymptotically
            for ``"gaussian"``).
        bias: the constant that ``b`` starts at.
        dtype: dtype of the params.
        matmul_dtype: None (the matmuls in ``dtype``), or ``jnp.bfloat16`` / ``jnp.float16``: mixed precision, the
            matmuls with inputs rounded to it and float32 accumulation, the params and the rest in ``dtype``
            (:mod:`rnnjax.precision`).

    Example:
        >>> cell = rnn(32)
        >>> params = cell.init(jax.random.key(0), 8)   # RNNParams(U=(32, 8), W=(32, 32), b=(32,))
        >>> carry, ys = rj.unroll(cell, params, xs)     # xs: (batch, time, 8)
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {tuple(_ACTIVATIONS)}, got {activation!r}")
    inits.check_input_init(input_init)
    inits.check_recurrent_init(recurrent_init)
    inits.check_gain(gain)
    check_float(bias, "bias")
    inits.check_dtype(dtype)
    md = check_matmul_dtype(matmul_dtype, dtype)
    f = _ACTIVATIONS[activation]

    def init(key: PRNGKey, input_size: int) -> RNNParams:
        k_u, k_w = jax.random.split(key)
        return RNNParams(
            U=inits.input_weights(k_u, input_init, 1, hidden_size, input_size, dtype),
            W=inits.recurrent_weights(k_w, recurrent_init, 1, hidden_size, gain, dtype),
            b=jnp.full((hidden_size,), bias, dtype),
        )

    def pointwise(a: Array, pre: Array) -> Array:
        return f(pre)  # a_t = f(U x_t + b + W a_{t-1}); pre is everything inside f

    return make_cell(
        "rnn", hidden_size, init, lambda shape, dt: jnp.zeros((*shape, hidden_size), dt),
        prepare=dense_prepare, project=dense_project, parts=Parts(pointwise, slope=_SLOPES[activation]),
        options=dict(activation=activation, input_init=input_init, recurrent_init=recurrent_init, gain=gain,
                     bias=bias, dtype=dtype, matmul_dtype=md),
        matmul_dtype=md,
    )  # fmt: skip


def irnn(hidden_size: int, *, gain: float = 1.0, dtype: Any = jnp.float32, matmul_dtype: Any = None) -> Cell:
    """The IRNN of Le, Jaitly & Hinton 2015: a ReLU RNN with ``W = gain * I``, ``b = 0``
    and input weights drawn from N(0, 0.001^2)."""
    return rnn(hidden_size, "relu", input_init=_IRNN_INPUT, recurrent_init="identity", gain=gain, dtype=dtype,
               matmul_dtype=matmul_dtype)  # fmt: skip


_IRNN_INPUT = jax.nn.initializers.normal(1e-3)
