"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016, "Layer Normalization", section 3.1 and the LSTM of its
supplementary material).

Layer normalisation of a vector ``z`` of ``D`` features, with a gain ``alpha`` and a bias ``beta`` of its own::

    LN(z; alpha, beta) = alpha * (z - mu) / sqrt(sigma^2 + eps) + beta,
    mu = mean_j z_j,  sigma^2 = mean_j (z_j - mu)^2

is applied to the recurrent and the input contributions apart, each over all ``4h`` gate pre-activations
together, and to the cell state before its ``tanh``::

    [f_t, i_t, C~_t, o_t] = LN(W h_{t-1}; alpha_h, beta_h) + LN(U x_t; alpha_x, beta_x) + b   (pre-activations)
    C_t = sigmoid(f_t) * C_{t-1} + sigmoid(i_t) * tanh(C~_t)
    h_t = sigmoid(o_t) * tanh(LN(C_t; alpha_c, beta_c))

The paper's ``(alpha_1, beta_1)``, ``(alpha_2, beta_2)`` and ``(alpha_3, beta_3)`` are ``(alpha_h, beta_h)``,
``(alpha_x, beta_x)`` and ``(alpha_c, beta_c)``; ``C_t`` itself (the carry) is not normalised. ``beta_h``,
``beta_x`` and ``b`` add to the same pre-activations (their gradients are equal); the paper keeps all three.
The gates' blocks are stacked f, i, C, o as in :mod:`rnnjax.cells.lstm` (its ``GATES``, its carry
``LSTMState(h, c)``), whatever order the paper writes them in. The gains start at 1 and the LN biases at 0
(the paper's code, ``ryankiros/layer-norm``, which also adds ``eps`` = 1e-5 under the root, as
``torch.nn.LayerNorm`` does).

``LN(U x_t)`` reads ``x_t`` alone, so the input side (with ``b``) runs over the whole sequence at once
(``spec.project``). ``LN(W h_{t-1})`` is not linear in ``W h_{t-1}``, so the step is not split around its
matmul (no :class:`~rnnjax.cells.base.Parts`): it runs as the sequential scan, which JAX differentiates.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as inits
from rnnjax.cells.base import Cell, gate_views, make_cell
from rnnjax.cells.lstm import GATES, LSTMState, gates
from rnnjax.checks import check_float
from rnnjax.types import Array, PRNGKey

__all__ = ["LNLSTMParams", "layer_norm", "ln_lstm"]


@gate_views(GATES)
class LNLSTMParams(NamedTuple):
    """Layer-normalised LSTM parameters, the gates stacked f, i, C, o.

    ``U: (4h, i)``, ``W: (4h, h)``, ``b: (4h,)`` as in ``LSTMParams``; the layer norms' gains and biases
    ``alpha_h, beta_h, alpha_x, beta_x: (4h,)`` (of ``W h_{t-1}`` and ``U x_t``) and ``alpha_c, beta_c: (h,)``
    (of ``C_t``). Views, blocks of the stacked matrices: ``W_f, W_i, W_C, W_o: (h, h + i)`` over
    ``[h_{t-1}, x_t]`` and ``b_f, b_i, b_C, b_o: (h,)``.
    """

    U: Array
    W: Array
    b: Array
    alpha_h: Array
    beta_h: Array
    alpha_x: Array
    beta_x: Array
    alpha_c: Array
    beta_c: Array


class _Loop(NamedTuple):
    """The params laid out for the loop: ``U^T: (i, 4h)``, ``W^T: (h, 4h)``, and the params."""

    U_T: Array
    W_T: Array
    params: LNLSTMParams


def layer_norm(z: Array, alpha: Array, beta: Array, eps: float) -> Array:
    """``LN(z; alpha, beta)`` over the last axis of ``z`` (module docstring), for any leading dims."""
    mu = jnp.mean(z, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(z - mu), axis=-1, keepdims=True)
    return alpha * (z - mu) * jax.lax.rsqrt(var + eps) + beta


def _step_functions(eps: float) -> tuple[Any, Any, Any]:
    """``project``, ``gates`` and ``recur`` of the cell, for the layer norms' ``eps``."""

    def project(loop: _Loop, xs: Array) -> Array:
        p = loop.params
        return layer_norm(xs @ loop.U_T, p.alpha_x, p.beta_x, eps) + p.b  # LN(U x_t; alpha_x, beta_x) + b

    def gate_values(loop: _Loop, state: LSTMState, xp: Array) -> dict[str, Array]:
        p = loop.params
        return gates(layer_norm(state.h @ loop.W_T, p.alpha_h, p.beta_h, eps) + xp)  # LN(W h_{t-1}) + xp

    def recur(loop: _Loop, state: LSTMState, xp: Array) -> tuple[LSTMState, Array]:
        g, p = gate_values(loop, state, xp), loop.params
        c = g["f"] * state.c + g["i"] * g["C_tilde"]  # C_t = f_t * C_{t-1} + i_t * C~_t
        h = g["o"] * jnp.tanh(layer_norm(c, p.alpha_c, p.beta_c, eps))  # h_t = o_t * tanh(LN(C_t))
        return LSTMState(h, c), h

    return project, gate_values, recur


@functools.cache
def ln_lstm(
    hidden_size: int,
    forget_bias: float = 1.0,
    *,
    eps: float = 1e-5,
    input_init: str | inits.Initializer = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    gain: float = 1.0,
    chrono: float | None = None,
    dtype: Any = jnp.float32,
) -> Cell:
    """The layer-normalised LSTM (module docstring).

    Args:
        hidden_size: size of ``h_t`` and ``C_t``.
        forget_bias: the value ``b_f`` starts at, as in :func:`rnnjax.cells.lstm` (the paper's code starts
            ``b`` at 0: ``forget_bias=0.0``).
        eps: added to the variance under the square root of every layer norm, a number > 0: at ``h_0 = 0``
            ``W h_0`` has no variance, and ``eps = 0`` would divide by zero there.
        input_init, recurrent_init, gain, chrono: as in :func:`rnnjax.cells.lstm` (``U``, ``W`` and ``b``).
            The layer norms' gains start at 1 and their biases at 0.
        dtype: dtype of the params.
    """
    inits.check_input_init(input_init)
    inits.check_recurrent_init(recurrent_init)
    inits.check_gain(gain)
    check_float(forget_bias, "forget_bias")
    eps = check_float(eps, "eps", low=0.0, low_open=True)
    inits.check_chrono(chrono)
    inits.check_dtype(dtype)
    h = hidden_size

    def init(key: PRNGKey, input_size: int) -> LNLSTMParams:
        k_u, k_w, k_b = jax.random.split(key, 3)
        b_f = jnp.full((h,), forget_bias, dtype)
        b_i = jnp.zeros((h,), dtype)
        if chrono is not None:
            b_f = inits.chrono_bias(k_b, h, chrono, dtype)
            b_i = -b_f
        ones, zeros = jnp.ones((4 * h,), dtype), jnp.zeros((4 * h,), dtype)
        return LNLSTMParams(
            U=inits.input_weights(k_u, input_init, 4, h, input_size, dtype),
            W=inits.recurrent_weights(k_w, recurrent_init, 4, h, gain, dtype),
            b=jnp.concatenate([b_f, b_i, jnp.zeros((2 * h,), dtype)]),
            alpha_h=ones, beta_h=zeros, alpha_x=ones, beta_x=zeros,
            alpha_c=jnp.ones((h,), dtype), beta_c=jnp.zeros((h,), dtype),
        )  # fmt: skip

    def zeros(shape: tuple[int, ...], dt: Any) -> LSTMState:
        return LSTMState(jnp.zeros((*shape, h), dt), jnp.zeros((*shape, h), dt))

    project, gate_values, recur = _step_functions(eps)
    return make_cell(
        "ln_lstm", h, init, zeros, prepare=lambda p: _Loop(p.U.T, p.W.T, p), project=project, recur=recur,
        gates=gate_values,
        options=dict(forget_bias=forget_bias, eps=eps, input_init=input_init, recurrent_init=recurrent_init,
                     gain=gain, chrono=chrono, dtype=dtype),
    )  # fmt: skip
