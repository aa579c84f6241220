"""The cell contract: what a user calls, and the one small structure the rest of the library reads.

A user sees three pure functions (the shape of an Optax ``GradientTransformation``)::

    params = cell.init(key, input_size)               # a NamedTuple in the textbook's names
    carry = cell.initial_carry(params, batch_shape)   # zeros
    carry, y = cell.step(params, carry, x)            # x: (*batch, input_size)

Everything else the library needs of a cell is declared once in ``cell.spec`` (a :class:`Spec`), grouped
by who reads it:

- the scan: ``prepare(params) -> loop`` lays the params out for the time loop once (checked, transposes
  computed outside it); ``project(loop, xs) -> xp`` is the input side, for any leading dims, so the scan
  may run it over the whole sequence in one matmul; ``recur(loop, carry, xp) -> (carry, y)`` is the rest
  of a step. ``step`` is derived: ``step(p, c, x) == recur(prepare(p), c, project(prepare(p), x))``.
- the models and the analysis: ``output``, which leaf of the carry is ``y`` (LSTM: ``h``), or None when
  ``y`` also reads the input (the LRU); ``gates(loop, carry, xp) -> {name: value}`` of gated cells.
- the implementations (:func:`rnnjax.scan.resolve_impl` chooses between them): ``parts``, the step split
  around its recurrent matmul, for the hand-written backward pass of :mod:`rnnjax.fused`; ``linear``,
  the coefficients of a recurrence ``h_t = a_t * h_{t-1} + b_t`` that is linear in ``h``, for the
  parallel scan of :mod:`rnnjax.associative`. A cell that declares either gets that implementation and
  the conformance suite (``tests/test_conformance.py``) proves it equal to the sequential scan.

A cell module writes its params, its initialisers and its step (under its equations) and calls
:func:`make_cell`; ``recur`` is derived from ``parts`` or ``linear`` when the cell declares them, so a
cell states its equations once. Params are checked against what ``init`` builds (:func:`check_params`):
no cell writes shape checks of its own, and nothing outside a cell asks for its type or name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax.checks import check_finite_tree, check_key, check_like, check_positive_int, describe
from rnnjax.precision import lower_matrices, matmul
from rnnjax.types import Array, Carry, Params, PRNGKey

__all__ = [
    "Cell", "Linear", "Parts", "Prepared", "Spec", "check_input_size", "check_params", "gate_view", "gate_views",
    "input_size",
    "make_cell", "output_of", "params_dtype", "readout", "with_output",
]  # fmt: skip


class Prepared(NamedTuple):
    """The params of a cell with one recurrent matmul laid out for the time loop: ``x @ U_T`` and
    ``h @ W_T`` multiply in the layout the CPU and accelerators run fastest, with no transpose in the loop.

    Attributes:
        U_T: ``(i, g*h)``, the input weights transposed.
        b: ``(g*h,)``.
        W_T: the recurrent weights transposed, ``(h, g*h)``.
        extra: what else the cell's recurrence needs (GRU: ``b_hn``).
    """

    U_T: Array
    b: Array
    W_T: Array
    extra: Any = None


class Parts(NamedTuple):
    """A step split around its one recurrent matmul, for the backward pass of :mod:`rnnjax.fused`::

        pre = parts.pre(loop.extra, xp, output_of(cell, carry) @ loop.W_T)
        carry' = parts.pointwise(carry, pre);   y = output_of(cell, carry')

    ``loop`` is a :class:`Prepared`.

    Attributes:
        pointwise: ``pointwise(carry, pre) -> carry``: the gates and the state update, element by element.
        combine: ``combine(extra, xp, hp) -> pre``, the pre-activations that ``pointwise`` reads (an array
            or a tuple of arrays), linear in all three arguments; None: ``xp + hp``.
        slope: for a step that is an activation of ``pre`` alone, ``a_t = f(pre_t)`` (the Elman RNN), the
            derivative written in its output, ``f'(pre) = slope(f(pre))`` (tanh: ``1 - a^2``): the backward
            pass then reads the outputs instead of stored pre-activations. None for gated cells.
    """

    pointwise: Callable[[Carry, Any], Carry]
    combine: Callable[[Any, Array, Array], Any] | None = None
    slope: Callable[[Array], Array] | None = None

    def pre(self, extra: Any, xp: Array, hp: Array) -> Any:
        """The pre-activations of one step."""
        return xp + hp if self.combine is None else self.combine(extra, xp, hp)


class Linear(NamedTuple):
    """A recurrence linear in its state, ``h_t = a_t * h_{t-1} + b_t`` element-wise, with ``a_t`` and
    ``b_t`` functions of the input alone, so it also runs as a parallel scan (:mod:`rnnjax.associative`).

    Attributes:
        coefficients: ``(loop, xp) -> (a, b)``, shaped like the carry, for any leading dims.
        readout: ``(loop, h, xp) -> y`` for any leading dims; None: ``y = h``.
        log_coefficients: ``(loop, xp) -> (log a, log b)`` where ``a, b > 0`` (minGRU, minLSTM): the
            parallel form then runs in log space (Heinsen 2023, as Feng et al. 2024 do), never forming the
            products of many ``a`` that underflow. None: the associative scan of ``(a, b)`` pairs.
    """

    coefficients: Callable[[Any, Array], tuple[Array, Array]]
    readout: Callable[[Any, Array, Array], Array] | None = None
    log_coefficients: Callable[[Any, Array], tuple[Array, Array]] | None = None


class Spec(NamedTuple):
    """What the scan, its implementations, the models and the analysis read of a cell (module docstring).

    Attributes:
        name: the cell's registry name, for reports and messages only.
        hidden_size: the size of ``y``.
        options: the factory's arguments as ``(name, value)`` pairs; ``dict(cell.options)`` reads them.
        prepare: ``prepare(params) -> loop``: the params checked and laid out for the loop.
        project: ``project(loop, xs) -> xp``, the input side of a step for any leading dims.
        recur: ``recur(loop, carry, xp) -> (carry, y)``, the rest of a step.
        output: the index, in ``jax.tree.leaves(carry)``, of the leaf that is ``y``; None when ``y``
            also reads the input, ``y = linear.readout(loop, carry, xp)`` (only a linear cell, the LRU).
        gates: ``gates(loop, carry, xp) -> {name: (*batch, h)}``, the gate values of one step, or None.
        parts: the split for :mod:`rnnjax.fused`, or None.
        linear: the coefficients for :mod:`rnnjax.associative`, or None.
    """

    name: str
    hidden_size: int
    options: tuple[tuple[str, Any], ...]
    prepare: Callable[[Params], Any]
    project: Callable[[Any, Array], Array]
    recur: Callable[[Any, Carry, Array], tuple[Carry, Array]]
    output: int | None = 0
    gates: Callable[[Any, Carry, Array], dict[str, Array]] | None = None
    parts: Parts | None = None
    linear: Linear | None = None


class Cell(NamedTuple):
    """A recurrent cell: pure functions over explicit params and carry.

    Attributes:
        init: ``init(key, input_size) -> params``.
        initial_carry: ``initial_carry(params, batch_shape=()) -> carry`` (zeros).
        step: ``step(params, carry, x) -> (carry, y)``; x: ``(*batch, input_size)``.
        spec: what the rest of the library reads (a :class:`Spec`).
    """

    init: Callable[[PRNGKey, int], Params]
    initial_carry: Callable[..., Carry]
    step: Callable[[Params, Carry, Array], tuple[Carry, Array]]
    spec: Spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def hidden_size(self) -> int:
        return self.spec.hidden_size

    @property
    def options(self) -> tuple[tuple[str, Any], ...]:
        return self.spec.options


def output_of(cell: Cell, carry: Carry) -> Array:
    """The part of ``carry`` that is the cell's output ``y`` (for carries with any leading dims)."""
    if cell.spec.output is None:
        raise ValueError(f"cell: {cell.name}'s output reads its input too, it is not a part of its carry")
    return jax.tree.leaves(carry)[cell.spec.output]


def readout(cell: Cell, loop: Any, carry: Carry, xp: Array) -> Array:
    """The output ``y`` of a step that ended in ``carry``, after reading ``xp`` (any leading dims)."""
    if cell.spec.output is not None:
        return jax.tree.leaves(carry)[cell.spec.output]
    return cell.spec.linear.readout(loop, carry, xp)


def with_output(cell: Cell, carry: Carry, y: Array) -> Carry:
    """``carry`` with its output part replaced by ``y`` (e.g. a decoder's state set from an encoding)."""
    if cell.spec.output is None:
        raise ValueError(f"cell: {cell.name}'s output reads its input too, a carry cannot be set from it")
    leaves, tree = jax.tree.flatten(carry)
    leaves[cell.spec.output] = y
    return jax.tree.unflatten(tree, leaves)


def gate_view(params: Any, gates: str, gate: str) -> tuple[Array, Array]:
    """One gate's ``(h, h + i)`` matrix over ``[h_{t-1}, x_t]`` and its bias, from params whose ``U``, ``W``
    and ``b`` stack the blocks of ``gates`` (e.g. ``"fiCo"``) in that order."""
    h = params.b.shape[-1] // len(gates)
    k = gates.index(gate)
    rows = slice(k * h, (k + 1) * h)
    return jnp.concatenate([params.W[rows], params.U[rows]], axis=1), params.b[rows]


def gate_views(gates: str) -> Callable[[type], type]:
    """A class decorator for params that stack the blocks of ``gates`` in ``U``, ``W`` and ``b``: the views
    ``W_<g>`` (the gate's matrix over ``[h_{t-1}, x_t]``, :func:`gate_view`) and ``b_<g>`` for each gate ``g``
    (``gate_views("fiCo")`` gives the LSTM's ``W_f, W_i, W_C, W_o`` and ``b_f, ..., b_o``)."""

    def add(cls: type) -> type:
        for g in gates:
            setattr(cls, f"W_{g}", property(lambda self, g=g: gate_view(self, gates, g)[0], doc=f"W_{g} over [h, x]"))
            setattr(cls, f"b_{g}", property(lambda self, g=g: gate_view(self, gates, g)[1], doc=f"b_{g}"))
        return cls

    return add


@functools.cache
def _shapes(init: Callable[[PRNGKey, int], Params], size: int) -> Any:
    return jax.eval_shape(lambda key: init(key, size), jax.random.key(0))


@functools.cache
def _input_axis(init: Callable[[PRNGKey, int], Params]) -> tuple[int, int]:
    """Where ``input_size`` shows in the params: (leaf index, axis), found by building them for 1 and 2."""
    one, two = jax.tree.leaves(_shapes(init, 1)), jax.tree.leaves(_shapes(init, 2))
    for k, (a, b) in enumerate(zip(one, two, strict=True)):
        for axis, (m, n) in enumerate(zip(a.shape, b.shape, strict=True)):
            if (m, n) == (1, 2):
                return k, axis
    raise TypeError("init: the params it builds do not depend on input_size")


def input_size(cell: Cell, params: Params) -> int:
    """The ``input_size`` that ``params`` were built for (checked first by :func:`check_params`)."""
    k, axis = _input_axis(_raw_init(cell))
    return int(jnp.shape(jax.tree.leaves(params)[k])[axis])


def check_input_size(cell: Cell, params: Params, size: int, name: str = "params", reading: str = "") -> None:
    """Raises a ValueError unless ``params`` (checked already) were built for ``size`` input features, naming the
    param that shows it, e.g. ``params.U: expected shape (20, 3) for xs with 3 features per step, got (20, 4)``.

    ``reading`` says what the features are (default: ``for xs with {size} features per step``).
    """
    got = input_size(cell, params)
    if got == size:
        return
    k, _ = _input_axis(_raw_init(cell))
    path, want = jax.tree_util.tree_flatten_with_path(_shapes(_raw_init(cell), size))[0][k]
    reading = reading or f"for xs with {size} features per step"
    raise ValueError(
        f"{name}{jax.tree_util.keystr(path)}: expected shape {want.shape} {reading}, got "
        f"{jnp.shape(jax.tree.leaves(params)[k])}: the params were built for input_size={got}"
    )


def params_dtype(params: Params) -> Any:
    """The dtype every array of ``params`` has (checked by :func:`check_params`)."""
    return jnp.result_type(jax.tree.leaves(params)[0])


def _raw_init(cell: Cell) -> Callable[[PRNGKey, int], Params]:
    return getattr(cell.init, "__wrapped__", cell.init)


def check_params(cell: Cell, params: Any, name: str = "params") -> None:
    """Raises a ValueError unless ``params`` have the structure, the shapes and one floating dtype of what
    ``cell.init`` builds for their input size (values are not read: free under ``jit``)."""
    init = _raw_init(cell)
    expected = _shapes(init, 1)
    kind = type(expected).__name__
    if type(params) is not type(expected):
        got = type(params).__name__ if isinstance(params, tuple) else describe(params)
        raise ValueError(f"{name}: expected {kind}, got {got} ({kind} is what {cell.name}'s init builds)")
    fields = getattr(expected, "_fields", None)
    if fields is not None:
        for field in fields:
            e, v = getattr(expected, field), getattr(params, field)
            if (e is None) != (v is None):
                raise ValueError(
                    f"{name}.{field}: expected {'None' if e is None else 'an array'} for {_signature(cell)}, got "
                    f"{'None' if v is None else 'an array'}"
                )
    leaves = jax.tree.leaves(params)
    if jax.tree.structure(params) != jax.tree.structure(expected) or not all(hasattr(v, "shape") for v in leaves):
        raise ValueError(f"{name}: expected the structure of {kind} from {cell.name}'s init, got {describe(params)}")
    k, axis = _input_axis(init)
    shape = jnp.shape(leaves[k])
    if len(shape) <= axis or not isinstance(shape[axis], int) or shape[axis] < 1:
        raise ValueError(f"{name}: its input size cannot be read from a leaf of shape {shape}")
    built = _shapes(init, shape[axis])
    paths = jax.tree_util.tree_flatten_with_path(built)[0]
    dtype = jnp.result_type(leaves[0])
    for (path, want), got in zip(paths, leaves, strict=True):
        where = name + jax.tree_util.keystr(path)
        if jnp.shape(got) != want.shape:
            raise ValueError(
                f"{where}: expected shape {want.shape} for {_signature(cell)} and input_size={shape[axis]}, got "
                f"{jnp.shape(got)}"
            )
        if not jnp.issubdtype(jnp.result_type(got), jnp.floating) or jnp.result_type(got) != dtype:
            raise ValueError(f"{where}: expected the floating dtype of the other params, {dtype}, got {got.dtype}")


def _signature(cell: Cell) -> str:
    return f"{cell.name}(hidden_size={cell.hidden_size})"


def check_x(x: Array, size: int, dtype: Any, name: str = "x") -> None:
    """Raises a ValueError unless ``x`` has ``size`` features on its last axis and the params' ``dtype``."""
    if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != size:
        raise ValueError(
            f"{name}: expected {size} features on the last axis (the params' input_size), got shape {jnp.shape(x)}"
        )
    got = jnp.result_type(x)
    if not jnp.issubdtype(got, jnp.floating):
        raise ValueError(f"{name}: expected a floating dtype, got {got}")
    if got != dtype:
        raise ValueError(
            f"{name}: expected the params' dtype {dtype}, got {got} (cast it with .astype({dtype}) or build the "
            f"cell with dtype={got})"
        )


def make_cell(
    name: str,
    hidden_size: int,
    init: Callable[[PRNGKey, int], Params],
    zeros: Callable[[tuple[int, ...], Any], Carry],
    *,
    prepare: Callable[[Params], Any],
    project: Callable[[Any, Array], Array],
    recur: Callable[[Any, Carry, Array], tuple[Carry, Array]] | None = None,
    output: int | None = 0,
    gates: Callable[[Any, Carry, Array], dict[str, Array]] | None = None,
    gates_of_pre: Callable[[Any], dict[str, Array]] | None = None,
    parts: Parts | None = None,
    linear: Linear | None = None,
    options: dict[str, Any] | None = None,
    matmul_dtype: Any = None,
) -> Cell:
    """Assembles a :class:`Cell` from a cell module's definitions.

    Args:
        name, hidden_size: as in :class:`Spec`.
        init: ``init(key, input_size) -> params``; its arguments are checked here.
        zeros: ``zeros(batch_shape, dtype) -> carry``, the initial carry.
        prepare: ``prepare(params) -> loop``; the params are checked against ``init`` first.
        project: ``project(loop, xs) -> xp``; ``xs`` is checked here.
        recur: the rest of a step; derived from ``parts`` or ``linear`` when None.
        output, gates, parts, linear: as in :class:`Spec`.
        gates_of_pre: for a cell with ``parts``: the gates from the pre-activations that ``pointwise``
            reads; ``gates`` is derived from it, so gate traces read what the step computes.
        options: the factory's arguments.
        matmul_dtype: None, or the narrower dtype of the cell's matmuls (:mod:`rnnjax.precision`): ``prepare``'s
            matrices are rounded to it once per call; the params, the carry and the rest stay in their dtype.
    """
    check_positive_int(hidden_size, "hidden_size")

    @functools.wraps(init)
    def checked_init(key: PRNGKey, input_size: int) -> Params:
        check_key(key)
        check_positive_int(input_size, "input_size")
        return init(key, input_size)

    checked_init.__wrapped__ = init  # type: ignore[attr-defined]
    cell: Cell | None = None

    def checked_prepare(params: Params) -> Any:
        check_params(cell, params)
        return lower_matrices(prepare(params), matmul_dtype)

    if recur is None:
        recur = _recur_of(parts, linear, output)
    if gates_of_pre is not None:

        def gates(loop: Prepared, carry: Carry, xp: Array) -> dict[str, Array]:
            return gates_of_pre(parts.pre(loop.extra, xp, matmul(jax.tree.leaves(carry)[output], loop.W_T)))

    def initial_carry(params: Params, batch_shape: tuple[int, ...] = ()) -> Carry:
        check_params(cell, params)
        if isinstance(batch_shape, int) and not isinstance(batch_shape, bool):
            batch_shape = (batch_shape,)
        if not isinstance(batch_shape, tuple | list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in batch_shape
        ):
            raise ValueError(f"batch_shape: expected a tuple of sizes such as (batch,), got {batch_shape!r}")
        return zeros(tuple(batch_shape), params_dtype(params))

    def step(params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
        loop = checked_prepare(params)
        check_x(x, input_size(cell, params), params_dtype(params))
        check_like(carry, initial_carry(params, jnp.shape(x)[:-1]), "carry")
        check_finite_tree(params, "params")
        check_finite_tree(x, "x")
        return recur(loop, carry, project(loop, x))

    spec = Spec(
        name, hidden_size, tuple(sorted((options or {}).items())), checked_prepare, project, recur, output, gates,
        parts, linear,
    )  # fmt: skip
    cell = Cell(checked_init, initial_carry, step, spec)
    return cell


def _recur_of(parts: Parts | None, linear: Linear | None, output: int | None) -> Callable[..., Any]:
    """``recur`` from the split a cell declares: around its matmul (``parts``) or linear (``linear``)."""
    if parts is not None:

        def recur(loop: Prepared, carry: Carry, xp: Array) -> tuple[Carry, Array]:
            leaves = jax.tree.leaves(carry)
            new = parts.pointwise(carry, parts.pre(loop.extra, xp, matmul(leaves[output], loop.W_T)))
            return new, jax.tree.leaves(new)[output]

        return recur
    if linear is not None:

        def recur(loop: Any, h: Array, xp: Array) -> tuple[Array, Array]:
            a, b = linear.coefficients(loop, xp)
            new = a * h + b  # h_t = a_t * h_{t-1} + b_t
            return new, new if linear.readout is None else linear.readout(loop, new, xp)

        return recur
    raise TypeError("make_cell: expected recur, parts or linear")
