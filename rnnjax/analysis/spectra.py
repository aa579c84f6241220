"""Spectra of Jacobian products: singular values, norms against the lag, fitted rates, the Pascanu bound.

References: Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent neural
networks" (the bound ``||da_t/da_k|| <= (gamma * sigma_max(W))^(t-k)``, gamma = 1 for tanh, 1/4 for
the sigmoid).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from rnnjax.analysis.jacobians import jacobian_products, matrix_norm
from rnnjax.types import Array


def singular_values(matrices: Array) -> Array:
    """Singular values of each matrix in ``(..., n, n)``, largest first."""
    return jnp.linalg.svd(matrices, compute_uv=False)


class LagNorms(NamedTuple):
    """``||da_t/da_{t-lag}||`` for lag = 0..t, with the fitted exponential rate.

    Attributes:
        lags: ``(t + 1,)``.
        norms: ``(..., t + 1)``.
        rate: ``(...,)`` the slope of ``log norm`` against the lag (per step; below 0 the gradient
            vanishes at ``exp(rate)`` per step, above 0 it explodes).
        intercept: ``(...,)`` of the same least-squares fit.
    """

    lags: Array
    norms: Array
    rate: Array
    intercept: Array


def fit_rate(lags: Array, norms: Array, min_lag: int = 1) -> tuple[Array, Array]:
    """Least-squares fit of ``log norms = intercept + rate * lag`` over lags >= ``min_lag``.

    Norms that are 0 or not finite are left out of the fit.
    """
    lags = jnp.asarray(lags, jnp.result_type(float))
    logs = jnp.log(jnp.where(norms > 0, norms, jnp.nan))
    use = (lags >= min_lag) & jnp.isfinite(logs)
    w = use.astype(lags.dtype)
    n = w.sum(-1)
    mean_x = (w * lags).sum(-1) / n
    mean_y = jnp.where(use, logs, 0.0).sum(-1) / n
    dx = jnp.where(use, lags - mean_x[..., None], 0.0)
    dy = jnp.where(use, logs - mean_y[..., None], 0.0)
    rate = (dx * dy).sum(-1) / (dx**2).sum(-1)
    return rate, mean_y - rate * mean_x


def norms_by_lag(jacobians: Array, t: int | None = None, ord: str = "spectral", min_lag: int = 1) -> LagNorms:
    """``||da_t/da_{t-lag}||`` for every lag from the step Jacobians, and its fitted rate."""
    products = jacobian_products(jacobians, t)  # entry k is da_t/da_k
    norms = matrix_norm(products, ord)[..., ::-1]  # entry lag = t - k
    lags = jnp.arange(norms.shape[-1])
    rate, intercept = fit_rate(lags, norms, min_lag)
    return LagNorms(lags, norms, rate, intercept)


def pascanu_bound(W: Array, lags: Array, gamma: float = 1.0) -> Array:
    """``(gamma * sigma_max(W))^lag``: the bound on ``||da_t/da_{t-lag}||`` for ``a_t = f(U x_t + W a_{t-1} + b)``
    with ``|f'| <= gamma`` (1 for tanh and ReLU)."""
    sigma = float(np.linalg.svd(np.asarray(W), compute_uv=False)[0])
    return (gamma * sigma) ** jnp.asarray(lags, jnp.result_type(float))


def eigenvalues(W: Array) -> np.ndarray:
    """Eigenvalues of a square matrix (complex), largest modulus first (numpy: no JAX CPU eig needed)."""
    values = np.linalg.eigvals(np.asarray(W, np.float64))
    return values[np.argsort(-np.abs(values))]
