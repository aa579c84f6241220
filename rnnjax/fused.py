"""The time loop with a backward pass written by hand: what must run step by step does, the rest does not.

``jax.grad`` of a ``lax.scan`` differentiates each step on its own, so every step of its backward loop
does three products: the error sent back through the recurrence, ``dh_{t-1} = dpre_t W``, and the
step's share of the weight gradients, the rank-``batch`` updates ``dW += dpre_t^T h_{t-1}`` and
``dU += dpre_t^T x_t``. Only the first is sequential. Here the backward loop does the element-wise
part of each step and ``dpre_t W`` alone, and keeps ``dpre_t``; after it, each weight gradient is one
large matmul over all steps at once::

    dW = dPre^T H_prev      dU = dPre^T X      db = sum_t dPre_t      dX = dPre U

with ``dPre``, ``H_prev`` and ``X`` of shape ``(time * batch, ...)``. This is backpropagation through
time as the textbook writes it (``rnnjax.bptt`` spells it out for the Elman RNN), for any cell that
declares :class:`rnnjax.cells.Parts` in its ``spec``; the element-wise part of each step is differentiated
by ``jax.vjp`` of ``parts.pointwise``, so a cell states its equations once.

Memory: the forward pass keeps every step's pre-activations ``pre_t`` (``(time, batch, 4h)`` for the
LSTM) and the carries (the outputs). The backward loop writes ``dpre_t`` over ``pre_t`` in the same
buffer, and cotangents that are zero (the LSTM's ``C`` when the loss reads only ``h``) stay symbolic.
The RNN, whose step is an activation of ``pre_t`` alone, keeps no ``pre_t``: ``parts.slope`` gives the
activation's derivative from its output, and ``dpre_t`` is written over ``a_t``.
Measured on the CPU against ``jax.grad`` of the same loop, and against Flax, in
``benchmarks/rnn_speed.py``.

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) does not pass a ``custom_vjp``;
``rj.unroll(..., impl="scan")`` lets JAX differentiate the loop instead.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero, custom_vjp_primal_tree_values

from rnnjax.cells import Parts, Prepared
from rnnjax.precision import matmul, matmul_into
from rnnjax.types import Array, Carry

__all__ = ["scan"]


def scan(
    parts: Parts,
    output: int,
    loop: Prepared,
    carry: Carry,
    xs: Array,
    mask: Array | None = None,
    unroll: int | bool = 1,
    hoist: bool = False,
) -> tuple[Carry, Carry]:
    """Runs a cell over time-major inputs; its gradient comes from the hand-written backward pass.

    Args:
        parts: the cell's ``spec.parts``.
        output: its ``spec.output``, the leaf of the carry that is the output ``h``.
        loop: its params laid out by ``cell.spec.prepare``.
        carry: the initial carry, ``(batch, ...)``.
        xs: inputs ``(time, batch, features)``, at least one step.
        mask: ``(time, batch)``, True where a step is valid; at the others the carry is held.
        unroll: steps per loop iteration, in both loops.
        hoist: compute ``U x_t + b`` for all steps before the loop (True) or in it (False).

    Returns:
        ``(final_carry, carries)``: carries holds the carry after every step, ``(time, batch, ...)``;
        the outputs are its leaf ``output``.
    """
    return _scan(_Step(parts, output), unroll, hoist, loop, carry, xs, mask)


class _Step(NamedTuple):
    """A cell's :class:`Parts` and the leaf of its carry that ``W`` multiplies (its output)."""

    parts: Parts
    output: int

    @property
    def combine(self) -> Any:
        return self.parts.combine

    @property
    def slope(self) -> Any:
        return self.parts.slope

    def pre(self, extra: Any, xp: Array, hp: Array) -> Any:
        return self.parts.pre(extra, xp, hp)

    def pointwise(self, carry: Carry, pre: Any) -> Carry:
        return self.parts.pointwise(carry, pre)

    def hidden(self, carry: Carry) -> Array:
        return jax.tree.leaves(carry)[self.output]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _scan(
    parts: _Step, unroll: int | bool, hoist: bool, loop: Prepared, carry: Carry, xs: Array, mask: Array | None
) -> tuple[Carry, Carry]:
    return _forward(parts, unroll, hoist, loop, carry, xs, mask, keep=False)[0]


def _forward(
    parts: _Step, unroll: int | bool, hoist: bool, loop: Prepared, carry: Carry, xs: Array, mask: Array | None,
    keep: bool,
) -> tuple[tuple[Carry, Carry], Any]:  # fmt: skip
    """The loop; with ``keep`` it also returns every step's pre-activations, ``(time, batch, .)`` arrays."""
    inputs = matmul(xs, loop.U_T) + loop.b if hoist else xs

    def body(c: Carry, inp: tuple[Array, Array | None]) -> tuple[Carry, Any]:
        x, m = inp
        xp = x if hoist else matmul(x, loop.U_T) + loop.b
        pre = parts.pre(loop.extra, xp, matmul(parts.hidden(c), loop.W_T))
        new = _held(parts.pointwise(c, pre), c, m)
        return new, (new, pre) if keep else new

    final, out = jax.lax.scan(body, carry, (inputs, mask), unroll=unroll)
    return (final, out[0]) if keep else (final, out), out[1] if keep else None


def _held(new: Carry, old: Carry, m: Array | None) -> Carry:
    """``new`` where the step is valid (``m``: ``(batch,)``), ``old`` where it is padding."""
    if m is None:
        return new
    return jax.tree.map(lambda n, o: jnp.where(m[:, None], n, o), new, old)


def _fwd(
    parts: _Step, unroll: int | bool, hoist: bool, loop: Prepared, carry: Carry, xs: Array, mask: Array | None
) -> tuple[tuple[Carry, Carry], tuple[Any, ...]]:
    # symbolic_zeros: the args come as records (value, perturbed); only the values matter here.
    loop, carry, xs, mask = custom_vjp_primal_tree_values((loop, carry, xs, mask))
    # A cell with a slope (the RNN) needs no pre-activations: its backward pass reads the outputs.
    (final, carries), pres = _forward(parts, unroll, hoist, loop, carry, xs, mask, keep=parts.slope is None)
    return (final, carries), (loop, carry, xs, mask, carries, pres)


def _bwd(
    parts: _Step, unroll: int | bool, hoist: bool, residuals: tuple[Any, ...], cotangents: tuple[Carry, Carry]
) -> tuple[Prepared, Carry, Array, None]:
    loop, carry0, xs, mask, carries, pres = residuals
    d_final, d_carries = cotangents
    d_final = jax.tree.map(lambda d, c: jnp.zeros_like(c) if _is_zero(d) else d, d_final, carry0)
    # Cotangents of the carries that nothing downstream used (the LSTM's C when the loss reads h)
    # stay symbolic: None here, never added.
    d_carries = jax.tree.map(lambda d: None if _is_zero(d) else d, d_carries)
    # The carry before each step: the initial carry, then the carries of all steps but the last.
    prev = jax.tree.map(lambda c0, cs: jnp.concatenate([c0[None], cs[:-1]]), carry0, carries)
    W = loop.W_T.T  # in W's own layout once: XLA:CPU multiplies by it faster inside the loop
    if parts.combine is None:
        combine_t = lambda d_pre: (None, d_pre, d_pre)  # noqa: E731 (pre = xp + hp)
    else:
        combine_t = _transpose_combine(parts, loop, xs.shape[1:2], xs.dtype)
    step_vjp = _step_vjp(parts)

    # What the backward loop reads of each step: pre_t, or the output a_t for a cell with a slope. The
    # first array of it is the largest (all of it but for the GRU): d pre_t is written over it, which is
    # read no more, so no new (time, batch, .) buffer. The others leave the loop as new arrays: XLA:CPU
    # copies a second buffer written in place every step (measured on the GRU).
    stored = carries if parts.slope is not None else pres
    first, *rest = jax.tree.leaves(stored)
    stored_def = jax.tree.structure(stored)

    def body(acc: tuple[Carry, Array], inp: tuple[Any, ...]) -> tuple[Any, list[Array]]:
        d_carry, buffer = acc
        d_out, c_prev, m, t, rest_t = inp
        d_carry = jax.tree.map(lambda d, o: d if o is None else d + o, d_carry, d_out, is_leaf=_is_none)
        step = jax.tree.unflatten(stored_def, [jax.lax.dynamic_index_in_dim(buffer, t, keepdims=False), *rest_t])
        d_pre, d_prev = step_vjp(step, c_prev, m, d_carry)
        d_h = matmul(combine_t(d_pre)[2], W)  # dh_{t-1} += d hp_t W
        d_prev = jax.tree.map(jnp.add, d_prev, jax.vjp(parts.hidden, c_prev)[1](d_h)[0])
        d_first, *d_rest = jax.tree.leaves(d_pre)
        return (d_prev, jax.lax.dynamic_update_index_in_dim(buffer, d_first, t, 0)), d_rest

    steps = jnp.arange(xs.shape[0])
    (d_carry0, d_first), d_rest = jax.lax.scan(
        body, (d_final, first), (d_carries, prev, mask, steps, rest), reverse=True, unroll=unroll
    )
    d_pres = jax.tree.unflatten(stored_def, [d_first, *d_rest])
    if parts.combine is None:
        d_extra, d_xp, d_hp = None, d_pres, d_pres
    else:
        d_extra, d_xp, d_hp = _transpose_combine(parts, loop, xs.shape[:2], xs.dtype)(d_pres)
    # The weight gradients as one matmul each over all (time * batch) rows, in the matrices' dtype (under mixed
    # precision: bfloat16 inputs, float32 accumulation, rounded once; rnnjax.precision).
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    d_xp, d_hp = flat(d_xp), flat(d_hp)
    d_loop = Prepared(
        U_T=matmul_into(flat(xs).T, d_xp, loop.U_T.dtype),  # dU^T = X^T dXp
        b=d_xp.sum(0),
        W_T=matmul_into(flat(parts.hidden(prev)).T, d_hp, loop.W_T.dtype),  # dW^T = H_prev^T dHp
        extra=d_extra,
    )
    d_xs = matmul(d_xp, loop.U_T.T).reshape(xs.shape)
    return d_loop, d_carry0, d_xs, None


def _step_vjp(parts: _Step) -> Any:
    """``step_vjp(stored_t, carry_{t-1}, m_t, d carry_t) -> (d pre_t, d carry_{t-1})``: the element-wise part
    of a step differentiated, from what the forward pass stored of it."""
    if parts.slope is None:  # stored: pre_t; jax.vjp recomputes the gates from it

        def step_vjp(pre: Any, c_prev: Carry, m: Array | None, d_carry: Carry) -> tuple[Any, Carry]:
            _, vjp = jax.vjp(lambda p, c: _held(parts.pointwise(c, p), c, m), pre, c_prev)
            return vjp(d_carry)

        return step_vjp

    def slope_vjp(a: Array, c_prev: Array, m: Array | None, d_a: Array) -> tuple[Array, Array]:
        # stored: a_t = f(pre_t), and f'(pre_t) = slope(a_t); the step does not read a_{t-1} but for
        # the mask, which holds it at padded steps (where a_t holds it too, and d pre_t is 0).
        d_pre = d_a * parts.slope(a)
        if m is None:
            return d_pre, jnp.zeros_like(d_a)
        return jnp.where(m[:, None], d_pre, 0), jnp.where(m[:, None], 0, d_a)

    return slope_vjp


def _transpose_combine(parts: _Step, loop: Prepared, lead: tuple[int, ...], dtype: Any) -> Any:
    """The transpose of the linear ``combine`` over arrays ``(*lead, .)``: d pre -> (d extra, d xp, d hp)."""
    like = lambda a: jax.ShapeDtypeStruct((*lead, a.shape[-1]), dtype)  # noqa: E731
    return jax.linear_transpose(parts.combine, loop.extra, like(loop.b), like(loop.W_T))


def _is_zero(x: Any) -> bool:
    return isinstance(x, SymbolicZero)


def _is_none(x: Any) -> bool:
    return x is None


_scan.defvjp(_fwd, _bwd, symbolic_zeros=True)
