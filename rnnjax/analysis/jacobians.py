"""Step Jacobians ``J_t = da_t/da_{t-1}`` along a trajectory, and the reference products ``da_t/da_k``.

The state ``a_t`` is a cell's whole carry as one vector: ``h_t`` for the RNN and the GRU, ``[h_t, C_t]``
for the LSTM (``n = 2h``; :func:`blocks` takes the h/c blocks out); for an :class:`~rnnjax.RNN`, one layer
and direction of it or its whole stack (see :mod:`rnnjax.analysis.systems`). Times count steps: ``a_0`` is
the initial state and ``a_t`` the state after reading ``x_t``, t = 1..T. Backpropagation through time
multiplies exactly these matrices (the textbook's ``prod_{i=k+1}^{t} da_i/da_{i-1}``)::

    dL/da_k = dL/da_t  J_t J_{t-1} ... J_{k+1}

Padding: with ``lengths`` (``(batch,)`` right-padded valid steps), a step ``t > lengths[b]`` does not exist:
its state and Jacobian are NaN, so a padded step can never pass for a real one; the reductions
(:func:`~rnnjax.analysis.jacobian_products`, :func:`~rnnjax.analysis.norms_by_lag`, the Lyapunov exponents)
given the same ``lengths`` use only each sequence's valid steps, and analysing a padded batch equals
analysing each sequence cut to its own length (NaN beyond it).

References: Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis.systems import System, drive, state_from_vector, state_vector
from rnnjax.analysis.validate import check_jacobians, check_model, check_time
from rnnjax.cells import Cell
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params

__all__ = [
    "blocks", "direct_products", "state_from_vector", "state_vector", "step_jacobians", "trajectory",
    "trajectory_products",
]  # fmt: skip


def blocks(matrix: Array, cell: Cell | RNN) -> dict[str, Array]:
    """A state Jacobian cut into the blocks of the carry's fields: for the LSTM's ``(h, c)``, ``dh/dh``,
    ``dh/dc``, ``dc/dh``, ``dc/dc`` as ``"hh"``, ``"hc"``, ``"ch"``, ``"cc"``; ``{"hh": matrix}`` for a carry
    of one array.

    Args:
        matrix: ``(..., n, n)`` for one layer's state of ``n`` entries (``2h`` for the LSTM).
        cell: the cell, or an RNN of one (one layer and direction of it).
    """
    cell = check_model(cell)
    cell = cell if isinstance(cell, Cell) else cell.step_cell
    matrix = check_jacobians(matrix, "matrix", rank=2)
    like = jax.eval_shape(lambda: cell.initial_carry(cell.init(jax.random.key(0), 1)))
    names = list(getattr(like, "_fields", ("h",)))
    sizes = [state_vector(jnp.zeros(leaf.shape, leaf.dtype)).shape[-1] for leaf in jax.tree.leaves(like)]
    n = sum(sizes)
    if matrix.shape[-1] != n or matrix.shape[-2] != n:
        raise ValueError(f"matrix: expected (..., {n}, {n}) for one {cell.name} state, got {matrix.shape}")
    edges = [0, *np.cumsum(sizes).tolist()]
    return {
        a + b: matrix[..., edges[i] : edges[i + 1], edges[j] : edges[j + 1]]
        for i, a in enumerate(names)
        for j, b in enumerate(names)
    }


def padded_as_nan(values: Array, lengths: Array | None, first: int = 1) -> Array:
    """``values: (batch, time, ...)`` with NaN where entry i is step ``i + first > lengths[b]``."""
    if lengths is None:
        return values
    steps = jnp.arange(values.shape[1]) + first
    keep = (steps[None, :] <= lengths[:, None]).reshape(values.shape[:2] + (1,) * (values.ndim - 2))
    return jnp.where(keep, values, jnp.asarray(jnp.nan, values.dtype))


def trajectory(
    cell: Cell | RNN, params: Params, xs: Array, carry: Carry | None = None, lengths: Array | None = None, *,
    layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """The states ``a_0 .. a_T`` as vectors.

    Args:
        cell: a Cell, or an RNN with ``params[layer][direction]`` (``layer``, ``direction``: which state; see
            :mod:`rnnjax.analysis.systems`).
        xs: ``(batch, time, features)``.
        carry: the initial carry (zeros if None): ``(batch, ...)``, or ``[layer][direction]`` for an RNN.
        lengths: ``(batch,)`` valid steps; the states after a sequence's last valid step are NaN.

    Returns:
        ``(batch, time + 1, n)``, in the order the steps run (reversed within each length for
        ``direction=1``).
    """
    system = drive(cell, params, xs, carry, lengths, layer, direction)
    return padded_as_nan(system.states, system.lengths, first=0)


def system_jacobians(system: System) -> Array:
    """``J_t`` for t = 1..T of a :class:`System`: ``(batch, time, n, n)``, NaN at padded steps."""
    jac = jax.vmap(jax.vmap(jax.jacrev(system.step)))(system.states[:, :-1], system.inputs)
    return padded_as_nan(jac, system.lengths)


def step_jacobians(
    cell: Cell | RNN, params: Params, xs: Array, carry: Carry | None = None, lengths: Array | None = None, *,
    layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """``J_t = da_t/da_{t-1}`` for t = 1..T along the trajectory of ``xs``.

    Args:
        cell, xs, carry, layer, direction: as in :func:`trajectory`.
        lengths: ``(batch,)`` valid steps; ``J_t`` for ``t > lengths[b]`` is NaN (the step does not exist;
            pass the same ``lengths`` to the functions that reduce the Jacobians).

    Returns:
        ``(batch, time, n, n)``; entry ``[:, t - 1]`` is ``J_t``, computed with ``jax.jacrev`` of the
        step, vmapped over batch and time.
    """
    return system_jacobians(drive(cell, params, xs, carry, lengths, layer, direction))


def trajectory_products(
    cell: Cell | RNN, params: Params, xs: Array, t: int | None = None, carry: Carry | None = None,
    lengths: Array | None = None, *, layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """``da_t/da_k`` for one ``t`` and every ``k = 0..t``, from the model, without forming the step Jacobians.

    The same products as ``jacobian_products(step_jacobians(...), t, lengths)``, accumulated backwards from
    ``da_t/da_t = I`` as backpropagation through time does it: ``da_t/da_k = (da_t/da_{k+1}) J_{k+1}``, each of
    the n rows of ``da_t/da_{k+1}`` pulled back through step k+1 by the step's vector-Jacobian product
    (``jax.vjp``, vmapped over the rows). For a cell whose step is one matmul with the recurrent weights (the
    tanh RNN: ``J = diag(1 - a_{k+1}^2) W``) a step costs one ``n x n`` by ``n x n`` matmul, the
    ``T * 2 * n^3`` floor of the chain; forming ``J_{k+1}`` first (``jax.jacrev`` of the step: the same
    matmul against the identity) and then multiplying costs two. Use :func:`step_jacobians` when the step
    Jacobians themselves are wanted (their spectra, the Lyapunov exponents of several reductions).

    Args:
        cell, params, xs, carry, layer, direction: as in :func:`trajectory`.
        t: the later time, 0..time (default time).
        lengths: ``(batch,)`` valid steps; a sequence of length ``L < t`` holds its state, so its later time
            is ``t_b = min(t, L)``.

    Returns:
        ``(batch, t + 1, n, n)`` like :func:`~rnnjax.analysis.jacobian_products`: entry k is
        ``da_{t_b}/da_k`` (entry ``t_b`` the identity), NaN for ``k > t_b``.
    """
    system = drive(cell, params, xs, carry, lengths, layer, direction)
    batch, time = system.inputs.shape[:2]
    t = check_time(t, time)
    ends = jnp.full((batch,), t) if system.lengths is None else jnp.minimum(system.lengths, t)
    eye = jnp.eye(system.states.shape[-1], dtype=system.states.dtype)

    def per_example(traj: Array, u_seq: Array, end: Array) -> Array:
        def back(product: Array, step: tuple[Array, Array, Array]) -> tuple[Array, Array]:
            a, u, s = step  # product = da_t/da_s; a = a_{s-1}, u = u_s: step s (s = 0: none)
            out = jnp.where(s <= end, product, jnp.asarray(jnp.nan, product.dtype))
            _, pull = jax.vjp(lambda state: system.step(state, u), a)
            pulled = jax.vmap(lambda row: pull(row)[0])(product)
            product = jnp.where((s >= 1) & (s <= end), pulled, product)  # beyond t_b the state is held: J = I
            return product, out

        # Entry k of the output is written at s = k, before step k is pulled through; so no copy of the
        # (t + 1) x n x n result is made to prepend the last product or to mask k > t_b.
        before = jnp.concatenate([traj[:1], traj[:t]])  # a_{s-1} at s, a_0 standing in at s = 0
        inputs = jnp.concatenate([jnp.zeros_like(u_seq[:1]), u_seq[:t]])
        return jax.lax.scan(back, eye, (before, inputs, jnp.arange(t + 1)), reverse=True)[1]

    return jax.vmap(per_example)(system.states, system.inputs, ends)


def direct_products(
    cell: Cell | RNN, params: Params, xs: Array, t: int, carry: Carry | None = None, lengths: Array | None = None,
    *, layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """The reference: ``da_t/da_k`` for every k by ``jax.jacrev`` through the unrolled steps.

    For each k it differentiates the map ``a_k -> a_t`` (steps k+1..t of the scan) anew, so it costs
    about t times :func:`~rnnjax.analysis.jacobian_products`; it exists to check that one.

    Args:
        xs, carry, layer, direction: as in :func:`trajectory`.
        t: the later time, 0..time.
        lengths: ``(batch,)``; a sequence of length ``L < t`` holds its state, so its later time is L.

    Returns:
        ``(batch, t + 1, n, n)`` like :func:`~rnnjax.analysis.jacobian_products`: entry k is
        ``da_{t_b}/da_k`` with ``t_b = min(t, lengths[b])``, NaN for ``k > t_b``.
    """
    system = drive(cell, params, xs, carry, lengths, layer, direction)
    batch, time = system.inputs.shape[:2]
    t = check_time(t, time)
    ends = jnp.full((batch,), t) if system.lengths is None else jnp.minimum(system.lengths, t)
    steps = jnp.arange(1, time + 1)

    def run_from(a_k: Array, k: Array, end: Array, u_seq: Array) -> Array:
        def body(a: Array, inputs: tuple[Array, Array]) -> tuple[Array, None]:
            s, u = inputs
            return jnp.where((s > k) & (s <= end), system.step(a, u), a), None

        return jax.lax.scan(body, a_k, (steps, u_seq))[0]

    def per_example(traj: Array, end: Array, u_seq: Array) -> Array:
        ks = jnp.arange(t + 1)
        products = jax.vmap(lambda k: jax.jacrev(run_from)(traj[k], k, end, u_seq))(ks)
        return jnp.where((ks <= end)[:, None, None], products, jnp.asarray(jnp.nan, products.dtype))

    return jax.vmap(per_example)(system.states, ends, system.inputs)
