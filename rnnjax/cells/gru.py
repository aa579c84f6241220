"""The gated recurrent unit of Cho et al. 2014, with reset gate r and update gate z.

::

    r_t = sigmoid(W_r [h_{t-1}, x_t] + b_r)                  reset gate
    z_t = sigmoid(W_z [h_{t-1}, x_t] + b_z)                  update gate
    n_t = tanh(U_n x_t + b_n + r_t * (W_hn h_{t-1} + b_hn))  candidate (reset_after=True)
    n_t = tanh(U_n x_t + b_n + W_hn (r_t * h_{t-1}))         candidate (reset_after=False)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

``reset_after=True`` is the PyTorch/cuDNN/Flax form; ``False`` is Cho et al. 2014, where the reset
multiplies ``h_{t-1}`` before the matmul. z is the share of ``h_{t-1}`` that is kept, as in PyTorch and
Flax. Gates are stacked in the order of :data:`GATES`, r, z, n (PyTorch's).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as inits
from rnnjax.cells.base import Cell, Parts, Prepared, gate_views, make_cell
from rnnjax.cells.rnn import dense_project
from rnnjax.precision import check_matmul_dtype, matmul
from rnnjax.types import Array, PRNGKey

__all__ = ["GATES", "GRUParams", "gru"]

GATES = "rzn"
"""The order of the gates' blocks in ``U``, ``W`` and ``b``: reset, update, candidate."""


@gate_views(GATES)
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


@functools.cache
def gru(
    hidden_size: int,
    reset_after: bool = True,
    *,
    input_init: str | inits.Initializer = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    gain: float = 1.0,
    chrono: float | None = None,
    dtype: Any = jnp.float32,
    matmul_dtype: Any = None,
) -> Cell:
    """The GRU (module docstring).

    Args:
        hidden_size: size of ``h_t``.
        reset_after: where the reset gate acts (module docstring).
        input_init, recurrent_init, gain: as in :func:`rnnjax.cells.rnn`; orthogonal is per gate.
        chrono: if given, T_max; ``b_z`` is drawn as ``log(U(1, T_max - 1))`` (chrono initialisation,
            Tallec & Ollivier 2018), so memory times spread to T_max.
        dtype: dtype of the params.
        matmul_dtype: None (the matmuls in ``dtype``), or ``jnp.bfloat16`` / ``jnp.float16``: mixed precision, the
            matmuls with inputs rounded to it and float32 accumulation, the params and the rest in ``dtype``
            (:mod:`rnnjax.precision`).
    """
    if not isinstance(reset_after, bool):
        raise ValueError(f"reset_after: expected True or False, got {reset_after!r}")
    inits.check_input_init(input_init)
    inits.check_recurrent_init(recurrent_init)
    inits.check_gain(gain)
    inits.check_chrono(chrono)
    inits.check_dtype(dtype)
    md = check_matmul_dtype(matmul_dtype, dtype)
    h = hidden_size

    def init(key: PRNGKey, input_size: int) -> GRUParams:
        k_u, k_w, k_b = jax.random.split(key, 3)
        b_z = jnp.zeros((h,), dtype) if chrono is None else inits.chrono_bias(k_b, h, chrono, dtype)
        zeros = jnp.zeros((h,), dtype)
        return GRUParams(
            U=inits.input_weights(k_u, input_init, 3, h, input_size, dtype),
            W=inits.recurrent_weights(k_w, recurrent_init, 3, h, gain, dtype),
            b=jnp.concatenate([zeros, b_z, zeros]),
            b_hn=zeros if reset_after else None,
        )

    def zeros(shape: tuple[int, ...], dt: Any) -> Array:
        return jnp.zeros((*shape, h), dt)

    options = dict(reset_after=reset_after, input_init=input_init, recurrent_init=recurrent_init, gain=gain,
                   chrono=chrono, dtype=dtype, matmul_dtype=md)  # fmt: skip
    if not reset_after:
        return make_cell(
            "gru", h, init, zeros, prepare=_prepare_cho, project=dense_project, recur=_recur_cho, gates=_gates_cho,
            options=options, matmul_dtype=md,
        )  # fmt: skip

    def combine(b_hn: Array, xp: Array, hp: Array) -> tuple[Array, Array]:
        # ([U_r x + b_r + W_r h, U_z x + b_z + W_z h, U_n x + b_n], W_hn h + b_hn). The first keeps xp's
        # layout and adds the r and z blocks of hp by a mask, not by slicing and concatenating: its
        # gradient is then that of xp as it stands, with no copy.
        rz = jnp.arange(3 * h) < 2 * h
        return xp + jnp.where(rz, hp, 0), hp[..., 2 * h :] + b_hn

    return make_cell(
        "gru", h, init, zeros, prepare=lambda p: Prepared(p.U.T, p.b, p.W.T, p.b_hn), project=dense_project,
        parts=Parts(_update, combine), gates_of_pre=_gates, options=options, matmul_dtype=md,
    )  # fmt: skip


def _gates(pre: tuple[Array, Array]) -> dict[str, Array]:
    """reset_after=True: the gates from ``([p_r, p_z, x_n], W_hn h + b_hn)``."""
    p_r, p_z, x_n = jnp.split(pre[0], 3, axis=-1)
    r = jax.nn.sigmoid(p_r)
    return {"r": r, "z": jax.nn.sigmoid(p_z), "n": jnp.tanh(x_n + r * pre[1])}


def _update(state: Array, pre: tuple[Array, Array]) -> Array:
    g = _gates(pre)
    return (1.0 - g["z"]) * g["n"] + g["z"] * state  # h_t = (1 - z_t) n_t + z_t h_{t-1}


def _prepare_cho(params: GRUParams) -> Prepared:
    h = params.W.shape[-1]
    return Prepared(params.U.T, params.b, params.W[: 2 * h].T, params.W[2 * h :].T)  # W_rz^T; W_hn^T as extra


def _gates_cho(loop: Prepared, state: Array, xp: Array) -> dict[str, Array]:
    """reset_after=False: the reset multiplies ``h_{t-1}`` before the candidate's matmul."""
    x_r, x_z, x_n = jnp.split(xp, 3, axis=-1)
    h_r, h_z = jnp.split(matmul(state, loop.W_T), 2, axis=-1)
    r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
    return {"r": r, "z": z, "n": jnp.tanh(x_n + matmul(r * state, loop.extra))}


def _recur_cho(loop: Prepared, state: Array, xp: Array) -> tuple[Array, Array]:
    g = _gates_cho(loop, state, xp)
    new = (1.0 - g["z"]) * g["n"] + g["z"] * state
    return new, new
