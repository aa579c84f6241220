"""What the analysis studies: a recurrence on state vectors, driven by its inputs, resolved from a cell or a network.

Every analysis function that runs a model takes ``(cell, params, xs, carry, lengths, *, layer, direction)`` and
hands them to :func:`drive`, which returns a :class:`System`: the step on state vectors of one example, the
inputs that drive it and the states along the way, in the order the steps run.

- A :class:`~rnnjax.cells.Cell` with its params: the state is the carry (``[h, C]`` for the LSTM).
- An :class:`~rnnjax.RNN` with ``params[layer][direction]``: with ``layer=l``, the cell of layer l and
  ``direction`` d, driven by what drives it in ``net.apply`` (evaluation mode, no dropout): ``xs`` for
  layer 0, the outputs ``[forward, backward]`` of layer ``l - 1`` above it. The backward direction
  (``direction=1``) is analysed in its own order of steps: step s reads ``x_{L - s + 1}`` (each sequence
  reversed within its length L), so Jacobians, lags and exponents mean the same as forwards.
  With ``layer=None`` (the default), the whole stack of a one-direction network as one state
  ``a_t = [a^0_t, ..., a^{L-1}_t]`` (every layer's carry, concatenated): one step runs every layer, layer
  l + 1 reading layer l's new output. A network of one layer is that layer; a bidirectional network of
  several layers has no such state (layer l + 1 reads the future through the backward direction) and needs
  ``layer=``.

Padding (``lengths``, right-padded valid steps, as in :func:`rnnjax.unroll`): the carry is held after a
sequence's last valid step and its padded inputs are never read (zeroed first, so NaN there reaches nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis.validate import check_carry, check_int, check_lengths, check_model, check_params, check_xs
from rnnjax.cells import Cell
from rnnjax.cells.base import input_size, params_dtype, readout
from rnnjax.network import RNN
from rnnjax.types import Array, Carry, Params

__all__ = ["System", "drive", "output_step", "run_layer", "state_from_vector", "state_vector", "step_map"]


def _real(leaf: Array) -> list[Array]:
    return [leaf.real, leaf.imag] if jnp.iscomplexobj(leaf) else [leaf]


def state_vector(carry: Carry) -> Array:
    """The carry as one real vector per example: its leaves concatenated on the last axis (``[h, C]`` for the
    LSTM), a complex leaf as its real and imaginary parts (the LRU's ``[Re h, Im h]``)."""
    return jnp.concatenate([part for leaf in jax.tree.leaves(carry) for part in _real(leaf)], axis=-1)


def state_from_vector(vector: Array, like: Carry) -> Carry:
    """The inverse of :func:`state_vector`, shaped like ``like`` on the last axis."""
    leaves, tree = jax.tree.flatten(like)
    sizes = [leaf.shape[-1] * (2 if jnp.iscomplexobj(leaf) else 1) for leaf in leaves]
    parts = jnp.split(vector, np.cumsum(sizes)[:-1].tolist(), axis=-1)
    out = []
    for part, leaf in zip(parts, leaves, strict=True):
        if jnp.iscomplexobj(leaf):
            re, im = jnp.split(part, 2, axis=-1)
            part = jax.lax.complex(re, im).astype(leaf.dtype)
        out.append(part)
    return jax.tree.unflatten(tree, out)


def output_step(cell: Cell, params: Params) -> Callable[[Array, Array], tuple[Array, Array]]:
    """``f(a, x) -> (a', y)``: one step on the state vector of one example and the output it gives."""
    spec = cell.spec
    loop = spec.prepare(params)
    like = cell.initial_carry(params)

    def f(a: Array, x: Array) -> tuple[Array, Array]:
        new, y = spec.recur(loop, state_from_vector(a, like), spec.project(loop, x))
        return state_vector(new), y

    return f


def step_map(cell: Cell, params: Params) -> Callable[[Array, Array], Array]:
    """``f(a, x) -> a'``: one step on the state vector of one example, ``a: (n,)``, ``x: (features,)``."""
    f = output_step(cell, params)
    return lambda a, x: f(a, x)[0]


def stacked_map(cell: Cell, params: tuple[Params, ...]) -> Callable[[Array, Array], Array]:
    """``f(a, x) -> a'`` for the stacked state ``[a^0, ..., a^{L-1}]``: layer l + 1 reads layer l's new output."""
    steps = [output_step(cell, p) for p in params]
    n = state_vector(cell.initial_carry(params[0])).shape[-1]

    def f(a: Array, x: Array) -> Array:
        new, u = [], x
        for layer, step in enumerate(steps):
            a_l, u = step(a[layer * n : (layer + 1) * n], u)
            new.append(a_l)
        return jnp.concatenate(new, axis=-1)

    return f


def reverse_within(xs: Array, lengths: Array | None) -> Array:
    """Each sequence of ``xs: (batch, time, ...)`` reversed in its first ``lengths[b]`` steps (all of them
    when None); padding stays in place. Its own inverse."""
    time = xs.shape[1]
    if lengths is None:
        return jnp.flip(xs, 1)
    t = jnp.arange(time, dtype=lengths.dtype)[None, :]
    index = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (batch, time)
    return jnp.take_along_axis(xs, index.reshape(index.shape + (1,) * (xs.ndim - 2)), axis=1)


def valid_mask(lengths: Array | None, batch: int, time: int) -> Array:
    """``(batch, time)``: True at the steps each sequence has."""
    if lengths is None:
        return jnp.ones((batch, time), bool)
    return jnp.arange(time, dtype=lengths.dtype)[None, :] < lengths[:, None]


def run_layer(
    cell: Cell, params: Params, xs: Array, carry: Carry, lengths: Array | None, reverse: bool = False,
    eps: Array | None = None, perturb_outputs: bool = True,
) -> tuple[Carry, Array, Array, Array]:  # fmt: skip
    """One layer over a batch, on the analysis' terms (the reference loop, held carry at padded steps).

    Args:
        xs: ``(batch, time, features)`` in time order.
        carry: the initial carry ``(batch, ...)``.
        reverse: run each sequence backwards within its length.
        eps: ``(batch, time, n)`` added to the state after each step, in the order the steps run (the
            zero-perturbation trick of :func:`rnnjax.analysis.state_gradients`); not added at padded steps.
        perturb_outputs: the outputs read the perturbed state (False: the state before ``eps``, as the
            layer above reads it inside one step of a stacked state).

    Returns:
        ``(final, ys, states, inputs)``: the carry after each sequence's last valid step; the outputs
        ``(batch, time, hidden)`` in time order, zeros at padded steps; the states ``(batch, time, n)`` and
        the inputs ``(batch, time, features)`` in the order the steps run, held and zero at padded steps.
    """
    spec = cell.spec
    loop = spec.prepare(params)
    batch, time = xs.shape[:2]
    mask = valid_mask(lengths, batch, time)
    xs = jnp.where(mask[..., None], xs, jnp.zeros((), xs.dtype))
    if reverse:
        xs = reverse_within(xs, lengths)

    def body(c: Carry, inputs: tuple[Array, ...]) -> tuple[Carry, tuple[Array, Array]]:
        x, m = inputs[:2]
        xp = spec.project(loop, x)
        new, y = spec.recur(loop, c, xp)
        if eps is not None:
            new = state_from_vector(state_vector(new) + inputs[2], new)
            y = readout(cell, loop, new, xp) if perturb_outputs else y
        c = jax.tree.map(lambda a, b: jnp.where(m[:, None], a, b), new, c)
        return c, (state_vector(c), jnp.where(m[:, None], y, jnp.zeros((), xs.dtype)))

    inputs = (xs, mask) if eps is None else (xs, mask, eps)
    final, (states, ys) = jax.lax.scan(body, carry, jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), inputs))
    states, ys = jnp.swapaxes(states, 0, 1), jnp.swapaxes(ys, 0, 1)
    return final, reverse_within(ys, lengths) if reverse else ys, states, xs


class System(NamedTuple):
    """A recurrence on state vectors along a batch of trajectories, steps in the order they run.

    Attributes:
        step: ``f(a, u) -> a'`` for one example: ``a: (n,)``, ``u: (features,)``.
        inputs: ``(batch, time, features)``: ``u_t``, zeros at padded steps.
        states: ``(batch, time + 1, n)``: ``a_0 .. a_T``, held after each sequence's last valid step.
        lengths: ``(batch,)`` int32 or None.
        cell: the cell that runs, and ``params`` its params (None for a stacked state).
        layers: the layers the state covers, and ``direction`` theirs.
    """

    step: Callable[[Array, Array], Array]
    inputs: Array
    states: Array
    lengths: Array | None
    cell: Cell | None
    params: Params | None
    layers: tuple[int, ...]
    direction: int


def resolve(model: Cell | RNN, layer: Any, direction: Any) -> tuple[tuple[int, ...], int]:
    """The layers and the direction that the state covers (see the module docstring)."""
    if isinstance(model, Cell):
        if layer is not None or direction != 0:
            raise ValueError(
                f"layer, direction: expected None and 0 for a Cell (layers belong to an rj.RNN), got {layer!r} "
                f"and {direction!r}"
            )
        return (0,), 0
    d = check_int(direction, "direction", 0, model.num_directions - 1, f" (the net has {model.num_directions})")
    if layer is not None:
        return (check_int(layer, "layer", 0, model.num_layers - 1, f" (the net has {model.num_layers})"),), d
    if model.num_layers > 1 and model.bidirectional:
        raise ValueError(
            f"layer: expected an int in [0, {model.num_layers - 1}] for a bidirectional net of {model.num_layers} "
            f"layers (its stacked state is not a recurrence: layer 1 reads the backward direction), got None"
        )
    return tuple(range(model.num_layers)), d


def check_net_params(net: RNN, params: Any, input_size: int) -> Any:
    """The cells' params ``[layer][direction]`` (``net.cell_params``) after checking that they fit ``net`` and
    ``input_size`` features; a net whose evaluation step is not its cell's (zoneout) is refused."""
    if any(net.zoneout_rates):
        raise ValueError(
            f"net: expected a net whose step is its cell's, got zoneout={net.zoneout!r} (its evaluation step mixes "
            "the new carry with the old); analyse rj.RNN(..., zoneout=0.0) with the same params"
        )
    if net.learn_initial:
        params = net.cell_params(params)
    shape = (net.num_layers, net.num_directions)
    ok = isinstance(params, tuple) and len(params) == shape[0]
    if not (ok and all(isinstance(p, tuple) and len(p) == shape[1] for p in params)):
        raise ValueError(
            f"params: expected {shape[0]} layers of {shape[1]} direction(s), params[layer][direction] from "
            f"net.init, got {type(params).__name__} of length {len(params) if isinstance(params, tuple) else '-'}"
        )
    for layer, layer_params in enumerate(params):
        for d, p in enumerate(layer_params):
            check_params(net.step_cell, p, input_size if layer == 0 else net.output_size, f"params[{layer}][{d}]")
    return params


def drive(
    model: Any, params: Params, xs: Any, carry: Carry | None = None, lengths: Any = None, layer: Any = None,
    direction: Any = 0,
) -> System:  # fmt: skip
    """Checks the arguments and runs the model to the state it analyses (see the module docstring).

    Args:
        model: a Cell, or an RNN with ``params[layer][direction]``.
        xs: ``(batch, time, features)``.
        carry: the initial carry ``(batch, ...)`` of the cell, or ``[layer][direction]`` of the network
            (zeros if None).
        lengths: ``(batch,)`` valid steps, right-padded.
    """
    model = check_model(model)
    layers, d = resolve(model, layer, direction)
    cell = model if isinstance(model, Cell) else model.step_cell
    xs_shape = getattr(xs, "shape", np.shape(xs))
    first = params if isinstance(model, Cell) else None
    if isinstance(model, Cell):
        check_params(cell, params, None)
    else:
        if len(xs_shape) != 3:
            raise ValueError(f"xs: expected shape (batch, time, features), got {tuple(xs_shape)}")
        cell_params = check_net_params(model, params, xs_shape[-1])
        first = cell_params[0][0]
    xs = check_xs(xs, params_dtype(first), input_size(cell, first), lengths)
    batch, time, _ = xs.shape
    lengths = check_lengths(lengths, (batch,), time)
    if isinstance(model, Cell):
        initial = check_carry(carry, cell.initial_carry(params, (batch,))) if carry is not None else None
        initial = cell.initial_carry(params, (batch,)) if initial is None else initial
        _, _, states, inputs = run_layer(cell, params, xs, initial, lengths)
        states = jnp.concatenate([state_vector(initial)[:, None], states], axis=1)
        return System(step_map(cell, params), inputs, states, lengths, cell, params, (0,), 0)
    zeros = model.initial_carry(params, batch)
    initial = zeros if carry is None else check_carry(carry, zeros)
    u, trail, first_inputs = xs, [], None
    for l in range(layers[-1] + 1):
        outs = []
        for dd in range(model.num_directions):
            if l == layers[-1] and dd != d:
                continue
            _, ys, states, inputs = run_layer(cell, cell_params[l][dd], u, initial[l][dd], lengths, reverse=dd == 1)
            outs.append(ys)
            if l in layers and dd == d:
                trail.append(jnp.concatenate([state_vector(initial[l][dd])[:, None], states], axis=1))
                first_inputs = inputs if first_inputs is None else first_inputs
        u = jnp.concatenate(outs, axis=-1)
    states = jnp.concatenate(trail, axis=-1)
    if len(layers) == 1:
        p = cell_params[layers[0]][d]
        return System(step_map(cell, p), first_inputs, states, lengths, cell, p, layers, d)
    step = stacked_map(cell, tuple(cell_params[l][d] for l in layers))
    return System(step, first_inputs, states, lengths, None, None, layers, d)


def net_outputs(
    net: RNN, params: Params, xs: Array, carry: Carry | None, lengths: Array | None, eps: dict[tuple[int, int], Array],
    stacked: bool = False,
) -> tuple[Array, Any]:  # fmt: skip
    """``net.apply`` in evaluation mode on the analysis' loop, with ``eps[(layer, direction)]`` added to those
    states after each step (see :func:`run_layer`): the network outputs ``(batch, time, output_size)`` and the
    final carries ``[layer][direction]``.

    ``stacked``: ``eps`` perturbs the stacked state, whose step runs every layer: a layer below the top
    feeds the one above its output before the perturbation (inside the step), the top one its perturbed
    output (a function of the state).
    """
    initial = net.initial_carry(params, xs.shape[0]) if carry is None else carry
    u, finals = xs, []
    for l, layer_params in enumerate(net.cell_params(params)):
        outs, layer_finals = [], []
        for dd, p in enumerate(layer_params):
            top = l == net.num_layers - 1
            e = eps.get((l, dd))
            final, ys, _, _ = run_layer(net.step_cell, p, u, initial[l][dd], lengths, dd == 1, e, top or not stacked)
            outs.append(ys)
            layer_finals.append(final)
        u = jnp.concatenate(outs, axis=-1)
        finals.append(tuple(layer_finals))
    return u, tuple(finals)
