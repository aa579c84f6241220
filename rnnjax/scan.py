"""The time loop: a cell's step run over a sequence, by one of interchangeable implementations.

``impl`` chooses how, resolved in one place (:func:`resolve_impl`): ``"scan"``, the reference, a
``jax.lax.scan`` of the cell's step that JAX differentiates (forward mode too); ``"fused"``, the same loop
with the backward pass written by hand (:mod:`rnnjax.fused`, for cells that declare ``spec.parts``);
``"associative"``, a parallel scan over time for recurrences linear in their state (:mod:`rnnjax.associative`,
for cells that declare ``spec.linear``). Lengths (masking, holding the carry, zeros at padded outputs) and
reversal within lengths are done here, once, for all of them: an implementation sees time-major inputs in
the order its steps run and a ``(time, batch)`` mask of valid steps, which is always a prefix.

Weights are laid out for the loop once (``cell.spec.prepare``). On accelerators the input side of
every step (``U x_t + b``) runs once over the whole sequence as one large matmul before the
loop, which then does only the recurrence. On the CPU it runs inside the loop: XLA's CPU
backend runs the step's element-wise gate code markedly slower when it reads a slice of a
precomputed ``(time, batch, gates * hidden)`` array than when it reads the outputs of two
small matmuls (measured: LSTM, batch 16, 500 steps, hidden 64, forward and backward 25 ms
against 50 ms; see ``benchmarks/rnn_speed.py --hoist``). ``hoist=`` overrides the choice.
Sequences are batch-major at the boundary and time-major inside.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import associative, fused
from rnnjax.cells import Cell, output_of
from rnnjax.cells import base as cells_base
from rnnjax.cells import check_params as check_cell_params
from rnnjax.cells.base import check_x, params_dtype
from rnnjax.checks import check_finite_tree, check_like, describe, is_concrete
from rnnjax.types import Array, Carry, Lengths, Params, Xs, Ys

__all__ = [
    "IMPLS",
    "check_carry",
    "check_cell",
    "check_input_size",
    "check_inputs",
    "check_lengths",
    "check_params",
    "check_xs",
    "resolve_impl",
    "reverse_within",
    "unroll",
    "unroll_unchecked",
]

IMPLS = ("auto", "scan", "fused", "associative")
"""The implementations of :func:`unroll` (its ``impl=``); ``"auto"`` is resolved by :func:`resolve_impl`."""


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


def check_input_size(cell: Cell, params: Params, xs: Array, name: str = "params") -> None:
    """Raises a ValueError unless ``params`` (checked already) were built for the features of ``xs``."""
    cells_base.check_input_size(cell, params, xs.shape[-1], name)


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


def resolve_impl(cell: Cell, impl: str = "auto", *, remat: bool = False, platform: str | None = None) -> str:
    """The implementation that :func:`unroll` runs: the one place where ``impl`` is decided.

    ``"auto"``: ``"fused"`` for a cell with a hand-written backward pass (``spec.parts``) unless ``remat``;
    else ``"associative"`` for a linear recurrence (``spec.linear``) on GPU and TPU, where the parallel scan
    wins over time; else ``"scan"``. On the CPU the sequential loop beats the parallel scan: its ``O(log T)``
    depth buys nothing on two cores, and it does about twice the work in ``2 log2 T`` passes over memory
    (3 to 27 times slower here, ``benchmarks/cell_speed.py``). An implementation asked for by name
    that the cell cannot run is refused, never replaced silently.

    Args:
        cell: the cell.
        impl: one of :data:`IMPLS`.
        remat: recompute each step in the backward pass (only the sequential scan does).
        platform: ``"cpu"``, ``"gpu"``, ``"tpu"``; None: JAX's default backend.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
    spec = cell.spec
    if impl == "auto":
        platform = jax.default_backend() if platform is None else platform
        if spec.parts is not None and not remat:
            return "fused"
        if spec.linear is not None and not remat and platform != "cpu":
            return "associative"
        return "scan"
    if impl == "fused" and spec.parts is None:
        raise ValueError(
            f"impl: {cell.name} has no hand-written backward pass (its step is not split around one recurrent matmul, "
            f"spec.parts); use impl='scan' or 'auto'"
        )
    if impl == "associative" and spec.linear is None:
        raise ValueError(
            f"impl: {cell.name} is not linear in its state (no spec.linear), so it has no parallel scan; use "
            f"impl='scan' or 'auto'"
        )
    if remat and impl != "scan":
        raise ValueError(f"remat: only impl='scan' recomputes steps in the backward pass, got impl={impl!r}")
    return impl


def unroll(
    cell: Cell,
    params: Params,
    xs: Xs,
    *,
    carry: Carry | None = None,
    lengths: Lengths | None = None,
    reverse: bool = False,
    impl: str = "auto",
    unroll: int | bool = 1,
    return_carries: bool = False,
    remat: bool = False,
    hoist: bool | None = None,
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
        impl: ``"auto"``, ``"scan"``, ``"fused"`` or ``"associative"`` (module docstring; chosen by
            :func:`resolve_impl`). All compute the same function; ``"scan"`` is the one forward-mode
            differentiation (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) passes, as a hand-written backward
            pass does not.
        unroll: steps per loop iteration, passed to ``jax.lax.scan`` (True: all).
        return_carries: also return the carry after every step (the full state: ``h`` and
            ``c`` for the LSTM), batch-major, zeros at padded steps.
        remat: recompute each step's internals in the backward pass instead of storing
            them (``jax.checkpoint``, with ``impl="scan"``); only the carries are kept, which saves memory
            on long sequences at the cost of a second forward pass.
        hoist: compute the input side ``U x_t + b`` of all steps before the loop (True) or
            inside it (False); None: before it on GPU and TPU, inside it on the CPU, whichever
            runs faster there (see the module docstring). The results are the same.

    Returns:
        ``(carry, ys)`` with ys: ``(batch, time, hidden)``, or ``(carry, ys, carries)``
        when ``return_carries``.
    """
    check_cell(cell)
    xs, lengths = check_inputs(xs, lengths)
    check_params(cell, params, xs)
    if carry is not None:
        check_carry(carry, cell.initial_carry(params, (xs.shape[0],)))
    resolve_impl(cell, impl, remat=remat)
    return unroll_unchecked(
        cell, params, xs, carry=carry, lengths=lengths, reverse=reverse, impl=impl, unroll=unroll,
        return_carries=return_carries, remat=remat, hoist=hoist,
    )  # fmt: skip


def check_params(cell: Cell, params: Params, xs: Array, name: str = "params") -> None:
    """Raises a ValueError unless ``params`` fit ``cell`` and the features and dtype of ``xs``, with finite values
    where they can be seen."""
    check_cell_params(cell, params, name)
    check_input_size(cell, params, xs, name)
    check_x(xs, xs.shape[-1], params_dtype(params), "xs")
    check_finite_tree(params, name)


def unroll_unchecked(
    cell: Cell,
    params: Params,
    xs: Array,
    *,
    carry: Carry | None = None,
    lengths: Array | None = None,
    reverse: bool = False,
    impl: str = "auto",
    unroll: int | bool = 1,
    return_carries: bool = False,
    remat: bool = False,
    hoist: bool | None = None,
) -> tuple[Carry, Ys] | tuple[Carry, Ys, Carry]:
    """:func:`unroll` without the checks of values, for callers that checked already."""
    batch, time, _ = xs.shape
    impl = resolve_impl(cell, impl, remat=remat)
    loop = cell.spec.prepare(params)
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
    in_run_order = _run_order(lengths, reverse)
    xs = in_run_order(xs)
    if time == 0:
        impl = "scan"
    if impl == "fused":
        carry, carries = _fused(cell, loop, carry, xs, mask, unroll, hoist)
        ys = output_of(cell, carries)
    elif impl == "associative":
        carry, carries, ys = associative.scan(cell.spec.linear, loop, carry, cell.spec.project(loop, xs), mask)
    else:
        carry, ys, carries = _sequential(cell, loop, carry, xs, mask, unroll, hoist, remat, return_carries)
    if mask is not None:  # zeros at padded steps, where the implementations held the carry
        ys = jnp.where(mask[..., None], ys, jnp.zeros((), ys.dtype))
        if return_carries:
            carries = jax.tree.map(lambda c: jnp.where(mask[..., None], c, jnp.zeros((), c.dtype)), carries)
    batch_major = lambda a: jnp.swapaxes(in_run_order(a), 0, 1)  # noqa: E731 (the order is its own inverse)
    if return_carries:
        return carry, batch_major(ys), jax.tree.map(batch_major, carries)
    return carry, batch_major(ys)


def _run_order(lengths: Array | None, reverse: bool) -> Any:
    """The permutation of time-major arrays into the order the steps run (its own inverse)."""
    if not reverse:
        return lambda tree: tree
    if lengths is None:
        return lambda tree: jax.tree.map(lambda a: jnp.flip(a, 0), tree)
    return lambda tree: reverse_within(tree, lengths)


def _sequential(
    cell: Cell, loop: Any, carry: Carry, xs: Array, mask: Array | None, unroll: int | bool, hoist: bool,
    remat: bool, return_carries: bool,
) -> tuple[Carry, Array, Carry | None]:  # fmt: skip
    """The reference: ``lax.scan`` of the cell's step; the carry is held where ``mask`` is False."""
    spec = cell.spec
    if hoist:
        inputs = spec.project(loop, xs)  # (time, batch, gates * hidden) in one matmul
        step = lambda c, xp: spec.recur(loop, c, xp)  # noqa: E731
    else:
        inputs = xs
        step = lambda c, x: spec.recur(loop, c, spec.project(loop, x))  # noqa: E731

    def body(c: Carry, inp: tuple[Array, Array | None]) -> tuple[Carry, Any]:
        x, m = inp
        new, y = step(c, x)
        if m is not None:
            new = jax.tree.map(lambda n, o: jnp.where(m[:, None], n, o), new, c)
        return new, (y, new) if return_carries else (y, None)

    if remat:
        body = jax.checkpoint(body)
    carry, (ys, carries) = jax.lax.scan(body, carry, (inputs, mask), unroll=unroll)
    return carry, ys, carries


def _fused(
    cell: Cell, loop: Any, carry: Carry, xs: Array, mask: Array | None, unroll: int | bool, hoist: bool
) -> tuple[Carry, Carry]:
    """:func:`rnnjax.fused.scan`, with a clear error where forward-mode differentiation meets it."""
    try:
        return fused.scan(cell.spec.parts, cell.spec.output, loop, carry, xs, mask, unroll, hoist)
    except TypeError as e:
        if "forward-mode" not in str(e):
            raise
        raise TypeError(
            "forward-mode differentiation (jax.jvp, jax.jacfwd, jax.hessian) cannot pass the hand-written "
            "backward pass: use rj.unroll(..., impl='scan') or rj.RNN(..., impl='scan')"
        ) from e
