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
from rnnjax.checks import check_finite_tree, check_like, describe, is_concrete
from rnnjax.types import Array, Carry, Lengths, Params, Xs, Ys

__all__ = [
    "BACKWARDS",
    "check_carry",
    "check_cell",
    "check_input_size",
    "check_inputs",
    "check_lengths",
    "check_params",
    "check_xs",
    "reverse_within",
    "unroll",
    "unroll_unchecked",
]

BACKWARDS = ("fused", "autodiff")
"""The ways ``unroll`` can be differentiated (its ``backward=``)."""


def check_cell(cell: Any) -> Cell:
    """``cell`` if it is a :class:`Cell`; a name or anything else is refused with the fix."""
    if not isinstance(cell, Cell):
        raise ValueError(
            f"cell: expected a Cell such as rj.cells.lstm(64) (by name: rj.cells.make(name, hidden_size)), "
            f"got {describe(cell)}"
        )
    return cell


def check_xs(xs: Any, name: str = "xs", lengths: Any = None, *, values: bool = True) -> Array:
    """``xs`` as an array of rank 3 with a floating dtype, free of NaN and Inf where it can be seen.

    With ``lengths`` (checked already by :func:`check_lengths`), only the valid steps are checked:
    padding may hold anything, it is never read (:func:`unroll` zeroes it before the loop).
    ``values=False`` checks only the rank and the dtype.
    """
    xs = jnp.asarray(xs)
    if xs.ndim != 3:
        raise ValueError(f"{name}: expected shape (batch, time, features), got {xs.shape}")
    if not jnp.issubdtype(xs.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a floating dtype (cast it with .astype(jnp.float32)), got {xs.dtype}")
    if values and is_concrete(xs) and (lengths is None or is_concrete(lengths)):
        array = np.asarray(xs)
        bad = ~np.isfinite(array)
        if lengths is not None:
            bad &= (np.arange(xs.shape[1])[None, :] < np.asarray(lengths)[:, None])[..., None]
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}: expected finite values at valid steps, got {array[at]} at index {at}")
    return xs


def check_inputs(xs: Any, lengths: Any, name: str = "xs") -> tuple[Array, Array | None]:
    """:func:`check_xs` and :func:`check_lengths` together: NaN or Inf are refused at valid steps only."""
    xs = check_xs(xs, name, values=False)
    lengths = check_lengths(lengths, xs.shape[0], xs.shape[1])
    return check_xs(xs, name, lengths), lengths


def check_lengths(lengths: Any, batch: int, time: int) -> Array | None:
    """``lengths`` as an int array ``(batch,)`` with values in ``[0, time]``, or None.

    Concrete values are checked before any cast (an int64 length above 2^31 never wraps); traced
    ones cannot be, and :func:`unroll` clips them to ``[0, time]``.
    """
    if lengths is None:
        return None
    traced = not is_concrete(lengths)
    values = lengths if traced else np.asarray(lengths)
    if values.shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},) (one per batch row), got {values.shape}")
    if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"lengths: expected an integer dtype, got {values.dtype}")
    if traced:
        return lengths
    if values.size and (values.min() < 0 or values.max() > time):
        raise ValueError(
            f"lengths: expected values in [0, {time}] (the time axis of xs), got min {values.min()} and max "
            f"{values.max()}"
        )
    return jnp.asarray(values)  # in range: a cast to int32 (x64 off) cannot wrap


def check_carry(carry: Carry, expected: Carry, name: str = "carry") -> None:
    """Raises a ValueError unless ``carry`` has the structure, shapes and dtypes of ``expected``
    (``cell.initial_carry(params, batch_shape)``), and finite values where they can be seen."""
    check_like(carry, expected, name)


def check_input_size(params: Params, xs: Array, name: str = "params") -> None:
    """Raises a ValueError unless ``params.U: (g*h, i)`` reads the ``i`` features of ``xs``."""
    U = getattr(params, "U", None)
    if U is not None and jnp.ndim(U) == 2 and U.shape[1] != xs.shape[-1]:
        raise ValueError(
            f"{name}.U: expected shape ({U.shape[0]}, {xs.shape[-1]}) for xs with {xs.shape[-1]} features per "
            f"step, got {U.shape}: the params were built for input_size={U.shape[1]}"
        )


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
            0 keeps its initial carry). Padded steps of ``xs`` are never read: they are zeroed
            before the loop, so NaN or Inf there reach neither values nor gradients. Concrete
            lengths outside ``[0, time]`` raise; traced ones (under ``jit``) cannot be checked and
            are clipped to ``[0, time]``, the same in both directions.
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
    check_cell(cell)
    xs, lengths = check_inputs(xs, lengths)
    batch = xs.shape[0]
    check_params(cell, params, xs)
    if carry is not None:
        check_carry(carry, cell.initial_carry(params, (batch,)))
    if backward not in BACKWARDS:
        raise ValueError(f"backward: expected one of {BACKWARDS}, got {backward!r}")
    return unroll_unchecked(cell, params, xs, carry, lengths, reverse, unroll, return_carries, remat, hoist, backward)


def check_params(cell: Cell, params: Params, xs: Array, name: str = "params") -> None:
    """Raises a ValueError unless ``params`` fit ``cell`` and the features of ``xs``, with finite values
    where they can be seen."""
    cell.prepare(params)  # the type and the shapes the cell needs
    check_input_size(params, xs, name)
    if jnp.result_type(xs) != params.U.dtype:
        raise ValueError(
            f"xs: expected the params' dtype {params.U.dtype}, got {jnp.result_type(xs)} (cast xs with "
            f".astype({params.U.dtype}) or build the cell with dtype={jnp.result_type(xs)})"
        )
    check_finite_tree(params, name)


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
    mask = None
    if lengths is not None:
        # Out-of-range traced lengths: clipped, so that both directions agree (reverse_within would
        # otherwise index past the end). Padding is zeroed here, before any implementation reads it:
        # masking only the outputs lets 0 * NaN into the gradients.
        lengths = jnp.clip(lengths, 0, time)
        mask = jnp.arange(time, dtype=lengths.dtype)[:, None] < lengths[None, :]  # (time, batch)
        xs = jnp.where(mask[..., None], xs, jnp.zeros((), xs.dtype))
    if backward == "fused" and cell.parts is not None and not remat and time > 0:
        return _unroll_fused(cell, loop, xs, carry, lengths, mask, reverse, unroll, return_carries, hoist)
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
    cell: Cell, loop: Any, xs: Array, carry: Carry, lengths: Array | None, mask: Array | None, reverse: bool,
    unroll: int | bool, return_carries: bool, hoist: bool,
) -> tuple[Carry, Ys] | tuple[Carry, Ys, Carry]:  # fmt: skip
    """:func:`unroll_unchecked` through :func:`rnnjax.fused.scan`; xs time-major."""
    cell.project(loop, xs[:0])  # the checks of xs, at trace time
    if lengths is not None:
        if reverse:
            xs = reverse_within(xs, lengths)
    elif reverse:
        xs = jnp.flip(xs, 0)
    try:
        carry, carries = fused.scan(cell.parts, loop, carry, xs, mask, unroll, hoist)
    except TypeError as e:
        if "forward-mode" not in str(e):
            raise
        raise TypeError(
            "forward-mode differentiation (jax.jvp, jax.jacfwd, jax.hessian) cannot pass the hand-written "
            "backward pass: use rj.unroll(..., backward='autodiff') or rj.RNN(..., backward='autodiff')"
        ) from e
    if mask is not None:  # zeros at padded steps, where the scan held the carry
        carries = jax.tree.map(lambda c: jnp.where(mask[..., None], c, 0), carries)
        if reverse:
            carries = reverse_within(carries, lengths)
    elif reverse:
        carries = jax.tree.map(lambda c: jnp.flip(c, 0), carries)
    carries = jax.tree.map(lambda c: jnp.swapaxes(c, 0, 1), carries)
    ys = cell.parts.hidden(carries)
    return (carry, ys, carries) if return_carries else (carry, ys)
