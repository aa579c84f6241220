"""Fixed points of a recurrent network at a constant input, and the linear dynamics around them.

A network driven by a constant input ``x`` is an autonomous map on its state, ``a_t = F(a_{t-1}, x)``
(the state vector of :mod:`rnnjax.analysis.systems`: the carry's leaves concatenated, ``[h, C]`` for the LSTM,
a complex leaf as ``[Re, Im]``). Its fixed points ``a* = F(a*, x)``, stable and unstable, and the Jacobian
``dF/da`` at each show how a trained network computes (Sussillo & Barak 2013, "Opening the Black Box:
Low-Dimensional Dynamics in High-Dimensional Recurrent Neural Networks"): a network that stores one of 8
memories holds 8 stable fixed points, and saddles between them route the flips from one memory to another.

They are found as the minima of the speed

    q(a) = 1/2 ||F(a, x) - a||^2,

which is 0 at every fixed point whatever its stability (a saddle of F is a minimum of q), from many starting
states at once (states the network visits, with noise), by Adam with the settings of Golub & Sussillo
(2018, "FixedPointFinder: A Tensorflow toolbox for identifying and characterizing fixed points in recurrent
neural networks"): epsilon 0.01, at most 5,000 iterations, q below 1e-12 counts as a fixed point (in float32
a tolerance above the rounding of F, :func:`default_tol`), points closer than 1e-3 in every coordinate are one,
and states ten times farther from the starting states' centre than they lie on average are dropped. Their
learning rate adapts from 1.0 on the mean of q over the starts; ours is a fixed 1e-2 on the sum, so that each
start's steps do not depend on how many there are. Starts whose q stays above the tolerance (slow points, or
searches that ran out of steps where q is flat) are left out; their speeds stay in ``FixedPoints.final_speeds``.

Discrete time: a fixed point is stable when every eigenvalue of ``J = dF/da`` at it lies inside the unit
circle, ``|lambda| < 1``; each eigenvalue outside is an unstable direction (a saddle has one). An eigenvalue
within rounding of 1 (a unit held by a saturated gate is an exact integrator) counts by its computed value.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax import cells
from rnnjax.analysis.systems import check_net_params, resolve, stacked_map, state_from_vector, state_vector, step_map
from rnnjax.analysis.validate import check_model, check_params
from rnnjax.cells import Cell
from rnnjax.cells.base import input_size, params_dtype
from rnnjax.checks import check_float, check_key, check_positive_int, describe
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params

__all__ = ["FixedPoints", "default_tol", "find_fixed_points", "sample_states"]

ADAM_EPS = 0.01
"""Adam's epsilon in FixedPointFinder (``adam_hps={'epsilon': 0.01}``): near a fixed point, where the gradient
falls below it, Adam's step becomes a plain gradient step of size ``learning_rate / 0.01``."""


class FixedPoints(NamedTuple):
    """The fixed points found, lowest speed first (numpy arrays; ``k`` points of ``n``-entry states).

    Attributes:
        states: ``(k, n)`` the fixed points ``a*`` as state vectors; :meth:`carries` turns them into carries.
        speeds: ``(k,)`` ``q(a*) = 1/2 ||F(a*, x) - a*||^2``, each below the tolerance.
        jacobians: ``(k, n, n)`` ``dF/da`` at each.
        eigenvalues: ``(k, n)`` complex, each row sorted by ``|lambda|``, largest first.
        stable: ``(k,)`` every ``|lambda| < 1``.
        unstable_dims: ``(k,)`` how many ``|lambda| > 1`` (1: a saddle with one unstable direction).
        x: ``(features,)`` the constant input.
        like: a carry of one example (no batch axis) that the state vectors map onto (for a stacked state,
            a tuple of the layers' carries): ``rj.analysis.state_from_vector(states, like)``.
        converged: starting states whose speed fell below the tolerance (before duplicates and outliers
            were dropped).
        starts: starting states.
        iterations: Adam iterations run (``steps`` when some start never fell below the tolerance).
        tol: the speed below which a start counted as converged.
        final_speeds: ``(m,)`` the speed each start ended at, converged or not: starts that stall far above
            the tolerance sit at slow points (local minima of q that are not fixed points) or in regions
            where q is flat (eigenvalues of ``J`` near 1), where more ``steps`` may still converge.
    """

    states: np.ndarray
    speeds: np.ndarray
    jacobians: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    unstable_dims: np.ndarray
    x: np.ndarray
    like: Carry
    converged: int
    starts: int
    iterations: int
    tol: float
    final_speeds: np.ndarray

    def carries(self) -> Carry:
        """The fixed points as carries with a leading axis of ``k`` (``LSTMCarry(h=(k, h), c=(k, h))``)."""
        return state_from_vector(jnp.asarray(self.states), self.like)

    def counts(self) -> dict[str, int]:
        """``{"fixed points", "stable", "saddles" (one unstable direction), "more unstable" (two or more)}``."""
        return {
            "fixed points": len(self.states),
            "stable": int(self.stable.sum()),
            "saddles": int((self.unstable_dims == 1).sum()),
            "more unstable": int((self.unstable_dims > 1).sum()),
        }


class _Resolved(NamedTuple):
    cell: Cell
    params: tuple[Params, ...]  # one per layer of the state (a stack when more than one)
    features: int
    like: Carry
    dtype: Any


def _resolve(model: Any, params: Any, layer: Any, direction: Any) -> _Resolved:
    """The step on state vectors that ``model`` (a Cell, or layers of an RNN) runs, with checked params."""
    model = check_model(model)
    layers, d = resolve(model, layer, direction)
    if isinstance(model, Cell):
        check_params(model, params, None)
        return _Resolved(model, (params,), input_size(model, params), model.initial_carry(params), params_dtype(params))
    net: RNN = model
    cell = net.step_cell
    first = net.cell_params(params)[0][0]  # the structure is checked here, the shapes next
    cells.check_params(cell, first, "params[0][0]")
    cell_params = check_net_params(net, params, input_size(cell, first))
    chosen = tuple(cell_params[l][d] for l in layers)
    features = input_size(cell, first) if layers[0] == 0 else net.output_size
    carries = tuple(cell.initial_carry(p) for p in chosen)
    return _Resolved(cell, chosen, features, carries[0] if len(chosen) == 1 else carries, params_dtype(first))


def _step(cell: Cell, params: tuple[Params, ...]):
    return step_map(cell, params[0]) if len(params) == 1 else stacked_map(cell, params)


@functools.partial(jax.jit, static_argnames=("cell", "steps"))
def _minimise(
    cell: Cell, params: tuple[Params, ...], x: Array, starts: Array, steps: int, learning_rate: Array, tol: Array
) -> tuple[Array, Array, Array]:
    """Adam on ``sum_i q(a_i)`` from every start at once (each state's gradient is its own q's); a state stops
    moving once its q is below ``tol``; the loop ends when all have, or after ``steps``.

    Returns the final states, their speeds and the iterations run."""
    step = jax.vmap(_step(cell, params), (0, None))
    tx = optax.adam(learning_rate, eps=ADAM_EPS)

    def speeds(a: Array) -> Array:
        return 0.5 * jnp.sum((step(a, x) - a) ** 2, axis=-1)

    def body(state: tuple[Array, Array, Any, Array]) -> tuple[Array, Array, Any, Array]:
        i, a, opt, _ = state
        q, pullback = jax.vjp(speeds, a)
        (grad,) = pullback(jnp.ones_like(q))
        updates, opt = tx.update(grad, opt, a)
        updates = jnp.where((q < tol)[:, None], jnp.zeros((), a.dtype), updates)  # converged: stay put
        return i + 1, optax.apply_updates(a, updates), opt, q

    def cond(state: tuple[Array, Array, Any, Array]) -> Array:
        i, _, _, q = state
        return (i < steps) & jnp.any(q >= tol)

    q0 = jnp.full(starts.shape[:1], jnp.inf, starts.dtype)
    i, a, _, q = jax.lax.while_loop(cond, body, (jnp.asarray(0), starts, tx.init(starts), q0))
    # A state below tol has not moved since its q was computed; the others moved once more. (Recomputing q of
    # the frozen ones could differ in the last bits, which at a tolerance near the rounding of F matters.)
    return a, jnp.where(q < tol, q, speeds(a)), i


@functools.partial(jax.jit, static_argnames=("cell",))
def _jacobians(cell: Cell, params: tuple[Params, ...], x: Array, a: Array) -> Array:
    return jax.vmap(jax.jacfwd(_step(cell, params)), (0, None))(a, x)


def default_tol(n: int, dtype: Any) -> float:
    """The speed below which :func:`find_fixed_points` counts a minimum as a fixed point, for a state of ``n``
    entries in ``dtype``: ``max(1e-12, n (32 eps)^2 / 2)`` (1e-12 in float64; ~7e-12 n in float32)."""
    eps = float(jnp.finfo(dtype).eps)
    return max(1e-12, 0.5 * n * (32 * eps) ** 2)


def _unique(states: np.ndarray, tol: float) -> np.ndarray:
    """Indices of ``states`` (sorted best first) to keep: each farther than ``tol`` in some coordinate from
    every one kept before it (FixedPointFinder's ``tol_unique``)."""
    kept: list[int] = []
    for i, a in enumerate(states):
        if not kept or np.abs(states[kept] - a).max(axis=-1).min() >= tol:
            kept.append(i)
    return np.asarray(kept, int)


def _check_states(states: Any, n: int, dtype: Any, name: str) -> Array:
    if not hasattr(states, "shape"):
        states = np.asarray(states)
    if len(states.shape) != 2 or states.shape[-1] != n or states.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (m, {n}) with m >= 1 (state vectors of {n} entries), got "
                         f"{describe(states)}")  # fmt: skip
    if not np.issubdtype(states.dtype, np.floating):
        raise ValueError(f"{name}: expected floating state vectors, got dtype {states.dtype}")
    values = np.asarray(states)
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: expected finite values, got {int((~np.isfinite(values)).sum())} NaN or inf")
    return jnp.asarray(values, dtype)


def _check_input(x: Any, features: int, dtype: Any) -> Array:
    values = np.asarray(x)
    if values.shape != (features,) or not np.issubdtype(values.dtype, np.number) or values.dtype == bool:
        raise ValueError(f"x: expected one input of shape ({features},) (the step's features), got {describe(x)}")
    if np.iscomplexobj(values) or not np.isfinite(values).all():
        raise ValueError(f"x: expected finite real values, got {values!r}")
    return jnp.asarray(values, dtype)


def find_fixed_points(
    cell: Cell | RNN,
    params: Params,
    x: Array | None = None,
    *,
    initial_states: Array,
    layer: int | None = None,
    direction: int = 0,
    steps: int = 5000,
    learning_rate: float = 1e-2,
    tol: float | None = None,
    unique_tol: float = 1e-3,
    max_distance: float | None = 10.0,
) -> FixedPoints:
    """The fixed points ``a* = F(a*, x)`` of the network at the constant input ``x``, and their linearisation.

    Minimises ``q(a) = 1/2 ||F(a, x) - a||^2`` from every starting state at once (Sussillo & Barak 2013;
    the settings of Golub & Sussillo 2018's FixedPointFinder: see the module docstring), keeps the minima
    with ``q < tol``, drops distance outliers and duplicates, and at each fixed point computes
    ``J = dF/da`` (``jax.jacfwd`` of the step), its eigenvalues, and whether it is stable (all
    ``|lambda| < 1``, discrete time).

    Args:
        cell: a Cell, or an RNN: one layer and direction of it (``layer``, ``direction``) or its whole
            one-direction stack (``layer=None``), as in :mod:`rnnjax.analysis.systems`.
        params: the cell's params, or the network's ``[layer][direction]``.
        x: ``(features,)`` the constant input of the step (None: zeros, the autonomous network); for
            ``layer=l > 0`` the layer's own input (the outputs of layer ``l - 1``, ``net.output_size``).
        initial_states: ``(m, n)`` starting state vectors, e.g. :func:`sample_states` of a trajectory.
        steps: Adam iterations at most (FixedPointFinder's ``max_iters``).
        learning_rate: Adam's step size (see the module docstring).
        tol: the speed below which a minimum is a fixed point. None: FixedPointFinder's ``tol_q`` = 1e-12 for
            float64 params; in a lower precision the rounding of ``F`` alone leaves ``q`` near
            ``n (eps |a|)^2`` (measured: ~4e-13 n in float32, where the minimisation stalls), so there
            ``max(1e-12, n (32 eps)^2 / 2)``: a residual of ``32 eps`` per entry (float32: ``7e-12 n``).
        unique_tol: two fixed points closer than this in every coordinate are one (``tol_unique``).
        max_distance: drop fixed points farther from the starting states' centre than this many times
            the starting states' mean distance to it (``outlier_distance_scale``); None keeps all.

    Returns:
        a :class:`FixedPoints`, lowest speed first.
    """
    system = _resolve(cell, params, layer, direction)
    n = state_vector(system.like).shape[-1]
    starts = _check_states(initial_states, n, system.dtype, "initial_states")
    x = jnp.zeros((system.features,), system.dtype) if x is None else _check_input(x, system.features, system.dtype)
    steps = check_positive_int(steps, "steps")
    learning_rate = check_float(learning_rate, "learning_rate", low=0.0, low_open=True)
    tol = default_tol(n, system.dtype) if tol is None else check_float(tol, "tol", low=0.0, low_open=True)
    unique_tol = check_float(unique_tol, "unique_tol", low=0.0)
    if max_distance is not None:
        max_distance = check_float(max_distance, "max_distance", low=0.0, low_open=True)

    a, q, iterations = _minimise(system.cell, system.params, x, starts, steps, jnp.asarray(learning_rate, system.dtype),
                        jnp.asarray(tol, system.dtype))  # fmt: skip
    a, q, starts_np = np.asarray(a), np.asarray(q), np.asarray(starts)
    keep = np.isfinite(q) & (q < tol)
    converged = int(keep.sum())
    if max_distance is not None:
        centre = starts_np.mean(0)
        scale = np.linalg.norm(starts_np - centre, axis=-1).mean()
        keep &= np.linalg.norm(a - centre, axis=-1) <= max_distance * max(scale, np.finfo(a.dtype).tiny)
    order = np.flatnonzero(keep)[np.argsort(q[keep], kind="stable")]
    order = order[_unique(a[order], unique_tol)] if order.size else order
    states, speeds = a[order], q[order]
    if states.shape[0]:
        jac = np.asarray(_jacobians(system.cell, system.params, x, jnp.asarray(states)))
        eig = np.linalg.eigvals(jac.astype(np.float64))
        eig = np.take_along_axis(eig, np.argsort(-np.abs(eig), axis=-1, kind="stable"), axis=-1)
    else:
        jac = np.zeros((0, n, n), a.dtype)
        eig = np.zeros((0, n), np.complex128)
    modulus = np.abs(eig)
    return FixedPoints(
        states=states, speeds=speeds, jacobians=jac, eigenvalues=eig, stable=(modulus < 1).all(-1),
        unstable_dims=(modulus > 1).sum(-1), x=np.asarray(x), like=system.like, converged=converged,
        starts=int(starts.shape[0]), iterations=int(iterations), tol=tol, final_speeds=q,
    )  # fmt: skip


def sample_states(states: Array, m: int, *, key: jax.Array, noise: float = 0.0) -> Array:
    """``m`` starting states for :func:`find_fixed_points`: states drawn uniformly (with replacement) from a
    trajectory, plus independent Gaussian noise of standard deviation ``noise`` (Golub & Sussillo 2018's
    ``sample_states``; their flip-flop example uses 0.5).

    Args:
        states: ``(batch, time, n)`` (e.g. :func:`rnnjax.analysis.trajectory`) or ``(N, n)``; rows with a NaN
            (padded steps) are never drawn.
        m: how many.
        key: the PRNG key.
        noise: the noise's standard deviation, >= 0.

    Returns:
        ``(m, n)`` in the states' dtype.
    """
    if not hasattr(states, "shape"):
        states = np.asarray(states)
    if len(states.shape) not in (2, 3) or not np.issubdtype(states.dtype, np.floating):
        raise ValueError(f"states: expected floating states (batch, time, n) or (N, n), got {describe(states)}")
    m = check_positive_int(m, "m")
    key = check_key(key)
    noise = check_float(noise, "noise", low=0.0)
    flat = jnp.reshape(jnp.asarray(states), (-1, states.shape[-1]))
    valid = np.flatnonzero(np.isfinite(np.asarray(flat)).all(-1))  # padded steps are NaN
    if valid.size == 0:
        raise ValueError(f"states: expected at least one state without NaN, got none of {flat.shape[0]}")
    return _draw(flat, jnp.asarray(valid), key, m, jnp.asarray(noise, flat.dtype))


@functools.partial(jax.jit, static_argnames=("m",))
def _draw(flat: Array, valid: Array, key: jax.Array, m: int, noise: Array) -> Array:
    k_pick, k_noise = jax.random.split(key)
    picked = flat[valid[jax.random.randint(k_pick, (m,), 0, valid.shape[0])]]
    return picked + noise * jax.random.normal(k_noise, picked.shape, picked.dtype)
