"""Products of step Jacobians, ``da_t/da_k = J_t J_{t-1} ... J_{k+1}``, and their norms, by accumulation.

Each function takes step Jacobians ``(..., T, n, n)`` from :func:`~rnnjax.analysis.step_jacobians` and,
optionally, ``lengths`` of shape ``(...)``: the valid steps of each sequence. A sequence of length L holds
its state after step L, so its later time is ``t_b = min(t, L)``; entries for times or lags beyond its
length are NaN (they do not exist), and its Jacobians beyond L are never read.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnjax.analysis.validate import check_choice, check_jacobians, check_lengths, check_time
from rnnjax.types import Array

__all__ = ["ORDS", "jacobian_products", "later_times", "matrix_norm", "norm_matrix"]

ORDS = ("spectral", "fro")
"""The matrix norms: the largest singular value, or Frobenius."""


def later_times(jacobians: Array, t: int | None, lengths: Array | None) -> tuple[int, Array]:
    """``t`` checked (default T) and ``t_b = min(t, lengths)``, of the shape of the leading axes."""
    T = jacobians.shape[-3]
    t = check_time(t, T)
    lengths = check_lengths(lengths, jacobians.shape[:-3], T)
    ends = jnp.full(jacobians.shape[:-3], t, jnp.int32)
    return t, ends if lengths is None else jnp.minimum(lengths, t)


def jacobian_products(jacobians: Array, t: int | None = None, lengths: Array | None = None) -> Array:
    """``da_t/da_k`` for one ``t`` and every ``k = 0..t``, by accumulating step Jacobians.

    Args:
        jacobians: ``(..., T, n, n)`` from :func:`~rnnjax.analysis.step_jacobians`.
        t: the later time, an int in 0..T (default T).
        lengths: ``(...)`` valid steps per sequence (None: all T).

    Returns:
        ``(..., t + 1, n, n)``; entry k is ``J_{t_b} ... J_{k+1}`` with ``t_b = min(t, lengths)`` (entry
        ``t_b`` is the identity), NaN for ``k > t_b``.
    """
    jacobians = check_jacobians(jacobians)
    t, ends = later_times(jacobians, t, lengths)
    n = jacobians.shape[-1]
    lead = jacobians.shape[:-3]
    eye = jnp.broadcast_to(jnp.eye(n, dtype=jacobians.dtype), (*lead, n, n))
    steps = jnp.arange(1, t + 1).reshape((t,) + (1,) * len(lead))  # the step s of J_s
    used = jnp.moveaxis(jacobians[..., :t, :, :], -3, 0)  # J_1 .. J_t
    used = jnp.where((steps <= ends)[..., None, None], used, eye)  # beyond t_b: the held state

    def back(product: Array, J_next: Array) -> tuple[Array, Array]:  # product = da_t/da_{k+1}; J_next = J_{k+1}
        product = product @ J_next
        return product, product

    _, products = jax.lax.scan(back, eye, used, reverse=True)  # da_t/da_k for k = 0..t-1
    products = jnp.concatenate([jnp.moveaxis(products, 0, -3), eye[..., None, :, :]], axis=-3)
    k = jnp.arange(t + 1)
    return jnp.where((k <= ends[..., None])[..., None, None], products, jnp.asarray(jnp.nan, products.dtype))


def matrix_norm(matrices: Array, ord: str = "spectral") -> Array:
    """``||M||_2`` (largest singular value) or ``||M||_F`` of each matrix in ``(..., n, n)``: ``(...)``."""
    check_choice(ord, ORDS, "ord")
    matrices = check_jacobians(matrices, "matrices", rank=2)
    if ord == "spectral":
        return jnp.linalg.svd(matrices, compute_uv=False)[..., 0]
    return jnp.sqrt(jnp.sum(matrices**2, axis=(-2, -1)))


def norm_matrix(jacobians: Array, ord: str = "spectral", lengths: Array | None = None) -> Array:
    """``N[t, k] = ||da_t/da_k||`` for all ``0 <= k <= t <= T`` (NaN above the diagonal).

    Accumulates forward: the products ending at ``t + 1`` are ``J_{t+1}`` times those ending at
    ``t``, so each row costs one batched matmul over k, never a new differentiation.

    Args:
        jacobians: ``(..., T, n, n)``: one sequence ``(T, n, n)`` or a batch.
        lengths: ``(...)`` valid steps per sequence; rows ``t > lengths`` are NaN.

    Returns:
        ``(..., T + 1, T + 1)``.
    """
    check_choice(ord, ORDS, "ord")
    jacobians = check_jacobians(jacobians)
    _, ends = later_times(jacobians, None, lengths)
    T, n = jacobians.shape[-3], jacobians.shape[-1]
    lead = jacobians.shape[:-3]
    eye = jnp.eye(n, dtype=jacobians.dtype)
    products = jnp.broadcast_to(eye, (*lead, T + 1, n, n))  # row t: da_t/da_k for every k (k > t unused)
    k = jnp.arange(T + 1)
    nan = jnp.asarray(jnp.nan, jacobians.dtype)

    def forward(products: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        J, t = inputs  # J_t, the step into time t
        J = jnp.where((t <= ends)[..., None, None], J, eye)  # never read a padded step
        products = jnp.where((k < t)[:, None, None], J[..., None, :, :] @ products, eye)
        norms = matrix_norm(products, ord)
        return products, jnp.where((k <= t) & (t <= ends[..., None]), norms, nan)

    first = jnp.broadcast_to(jnp.where(k == 0, 1.0, jnp.nan).astype(jacobians.dtype), (*lead, T + 1))
    _, rows = jax.lax.scan(forward, products, (jnp.moveaxis(jacobians, -3, 0), jnp.arange(1, T + 1)))
    return jnp.concatenate([first[..., None, :], jnp.moveaxis(rows, 0, -2)], axis=-2)
