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

import math
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
    "MAX_UNROLL",
    "check_carry",
    "check_cell",
    "check_input_size",
    "check_inputs",
    "check_lengths",
    "check_params",
    "check_remat",
    "check_unroll",
    "check_xs",
    "chunk_length",
    "chunked",
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


def resolve_impl(cell: Cell, impl: str = "auto", *, platform: str | None = None) -> str:
    """The implementation that :func:`unroll` runs: the one place where ``impl`` is decided.

    ``"auto"``: ``"fused"`` for a cell with a hand-written backward pass (``spec.parts``); else ``"associative"``
    for a linear recurrence (``spec.linear``) on GPU and TPU, where the parallel scan wins over time; else
    ``"scan"``. On the CPU the sequential loop beats the parallel scan: its ``O(log T)`` depth buys nothing on two
    cores, and it does about twice the work in ``2 log2 T`` passes over memory (3 to 27 times slower here,
    ``benchmarks/cell_speed.py``). An implementation asked for by name that the cell cannot run is refused, never
    replaced silently.

    Args:
        cell: the cell.
        impl: one of :data:`IMPLS`.
        platform: ``"cpu"``, ``"gpu"``, ``"tpu"``; None: JAX's default backend.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
    spec = cell.spec
    if impl == "auto":
        platform = jax.default_backend() if platform is None else platform
        if spec.parts is not None:
            return "fused"
        if spec.linear is not None and platform != "cpu":
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
    remat: bool | int = False,
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
        unroll: steps per loop iteration, passed to ``jax.lax.scan`` (True: all), at most :data:`MAX_UNROLL`
            (:func:`check_unroll`).
        return_carries: also return the carry after every step (the full state: ``h`` and
            ``c`` for the LSTM), batch-major, zeros at padded steps.
        remat: checkpointing over time, for long sequences in bounded memory (:func:`chunked`): the steps
            run in chunks of ``remat`` steps (True: ``ceil(sqrt(time))``), and the backward pass keeps only
            each chunk's starting carry, recomputing the chunk's forward pass when it needs it; with any
            ``impl``, so the fused backward pass still runs. False: keep every step's residuals.
        hoist: compute the input side ``U x_t + b`` of all steps before the loop (True) or
            inside it (False); None: before it on GPU and TPU, inside it on the CPU, whichever
            runs faster there (see the module docstring). The results are the same.

    Returns:
        ``(carry, ys)`` with ys: ``(batch, time, hidden)``, or ``(carry, ys, carries)``
        when ``return_carries``.
    """
    check_cell(cell)
    check_remat(remat)
    xs, lengths = check_inputs(xs, lengths)
    check_unroll(unroll, xs.shape[1])
    check_params(cell, params, xs)
    if carry is not None:
        check_carry(carry, cell.initial_carry(params, (xs.shape[0],)))
    resolve_impl(cell, impl)
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
    remat: bool | int = False,
    hoist: bool | None = None,
) -> tuple[Carry, Ys] | tuple[Carry, Ys, Carry]:
    """:func:`unroll` without the checks of values, for callers that checked already."""
    batch, time, _ = xs.shape
    impl = resolve_impl(cell, impl)
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

    def run(carry: Carry, xs: Array, mask: Array | None) -> tuple[Carry, Array, Carry | None]:
        if impl == "fused":
            carry, carries = _fused(cell, loop, carry, xs, mask, unroll, hoist)
            return carry, output_of(cell, carries), carries if return_carries else None
        if impl == "associative":
            carry, carries, ys = associative.scan(cell.spec.linear, loop, carry, cell.spec.project(loop, xs), mask)
            return carry, ys, carries if return_carries else None
        return _sequential(cell, loop, carry, xs, mask, unroll, hoist, return_carries)

    if remat and time > 0:
        try:
            carry, ys, carries = chunked(run, carry, xs, mask, chunk_length(remat, time))
        except TypeError as e:  # forward mode meets the fused pass inside the checkpoint, outside _fused
            if "forward-mode" not in str(e):
                raise
            raise _forward_mode_error() from e
    else:
        carry, ys, carries = run(carry, xs, mask)
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


MAX_UNROLL = 32
"""The most step copies :func:`unroll` compiles into one loop iteration (``unroll=True`` is one per step)."""


def check_unroll(unroll: Any, time: int) -> int | bool:
    """``unroll`` if it is True or an int >= 1 that puts at most :data:`MAX_UNROLL` copies of the step in the
    loop body; else a ValueError.

    Why a cap: XLA compiles every copy, and its compile time grows faster than the number of copies. Measured
    on this 2-core CPU, ``jax.jit(jax.grad(...))`` of a 32-unit LSTM with ``unroll=True``: 3 s at 8 steps,
    5.6 s at 16, 13 s at 32, 38 s at 50 and 148 s at 100 (with ``unroll=1``: about 1 s at every length), with
    the fused and the scan implementation alike. A long sequence with ``unroll=True`` would otherwise look
    like a hang."""
    if isinstance(unroll, bool):
        copies = time if unroll else 1
    elif isinstance(unroll, int) and unroll >= 1:
        copies = min(unroll, time)
    else:
        raise ValueError(f"unroll: expected True or an int >= 1, got {describe(unroll)}")
    if copies > MAX_UNROLL:
        what = f"unroll=True on {time} steps" if unroll is True else f"unroll={unroll}"
        raise ValueError(
            f"unroll: {what} compiles {copies} copies of the step, more than MAX_UNROLL = {MAX_UNROLL}; XLA's "
            f"compile time grows faster than the copies (148 s for 100 here), so pass unroll=k with k <= {MAX_UNROLL}"
        )
    return unroll


def check_remat(remat: Any) -> bool | int:
    """``remat`` if it is a bool or an int >= 1 (a chunk length); else a ValueError."""
    if isinstance(remat, bool) or (isinstance(remat, int) and remat >= 1):
        return remat
    raise ValueError(f"remat: expected True, False or a chunk length (an int >= 1), got {describe(remat)}")


def chunk_length(remat: bool | int, time: int) -> int:
    """The steps per checkpointed chunk: ``remat`` itself, or ``ceil(sqrt(time))`` for True (at most ``time``)."""
    k = math.isqrt(time - 1) + 1 if remat is True else int(remat)
    return max(1, min(k, time))


def chunked(run: Any, carry: Carry, xs: Array, mask: Array | None, k: int) -> tuple[Carry, Array, Carry | None]:
    """``run(carry, xs, mask) -> (carry, ys, carries)`` over time-major ``xs``, in chunks of ``k`` steps, each
    chunk under ``jax.checkpoint``: checkpointing over time (Chen et al. 2016, "Training deep nets with
    sublinear memory cost"; Gruslys et al. 2016 for RNNs).

    The backward pass of a plain scan keeps every step's residuals, the gates and states it needs to
    differentiate the step: memory linear in T, about ``T * batch * (a few times hidden)`` numbers. Here the
    forward pass keeps only each chunk's starting carry (and the outputs, which the loss reads). The backward
    pass takes the chunks last to first: it reruns a chunk's forward pass from its carry, which rebuilds that
    chunk's residuals (``k`` steps of them), differentiates it, and lets them go. With ``k = sqrt(T)`` the
    residuals held at once fall from ``T`` steps to about ``2 sqrt(T)`` (the carries and one chunk), for one
    extra forward pass: in flops about 4/3 of forward + backward, whose backward costs about twice its
    forward; measured (``benchmarks/long_sequences.py``, 128-unit LSTM, batch 8, T = 10,000 and 100,000) it
    took 0.85 to 1.08 times the plain loop's time, the smaller working set making up for the extra pass.
    ``run`` is any implementation (the fused backward pass is kept inside each chunk). The first
    ``T // k`` chunks go through one ``lax.scan`` (so the compiled program does not grow with T); a shorter
    last chunk, when ``k`` does not divide ``T``, runs after it.
    """
    time = xs.shape[0]
    n, rest = divmod(time, k)
    step = jax.checkpoint(run, prevent_cse=False)  # inside a scan, CSE cannot undo the recomputation

    def body(c: Carry, inp: tuple[Array, Array | None]) -> tuple[Carry, tuple[Array, Carry | None]]:
        c, ys, carries = step(c, *inp)
        return c, (ys, carries)

    def split(a: Array) -> Array:
        return a[: n * k].reshape(n, k, *a.shape[1:])

    def join(tree: Any) -> Any:
        return jax.tree.map(lambda a: a.reshape(n * k, *a.shape[2:]), tree)

    outs = []
    if n:
        carry, (ys, carries) = jax.lax.scan(body, carry, (split(xs), None if mask is None else split(mask)))
        outs.append((join(ys), join(carries)))
    if rest:
        carry, ys, carries = step(carry, xs[n * k :], None if mask is None else mask[n * k :])
        outs.append((ys, carries))
    if len(outs) == 1:
        return carry, *outs[0]
    (ys_a, c_a), (ys_b, c_b) = outs
    return carry, jnp.concatenate([ys_a, ys_b]), jax.tree.map(lambda a, b: jnp.concatenate([a, b]), c_a, c_b)


def _sequential(
    cell: Cell, loop: Any, carry: Carry, xs: Array, mask: Array | None, unroll: int | bool, hoist: bool,
    return_carries: bool,
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
        raise _forward_mode_error() from e


def _forward_mode_error() -> TypeError:
    """JAX's error where forward mode meets the fused pass's ``custom_vjp``, said in rnnjax's terms."""
    return TypeError(
        "forward-mode differentiation (jax.jvp, jax.jacfwd, jax.hessian) cannot pass the hand-written "
        "backward pass: use rj.unroll(..., impl='scan') or rj.RNN(..., impl='scan')"
    )
