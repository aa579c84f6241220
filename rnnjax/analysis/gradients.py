"""Gradients with respect to every step's state: how far back in time the loss reaches.

The zero-perturbation trick: run the network with ``a_t + eps_t`` in place of each state ``a_t`` and
differentiate the loss with respect to ``eps`` at ``eps = 0``; the result is ``dL/da_t`` for every t in
one backward pass. Its norm against t shows the gradient reaching (or not reaching) back in time.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rnnjax.analysis.jacobians import state_from_vector, state_vector
from rnnjax.cells import Cell, LSTMState
from rnnjax.scan import check_xs
from rnnjax.types import Array, Carry, Params


def state_gradients(
    cell: Cell,
    params: Params,
    xs: Array,
    loss: Callable[[Array, Carry], Array],
    carry: Carry | None = None,
) -> Array:
    """``dL/da_t`` for t = 1..T, the whole state (``[h, C]`` for the LSTM).

    Args:
        xs: ``(batch, time, features)``.
        loss: ``loss(ys, final_carry) -> scalar`` on the cell's outputs ``(batch, time, hidden)``, e.g.
            a readout of the last step and its error.

    Returns:
        ``(batch, time, n)``.
    """
    xs = check_xs(xs)
    loop = cell.prepare(params)
    initial = cell.initial_carry(params, (xs.shape[0],)) if carry is None else carry

    def run(eps: Array) -> Array:
        def body(c, inputs):
            x, e = inputs
            c, _ = cell.recur(loop, c, cell.project(loop, x))
            c = state_from_vector(state_vector(c) + e, c)  # a_t + eps_t
            return c, c.h if isinstance(c, LSTMState) else c

        final, ys = jax.lax.scan(body, initial, (jnp.swapaxes(xs, 0, 1), jnp.swapaxes(eps, 0, 1)))
        return loss(jnp.swapaxes(ys, 0, 1), final)

    n = state_vector(initial).shape[-1]
    return jax.grad(run)(jnp.zeros((*xs.shape[:2], n), xs.dtype))


def gradient_reach(gradients: Array) -> Array:
    """``||dL/da_t||`` per step, averaged over the batch: ``(time,)``."""
    return jnp.sqrt(jnp.sum(gradients**2, axis=-1)).mean(0)
