"""minGRU and minLSTM: the GRU and the LSTM with gates read from ``x_t`` alone (Feng, Tung, Ahmed, Bengio &
Hajimirsadeghi 2024, "Were RNNs All We Needed?").

With no ``h_{t-1}`` inside the gates, each recurrence is linear in its state, ``h_t = a_t * h_{t-1} + b_t``::

    minGRU:   z_t  = sigmoid(Linear_z(x_t))                   update gate
              h~_t = g(Linear_h(x_t))                         candidate
              h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t         a_t = 1 - z_t,  b_t = z_t * h~_t

    minLSTM:  f_t  = sigmoid(Linear_f(x_t))                   forget gate
              i_t  = sigmoid(Linear_i(x_t))                   input gate
              h~_t = g(Linear_h(x_t))                         candidate
              f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
              h_t  = f'_t * h_{t-1} + i'_t * h~_t              a_t = f'_t,  b_t = i'_t * h~_t

The output is the state, ``y_t = h_t`` (no output gate, no ``tanh``). ``Linear_k(x) = U_k x + b_k``; the blocks
are stacked in one ``U: (k*h, i)`` and ``b: (k*h,)`` (one matmul), in the order of :data:`MINGRU_GATES` (z, h)
and :data:`MINLSTM_GATES` (f, i, h); ``params.U_z`` etc. are views.

``g`` is the paper's positive activation for its log-space model (Appendix B), ``g(x) = x + 1/2`` for
``x >= 0`` and ``sigmoid(x)`` otherwise: continuous, positive, linear for large ``x``. With it ``a_t, b_t > 0``,
so the parallel scan (:mod:`rnnjax.associative`) runs in log space, as the paper trains it, on
``log a_t = -softplus(k_z)``, ``log b_t = -softplus(-k_z) + log g(k_h)`` (minGRU) and
``log f'_t = -softplus(d)``, ``log i'_t = -softplus(-d)``, ``d = softplus(-k_f) - softplus(-k_i)`` (minLSTM).
The paper's sequential mode of the log-space model applies ``g`` too (as lucidrains/minGRU-pytorch does), so
both forms compute one function; ``positive=False`` is the paper's plain model, ``h~_t = Linear_h(x_t)``,
whose parallel form is the associative scan of ``(a, b)`` pairs in linear space (``b_t`` may be negative).

The initial state enters linearly, ``h_t = A_t h_0 + B_t``, in every implementation, so ``h_0`` may be any
real (the paper's log-space pseudocode takes ``log h_0`` and so needs ``h_0 > 0``; zeros by default here).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as inits
from rnnjax.cells.base import Cell, Linear, make_cell
from rnnjax.cells.rnn import dense_project
from rnnjax.types import Array, PRNGKey

__all__ = ["MINGRU_GATES", "MINLSTM_GATES", "MinGRUParams", "MinLSTMParams", "g", "log_g", "mingru", "minlstm"]

MINGRU_GATES = "zh"
"""The order of the blocks in a minGRU's ``U`` and ``b``: update gate, candidate."""
MINLSTM_GATES = "fih"
"""The order of the blocks in a minLSTM's ``U`` and ``b``: forget gate, input gate, candidate."""


def _block(params: Any, gates: str, gate: str) -> tuple[Array, Array]:
    """One block's ``(h, i)`` rows of ``U`` and ``(h,)`` of ``b``."""
    h = params.b.shape[-1] // len(gates)
    rows = slice(gates.index(gate) * h, (gates.index(gate) + 1) * h)
    return params.U[rows], params.b[rows]


class MinGRUParams(NamedTuple):
    """minGRU parameters, the blocks stacked z, h: ``U: (2h, i)``, ``b: (2h,)``; views ``U_z, U_h: (h, i)``
    and ``b_z, b_h: (h,)`` (the paper's ``Linear_z``, ``Linear_h``)."""

    U: Array
    b: Array

    U_z = property(lambda self: _block(self, MINGRU_GATES, "z")[0])
    U_h = property(lambda self: _block(self, MINGRU_GATES, "h")[0])
    b_z = property(lambda self: _block(self, MINGRU_GATES, "z")[1])
    b_h = property(lambda self: _block(self, MINGRU_GATES, "h")[1])


class MinLSTMParams(NamedTuple):
    """minLSTM parameters, the blocks stacked f, i, h: ``U: (3h, i)``, ``b: (3h,)``; views
    ``U_f, U_i, U_h: (h, i)`` and ``b_f, b_i, b_h: (h,)`` (the paper's ``Linear_f``, ``Linear_i``, ``Linear_h``)."""

    U: Array
    b: Array

    U_f = property(lambda self: _block(self, MINLSTM_GATES, "f")[0])
    U_i = property(lambda self: _block(self, MINLSTM_GATES, "i")[0])
    U_h = property(lambda self: _block(self, MINLSTM_GATES, "h")[0])
    b_f = property(lambda self: _block(self, MINLSTM_GATES, "f")[1])
    b_i = property(lambda self: _block(self, MINLSTM_GATES, "i")[1])
    b_h = property(lambda self: _block(self, MINLSTM_GATES, "h")[1])


class Projection(NamedTuple):
    """The params laid out for the loop: ``x @ U_T + b`` is every block of ``Linear(x_t)`` at once.

    Attributes:
        U_T: ``(i, k*h)``.
        b: ``(k*h,)``.
    """

    U_T: Array
    b: Array


def _prepare(params: Any) -> Projection:
    return Projection(params.U.T, params.b)


def g(x: Array) -> Array:
    """The paper's positive activation: ``x + 1/2`` for ``x >= 0``, ``sigmoid(x)`` below (continuous at 0)."""
    return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_g(x: Array) -> Array:
    """``log g(x)`` without forming ``g``: ``log(x + 1/2)`` for ``x >= 0``, ``-softplus(-x)`` below.

    The inner ``where`` keeps the unused branch's ``log`` finite (no NaN in the gradient) and gives the
    derivative of the branch taken at ``x = 0``, ``1 / g(0)``, as JAX's derivative of :func:`g` is there.
    """
    positive = x >= 0
    return jnp.where(positive, jnp.log(jnp.where(positive, x, 0) + 0.5), -jax.nn.softplus(-x))


def _candidate(k_h: Array, positive: bool) -> Array:
    return g(k_h) if positive else k_h  # h~_t = g(Linear_h(x_t)), or Linear_h(x_t) in the plain model


# minGRU ------------------------------------------------------------------------------------------------------


def _mingru_gates(xp: Array, positive: bool) -> dict[str, Array]:
    k_z, k_h = jnp.split(xp, 2, axis=-1)
    return {"z": jax.nn.sigmoid(k_z), "h_tilde": _candidate(k_h, positive)}


def _mingru_coefficients(positive: bool) -> Callable[[Projection, Array], tuple[Array, Array]]:
    def coefficients(loop: Projection, xp: Array) -> tuple[Array, Array]:
        k_z, k_h = jnp.split(xp, 2, axis=-1)
        z = jax.nn.sigmoid(k_z)
        # h_t = (1 - z_t) h_{t-1} + z_t h~_t; 1 - z_t = sigmoid(-k_z), without the cancellation near z_t = 1
        return jax.nn.sigmoid(-k_z), z * _candidate(k_h, positive)

    return coefficients


def _mingru_log_coefficients(loop: Projection, xp: Array) -> tuple[Array, Array]:
    k_z, k_h = jnp.split(xp, 2, axis=-1)
    return -jax.nn.softplus(k_z), -jax.nn.softplus(-k_z) + log_g(k_h)  # log(1 - z_t), log z_t + log h~_t


# minLSTM -----------------------------------------------------------------------------------------------------


def _minlstm_gates(xp: Array, positive: bool) -> dict[str, Array]:
    k_f, k_i, k_h = jnp.split(xp, 3, axis=-1)
    f, i = jax.nn.sigmoid(k_f), jax.nn.sigmoid(k_i)
    return {"f_prime": f / (f + i), "i_prime": i / (f + i), "h_tilde": _candidate(k_h, positive)}


def _minlstm_coefficients(positive: bool) -> Callable[[Projection, Array], tuple[Array, Array]]:
    def coefficients(loop: Projection, xp: Array) -> tuple[Array, Array]:
        gates = _minlstm_gates(xp, positive)
        return gates["f_prime"], gates["i_prime"] * gates["h_tilde"]  # h_t = f'_t h_{t-1} + i'_t h~_t

    return coefficients


def _minlstm_log_coefficients(loop: Projection, xp: Array) -> tuple[Array, Array]:
    k_f, k_i, k_h = jnp.split(xp, 3, axis=-1)
    d = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)  # log i_t - log f_t
    return -jax.nn.softplus(d), -jax.nn.softplus(-d) + log_g(k_h)  # log f'_t, log i'_t + log h~_t


# Factories ---------------------------------------------------------------------------------------------------


def _check_options(positive: Any, input_init: Any, dtype: Any) -> None:
    if not isinstance(positive, bool):
        raise ValueError(f"positive: expected True (the paper's log-space model, g) or False, got {positive!r}")
    if input_init != "linear":
        try:
            inits.check_input_init(input_init)
        except ValueError:
            raise ValueError(
                f"input_init: expected 'linear' (PyTorch's nn.Linear), one of {inits.INPUT_INITS} or a callable, "
                f"got {input_init!r}"
            ) from None
    inits.check_dtype(dtype)


def _init(blocks: int, h: int, input_init: str | inits.Initializer, dtype: Any, params: type) -> Callable[..., Any]:
    def init(key: PRNGKey, input_size: int) -> Any:
        if input_init != "linear":
            U = inits.input_weights(key, input_init, blocks, h, input_size, dtype)
            return params(U=U, b=jnp.zeros((blocks * h,), U.dtype))
        # nn.Linear(i, k*h)'s default: U and b ~ U(-1/sqrt(i), 1/sqrt(i)), a bound from the fan-in alone, so
        # one stacked layer draws as k layers Linear(i, h) do.
        k_u, k_b = jax.random.split(key)
        bound = 1.0 / input_size**0.5
        draw = inits.draw_dtype(dtype)
        U = jax.random.uniform(k_u, (blocks * h, input_size), draw, -bound, bound)
        b = jax.random.uniform(k_b, (blocks * h,), draw, -bound, bound)
        return params(U=U.astype(inits.check_dtype(dtype)), b=b.astype(inits.check_dtype(dtype)))

    return init


def _zeros(h: int) -> Callable[[tuple[int, ...], Any], Array]:
    return lambda shape, dt: jnp.zeros((*shape, h), dt)


@functools.cache
def mingru(
    hidden_size: int,
    *,
    positive: bool = True,
    input_init: str | inits.Initializer = "linear",
    dtype: Any = jnp.float32,
) -> Cell:
    """The minGRU of Feng et al. 2024 (module docstring)::

        z_t = sigmoid(U_z x_t + b_z);  h~_t = g(U_h x_t + b_h);  h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

    Runs sequentially (``impl="scan"``) or as a parallel scan over time (``impl="associative"``, in log
    space when ``positive``); the two agree.

    Args:
        hidden_size: size of ``h_t``.
        positive: apply the paper's positive ``g`` to the candidate (its log-space model, and the parallel scan
            in log space); False: ``h~_t = U_h x_t + b_h`` (its plain model; the scan in linear space).
        input_init: ``"linear"``: ``U`` and ``b`` drawn as PyTorch's ``nn.Linear`` draws them,
            ``U(-1/sqrt(i), 1/sqrt(i))`` (the paper states no initialisation; its pseudocode's ``Linear`` and
            lucidrains/minGRU-pytorch use this default); or any input initialiser of :mod:`rnnjax.init`,
            drawn per block, with ``b = 0``.
        dtype: dtype of the params.
    """
    _check_options(positive, input_init, dtype)
    h = hidden_size
    linear = Linear(_mingru_coefficients(positive), log_coefficients=_mingru_log_coefficients if positive else None)
    return make_cell(
        "mingru", h, _init(2, h, input_init, dtype, MinGRUParams), _zeros(h), prepare=_prepare,
        project=dense_project, output=0, gates=lambda loop, carry, xp: _mingru_gates(xp, positive), linear=linear,
        options=dict(positive=positive, input_init=input_init, dtype=dtype),
    )  # fmt: skip


@functools.cache
def minlstm(
    hidden_size: int,
    *,
    positive: bool = True,
    input_init: str | inits.Initializer = "linear",
    dtype: Any = jnp.float32,
) -> Cell:
    """The minLSTM of Feng et al. 2024 (module docstring)::

        f_t = sigmoid(U_f x_t + b_f);  i_t = sigmoid(U_i x_t + b_i);  h~_t = g(U_h x_t + b_h)
        h_t = f_t / (f_t + i_t) * h_{t-1} + i_t / (f_t + i_t) * h~_t

    Runs sequentially (``impl="scan"``) or as a parallel scan over time (``impl="associative"``, in log
    space when ``positive``); the two agree. Gate traces name the normalised gates ``f_prime``, ``i_prime``.

    Args:
        hidden_size: size of ``h_t``.
        positive, input_init, dtype: as in :func:`mingru`.
    """
    _check_options(positive, input_init, dtype)
    h = hidden_size
    linear = Linear(_minlstm_coefficients(positive), log_coefficients=_minlstm_log_coefficients if positive else None)
    return make_cell(
        "minlstm", h, _init(3, h, input_init, dtype, MinLSTMParams), _zeros(h), prepare=_prepare,
        project=dense_project, output=0, gates=lambda loop, carry, xp: _minlstm_gates(xp, positive), linear=linear,
        options=dict(positive=positive, input_init=input_init, dtype=dtype),
    )  # fmt: skip
