"""Step Jacobians ``J_t = da_t/da_{t-1}`` along a trajectory, and their products ``da_t/da_k``.

The state ``a_t`` is a cell's whole carry as one vector: ``h_t`` for the RNN and the GRU, ``[h_t, C_t]``
for the LSTM (``n = 2h``; :func:`blocks` takes the h/c blocks out). Times count steps: ``a_0`` is the
initial state and ``a_t`` the state after reading ``x_t``, t = 1..T. Backpropagation through time
multiplies exactly these matrices (the textbook's ``prod_{i=k+1}^{t} da_i/da_{i-1}``)::

    dL/da_k = dL/da_t  J_t J_{t-1} ... J_{k+1}

References: Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.cells import Cell
from rnnjax.scan import check_xs, unroll
from rnnjax.types import Array, Carry, Params


def state_vector(carry: Carry) -> Array:
    """The carry as one vector per example: its leaves concatenated on the last axis."""
    return jnp.concatenate(jax.tree.leaves(carry), axis=-1)


def state_from_vector(vector: Array, like: Carry) -> Carry:
    """The inverse of :func:`state_vector`, shaped like ``like``."""
    leaves, tree = jax.tree.flatten(like)
    sizes = [leaf.shape[-1] for leaf in leaves]
    parts = jnp.split(vector, np.cumsum(sizes)[:-1].tolist(), axis=-1)
    return jax.tree.unflatten(tree, parts)


def blocks(matrix: Array, cell: Cell) -> dict[str, Array]:
    """The h and c blocks of an LSTM state Jacobian (``dh/dh``, ``dh/dc``, ``dc/dh``, ``dc/dc``), or
    ``{"hh": matrix}`` for single-state cells."""
    if cell.name != "lstm":
        return {"hh": matrix}
    h = cell.hidden_size
    return {
        "hh": matrix[..., :h, :h],
        "hc": matrix[..., :h, h:],
        "ch": matrix[..., h:, :h],
        "cc": matrix[..., h:, h:],
    }


def trajectory(cell: Cell, params: Params, xs: Array, carry: Carry | None = None) -> Array:
    """The states ``a_0 .. a_T`` as vectors, ``(batch, time + 1, n)``."""
    xs = check_xs(xs)
    initial = cell.initial_carry(params, (xs.shape[0],)) if carry is None else carry
    _, _, carries = unroll(cell, params, xs, initial, return_carries=True)
    return jnp.concatenate([state_vector(initial)[:, None], state_vector(carries)], axis=1)


def step_map(cell: Cell, params: Params) -> Any:
    """``f(a, x) -> a'``: one step on state vectors of one example (for ``jax.jacrev``)."""
    loop = cell.prepare(params)
    like = cell.initial_carry(params)

    def f(a: Array, x: Array) -> Array:
        new, _ = cell.recur(loop, state_from_vector(a, like), cell.project(loop, x, "xs"))
        return state_vector(new)

    return f


def step_jacobians(cell: Cell, params: Params, xs: Array, carry: Carry | None = None) -> Array:
    """``J_t = da_t/da_{t-1}`` for t = 1..T along the trajectory of ``xs``.

    Args:
        xs: ``(batch, time, features)``.
        carry: the initial carry (zeros if None).

    Returns:
        ``(batch, time, n, n)``; entry ``[:, t - 1]`` is ``J_t``, computed with ``jax.jacrev`` of the
        step, vmapped over batch and time.
    """
    states = trajectory(cell, params, xs, carry)
    jac = jax.jacrev(step_map(cell, params))
    return jax.vmap(jax.vmap(jac))(states[:, :-1], jnp.asarray(xs))


def jacobian_products(jacobians: Array, t: int | None = None) -> Array:
    """``da_t/da_k`` for one ``t`` and every ``k = 0..t``, by accumulating step Jacobians.

    Args:
        jacobians: ``(..., T, n, n)`` from :func:`step_jacobians`.
        t: the later time, 1..T (default T).

    Returns:
        ``(..., t + 1, n, n)``; entry k is ``J_t J_{t-1} ... J_{k+1}`` (entry t is the identity).
    """
    T, n = jacobians.shape[-3], jacobians.shape[-1]
    t = T if t is None else t
    if not 0 <= t <= T:
        raise ValueError(f"t: expected a time in [0, {T}], got {t}")
    lead = jacobians.shape[:-3]
    eye = jnp.broadcast_to(jnp.eye(n, dtype=jacobians.dtype), (*lead, n, n))

    def back(product, J_next):  # product = da_t/da_{k+1}; J_next = J_{k+1}
        product = product @ J_next
        return product, product

    steps = jnp.moveaxis(jacobians[..., :t, :, :], -3, 0)  # J_1 .. J_t
    _, products = jax.lax.scan(back, eye, steps, reverse=True)  # da_t/da_k for k = 0..t-1
    return jnp.concatenate([jnp.moveaxis(products, 0, -3), eye[..., None, :, :]], axis=-3)


def matrix_norm(matrices: Array, ord: str = "spectral") -> Array:
    """``||M||_2`` (largest singular value) or ``||M||_F`` of each matrix in ``(..., n, n)``."""
    if ord == "spectral":
        return jnp.linalg.svd(matrices, compute_uv=False)[..., 0]
    if ord == "fro":
        return jnp.sqrt(jnp.sum(matrices**2, axis=(-2, -1)))
    raise ValueError(f"ord: expected 'spectral' or 'fro', got {ord!r}")


def norm_matrix(jacobians: Array, ord: str = "spectral") -> Array:
    """``N[t, k] = ||da_t/da_k||`` for all ``0 <= k <= t <= T`` (NaN above the diagonal).

    Accumulates forward: the products ending at ``t + 1`` are ``J_{t+1}`` times those ending at
    ``t``, so each row costs one batched matmul over k, never a new differentiation.

    Args:
        jacobians: ``(T, n, n)`` for one sequence.

    Returns:
        ``(T + 1, T + 1)``.
    """
    if jacobians.ndim != 3:
        raise ValueError(f"jacobians: expected (time, n, n) for one sequence, got {jacobians.shape}")
    T, n = jacobians.shape[0], jacobians.shape[-1]
    eye = jnp.eye(n, dtype=jacobians.dtype)
    products = jnp.broadcast_to(eye, (T + 1, n, n))  # row t: da_t/da_k for every k (k > t unused)
    k = jnp.arange(T + 1)

    def forward(products, inputs):
        J, t = inputs  # J_{t}, the step into time t
        products = jnp.where((k < t)[:, None, None], J @ products, eye)
        norms = matrix_norm(products, ord)
        return products, jnp.where(k <= t, norms, jnp.nan)

    first = jnp.where(k == 0, 1.0, jnp.nan).astype(jacobians.dtype)
    _, rows = jax.lax.scan(forward, products, (jacobians, jnp.arange(1, T + 1)))
    return jnp.concatenate([first[None], rows], axis=0)


def direct_products(cell: Cell, params: Params, xs: Array, t: int, carry: Carry | None = None) -> Array:
    """The reference: ``da_t/da_k`` for every k by ``jax.jacrev`` through the unrolled steps.

    For each k it differentiates the map ``a_k -> a_t`` (steps k+1..t of the scan) anew, so it costs
    about t times :func:`jacobian_products`; it exists to check that one.

    Args:
        xs: ``(batch, time, features)``.

    Returns:
        ``(batch, t + 1, n, n)`` like :func:`jacobian_products`.
    """
    states = trajectory(cell, params, xs, carry)
    f = step_map(cell, params)
    xs = jnp.asarray(xs)
    steps = jnp.arange(1, xs.shape[1] + 1)

    def run_from(a_k: Array, k: Array, x_seq: Array) -> Array:
        def body(a, inputs):
            s, x = inputs
            return jnp.where((s > k) & (s <= t), f(a, x), a), None

        return jax.lax.scan(body, a_k, (steps, x_seq))[0]

    def per_example(traj: Array, x_seq: Array) -> Array:
        ks = jnp.arange(t + 1)
        return jax.vmap(lambda k: jax.jacrev(run_from)(traj[k], k, x_seq))(ks)

    return jax.vmap(per_example)(states, xs)
