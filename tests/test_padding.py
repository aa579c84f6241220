"""Padding is never read: garbage in padded steps changes no output and no gradient, under jit or not.

A property test over the registry of cells, both directions and both backward passes: whatever
NaN, Inf or huge values sit in the padded steps of ``xs``, the outputs, the final carry and the
gradients with respect to the params, the valid inputs and the initial carry are bit for bit those
of the same call with zeros there, and the gradient at padded inputs is exactly zero.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnjax as rj

B, T, I, H = 3, 5, 2, 3
CELLS = {
    "rnn": rj.cells.rnn(H),
    "relu": rj.cells.rnn(H, "relu"),
    "irnn": rj.cells.irnn(H),
    "lstm": rj.cells.lstm(H),
    "gru": rj.cells.gru(H),
    "gru_cho": rj.cells.gru(H, reset_after=False),
}
GARBAGE = [np.nan, np.inf, -np.inf, 1e30, -3e38]

lengths_st = st.lists(st.integers(0, T), min_size=B, max_size=B).map(np.array)
garbage_st = st.lists(st.sampled_from(GARBAGE), min_size=B * T * I, max_size=B * T * I)


def _loss_and_grads(cell, backward, reverse):
    def loss(params, xs, carry, lengths):
        final, ys = rj.unroll(cell, params, xs, carry=carry, lengths=lengths, reverse=reverse, impl=backward)
        # Every output and the whole final carry reach the loss, with weights that differ per entry.
        w = jnp.arange(ys.size, dtype=ys.dtype).reshape(ys.shape) / ys.size
        return (w * ys).sum() + sum(jnp.sum(jnp.sin(c)) for c in jax.tree.leaves(final)), (final, ys)

    return jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)


def _fill_padding(xs, lengths, garbage):
    padded = np.arange(T)[None, :] >= lengths[:, None]
    out = np.array(xs)
    out[padded] = np.asarray(garbage, np.float32).reshape(B, T, I)[padded]
    return out


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("backward", ["auto", "scan"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("name", CELLS)
def test_garbage_in_padding_changes_nothing(name, reverse, backward, jit):
    cell = CELLS[name]
    key = jax.random.key(7)
    params = cell.init(key, I)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (B, T, I))
    carry = jax.tree.map(lambda c: 0.3 * jnp.ones_like(c), cell.initial_carry(params, (B,)))
    fn = _loss_and_grads(cell, backward, reverse)
    fn = jax.jit(fn) if jit else fn

    # Eager calls retrace every time (about a second each): fewer examples there.
    @settings(max_examples=8 if jit else 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(lengths=lengths_st, garbage=garbage_st)
    def check(lengths, garbage):
        clean = _fill_padding(xs, lengths, [0.0] * (B * T * I))
        dirty = _fill_padding(xs, lengths, garbage)
        (value, (final, ys)), grads = fn(params, clean, carry, lengths)
        (value_d, (final_d, ys_d)), grads_d = fn(params, dirty, carry, lengths)
        for a, b in zip(jax.tree.leaves((value, final, ys, grads)), jax.tree.leaves((value_d, final_d, ys_d, grads_d))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert np.isfinite(np.asarray(value_d))
        padded = np.arange(T)[None, :] >= lengths[:, None]
        np.testing.assert_array_equal(np.asarray(grads_d[1])[padded], 0.0)

    check()


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_garbage_in_padding_of_a_bidirectional_stack(jit):
    net = rj.RNN(cell="lstm", hidden_size=H, num_layers=2, bidirectional=True)
    key = jax.random.key(3)
    params = net.init(key, I)
    xs = np.asarray(jax.random.normal(key, (B, T, I)))
    lengths = np.array([T, 2, 0])

    def loss(params, xs):
        ys, finals = net.apply(params, xs, lengths)
        return (ys**2).sum() + sum(jnp.sum(c) for c in jax.tree.leaves(finals))

    fn = jax.value_and_grad(loss, argnums=(0, 1))
    fn = jax.jit(fn) if jit else fn
    clean = _fill_padding(xs, lengths, [0.0] * (B * T * I))
    dirty = _fill_padding(xs, lengths, [np.nan] * (B * T * I))
    for a, b in zip(jax.tree.leaves(fn(params, clean)), jax.tree.leaves(fn(params, dirty)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("backward", ["auto", "scan"])
@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_traced_lengths_out_of_range_are_clipped_the_same_in_both_directions(name, backward):
    """Under jit lengths cannot be checked: above ``time`` they act as ``time``, below 0 as 0, in values
    and gradients, forward and reversed (a reversed read past the end gave NaN gradients once)."""
    cell = CELLS[name]
    key = jax.random.key(1)
    params = cell.init(key, I)
    xs = jax.random.normal(key, (B, T, I))

    @functools.partial(jax.jit, static_argnums=2)
    def run(params, lengths, reverse):
        def loss(params):
            final, ys = rj.unroll(cell, params, xs, lengths=lengths, reverse=reverse, impl=backward)
            return ys.sum() + sum(jnp.sum(c) for c in jax.tree.leaves(final))

        return jax.value_and_grad(loss)(params)

    for reverse in (False, True):
        got = run(params, jnp.array([T + 4, -3, 2**30]), reverse)
        want = run(params, jnp.array([T, 0, T]), reverse)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            assert np.isfinite(np.asarray(a)).all()
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_concrete_lengths_are_checked_before_any_cast():
    """int64 lengths above 2^31 would wrap to small values in a cast to int32 (x64 off)."""
    cell = CELLS["lstm"]
    params = cell.init(jax.random.key(0), I)
    xs = jnp.zeros((B, T, I))
    for lengths in (np.array([2**32 + 1, 1, 1], np.int64), np.array([-(2**32) + 3, 1, 1], np.int64)):
        with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 5\]"):
            rj.unroll(cell, params, xs, lengths=lengths)
