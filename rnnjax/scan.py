"""The time loop: a cell's step scanned over a sequence with ``jax.lax.scan``.

Weights are laid out for the loop once (``cell.prepare``). On accelerators the input side of
every step (``U x_t + b``) runs once over the whole sequence as one large matmul before the
loop, which then does only the recurrence. On the CPU it runs inside the loop: XLA's CPU
backend runs the step's element-wise gate code markedly slower when it reads a slice of a
precomputed ``(time, batch, gates * hidden)`` array than when it reads the outputs of two
small matmuls (measured: LSTM, batch 16, 500 steps, hidden 64, forward and backward 25 ms
against 50 ms; see ``benchmarks/rnn_speed.py --hoist``). ``hoist=`` overrides the choice.
Sequences are batch-major at the boundary and time-major inside. The loop's gradient comes from the
backward pass written by hand in :mod:`rnnjax.fused` (``backward="fused"``), or from JAX's own
differentiation of the loop (``backward="autodiff"``, for forward mode).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import fused
from rnnjax.cells import Cell
from rnnjax.types import Array, Carry, Lengths, Params, Xs, Ys

BACKWARDS = ("fused", "autodiff")
"""The ways ``unroll`` can be differentiated (its ``backward=``)."""


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values (not a tracer under jit, grad or vmap)."""
    return not isinstance(x, jax.core.Tracer)


def check_xs(xs: Any, name: str = "xs") -> Array:
    """``xs`` as an array of rank 3 with a floating dtype, free of NaN where it can be seen."""
    xs = jnp.asarray(xs)
    if xs.ndim != 3:
        raise ValueError(f"{name}: expected shape (batch, time, features), got {xs.shape}")
    if not jnp.issubdtype(xs.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a floating dtype, got {xs.dtype}")
    if is_concrete(xs):
        values = np.asarray(xs)
        if not np.isfinite(values).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
            raise ValueError(f"{name}: expected finite values, got {values[bad]} at index {bad}")
    return xs


def check_lengths(lengths: Any, batch: int, time: int) -> Array | None:
    """``lengths`` as an int array ``(batch,)`` with values in ``[0, time]``, or None."""
    if lengths is None:
        return None
    lengths = jnp.asarray(lengths)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},) (one per batch row), got {lengths.shape}")
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(f"lengths: expected an integer dtype, got {lengths.dtype}")
    if is_concrete(lengths):
        values = np.asarray(lengths)
        if values.size and (values.min() < 0 or values.max() > time):
            raise ValueError(
                f"lengths: expected values in [0, {time}] (the time axis of xs), "
                f"got min {values.min()} and max {values.max()}"
            )
    return lengths


def check_carry(carry: Carry, expected: Carry, name: str = "carry") -> None:
    """Raises a ValueError unless ``carry`` has the structure and shapes of ``expected``."""
    got, want = jax.tree.structure(carry), jax.tree.structure(expected)
    if got != want:
        raise ValueError(f"{name}: expected structure {want}, got {got}")
    for g, w in zip(jax.tree.leaves(carry), jax.tree.leaves(expected), strict=True):
        if jnp.shape(g) != jnp.shape(w):
            raise ValueError(f"{name}: expected arrays of shape {jnp.shape(w)}, got {jnp.shape(g)}")


def reverse_within(xs: Any, lengths: Array) -> Any:
    """Reverses each sequence in its first ``lengths[b]`` steps; padding stays in place.

    Args:
        xs: a pytree of time-major arrays ``(time, batch, ...)``.
        lengths: ``(batch,)``.

    The permutation is its own inverse, so applying it twice gives ``xs`` back.
    """
    time = jax.tree.leaves(xs)[0].shape[0]
    t = jnp.arange(time)[:, None]
    index = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (time, batch)

    def take(x: Array) -> Array:
        idx = index.reshape(index.shape + (1,) * (x.ndim - 2))
        return jnp.take_along_axis(x, idx, axis=0)

    return jax.tree.map(take, xs)


def unroll(
    cell: Cell,
    params: Params,
    xs: Xs,
    carry: Carry | None = None,
    lengths: Lengths | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    return_carries: bool = False,
    remat: bool = False,
    hoist: bool | None = None,
    backward: str = "fused",
) -> tuple[Carry, Ys] | tuple[Carry, Ys, Carry]:
    """Runs ``cell`` over a batch of sequences.

    Args:
        cell: the cell, e.g. ``rj.cells.lstm(64)``.
        params: the cell's params.
        xs: inputs ``(batch, time, features)``.
        carry: the initial carry for the batch (zeros if None).
        lengths: ``(batch,)`` valid steps per row, right-padded. Padded outputs are zeros;
            the final carry is each row's carry after its last valid step (a row of length
            0 keeps its initial carry).
        reverse: run from the last valid step to the first; outputs stay aligned with
            the inputs (``ys[:, t]`` belongs to ``xs[:, t]``), as in a bidirectional layer.
        unroll: steps per loop iteration, passed to ``jax.lax.scan`` (True: all).
        return_carries: also return the carry after every step (the full state: ``h`` and
            ``c`` for the LSTM), batch-major, zeros at padded steps.
        remat: recompute each step's internals in the backward pass instead of storing
            them (``jax.checkpoint``); only the carries are kept, which saves memory on
            long sequences at the cost of a second forward pass.
        hoist: compute the input side ``U x_t + b`` of all steps before the loop (True) or
            inside it (False); None: before it on GPU and TPU, inside it on the CPU, whichever
            runs faster there (see the module docstring). The results are the same.
        backward: how the gradient of the loop is computed. ``"fused"``: the backward pass of
            :mod:`rnnjax.fused`, which keeps only the recurrence inside its loop and computes the
            weight gradients as one matmul over all steps (for cells with ``parts``: the RNN, the
            LSTM and the GRU with ``reset_after=True``; others, and ``remat=True``, fall back to
            autodiff). ``"autodiff"``: JAX differentiates the loop step by step; needed for
            forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``), which a
            hand-written backward pass does not support. The gradients are the same.

    Returns:
        ``(carry, ys)`` with ys: ``(batch, time, hidden)``, or ``(carry, ys, carries)``
        when ``return_carries``.
    """
    xs = check_xs(xs)
    batch, time, _ = xs.shape
    lengths = check_lengths(lengths, batch, time)
    if carry is not None:
        check_carry(carry, cell.initial_carry(params, (batch,)))
    if backward not in BACKWARDS:
        raise ValueError(f"backward: expected one of {BACKWARDS}, got {backward!r}")
    return unroll_unchecked(cell, params, xs, carry, lengths, reverse, unroll, return_carries, remat, hoist, backward)


def unroll_unchecked(
    cell: Cell,
    params: Params,
    xs: Array,
    carry: Carry | None,
    lengths: Array | None,
    reverse: bool,
    unroll: int | bool = 1,
    return_carries: bool = False,
    remat: bool = False,
    hoist: bool | None = None,
    backward: str = "fused",
) -> tuple[Carry, Ys] | tuple[Carry, Ys, Carry]:
    """:func:`unroll` without the checks of values, for callers that checked already."""
    batch, time, _ = xs.shape
    loop = cell.prepare(params)
    if carry is None:
        carry = cell.initial_carry(params, (batch,))
    if hoist is None:
        hoist = jax.default_backend() != "cpu"
    xs = jnp.swapaxes(xs, 0, 1)  # time-major; transposing the narrow inputs, not the projection
    if backward == "fused" and cell.parts is not None and not remat and time > 0:
        return _unroll_fused(cell, loop, xs, carry, lengths, reverse, unroll, return_carries, hoist)
    if hoist:
        xp = cell.project(loop, xs)  # (time, batch, gates * hidden) in one matmul

        def step(c: Carry, x: Array) -> tuple[Carry, Array]:
            return cell.recur(loop, c, x)
    else:
        xp = xs
        cell.project(loop, xs[:0])  # the checks of xs, at trace time

        def step(c: Carry, x: Array) -> tuple[Carry, Array]:
            return cell.recur(loop, c, cell.project(loop, x))

    if lengths is None:

        def body(c: Carry, x: Array) -> tuple[Carry, Any]:
            c, y = step(c, x)
            return c, (y, c) if return_carries else y

        inputs = xp
    else:
        mask = jnp.arange(time)[:, None] < lengths[None, :]  # (time, batch)
        if reverse:
            xp = reverse_within(xp, lengths)

        def body(c: Carry, inp: tuple[Array, Array]) -> tuple[Carry, Any]:
            x, m = inp
            new, y = step(c, x)
            m = m[:, None]
            c = jax.tree.map(lambda n, o: jnp.where(m, n, o), new, c)
            y = jnp.where(m, y, 0)
            return c, (y, jax.tree.map(lambda n: jnp.where(m, n, 0), new)) if return_carries else y

        inputs = (xp, mask)

    if remat:
        body = jax.checkpoint(body)
    carry, out = jax.lax.scan(body, carry, inputs, reverse=reverse and lengths is None, unroll=unroll)
    if lengths is not None and reverse:
        out = reverse_within(out, lengths)
    out = jax.tree.map(lambda o: jnp.swapaxes(o, 0, 1), out)
    if return_carries:
        return carry, out[0], out[1]
    return carry, out


def _unroll_fused(
    cell: Cell, loop: Any, xs: Array, carry: Carry, lengths: Array | None, reverse: bool, unroll: int | bool,
    return_carries: bool, hoist: bool,
) -> tuple[Carry, Ys] | tuple[Carry, Ys, Carry]:  # fmt: skip
    """:func:`unroll_unchecked` through :func:`rnnjax.fused.scan`; xs time-major."""
    cell.project(loop, xs[:0])  # the checks of xs, at trace time
    time = xs.shape[0]
    mask = None
    if lengths is not None:
        mask = jnp.arange(time)[:, None] < lengths[None, :]  # (time, batch)
        if reverse:
            xs = reverse_within(xs, lengths)
    elif reverse:
        xs = jnp.flip(xs, 0)
    carry, carries = fused.scan(cell.parts, loop, carry, xs, mask, unroll, hoist)
    if mask is not None:  # zeros at padded steps, where the scan held the carry
        carries = jax.tree.map(lambda c: jnp.where(mask[..., None], c, 0), carries)
        if reverse:
            carries = reverse_within(carries, lengths)
    elif reverse:
        carries = jax.tree.map(lambda c: jnp.flip(c, 0), carries)
    carries = jax.tree.map(lambda c: jnp.swapaxes(c, 0, 1), carries)
    ys = cell.parts.hidden(carries)
    return (carry, ys, carries) if return_carries else (carry, ys)
