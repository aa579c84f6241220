"""Initialisers for recurrent cells, chosen by name and applied gate by gate.

Every initialiser here writes its choice into the params, so nothing is hidden in a
forward pass: the forget-gate bias of an LSTM is a value in ``params.b``, the
identity of an IRNN is ``params.W``, and a recurrent ``gain`` is visible as the
singular values of each gate's block of ``W``.

Precision: every initialiser draws in float32 (float64 when float64 params are asked for and
``jax_enable_x64`` is on) and casts to the requested ``dtype`` once, at the end. Half-precision
params (``bfloat16``, ``float16``) are then the float32 draw rounded, whatever the initialiser:
XLA has no QR for them (the orthogonal draw), and a Gaussian or uniform drawn in 8 or 11
significand bits is a coarser distribution than its rounded float32 draw. The same key gives
the same weights in every dtype, up to that rounding.

The ``check_*`` functions validate the initialisers' arguments; the cell factories call them
when a cell is configured, so a bad ``gain`` fails there and not at ``init``.

References:
    Glorot & Bengio 2010 (``glorot_*``); LeCun et al. 1998 (``lecun_*``);
    Saxe et al. 2014 (``orthogonal``); Le, Jaitly & Hinton 2015 (``identity``, IRNN);
    Tallec & Ollivier 2018, "Can recurrent neural networks warp time?" (chrono).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.checks import check_float, check_key, describe
from rnnjax.types import Array, PRNGKey

__all__ = [
    "INPUT_INITS",
    "RECURRENT_INITS",
    "Initializer",
    "check_chrono",
    "check_dtype",
    "check_gain",
    "check_input_init",
    "check_recurrent_init",
    "chrono_bias",
    "draw_dtype",
    "input_weights",
    "orthogonal",
    "recurrent_weights",
]

Initializer = Callable[[PRNGKey, tuple[int, ...], jnp.dtype], Array]
"""``init(key, shape, dtype) -> array``, as ``jax.nn.initializers``; called with the draw dtype."""

_INPUT = {
    "glorot_uniform": jax.nn.initializers.glorot_uniform,
    "glorot_normal": jax.nn.initializers.glorot_normal,
    "lecun_uniform": jax.nn.initializers.lecun_uniform,
    "lecun_normal": jax.nn.initializers.lecun_normal,
    "he_normal": jax.nn.initializers.he_normal,
}
INPUT_INITS = (*_INPUT, "torch")
RECURRENT_INITS = ("orthogonal", "gaussian", "identity", "torch")


def check_dtype(dtype: Any, name: str = "dtype") -> jnp.dtype:
    """``dtype`` as the floating ``jnp.dtype`` that arrays of it get (float64 becomes float32 unless
    ``jax_enable_x64`` is on); raises a ValueError for anything that is not a real floating dtype."""
    try:
        if dtype is None:  # numpy reads None as float64
            raise TypeError
        canonical = jax.dtypes.canonicalize_dtype(dtype)
    except TypeError:
        raise ValueError(f"{name}: expected a floating dtype such as jnp.float32, got {describe(dtype)}") from None
    if not jnp.issubdtype(canonical, jnp.floating):
        raise ValueError(f"{name}: expected a floating dtype such as jnp.float32, got {canonical}")
    return canonical


def draw_dtype(dtype: Any) -> jnp.dtype:
    """The dtype initialisers draw in for params of ``dtype``: float64 for float64 (with x64 on),
    float32 for every other floating dtype (half precision included)."""
    return jnp.dtype(jnp.float64) if check_dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def check_gain(gain: Any) -> float:
    """``gain`` as a Python float; raises a ValueError naming ``gain`` unless it is a finite number > 0.

    Bools and strings are refused (``True`` is no gain), numpy scalars accepted.
    """
    return check_float(gain, "gain", low=0.0, low_open=True)


def check_chrono(t_max: Any, name: str = "chrono") -> float | None:
    """``t_max`` (the chrono initialisation's T_max) as a Python float, or None (no chrono).

    Raises a ValueError naming ``name`` unless it is a finite number > 2 (not a bool): the biases
    are drawn as ``log(U(1, T_max - 1))``, an empty range for T_max <= 2.
    """
    if t_max is None:
        return None
    try:
        return check_float(t_max, name, low=2.0, low_open=True)
    except ValueError as e:
        raise ValueError(f"{e}; T_max is the longest dependency expected, and must exceed 2") from None


def check_input_init(init: str | Initializer) -> None:
    """Raises a ValueError unless ``init`` names an input initialiser or is callable."""
    if not callable(init) and init not in INPUT_INITS:
        raise ValueError(f"input_init: expected one of {INPUT_INITS} or a callable, got {init!r}")


def check_recurrent_init(init: str) -> None:
    """Raises a ValueError unless ``init`` names a recurrent initialiser."""
    if init not in RECURRENT_INITS:
        raise ValueError(f"recurrent_init: expected one of {RECURRENT_INITS}, got {init!r}")


def _torch_uniform(hidden_size: int) -> Initializer:
    """PyTorch's default for every RNN weight: U(-1/sqrt(h), 1/sqrt(h))."""
    bound = 1.0 / hidden_size**0.5
    return lambda key, shape, dtype: jax.random.uniform(key, shape, dtype, -bound, bound)


def input_weights(
    key: PRNGKey, init: str | Initializer, num_gates: int, hidden_size: int, input_size: int, dtype: Any
) -> Array:
    """Input-to-hidden weights ``U: (g*h, i)``, each gate's ``(h, i)`` block drawn on its own.

    Fans are per gate (fan_in = i, fan_out = h), as if every gate were its own layer. A callable
    ``init`` is called with the draw dtype (see the module docstring) and its result cast to ``dtype``.
    """
    check_key(key)
    check_input_init(init)
    draw = draw_dtype(dtype)
    if init == "torch":
        fn = _torch_uniform(hidden_size)
    elif callable(init):
        fn = init
    else:
        # jax initialisers read (fan_in, fan_out) from a (in, out) shape; we store (out, in).
        base = _INPUT[init]()
        fn = lambda k, shape, dt: base(k, shape[::-1], dt).T  # noqa: E731
    keys = jax.random.split(key, num_gates)
    U = jnp.concatenate([jnp.asarray(fn(k, (hidden_size, input_size), draw), draw) for k in keys], axis=0)
    return U.astype(check_dtype(dtype))


def recurrent_weights(key: PRNGKey, init: str, num_gates: int, hidden_size: int, gain: float, dtype: Any) -> Array:
    """Recurrent weights ``W: (g*h, h)``, each gate's ``(h, h)`` block drawn on its own.

    Args:
        init: ``"orthogonal"`` (``gain * Q`` with Q Haar-orthogonal, per gate),
            ``"gaussian"`` (entries N(0, gain^2 / h): the random-matrix ensemble whose
            spectral radius tends to ``gain``), ``"identity"`` (``gain * I``, the IRNN) or
            ``"torch"`` (PyTorch's U(-1/sqrt(h), 1/sqrt(h)), scaled by ``gain``).
        gain: scales every block, a finite number > 0; the analysis sweeps it through the edge of chaos.
        dtype: of the result; drawn and scaled in float32 (float64), then cast once. In half
            precision an orthogonal block is orthogonal up to the rounding of its entries.
    """
    check_key(key)
    check_recurrent_init(init)
    gain = check_gain(gain)
    draw = draw_dtype(dtype)
    shape = (hidden_size, hidden_size)

    def block(k: PRNGKey) -> Array:
        if init == "orthogonal":
            return orthogonal(k, hidden_size, hidden_size, draw)
        if init == "gaussian":
            return jax.random.normal(k, shape, draw) / hidden_size**0.5
        if init == "identity":
            return jnp.eye(hidden_size, dtype=draw)
        return _torch_uniform(hidden_size)(k, shape, draw)

    keys = jax.random.split(key, num_gates)
    return (gain * jnp.concatenate([block(k) for k in keys], axis=0)).astype(check_dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))  # one compiled draw per shape, as jax's own
def orthogonal(key: PRNGKey, rows: int, cols: int, dtype: Any) -> Array:
    """A Haar-random ``(rows, cols)`` matrix with orthonormal columns (``rows >= cols``) or rows: the QR of a
    Gaussian draw with the signs of ``diag(R)`` taken out (Mezzadri 2007), the same numbers as
    ``jax.nn.initializers.orthogonal()(key, (rows, cols), dtype)``, and the same under ``jax.vmap`` as drawn
    one key at a time.

    It differs from jax's in one way: under ``vmap`` the QR runs one matrix at a time (:func:`_serial_qr`),
    because jaxlib 0.10's batched CPU QR can hang the process (see there)."""
    z = jax.random.normal(key, (max(rows, cols), min(rows, cols)), dtype)
    q, r = _serial_qr(z)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    return q.T if rows < cols else q


@jax.custom_batching.custom_vmap
def _serial_qr(z: Array) -> tuple[Array, Array]:
    """``jnp.linalg.qr(z)`` of one matrix; under ``jax.vmap``, a ``lax.map`` of it over the batch.

    Why: on the CPU, jaxlib 0.10.2's LAPACK QR of a batch (``lapack_sgeqrf_ffi``) splits the batch into tasks
    on XLA's intra-op thread pool and blocks its own worker thread until they finish. When a jitted program
    holds at least as many independent batched QRs as the pool has threads (two on a 2-core machine: e.g.
    ``jax.jit(jax.vmap(model.init))`` over 5 seeds of a GRU, whose gates are drawn one QR each), every worker
    waits on tasks that no free worker is left to run, and the process hangs for good. Measured on 2 cores: two
    independent QRs of batch 5 (50 x 50) in one ``jit`` hang within a few calls (a GRU's vmapped init: on the
    second); three of batch 1, or four of batch 2, ran 200 calls. Mapped over the batch, each QR is of one
    matrix, as an unbatched draw's is (so the numbers are those of the unbatched QR). Init-time only: the cost
    is a loop over a few matrices.
    """
    q, r = jnp.linalg.qr(z)
    return q, r


@_serial_qr.def_vmap
def _serial_qr_vmap(axis_size: int, in_batched: list[bool], z: Array):
    del axis_size
    if not in_batched[0]:
        return _serial_qr(z), (False, False)
    return jax.lax.map(_serial_qr, z), (True, True)


def chrono_bias(key: PRNGKey, hidden_size: int, t_max: float, dtype: Any) -> Array:
    """Chrono initialisation: ``log(u)`` with ``u ~ U(1, t_max - 1)`` (Tallec & Ollivier 2018).

    Used as the forget-gate bias of an LSTM (its input gate gets the negative) and the
    update-gate bias of a GRU, so that characteristic memory times spread over
    ``[1, t_max]``. ``t_max``: a finite number > 2 (see :func:`check_chrono`).
    """
    check_key(key)
    t_max = check_chrono(t_max)
    if t_max is None:
        raise ValueError("chrono: expected the longest dependency expected T_max, a finite number > 2, got None")
    draw = draw_dtype(dtype)
    return jnp.log(jax.random.uniform(key, (hidden_size,), draw, 1.0, t_max - 1.0)).astype(check_dtype(dtype))
