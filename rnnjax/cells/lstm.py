"""The LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

Over the concatenation ``[h_{t-1}, x_t]``::

    f_t  = sigmoid(W_f [h_{t-1}, x_t] + b_f)      forget gate
    i_t  = sigmoid(W_i [h_{t-1}, x_t] + b_i)      input gate
    C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)         candidate cell state
    o_t  = sigmoid(W_o [h_{t-1}, x_t] + b_o)      output gate
    C_t  = f_t * C_{t-1} + i_t * C~_t             cell state
    h_t  = o_t * tanh(C_t)                        hidden state, the output

The four gates run as one fused matmul: ``U`` (input side) and ``W`` (recurrent side) stack the gates'
blocks in the order of :data:`GATES`, f, i, C, o; ``params.W_f`` etc. are the textbook's matrices as views.

With ``proj_size = p > 0`` the hidden state is projected (Sak, Senior & Beaufays 2014, "Long Short-Term Memory
Recurrent Neural Network Architectures for Large Scale Acoustic Modeling"; ``torch.nn.LSTM(proj_size=p)``)::

    h_t = W_hr (o_t * tanh(C_t))                  W_hr: (p, h); h_t: (p,), the output; C_t: (h,)

and ``W: (4h, p)`` multiplies it. The params are then a :class:`ProjectedLSTMParams`, and ``cell.hidden_size``
is ``p``, the size of the output. ``W_hr`` inside the step is a matmul, not element-wise, so the projected
step is not split around ``W`` (no ``Parts``) and runs as the sequential scan.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as inits
from rnnjax.cells.base import Cell, Parts, Prepared, gate_views, make_cell
from rnnjax.cells.rnn import dense_prepare, dense_project
from rnnjax.checks import check_float, check_nonnegative_int
from rnnjax.precision import check_matmul_dtype, matmul
from rnnjax.types import Array, PRNGKey

__all__ = ["GATES", "LSTMParams", "LSTMState", "ProjectedLSTMParams", "lstm"]

GATES = "fiCo"
"""The order of the gates' blocks in ``U``, ``W`` and ``b``: forget, input, candidate, output."""


@gate_views(GATES)
class LSTMParams(NamedTuple):
    """LSTM parameters with the gates stacked in the order f, i, C, o.

    ``U: (4h, i)``, ``W: (4h, h)``, ``b: (4h,)``. The textbook's per-gate matrices over the
    concatenation ``[h_{t-1}, x_t]`` are views: ``W_f, W_i, W_C, W_o: (h, h + i)`` and
    ``b_f, b_i, b_C, b_o: (h,)``.
    """

    U: Array
    W: Array
    b: Array


@gate_views(GATES)
class ProjectedLSTMParams(NamedTuple):
    """Parameters of the LSTM with a projection (``proj_size = p > 0``), the gates stacked f, i, C, o.

    ``U: (4h, i)``, ``W: (4h, p)``, ``b: (4h,)`` and the projection ``W_hr: (p, h)``, PyTorch's
    ``weight_hr``. Views: ``W_f, W_i, W_C, W_o: (h, p + i)`` over ``[h_{t-1}, x_t]`` and ``b_f, ..., b_o: (h,)``.
    """

    U: Array
    W: Array
    b: Array
    W_hr: Array


class LSTMState(NamedTuple):
    """The LSTM carry: hidden state ``h: (*b, h)`` (the output) and cell state ``c: (*b, h)``; with a
    projection ``h: (*b, p)``."""

    h: Array
    c: Array


def gates(pre: Array) -> dict[str, Array]:
    """The gates from their pre-activations ``pre = U x_t + W h_{t-1} + b``, stacked f, i, C, o."""
    f, i, c_tilde, o = jnp.split(pre, 4, axis=-1)
    return {"f": jax.nn.sigmoid(f), "i": jax.nn.sigmoid(i), "C_tilde": jnp.tanh(c_tilde), "o": jax.nn.sigmoid(o)}


def update(state: LSTMState, pre: Array) -> LSTMState:
    """One step after its matmul: the gates, then the cell state and the hidden state."""
    g = gates(pre)
    c = g["f"] * state.c + g["i"] * g["C_tilde"]  # C_t = f_t * C_{t-1} + i_t * C~_t
    h = g["o"] * jnp.tanh(c)  # h_t = o_t * tanh(C_t)
    return LSTMState(h, c)


@functools.cache
def lstm(
    hidden_size: int,
    forget_bias: float = 1.0,
    *,
    input_init: str | inits.Initializer = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    gain: float = 1.0,
    chrono: float | None = None,
    proj_size: int = 0,
    dtype: Any = jnp.float32,
    matmul_dtype: Any = None,
) -> Cell:
    """The LSTM (module docstring).

    Args:
        hidden_size: size of ``h_t`` and ``C_t``.
        forget_bias: the value ``b_f`` starts at (Gers et al. 2000; Jozefowicz et al. 2015 recommend 1).
            It is an initialiser: the forward pass adds nothing.
        input_init, recurrent_init, gain: as in :func:`rnnjax.cells.rnn`; orthogonal is per gate.
        chrono: if given, the longest dependency expected, T_max; then ``b_f`` is drawn as
            ``log(U(1, T_max - 1))`` and ``b_i = -b_f`` (Tallec & Ollivier 2018), replacing ``forget_bias``.
        proj_size: ``p``, the size of the projected ``h_t`` (module docstring), 0 (none) or less than
            ``hidden_size`` (as in PyTorch); ``cell.hidden_size`` is then ``p``. ``W: (4h, p)`` is drawn by
            ``recurrent_init`` per gate as an ``(h, p)`` block (orthogonal: orthonormal columns; gaussian:
            ``N(0, gain^2 / p)``; torch: ``U(-1/sqrt(h), 1/sqrt(h))``; identity has no such block and is refused);
            ``W_hr: (p, h)`` by ``input_init`` (torch: ``U(-1/sqrt(h), 1/sqrt(h))``, as PyTorch draws it).
        dtype: dtype of the params.
        matmul_dtype: None (the matmuls in ``dtype``), or ``jnp.bfloat16`` / ``jnp.float16``: mixed precision, the
            matmuls with inputs rounded to it and float32 accumulation, the params and the rest in ``dtype``
            (:mod:`rnnjax.precision`).
    """
    inits.check_input_init(input_init)
    inits.check_recurrent_init(recurrent_init)
    inits.check_gain(gain)
    check_float(forget_bias, "forget_bias")
    inits.check_chrono(chrono)
    inits.check_dtype(dtype)
    md = check_matmul_dtype(matmul_dtype, dtype)
    h = hidden_size
    p = _check_proj_size(proj_size, h, recurrent_init)

    def init(key: PRNGKey, input_size: int) -> LSTMParams | ProjectedLSTMParams:
        k_u, k_w, k_b = jax.random.split(key, 3)
        b_f = jnp.full((h,), forget_bias, dtype)
        b_i = jnp.zeros((h,), dtype)
        if chrono is not None:
            b_f = inits.chrono_bias(k_b, h, chrono, dtype)
            b_i = -b_f
        U = inits.input_weights(k_u, input_init, 4, h, input_size, dtype)
        b = jnp.concatenate([b_f, b_i, jnp.zeros((2 * h,), dtype)])
        if not p:
            return LSTMParams(U=U, W=inits.recurrent_weights(k_w, recurrent_init, 4, h, gain, dtype), b=b)
        k_w, k_r = jax.random.split(k_w)
        return ProjectedLSTMParams(U, _projected_recurrent(k_w, recurrent_init, h, p, gain, dtype), b,
                                   _projection(k_r, input_init, h, p, dtype))  # fmt: skip

    def zeros(shape: tuple[int, ...], dt: Any) -> LSTMState:
        return LSTMState(jnp.zeros((*shape, p or h), dt), jnp.zeros((*shape, h), dt))

    if p:
        return make_cell(
            "lstm", p, init, zeros, prepare=lambda q: Prepared(q.U.T, q.b, q.W.T, q.W_hr.T),
            project=dense_project, recur=_recur_projected, gates=_gates_projected,
            options=dict(forget_bias=forget_bias, input_init=input_init, recurrent_init=recurrent_init, gain=gain,
                         chrono=chrono, proj_size=p, dtype=dtype, matmul_dtype=md),
            matmul_dtype=md,
        )  # fmt: skip
    return make_cell(
        "lstm", h, init, zeros, prepare=dense_prepare, project=dense_project, parts=Parts(update),
        gates_of_pre=gates,
        options=dict(forget_bias=forget_bias, input_init=input_init, recurrent_init=recurrent_init, gain=gain,
                     chrono=chrono, proj_size=0, dtype=dtype, matmul_dtype=md),
        matmul_dtype=md,
    )  # fmt: skip


def _check_proj_size(proj_size: Any, hidden_size: int, recurrent_init: str) -> int:
    p = check_nonnegative_int(proj_size, "proj_size")
    if p and isinstance(hidden_size, int) and p >= hidden_size:
        raise ValueError(f"proj_size: expected 0 or less than hidden_size={hidden_size} (as in PyTorch), got {p}")
    if p and recurrent_init == "identity":
        raise ValueError(
            f"recurrent_init: 'identity' has no (hidden_size, proj_size) = ({hidden_size}, {p}) block; use "
            "'orthogonal', 'gaussian' or 'torch' with proj_size"
        )
    return p


def _projected_recurrent(key: PRNGKey, init: str, h: int, p: int, gain: float, dtype: Any) -> Array:
    """``W: (4h, p)``, each gate's ``(h, p)`` block drawn on its own (``proj_size`` in :func:`lstm`)."""
    draw = inits.draw_dtype(dtype)

    def block(k: PRNGKey) -> Array:
        if init == "orthogonal":
            return inits.orthogonal(k, h, p, draw)  # orthonormal columns
        if init == "gaussian":
            return jax.random.normal(k, (h, p), draw) / p**0.5
        return jax.random.uniform(k, (h, p), draw, -1.0 / h**0.5, 1.0 / h**0.5)  # torch

    W = gain * jnp.concatenate([block(k) for k in jax.random.split(key, len(GATES))], axis=0)
    return W.astype(inits.check_dtype(dtype))


def _projection(key: PRNGKey, init: str | inits.Initializer, h: int, p: int, dtype: Any) -> Array:
    """``W_hr: (p, h)``, drawn as an input layer from ``h`` features to ``p`` (``proj_size`` in :func:`lstm`)."""
    if init == "torch":  # PyTorch's bound for weight_hr is 1/sqrt(hidden_size), not 1/sqrt(proj_size)
        bound = 1.0 / h**0.5
        W_hr = jax.random.uniform(key, (p, h), inits.draw_dtype(dtype), -bound, bound)
        return W_hr.astype(inits.check_dtype(dtype))
    return inits.input_weights(key, init, 1, p, h, dtype)


def _gates_projected(loop: Prepared, state: LSTMState, xp: Array) -> dict[str, Array]:
    return gates(xp + matmul(state.h, loop.W_T))


def _recur_projected(loop: Prepared, state: LSTMState, xp: Array) -> tuple[LSTMState, Array]:
    g = _gates_projected(loop, state, xp)
    c = g["f"] * state.c + g["i"] * g["C_tilde"]  # C_t = f_t * C_{t-1} + i_t * C~_t
    h = matmul(g["o"] * jnp.tanh(c), loop.extra)  # h_t = W_hr (o_t * tanh(C_t)); extra = W_hr^T
    return LSTMState(h, c), h
