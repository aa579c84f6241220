"""How many dimensions a trajectory uses: the participation ratio of its covariance, and the Kaplan-Yorke
dimension of its attractor from a Lyapunov spectrum.

- The participation ratio of states ``a_t`` (Gao & Ganguli 2015; for random networks Clark, Abbott &
  Litwin-Kumar 2023, "Dimension of activity in random neural networks")::

      PR = (sum_i l_i)^2 / sum_i l_i^2 = tr(C)^2 / tr(C^2)        l_i: the eigenvalues of the covariance C

  between 1 (one direction carries all the variance) and n (isotropic); ``r`` for variance spread equally over
  r directions. It needs no eigendecomposition: ``tr(C^2)`` is the squared Frobenius norm of C.
- The Kaplan-Yorke (Lyapunov) dimension of an attractor from its exponents ``l_1 >= l_2 >= ... >= l_n``
  (Kaplan & Yorke 1979; for RNNs Engelken, Wolf & Abbott 2020, "Lyapunov spectra of chaotic recurrent neural
  networks")::

      D_KY = k + (sum_{i <= k} l_i) / |l_{k+1}|        k: the largest index with sum_{i <= k} l_i >= 0

  0 when every exponent is negative (a stable fixed point), n when the partial sums never turn negative
  (volumes do not contract).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from rnnjax.analysis.validate import check_lengths
from rnnjax.checks import describe, is_concrete
from rnnjax.types import Array

__all__ = ["kaplan_yorke_dimension", "participation_ratio"]


def _floating(values: Any, name: str, shape: str, min_rank: int) -> Array:
    if not hasattr(values, "shape"):
        values = np.asarray(values)
    if not hasattr(values, "dtype") or not jnp.issubdtype(values.dtype, jnp.floating) or values.ndim < min_rank:
        raise ValueError(f"{name}: expected a floating array {shape}, got {describe(values)}")
    return jnp.asarray(values)


def participation_ratio(states: Array, lengths: Array | None = None) -> Array:
    """The participation ratio ``tr(C)^2 / tr(C^2)`` of each trajectory's covariance over time.

    Args:
        states: ``(time, n)`` for one trajectory or ``(batch, time, n)``, e.g. from
            :func:`~rnnjax.analysis.trajectory` (cut the transient off first: ``states[:, warmup:]``).
        lengths: ``(batch,)`` valid rows of each trajectory (right-padded; None: all). Rows beyond are never
            read, so the NaN that ``trajectory`` writes there are fine; ``trajectory``'s states of a sequence of
            length L are its first ``L + 1`` rows.

    Returns:
        ``()`` or ``(batch,)``: each trajectory's PR in ``[1, n]``, over its valid rows (centred on their mean,
        ``C = sum_t (a_t - mean)(a_t - mean)^T / (rows - 1)``); NaN where the states do not vary (``C = 0``).

    Raises:
        ValueError: states not ``(time, n)`` or ``(batch, time, n)`` floating, fewer than 2 valid rows, or NaN
            or Inf at a valid row (where the values can be seen).
    """
    states = _floating(states, "states", "(time, n) or (batch, time, n)", 2)
    if states.ndim > 3:
        raise ValueError(f"states: expected (time, n) or (batch, time, n), got shape {tuple(states.shape)}")
    single = states.ndim == 2
    batch = states[None] if single else states
    B, T, n = batch.shape
    if lengths is not None and single:
        raise ValueError("lengths: expected None for one trajectory (time, n); pass (batch, time, n) states")
    lengths = check_lengths(lengths, (B,), T)
    rows = jnp.full((B,), T, jnp.int32) if lengths is None else lengths
    if is_concrete(rows) and int(jnp.min(rows)) < 2:
        raise ValueError(
            f"states: expected at least 2 valid rows per trajectory for a covariance, got {int(jnp.min(rows))}"
        )
    mask = (jnp.arange(T)[None, :] < rows[:, None])[..., None]
    if is_concrete(batch) and not bool(jnp.all(jnp.where(mask, jnp.isfinite(batch), True))):
        bad = tuple(int(i) for i in np.argwhere(~np.asarray(jnp.where(mask, jnp.isfinite(batch), True)))[0])
        raise ValueError(f"states: expected finite values at the valid rows, got {batch[bad]} at index {bad}")
    x = jnp.where(mask, batch, 0.0)
    count = rows.astype(x.dtype)[:, None, None]
    centred = jnp.where(mask, x - x.sum(1, keepdims=True) / count, 0.0)
    cov = jnp.einsum("bti,btj->bij", centred, centred) / (count - 1)
    trace = jnp.trace(cov, axis1=-2, axis2=-1)
    squares = jnp.sum(cov**2, axis=(-2, -1))
    pr = jnp.where(squares > 0, trace**2 / jnp.where(squares > 0, squares, 1.0), jnp.nan)
    return pr[0] if single else pr


def kaplan_yorke_dimension(exponents: Array) -> Array:
    """The Kaplan-Yorke dimension ``k + sum_{i<=k} l_i / |l_{k+1}|`` of each spectrum (see the module docstring).

    Args:
        exponents: ``(..., n)`` Lyapunov exponents (any order: they are sorted here, largest first), e.g. from
            :func:`~rnnjax.analysis.lyapunov_spectrum` with ``k=None`` (the whole spectrum: a truncated one
            gives its own length where its partial sums stay >= 0). ``-inf`` is allowed (a direction that
            collapses at once); NaN and ``+inf`` are not.

    Returns:
        ``(...)``: in ``[0, n]``; 0 when the largest exponent is negative, n when no partial sum is negative.
    """
    lam = _floating(exponents, "exponents", "(..., n) of Lyapunov exponents", 1)
    if lam.shape[-1] < 1:
        raise ValueError(f"exponents: expected at least one exponent on the last axis, got shape {tuple(lam.shape)}")
    if is_concrete(lam) and bool(jnp.any(jnp.isnan(lam) | (lam == jnp.inf))):
        raise ValueError(f"exponents: expected finite values or -inf, got NaN or +inf in {describe(lam)}")
    n = lam.shape[-1]
    lam = -jnp.sort(-lam, axis=-1)
    sums = jnp.cumsum(lam, axis=-1)
    # Partial sums of a sorted spectrum rise while the exponents are positive and then fall: those >= 0 are a
    # prefix, so k is their count.
    k = jnp.sum(sums >= 0, axis=-1)
    S_k = jnp.where(k > 0, jnp.take_along_axis(sums, jnp.clip(k - 1, 0, n - 1)[..., None], -1)[..., 0], 0.0)
    next_ = jnp.take_along_axis(lam, jnp.clip(k, 0, n - 1)[..., None], -1)[..., 0]
    fraction = jnp.where(jnp.isinf(next_), 0.0, S_k / jnp.abs(jnp.where(jnp.isinf(next_), 1.0, next_)))
    return jnp.where(k == n, float(n), k + fraction).astype(lam.dtype)
