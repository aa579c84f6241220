"""Spectra of Jacobian products: singular values, norms against the lag, fitted rates, the Pascanu bound.

A product of many step Jacobians can leave the range of its dtype: in float32 a norm below about 1.2e-38
(the smallest normal number) has lost its precision or flushed to 0, one above 3.4e38 is Inf (and its
SVD NaN). Such lags tell nothing about the rate and are left out of the fit, never silently:
:class:`LagNorms` marks them (``underflow``, ``overflow``) and :func:`fit_rate` warns with a
:class:`NormRangeWarning` naming how many and from which lag (also under ``jit``, through
``jax.debug.callback``).

References: Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent neural
networks" (the bound ``||da_t/da_k|| <= (gamma * sigma_max(W))^(t-k)``, gamma = 1 for tanh, 1/4 for
the sigmoid).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis.products import jacobian_products, later_times, matrix_norm
from rnnjax.analysis.validate import check_jacobians
from rnnjax.checks import check_float, check_nonnegative_int, describe, is_concrete
from rnnjax.types import Array

__all__ = ["LagNorms", "NormRangeWarning", "eigenvalues", "fit_rate", "norms_by_lag", "pascanu_bound",
           "singular_values"]  # fmt: skip


class NormRangeWarning(RuntimeWarning):
    """Norms of Jacobian products underflowed or overflowed their dtype; those lags were left out of a fit."""


def singular_values(matrices: Array) -> Array:
    """Singular values of each matrix in ``(..., n, n)``, largest first: ``(..., n)``."""
    return jnp.linalg.svd(check_jacobians(matrices, "matrices", rank=2), compute_uv=False)


class LagNorms(NamedTuple):
    """``||da_t/da_{t-lag}||`` for lag = 0..t, with the fitted exponential rate.

    Attributes:
        lags: ``(t + 1,)``.
        norms: ``(..., t + 1)``; NaN for lags beyond a sequence's own later time (``lag > min(t, length)``).
        rate: ``(...,)`` the slope of ``log norm`` against the lag (per step; below 0 the gradient
            vanishes at ``exp(rate)`` per step, above 0 it explodes), fitted over the lags ``>= min_lag``
            that exist and stayed in range.
        intercept: ``(...,)`` of the same least-squares fit.
        valid: ``(..., t + 1)`` bool, the lags that exist for each sequence.
        underflow: ``(..., t + 1)`` bool, valid lags whose norm fell below the dtype's smallest normal
            number (0 or subnormal): the product underflowed; left out of the fit.
        overflow: ``(..., t + 1)`` bool, valid lags whose norm is Inf or NaN; left out of the fit.
    """

    lags: Array
    norms: Array
    rate: Array
    intercept: Array
    valid: Array
    underflow: Array
    overflow: Array


def _warn(under: np.ndarray, over: np.ndarray, first_under: np.ndarray, first_over: np.ndarray, dtype: str) -> None:
    under, over = int(np.sum(under)), int(np.sum(over))
    if not under and not over:
        return
    tiny, big = np.finfo(dtype).tiny, np.finfo(dtype).max
    parts = []
    if under:
        lag = np.min(first_under)
        parts.append(f"{under} underflowed (below {dtype}'s smallest normal number {tiny:.2g}, from lag {lag})")
    if over:
        parts.append(f"{over} overflowed (Inf or NaN, above {big:.2g}, from lag {np.min(first_over)})")
    warnings.warn(
        f"fit_rate: of the norms, {' and '.join(parts)}; those lags are left out of the fitted rate, which "
        f"comes from the remaining lags (LagNorms.underflow and .overflow mark them; float64 reaches further)",
        NormRangeWarning,
        stacklevel=3,
    )


def out_of_range(norms: Array, exists: Array) -> tuple[Array, Array]:
    """``(underflow, overflow)``: existing norms below the dtype's smallest normal number, and non-finite."""
    tiny = jnp.finfo(norms.dtype).tiny
    return exists & (norms < tiny), exists & ~jnp.isfinite(norms)


def fit_rate(
    lags: Array, norms: Array, min_lag: int = 1, *, valid: Array | None = None, warn: bool = True
) -> tuple[Array, Array]:
    """Least-squares fit of ``log norms = intercept + rate * lag`` over lags >= ``min_lag``.

    Args:
        lags: ``(L,)``.
        norms: ``(..., L)``.
        valid: bool, broadcastable to ``norms``: the lags that exist (None: all); others (NaN in
            :class:`LagNorms` beyond a sequence's length) are skipped quietly.
        warn: emit a :class:`NormRangeWarning` when existing lags are left out because their norm
            underflowed (below the dtype's smallest normal number, or 0) or overflowed (Inf, NaN).

    Returns:
        ``(rate, intercept)``, each ``(...,)``; NaN where fewer than two lags are left.
    """
    norms = jnp.asarray(norms)
    if not jnp.issubdtype(norms.dtype, jnp.floating) or norms.ndim < 1:
        raise ValueError(f"norms: expected a floating array (..., lags), got {describe(norms)}")
    lags = jnp.asarray(lags)
    if lags.shape != norms.shape[-1:]:
        raise ValueError(f"lags: expected shape {norms.shape[-1:]} (the last axis of norms), got {lags.shape}")
    min_lag = check_nonnegative_int(min_lag, "min_lag")
    exists = jnp.ones(norms.shape, bool) if valid is None else jnp.broadcast_to(jnp.asarray(valid, bool), norms.shape)
    exists = exists & (lags >= min_lag)
    under, over = out_of_range(norms, exists)
    if warn:
        big = jnp.iinfo(jnp.int32).max
        counts = (under.sum(), over.sum(), jnp.where(under, lags, big).min(), jnp.where(over, lags, big).min())
        if all(is_concrete(c) for c in counts):
            _warn(*(np.asarray(c) for c in counts), norms.dtype.name)
        else:
            jax.debug.callback(_warn, *counts, norms.dtype.name)
    x = lags.astype(norms.dtype)
    use = exists & ~under & ~over
    logs = jnp.log(jnp.where(use, norms, 1.0))
    w = use.astype(norms.dtype)
    n = w.sum(-1)
    mean_x = (w * x).sum(-1) / n
    mean_y = (w * logs).sum(-1) / n
    dx = jnp.where(use, x - mean_x[..., None], 0.0)
    dy = jnp.where(use, logs - mean_y[..., None], 0.0)
    rate = (dx * dy).sum(-1) / (dx**2).sum(-1)
    return rate, mean_y - rate * mean_x


def norms_by_lag(
    jacobians: Array, t: int | None = None, ord: str = "spectral", min_lag: int = 1, lengths: Array | None = None,
    *, warn: bool = True,
) -> LagNorms:  # fmt: skip
    """``||da_t/da_{t-lag}||`` for every lag from the step Jacobians, and its fitted rate.

    Args:
        jacobians: ``(..., T, n, n)`` from :func:`~rnnjax.analysis.step_jacobians`.
        t: the later time, 0..T (default T).
        ord: ``"spectral"`` or ``"fro"``.
        min_lag: the smallest lag of the fit.
        lengths: ``(...)`` valid steps per sequence: lags count back from ``t_b = min(t, lengths)``, so a
            padded batch gives each sequence's own norms, NaN beyond its length.
        warn: as in :func:`fit_rate`.
    """
    products = jacobian_products(jacobians, t, lengths)  # entry k is da_{t_b}/da_k
    t, ends = later_times(jacobians, t, lengths)
    by_k = matrix_norm(products, ord)
    lags = jnp.arange(t + 1)
    valid = lags <= ends[..., None]
    index = jnp.broadcast_to(jnp.clip(ends[..., None] - lags, 0, t), by_k.shape)
    norms = jnp.where(valid, jnp.take_along_axis(by_k, index, axis=-1), jnp.asarray(jnp.nan, by_k.dtype))
    rate, intercept = fit_rate(lags, norms, min_lag, valid=valid, warn=warn)
    underflow, overflow = out_of_range(norms, valid)
    return LagNorms(lags, norms, rate, intercept, valid, underflow, overflow)


def pascanu_bound(W: Array, lags: Array, gamma: float = 1.0) -> Array:
    """``(gamma * sigma_max(W))^lag``: the bound on ``||da_t/da_{t-lag}||`` for ``a_t = f(U x_t + W a_{t-1} + b)``
    with ``|f'| <= gamma`` (1 for tanh and ReLU).

    Args:
        W: ``(h, h)``.
        lags: ``(L,)``.

    Returns:
        ``(L,)`` in W's dtype.
    """
    W = check_jacobians(W, "W", rank=2)
    if W.ndim != 2:
        raise ValueError(f"W: expected one square matrix (h, h), got shape {W.shape}")
    gamma = check_float(gamma, "gamma", low=0.0, low_open=True)
    sigma = jnp.linalg.svd(W, compute_uv=False)[0]
    return (gamma * sigma) ** jnp.asarray(lags, W.dtype)


def eigenvalues(W: Array) -> np.ndarray:
    """Eigenvalues of a square matrix ``(h, h)`` (complex), largest modulus first (numpy: no JAX CPU eig needed)."""
    W = np.asarray(W, np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W: expected one square matrix (h, h), got shape {W.shape}")
    values = np.linalg.eigvals(W)
    return values[np.argsort(-np.abs(values))]
