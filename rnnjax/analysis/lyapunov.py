"""Lyapunov exponents of a recurrent network driven by its inputs.

The exponents are the average logarithmic growth rates of perturbations of the state, the rates at
which ``||da_t/da_k||`` grows or shrinks along k independent directions as ``t - k`` grows. They are
measured by the QR method (Benettin et al. 1980; as used for RNNs by Engelken, Wolf & Abbott 2020):
carry an orthonormal frame Q through the step Jacobians, ``J_t Q_{t-1} = Q_t R_t``, and average
``log |diag R_t|`` after a warm-up.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnjax.analysis.jacobians import step_jacobians
from rnnjax.cells import Cell
from rnnjax.types import Array, Carry, Params


def lyapunov_from_jacobians(jacobians: Array, k: int | None = None, warmup: int = 0) -> Array:
    """The ``k`` largest exponents (per step) from step Jacobians ``(..., T, n, n)``, sorted.

    Args:
        k: how many exponents (default all n).
        warmup: steps whose growth rates are left out of the average (the frame first has to align
            with the growing directions); the frame is still carried through them.

    Returns:
        ``(..., k)``, largest first.
    """
    T, n = jacobians.shape[-3], jacobians.shape[-1]
    k = n if k is None else k
    if not 1 <= k <= n:
        raise ValueError(f"k: expected 1..{n} exponents, got {k}")
    if not 0 <= warmup < T:
        raise ValueError(f"warmup: expected 0 <= warmup < {T} (the steps), got {warmup}")
    lead = jacobians.shape[:-3]
    # A fixed random frame, not the first k axes: an axis can sit in the null space of every J_t (a dead
    # ReLU unit), which would pin its exponent at -inf however the rest of the network behaves.
    frame = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (n, k), jacobians.dtype))[0]
    Q0 = jnp.broadcast_to(frame, (*lead, n, k))

    def body(Q, inputs):
        J, t = inputs
        Q, R = jnp.linalg.qr(J @ Q)
        logs = jnp.log(jnp.abs(jnp.diagonal(R, axis1=-2, axis2=-1)))
        return Q, jnp.where(t >= warmup, logs, 0.0)

    steps = jnp.moveaxis(jacobians, -3, 0)
    _, logs = jax.lax.scan(body, Q0, (steps, jnp.arange(T)))
    exponents = logs.sum(0) / (T - warmup)
    return -jnp.sort(-exponents, axis=-1)


def lyapunov_spectrum(
    cell: Cell, params: Params, xs: Array, carry: Carry | None = None, k: int | None = None, warmup: int = 100
) -> Array:
    """The ``k`` largest Lyapunov exponents per step of ``cell`` driven by ``xs``, per sequence.

    Args:
        xs: ``(batch, time, features)``: each row is one trajectory (use zeros for the autonomous
            network).
        warmup: steps left out of the average; ``time`` must exceed it.

    Returns:
        ``(batch, k)``, largest first. For a linear RNN they are ``log |eigenvalues of W|``.
    """
    return lyapunov_from_jacobians(step_jacobians(cell, params, xs, carry), k, warmup)
