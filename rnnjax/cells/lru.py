"""The Linear Recurrent Unit of Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De 2023, "Resurrecting
Recurrent Neural Networks for Long Sequences".

::

    lambda = exp(-exp(nu_log) + i exp(theta_log))         diagonal, complex, |lambda| < 1 (N of them)
    gamma  = exp(gamma_log)                               normalisation, gamma_log = log sqrt(1 - |lambda|^2) at init
    h_t    = lambda * h_{t-1} + gamma * (B x_t)           B = B_re + i B_im: (N, i); h_t complex: (N,)
    y_t    = Re(C h_t) + D x_t                            C = C_re + i C_im: (h, N); D: (h, i) real

The recurrence is linear and diagonal in ``h``, so it also runs as a parallel scan (``impl="associative"``,
as in the paper). ``y`` reads ``x_t`` too, so it is no part of the carry (``spec.output`` is None); the carry is
the complex state ``h`` (complex64 for float32 params, complex128 for float64), which the analysis reads as the
real vector ``[Re h, Im h]``.

Every param is real and stored as in the paper's code: the exponential parametrisation keeps ``|lambda| < 1``
and the phase positive whatever the optimiser does. The paper's input and output sizes are equal and its ``D`` is
diagonal; here ``y`` has ``hidden_size`` features and ``D`` is a dense ``(h, i)`` matrix.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as inits
from rnnjax.cells.base import Cell, Linear, make_cell
from rnnjax.checks import check_float, check_positive_int
from rnnjax.types import Array, PRNGKey

__all__ = ["LRULoop", "LRUParams", "lru"]


class LRUParams(NamedTuple):
    """LRU parameters, all real (names as in the paper's code), for state size N.

    ``B_re, B_im: (N, i)``; ``C_re, C_im: (h, N)``; ``D: (h, i)``; ``nu_log, theta_log, gamma_log: (N,)``.
    """

    B_re: Array
    B_im: Array
    C_re: Array
    C_im: Array
    D: Array
    nu_log: Array
    theta_log: Array
    gamma_log: Array

    @property
    def lambda_(self) -> Array:
        """The complex eigenvalues ``lambda = exp(-exp(nu_log) + i exp(theta_log))``, ``(N,)``."""
        return _lambda(self.nu_log.astype(_real_dtype(self.nu_log.dtype)), self.theta_log)


class LRULoop(NamedTuple):
    """The params laid out for the loop (``spec.prepare``).

    Attributes:
        lam: ``lambda``, ``(N,)`` complex.
        W_in_T: ``(i, 2N + h)``: ``x @ W_in_T = [Re(gamma B x), Im(gamma B x), D x]``, everything that reads
            ``x`` in one real matmul.
        C_T: ``(2N, h)``: ``[Re h, Im h] @ C_T = Re(C h)``.
    """

    lam: Array
    W_in_T: Array
    C_T: Array


def _real_dtype(dtype: Any) -> Any:
    """The real dtype the recurrence runs in: float64 for float64 params, float32 otherwise (half too)."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def _complex_dtype(dtype: Any) -> Any:
    return jnp.dtype(jnp.complex128) if _real_dtype(dtype) == jnp.float64 else jnp.dtype(jnp.complex64)


def _lambda(nu_log: Array, theta_log: Array) -> Array:
    theta = jnp.exp(theta_log.astype(nu_log.dtype))
    return jnp.exp(jax.lax.complex(-jnp.exp(nu_log), theta))


@functools.cache
def lru(
    hidden_size: int,
    *,
    state_size: int | None = None,
    r_min: float = 0.0,
    r_max: float = 1.0,
    max_phase: float = 2 * math.pi,
    dtype: Any = jnp.float32,
) -> Cell:
    """The LRU (module docstring): ``h_t = lambda * h_{t-1} + gamma * (B x_t)``, ``y_t = Re(C h_t) + D x_t``.

    Initialisation as in the paper (its Lemma 3.2 and appendix A): ``lambda`` uniform on the ring
    ``r_min <= |lambda| <= r_max`` of the complex plane (``|lambda|^2 ~ U(r_min^2, r_max^2)``, phase
    ``~ U(0, max_phase)``), ``gamma_log = log sqrt(1 - |lambda|^2)``, ``B_re, B_im ~ N(0, 1/(2 i))``,
    ``C_re, C_im ~ N(0, 1/N)``. ``D ~ N(0, 1/i)``: the paper's diagonal ``D ~ N(0, 1)`` has equal input and
    output sizes; a dense ``D`` of variance ``1/i`` gives each output the same variance. Draws at the ends of
    the ranges are moved inside by one ulp, so that every param is finite (``|lambda|`` in ``(0, 1)``, phase
    ``> 0``).

    Args:
        hidden_size: the size of ``y_t``.
        state_size: ``N``, the size of the complex state ``h_t``; None: ``hidden_size``.
        r_min, r_max: the ring of the initial ``|lambda|``, ``0 <= r_min < r_max <= 1`` (the paper's defaults
            0 and 1; it uses ``r_min`` up to 0.999 for the longest sequences).
        max_phase: the initial phases' range, ``0 < max_phase <= 2 pi`` (the paper's default ``2 pi``; ``pi/10``
            for the long-range tasks).
        dtype: dtype of the params; the recurrence runs in float32 for half-precision params.

    Example:
        >>> cell = lru(32, state_size=64, r_min=0.9)
        >>> params = cell.init(jax.random.key(0), 8)          # LRUParams(B_re=(64, 8), ..., D=(32, 8), ...)
        >>> carry, ys = rj.unroll(cell, params, xs)            # xs: (batch, time, 8); carry: complex (batch, 64)
    """
    check_positive_int(hidden_size, "hidden_size")
    n = hidden_size if state_size is None else check_positive_int(state_size, "state_size")
    r_min = check_float(r_min, "r_min", low=0.0, high=1.0)
    r_max = check_float(r_max, "r_max", low=0.0, high=1.0, low_open=True)
    if r_min >= r_max:
        raise ValueError(f"r_min: expected a number below r_max={r_max!r} (the ring r_min <= |lambda| <= r_max), got "
                         f"{r_min!r}")  # fmt: skip
    max_phase = check_float(max_phase, "max_phase", low=0.0, high=2 * math.pi, low_open=True)
    dtype = inits.check_dtype(dtype)
    h = hidden_size

    def init(key: PRNGKey, input_size: int) -> LRUParams:
        k_nu, k_theta, k_b_re, k_b_im, k_c_re, k_c_im, k_d = jax.random.split(key, 7)
        dt = inits.draw_dtype(dtype)
        info = jnp.finfo(dt)
        # |lambda|^2 uniform between r_min^2 and r_max^2: lambda uniform on the ring's area (Lemma 3.2)
        u = jax.random.uniform(k_nu, (n,), dt)
        modulus2 = jnp.clip(r_min**2 + u * (r_max**2 - r_min**2), info.tiny, 1 - info.epsneg)
        nu = -0.5 * jnp.log(modulus2)  # |lambda| = exp(-nu)
        theta = jnp.maximum(max_phase * jax.random.uniform(k_theta, (n,), dt), info.tiny)

        def normal(k: PRNGKey, shape: tuple[int, int], variance: float) -> Array:
            return jax.random.normal(k, shape, dt) * math.sqrt(variance)

        params = LRUParams(
            B_re=normal(k_b_re, (n, input_size), 1 / (2 * input_size)),
            B_im=normal(k_b_im, (n, input_size), 1 / (2 * input_size)),
            C_re=normal(k_c_re, (h, n), 1 / n),
            C_im=normal(k_c_im, (h, n), 1 / n),
            D=normal(k_d, (h, input_size), 1 / input_size),
            nu_log=jnp.log(nu),
            theta_log=jnp.log(theta),
            gamma_log=0.5 * jnp.log(-jnp.expm1(-2 * nu)),  # log sqrt(1 - |lambda|^2), exact near |lambda| = 1
        )
        return jax.tree.map(lambda a: a.astype(dtype), params)

    def zeros(shape: tuple[int, ...], dt: Any) -> Array:
        return jnp.zeros((*shape, n), _complex_dtype(dt))

    return make_cell(
        "lru", h, init, zeros, prepare=_prepare, project=_project,
        linear=Linear(_coefficients, readout=_readout), output=None,
        options=dict(state_size=n, r_min=r_min, r_max=r_max, max_phase=max_phase, dtype=dtype),
    )  # fmt: skip


def _prepare(params: LRUParams) -> LRULoop:
    dtype = params.B_re.dtype
    p = jax.tree.map(lambda a: a.astype(_real_dtype(dtype)), params)
    lam = _lambda(p.nu_log, p.theta_log)
    gamma = jnp.exp(p.gamma_log)[:, None]
    W_in = jnp.concatenate([gamma * p.B_re, gamma * p.B_im, p.D], axis=0)  # (2N + h, i)
    C_T = jnp.concatenate([p.C_re.T, -p.C_im.T], axis=0)  # Re(C h) = C_re Re h - C_im Im h
    return LRULoop(lam, W_in.T.astype(dtype), C_T)


def _project(loop: LRULoop, xs: Array) -> Array:
    """``[Re(gamma B x), Im(gamma B x), D x]`` for any leading dims: all that reads ``x``, in one matmul."""
    return xs @ loop.W_in_T


def _coefficients(loop: LRULoop, xp: Array) -> tuple[Array, Array]:
    """``(lambda, gamma B x_t)``, shaped like the state ``(..., N)``."""
    n = loop.lam.shape[-1]
    real = loop.C_T.dtype
    b = jax.lax.complex(xp[..., :n].astype(real), xp[..., n : 2 * n].astype(real))
    return jnp.broadcast_to(loop.lam, b.shape), b


def _readout(loop: LRULoop, h: Array, xp: Array) -> Array:
    """``y_t = Re(C h_t) + D x_t`` for any leading dims, in the params' dtype."""
    n = loop.lam.shape[-1]
    y = jnp.concatenate([h.real, h.imag], axis=-1) @ loop.C_T + xp[..., 2 * n :].astype(loop.C_T.dtype)
    return y.astype(xp.dtype)
