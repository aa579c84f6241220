"""Gradient flossing: the largest Lyapunov exponents as a differentiable function of the params, pushed to 0.

Engelken 2023, "Gradient Flossing: Improving Gradient Descent through Dynamic Control of Jacobians" (NeurIPS):
backpropagation through time multiplies the step Jacobians ``J_t``; their long products grow or shrink like
``exp(lambda_i t)``, with ``lambda_1 >= lambda_2 >= ...`` the Lyapunov exponents of the forward dynamics. An
exponent above 0 makes gradients explode, one below 0 makes them vanish. Flossing minimises

    L_floss = sum_{i=1}^{k} lambda_i^2

by gradient descent, differentiating the QR method (Benettin et al. 1980) that estimates the exponents:
``Q_t R_t = J_t Q_{t-1}`` for an orthonormal frame ``Q`` of k columns, ``lambda_i = mean_t log |R_t[i, i]|``,
with ``jnp.linalg.qr``'s derivative. As in the paper's code (``GradientFlossing_ExampleCode.jl``), the frame
is re-orthonormalised at every step, and the first steps (a warm-up, while the frame aligns with the growing
directions) are carried but not averaged. The paper's code flosses one trajectory at a time (batch 1) and
averages ``(lambda_i - 0)^2`` over the k exponents rather than summing them: a constant factor that Adam, the
optimiser it uses, does not see.

Here ``J_t Q_{t-1}`` is k Jacobian-vector products of the step (``jax.linearize``), never the ``n x n``
Jacobian, so one flossing step costs about k forward passes and their backward pass. The estimate
(:func:`lyapunov_exponents`) is :func:`rnnjax.analysis.lyapunov_spectrum`'s, with ``k`` and ``warmup`` by keyword
and no defaults.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax.analysis.lyapunov import system_exponents
from rnnjax.analysis.systems import System, drive
from rnnjax.analysis.validate import check_int
from rnnjax.cells import Cell
from rnnjax.checks import check_nonnegative_int, check_positive_int, describe
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params

__all__ = ["Flossed", "floss", "flossing_loss", "lyapunov_exponents"]


def _checked_drive(
    cell: Any, params: Params, xs: Any, carry: Any, lengths: Any, k: Any, warmup: Any, layer: Any, direction: Any
) -> tuple[System, int, int]:
    system = drive(cell, params, xs, carry, lengths, layer, direction)
    n, time = system.states.shape[-1], system.inputs.shape[1]
    k = check_int(k, "k", 1, n, " exponents (n, the state size)")
    warmup = check_int(warmup, "warmup", 0, time - 1, " (below the steps of xs)")
    return system, k, warmup


def lyapunov_exponents(
    cell: Cell | RNN, params: Params, xs: Array, carry: Carry | None = None, lengths: Array | None = None, *,
    k: int, warmup: int = 0, layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """The ``k`` largest Lyapunov exponents per step of each sequence, differentiable in ``params``.

    ``lambda_i = 1 / (T - warmup) * sum_{t > warmup} log |R_t[i, i]|``, ``Q_t R_t = J_t Q_{t-1}`` (QR every step;
    Benettin et al. 1980, Engelken 2023), with ``J_t Q`` as k Jacobian-vector products of the step.

    Args:
        cell, params, xs, carry, lengths, layer, direction: as in :func:`rnnjax.analysis.lyapunov_spectrum` (a
            Cell, or one layer and direction or the whole stack of an ``rj.RNN``; ``xs: (batch, time, features)``).
        k: how many exponents, 1..n (n: the state size).
        warmup: steps carried but left out of the average, ``0 <= warmup < time``.

    Returns:
        ``(batch, k)``, largest first; equal to ``lyapunov_spectrum(cell, params, xs, carry, k, warmup, lengths)``.
    """
    system, k, warmup = _checked_drive(cell, params, xs, carry, lengths, k, warmup, layer, direction)
    return system_exponents(system, k, warmup)


def flossing_loss(
    cell: Cell | RNN, params: Params, xs: Array, carry: Carry | None = None, lengths: Array | None = None, *,
    k: int, warmup: int = 0, layer: int | None = None, direction: int = 0,
) -> Array:  # fmt: skip
    """Engelken's (2023) flossing loss: ``mean_b sum_{i=1}^{k} lambda_i(b)^2``, the k largest exponents of each
    trajectory squared and summed, averaged over the batch (Engelken flosses one trajectory at a time).

    Args: as in :func:`lyapunov_exponents`. ``xs`` drives the trajectories (the task's inputs, or noise).

    Returns:
        a scalar; its gradient (``jax.grad`` with respect to ``params``) goes through ``jnp.linalg.qr``.
    """
    return jnp.mean(jnp.sum(lyapunov_exponents(cell, params, xs, carry, lengths, k=k, warmup=warmup, layer=layer,
                                               direction=direction) ** 2, axis=-1))  # fmt: skip


_STATIC = ("cell", "tx", "k", "warmup", "layer", "direction")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _floss_step(
    params: Params, opt_state: Any, xs: Array, carry: Carry | None, *, cell: Any, tx: optax.GradientTransformation,
    k: int, warmup: int, layer: Any, direction: int,
) -> tuple[Params, Any, Array, Array]:  # fmt: skip
    """One optimiser step on the flossing loss; jitted once per (cell, tx, k, warmup, layer, direction)."""

    def loss_fn(p: Params) -> tuple[Array, Array]:
        lam = lyapunov_exponents(cell, p, xs, carry, k=k, warmup=warmup, layer=layer, direction=direction)
        return jnp.mean(jnp.sum(lam**2, axis=-1)), lam.mean(0)

    (loss, lam), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    with jax.numpy_dtype_promotion("standard"):  # Optax mixes Python floats and int32 counts
        updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, lam


class Flossed(NamedTuple):
    """What :func:`floss` returns."""

    params: Params
    """The flossed params."""
    losses: np.ndarray
    """``(steps,)``: the flossing loss at each step, before its update."""
    exponents: np.ndarray
    """``(steps + 1, k)``: the batch's mean exponents before each step and after the last."""


def floss(
    cell: Cell | RNN, params: Params, xs: Array | Callable[[int], Array], *, k: int, steps: int,
    tx: optax.GradientTransformation, warmup: int = 0, carry: Carry | None = None, layer: int | None = None,
    direction: int = 0,
) -> Flossed:  # fmt: skip
    """Pre-flossing: ``steps`` steps of ``tx`` on :func:`flossing_loss` alone, before training (Engelken 2023).

    Args:
        cell, params, carry, layer, direction: as in :func:`lyapunov_exponents`; ``params`` are the cell's or
            the net's (for a model: ``floss(model.rnn, params.rnn, ...)``, then ``params._replace(rnn=...)``).
        xs: ``(batch, time, features)`` that drive every step, or ``xs(step)``, a new such batch each step
            (Engelken draws a new input sequence per flossing step); the same shape every step.
        k: exponents pushed to 0, 1..n.
        steps: optimiser steps (>= 1).
        tx: the optimiser, e.g. ``optax.adam(1e-3)`` (the paper's choice).
        warmup: steps of each trajectory left out of the average.

    Returns:
        the flossed params, the loss of every step and the mean exponents before and after. The step is jitted
        once per (cell, tx, k, warmup, layer, direction) and shapes: a second call with the same ones compiles
        nothing; the host waits only at the end.

    Raises:
        ValueError: a bad argument (named).
        FloatingPointError: the loss or the params became NaN or Inf (the first such step is named).
    """
    check_positive_int(steps, "steps")
    check_positive_int(k, "k")
    check_nonnegative_int(warmup, "warmup")
    if not isinstance(tx, optax.GradientTransformation):
        raise ValueError(f"tx: expected an optax.GradientTransformation (e.g. optax.adam(1e-3)), got {describe(tx)}")
    batch_of = xs if callable(xs) else (lambda step: xs)
    static = dict(cell=cell, tx=tx, k=k, warmup=warmup, layer=layer, direction=direction)
    opt_state = tx.init(params)
    losses, lams = [], []
    for s in range(steps):  # the arguments are checked when the first step is traced
        params, opt_state, loss, lam = _floss_step(params, opt_state, batch_of(s), carry, **static)
        losses.append(loss)
        lams.append(lam)
    # The exponents after the last update: one more step's forward values (its update is dropped), which
    # compiles nothing new.
    last = _floss_step(params, opt_state, batch_of(steps - 1), carry, **static)[3]
    losses, lams = np.asarray(jnp.stack(losses)), np.asarray(jnp.stack([*lams, last]))
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size or not all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(params)):
        where = f"the loss of step {bad[0]} ({losses[bad[0]]})" if bad.size else "the params after the last step"
        raise FloatingPointError(f"floss: {where} is not finite; lower the learning rate of tx")
    return Flossed(params, losses, lams)
