"""Lyapunov exponents of a recurrent network driven by its inputs.

The exponents are the average logarithmic growth rates of perturbations of the state, the rates at
which ``||da_t/da_k||`` grows or shrinks along k independent directions as ``t - k`` grows. They are
measured by the QR method (Benettin et al. 1980; as used for RNNs by Engelken, Wolf & Abbott 2020):
carry an orthonormal frame Q through the step Jacobians, ``J_t Q_{t-1} = Q_t R_t``, and average
``log |diag R_t|`` after a warm-up. With ``lengths``, each sequence averages over its own valid steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.analysis.systems import System, drive
from rnnjax.analysis.validate import check_int, check_jacobians, check_lengths
from rnnjax.cells import Cell
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params

__all__ = ["frame", "lyapunov_from_jacobians", "lyapunov_spectrum", "system_exponents"]


def frame(n: int, k: int, dtype: Any) -> Array:
    """The starting frame of the QR method: a fixed random orthonormal ``(n, k)``.

    Random, not the first k axes: an axis can sit in the null space of every ``J_t`` (a dead ReLU unit), which
    would pin its exponent at -inf however the rest of the network behaves.
    """
    return jnp.linalg.qr(jax.random.normal(jax.random.key(0), (n, k), dtype))[0]


def system_exponents(system: System, k: int, warmup: int) -> Array:
    """The ``k`` largest exponents ``(batch, k)`` of a driven :class:`System`, by QR through k JVPs a step.

    ``J_t Q_{t-1}`` is k Jacobian-vector products of the step (``jax.linearize``, vmapped over the frame's
    columns), never the ``n x n`` Jacobian: for k = n the same matmul as ``J_t @ Q`` without the matmul that
    forms ``J_t``, for k < n a fraction of it. Equal to :func:`lyapunov_from_jacobians` of the system's step
    Jacobians (tested).
    """
    batch, time, n = system.inputs.shape[0], system.inputs.shape[1], system.states.shape[-1]
    ends = jnp.full((batch,), time, jnp.int32) if system.lengths is None else system.lengths

    def one(states: Array, inputs: Array, end: Array) -> Array:
        def body(Q: Array, step: tuple[Array, Array, Array]) -> tuple[Array, Array]:
            a, u, t = step  # t = 0..T-1: the step t + 1 from state a_t
            _, tangent = jax.linearize(lambda s: system.step(s, u), a)
            JQ = jax.vmap(tangent, in_axes=1, out_axes=1)(Q)
            JQ = jnp.where(t < end, JQ, Q)  # a padded step is the identity, as in lyapunov_from_jacobians
            Q, R = jnp.linalg.qr(JQ)
            logs = jnp.log(jnp.abs(jnp.diagonal(R)))
            return Q, jnp.where((t >= warmup) & (t < end), logs, 0.0)

        steps = (states[:-1], inputs, jnp.arange(time, dtype=jnp.int32))
        _, logs = jax.lax.scan(body, frame(n, k, states.dtype), steps)
        counted = (end - warmup).astype(logs.dtype)
        return logs.sum(0) / jnp.where(counted > 0, counted, jnp.nan)

    exponents = jax.vmap(one)(system.states, system.inputs, ends)
    return -jnp.sort(-exponents, axis=-1)


def lyapunov_from_jacobians(
    jacobians: Array, k: int | None = None, warmup: int = 0, lengths: Array | None = None
) -> Array:
    """The ``k`` largest exponents (per step) from step Jacobians ``(..., T, n, n)``, sorted.

    Args:
        k: how many exponents, 1..n (default all n).
        warmup: steps whose growth rates are left out of the average (the frame first has to align
            with the growing directions); the frame is still carried through them. 0 <= warmup < T.
        lengths: ``(...)`` valid steps per sequence: the average runs over steps ``warmup + 1 .. lengths``
            (the Jacobians beyond are never read); NaN for a sequence no longer than ``warmup``.

    Returns:
        ``(..., k)``, largest first.
    """
    jacobians = check_jacobians(jacobians)
    T, n = jacobians.shape[-3], jacobians.shape[-1]
    k = n if k is None else check_int(k, "k", 1, n, " exponents (n, the state size)")
    if T < 1:
        raise ValueError(f"jacobians: expected at least one step, got shape {jacobians.shape}")
    warmup = check_int(warmup, "warmup", 0, T - 1, " (below the steps T)")
    lead = jacobians.shape[:-3]
    lengths = check_lengths(lengths, lead, T)
    ends = jnp.full(lead, T, jnp.int32) if lengths is None else lengths
    Q0 = jnp.broadcast_to(frame(n, k, jacobians.dtype), (*lead, n, k))
    eye = jnp.eye(n, dtype=jacobians.dtype)

    def body(Q: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        J, t = inputs  # t = 0..T-1: the step t + 1
        used = (t >= warmup) & (t < ends)
        J = jnp.where((t < ends)[..., None, None], J, eye)  # never read a padded step
        Q, R = jnp.linalg.qr(J @ Q)
        logs = jnp.log(jnp.abs(jnp.diagonal(R, axis1=-2, axis2=-1)))
        return Q, jnp.where(used[..., None], logs, 0.0)

    steps = jnp.moveaxis(jacobians, -3, 0)
    _, logs = jax.lax.scan(body, Q0, (steps, jnp.arange(T, dtype=ends.dtype)))
    counted = ends - warmup
    exponents = logs.sum(0) / jnp.where(counted > 0, counted, jnp.nan).astype(logs.dtype)[..., None]
    return -jnp.sort(-exponents, axis=-1)


def lyapunov_spectrum(
    cell: Cell | RNN, params: Params, xs: Array, carry: Carry | None = None, k: int | None = None,
    warmup: int = 100, lengths: Array | None = None, *, layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """The ``k`` largest Lyapunov exponents per step of ``cell`` driven by ``xs``, per sequence.

    Args:
        cell, params, carry, layer, direction: as in :func:`~rnnjax.analysis.trajectory` (a Cell, or one
            layer and direction or the whole stack of an RNN).
        xs: ``(batch, time, features)``: each row is one trajectory (use zeros for the autonomous
            network).
        warmup: steps left out of the average; ``time`` (and each length) must exceed it.
        lengths: ``(batch,)`` valid steps: each sequence averages over its own.

    Returns:
        ``(batch, k)``, largest first. For a linear RNN they are ``log |eigenvalues of W|``. They are
        :func:`lyapunov_from_jacobians` of :func:`~rnnjax.analysis.step_jacobians`, computed through k
        Jacobian-vector products of the step, never the step Jacobians (:func:`system_exponents`).
    """
    system = drive(cell, params, xs, carry, lengths, layer, direction)
    n, time = system.states.shape[-1], system.inputs.shape[1]
    k = n if k is None else check_int(k, "k", 1, n, " exponents (n, the state size)")
    warmup = check_int(warmup, "warmup", 0, time - 1, " (below the steps of xs)")
    return system_exponents(system, k, warmup)
