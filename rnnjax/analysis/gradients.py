"""Gradients with respect to every step's state: how far back in time the loss reaches.

The zero-perturbation trick: run the network with ``a_t + eps_t`` in place of each state ``a_t`` and
differentiate the loss with respect to ``eps`` at ``eps = 0``; the result is ``dL/da_t`` for every t in
one backward pass. Its norm against t shows the gradient reaching (or not reaching) back in time.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis.jacobians import padded_as_nan
from rnnjax.analysis.systems import drive, net_outputs, run_layer
from rnnjax.cells import Cell
from rnnjax.checks import describe
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params

__all__ = ["gradient_reach", "state_gradients"]


def state_gradients(
    cell: Cell | RNN, params: Params, xs: Array, loss: Callable[[Array, Carry], Array], carry: Carry | None = None,
    lengths: Array | None = None, *, layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """``dL/da_t`` for t = 1..T, the whole state (``[h, C]`` for the LSTM).

    Args:
        cell, params, carry, layer, direction: as in :func:`~rnnjax.analysis.trajectory`: a Cell, or one
            layer and direction (or the stack) of an RNN, whose states are perturbed.
        xs: ``(batch, time, features)``.
        loss: ``loss(ys, final) -> scalar``. For a Cell: its outputs ``(batch, time, hidden)`` (zeros at
            padded steps) and its final carry; for an RNN: the network's outputs ``(batch, time,
            output_size)`` and final carries ``[layer][direction]``, as ``net.apply`` returns them (every
            layer above the perturbed one runs on). E.g. a readout of the last step and its error.
        lengths: ``(batch,)`` valid steps; the gradients at padded steps are NaN.

    Returns:
        ``(batch, time, n)``, in the order the steps run (reversed within each length for ``direction=1``).
    """
    if not callable(loss):
        raise ValueError(f"loss: expected a function loss(ys, final) -> scalar, got {describe(loss)}")
    system = drive(cell, params, xs, carry, lengths, layer, direction)
    xs, lengths = jnp.asarray(xs), system.lengths
    n = system.states.shape[-1]
    if isinstance(cell, Cell):
        initial = cell.initial_carry(params, (xs.shape[0],)) if carry is None else carry

        def run(eps: Array) -> Array:
            final, ys, _, _ = run_layer(cell, params, xs, initial, lengths, eps=eps)
            return loss(ys, final)
    else:
        size = n // len(system.layers)

        def run(eps: Array) -> Array:
            where = {(l, system.direction): eps[..., i * size : (i + 1) * size] for i, l in enumerate(system.layers)}
            return loss(*net_outputs(cell, params, xs, carry, lengths, where, len(system.layers) > 1))

    grads = jax.grad(run)(jnp.zeros((*xs.shape[:2], n), xs.dtype))
    return padded_as_nan(grads, lengths)


def gradient_reach(gradients: Array) -> Array:
    """``||dL/da_t||`` per step, averaged over the sequences that have step t (NaN: padded): ``(time,)``.

    Args:
        gradients: ``(batch, time, n)`` from :func:`state_gradients`.
    """
    if np.ndim(gradients) != 3:
        raise ValueError(f"gradients: expected (batch, time, n) from state_gradients, got {describe(gradients)}")
    return jnp.nanmean(jnp.sqrt(jnp.sum(gradients**2, axis=-1)), axis=0)
