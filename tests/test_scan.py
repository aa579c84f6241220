"""The scan: against a Python loop, lengths and reversal, gradients, and properties."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import rnnjax as rj
from rnnjax.cells import LSTMState

I, H, B, T = 3, 5, 4, 7
CELLS = [rj.cells.rnn(H), rj.cells.irnn(H), rj.cells.lstm(H), rj.cells.gru(H), rj.cells.gru(H, False)]
IDS = ["rnn", "irnn", "lstm", "gru", "gru_cho"]

pytestmark = pytest.mark.usefixtures("strict_dtypes")


def python_loop(cell, params, xs, carry):
    """The reference: ``step`` called once per time step, batch-major in and out."""
    if xs.shape[1] == 0:
        return carry, jnp.zeros((xs.shape[0], 0, cell.hidden_size)), None
    ys, carries = [], []
    for t in range(xs.shape[1]):
        carry, y = cell.step(params, carry, xs[:, t])
        ys.append(y)
        carries.append(carry)
    stacked = jax.tree.map(lambda *c: jnp.stack(c, axis=1), *carries)
    return carry, jnp.stack(ys, axis=1), stacked


def setup(cell, key, dtype=jnp.float32, batch=B, time=T):
    k1, k2, k3 = jax.random.split(key, 3)
    params = cell.init(k1, I)
    xs = jax.random.normal(k2, (batch, time, I), dtype)
    zeros = cell.initial_carry(params, (batch,))
    leaves, tree = jax.tree.flatten(zeros)
    carry = jax.tree.unflatten(
        tree, [0.5 * jax.random.normal(k, x.shape, dtype) for k, x in zip(jax.random.split(k3, 2), leaves)]
    )
    return params, xs, carry


@pytest.mark.parametrize("hoist", [False, True], ids=["in_loop", "hoisted"])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_scan_equals_python_loop(cell, hoist, getkey):
    params, xs, carry = setup(cell, getkey())
    final, ys, carries = rj.unroll(cell, params, xs, carry=carry, return_carries=True, hoist=hoist)
    ref_final, ref_ys, ref_carries = python_loop(cell, params, xs, carry)
    chex.assert_trees_all_close((final, ys, carries), (ref_final, ref_ys, ref_carries), atol=1e-6)
    # Default carry: zeros.
    chex.assert_trees_all_close(
        rj.unroll(cell, params, xs)[1],
        python_loop(cell, params, xs, cell.initial_carry(params, (B,)))[1],
        atol=1e-6,
    )


@pytest.mark.parametrize("cell", CELLS[2:4], ids=IDS[2:4])
@pytest.mark.parametrize(
    "options",
    [
        dict(unroll=3),
        dict(unroll=True),
        dict(remat=True),
        dict(remat=1),
        dict(remat=3),
        dict(remat=100),
        dict(remat=2, impl="scan"),
        dict(remat=True, reverse=True),
        dict(hoist=True),
        dict(hoist=False),
    ],
)
def test_unroll_and_remat_change_nothing(cell, options, getkey):
    params, xs, carry = setup(cell, getkey())
    lengths = jnp.array([7, 3, 0, 5])

    def loss(p, **kw):
        final, ys = rj.unroll(cell, p, xs, carry=carry, lengths=lengths, **kw)
        return (ys**2).sum() + sum((c**2).sum() for c in jax.tree.leaves(final))

    reverse = options.get("reverse", False)
    value, grads = jax.value_and_grad(lambda p: loss(p, reverse=reverse))(params)
    value_o, grads_o = jax.jit(jax.value_and_grad(lambda p: loss(p, **options)))(params)
    chex.assert_trees_all_close((value, grads), (value_o, grads_o), rtol=1e-5, atol=1e-6)


def test_return_carries_gives_lstm_h_and_c(getkey):
    cell = rj.cells.lstm(H)
    params, xs, _ = setup(cell, getkey())
    lengths = jnp.array([7, 2, 0, 4])
    final, ys, carries = rj.unroll(cell, params, xs, lengths=lengths, return_carries=True)
    assert isinstance(carries, LSTMState)
    chex.assert_shape([carries.h, carries.c], (B, T, H))
    np.testing.assert_array_equal(carries.h, ys)
    mask = np.arange(T)[None, :] < np.asarray(lengths)[:, None]
    assert not np.asarray(carries.c)[~mask].any()
    np.testing.assert_allclose(carries.c[1, 1], final.c[1], rtol=1e-6)


@pytest.mark.parametrize("hoist", [False, True], ids=["in_loop", "hoisted"])
@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_lengths_semantics(cell, hoist, getkey):
    params, xs, carry = setup(cell, getkey())
    lengths = np.array([7, 3, 0, 1])
    for reverse in (False, True):
        final, ys = rj.unroll(cell, params, xs, carry=carry, lengths=lengths, reverse=reverse, hoist=hoist)
        for b, n in enumerate(lengths):
            row = jax.tree.map(lambda c: c[b : b + 1], carry)
            xb = xs[b : b + 1, :n]
            if reverse:
                xb = xb[:, ::-1]
            ref_final, ref_ys, _ = python_loop(cell, params, xb, row)
            if reverse:
                ref_ys = ref_ys[:, ::-1]
            # The final carry is the one after the row's last valid step; length 0 keeps the initial one.
            chex.assert_trees_all_close(jax.tree.map(lambda c: c[b : b + 1], final), ref_final, atol=1e-6)
            np.testing.assert_allclose(ys[b, :n], ref_ys[0], atol=1e-6)
            assert not np.asarray(ys[b, n:]).any(), "padded outputs must be zeros"


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_reverse_without_lengths_reads_backwards(cell, getkey):
    params, xs, carry = setup(cell, getkey())
    final, ys = rj.unroll(cell, params, xs, carry=carry, reverse=True)
    ref_final, ref_ys, _ = python_loop(cell, params, xs[:, ::-1], carry)
    chex.assert_trees_all_close((final, ys), (ref_final, ref_ys[:, ::-1]), atol=1e-6)
    full = rj.unroll(cell, params, xs, carry=carry, lengths=jnp.full(B, T), reverse=True)
    chex.assert_trees_all_close(full, (final, ys), atol=1e-6)


def cells64():
    f64 = jnp.float64
    return [
        rj.cells.rnn(H, dtype=f64),
        rj.cells.rnn(H, "relu", dtype=f64),  # not the IRNN: its tiny pre-activations sit on ReLU's kink
        rj.cells.lstm(H, dtype=f64),
        rj.cells.gru(H, dtype=f64),
        rj.cells.gru(H, False, dtype=f64),
    ]


@pytest.mark.parametrize("index", range(len(CELLS)), ids=IDS)
def test_gradients_float64(index, x64, getkey):
    cell = cells64()[index]
    params, xs, carry = setup(cell, getkey(), jnp.float64, batch=2, time=4)
    lengths = jnp.array([4, 2])

    def f(params, xs, carry):
        final, ys = rj.unroll(cell, params, xs, carry=carry, lengths=lengths, reverse=True)
        return jnp.sin(ys).sum() + sum(jnp.sum(c) for c in jax.tree.leaves(final))

    check_grads(jax.jit(f), (params, xs, carry), order=1, modes=("rev",), atol=1e-7, rtol=1e-7)
    if cell.name == "lstm":  # second order once: reverse over the hand-written backward pass, and
        # forward-over-reverse through the loop that JAX differentiates (jvp cannot pass a custom_vjp)
        ys = jax.jit(lambda p: rj.unroll(cell, p, xs, carry=carry)[1])
        check_grads(ys, (params,), order=2, modes=("rev",))
        ys = jax.jit(lambda p: rj.unroll(cell, p, xs, carry=carry, impl="scan")[1])
        check_grads(ys, (params,), order=2, modes=("fwd", "rev"))


class TestVariants(chex.TestCase):
    """jit and no-jit agree for ``unroll`` with lengths and reversal."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_unroll(self):
        for k, cell in enumerate(CELLS):
            params, xs, carry = setup(cell, jax.random.key(k))
            lengths = jnp.array([7, 3, 0, 5])
            fn = self.variant(lambda p, x, c, n: rj.unroll(cell, p, x, carry=c, lengths=n, reverse=True))
            chex.assert_trees_all_close(
                fn(params, xs, carry, lengths),
                rj.unroll(cell, params, xs, carry=carry, lengths=lengths, reverse=True),
                atol=1e-6,
            )


# Property tests: fixed shapes (one compilation per cell), values and lengths drawn.
PAD = 3


@pytest.fixture(scope="module")
def jitted():
    fns = {}
    for name, cell in zip(IDS, CELLS):
        params = cell.init(jax.random.key(1), I)
        run = jax.jit(lambda x, n, r, c=cell, p=params: rj.unroll(c, p, x, lengths=n, reverse=r), static_argnums=2)
        fns[name] = (cell, params, run)
    return fns


lengths_st = st.lists(st.integers(0, T), min_size=B, max_size=B).map(np.array)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(IDS), lengths=lengths_st, seed=st.integers(0, 2**31 - 1), reverse=st.booleans())
def test_padding_never_changes_valid_outputs(jitted, name, lengths, seed, reverse):
    cell, params, fn = jitted[name]
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(B, T, I)).astype(np.float32)
    final, ys = fn(xs, lengths, reverse)
    # Garbage after each row's length, and more padded steps at the end.
    garbage = rng.normal(size=(B, T + PAD, I)).astype(np.float32) * 100
    mask = np.arange(T + PAD)[None, :, None] < lengths[:, None, None]
    padded = np.where(mask, np.pad(xs, ((0, 0), (0, PAD), (0, 0))), garbage)
    final_p, ys_p = fn(padded, lengths, reverse)
    chex.assert_trees_all_close(final_p, final, atol=1e-6)
    np.testing.assert_allclose(ys_p[:, :T], ys, atol=1e-6)
    assert not np.asarray(ys_p[:, T:]).any()


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(IDS), lengths=lengths_st, seed=st.integers(0, 2**31 - 1), row=st.integers(0, B - 1))
def test_batch_elements_are_independent(jitted, name, lengths, seed, row):
    cell, params, fn = jitted[name]
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(B, T + PAD, I)).astype(np.float32)
    changed = xs.copy()
    changed[row] = rng.normal(size=(T + PAD, I))
    others = np.arange(B) != row
    (final, ys), (final_c, ys_c) = fn(xs, lengths, False), fn(changed, lengths, False)
    chex.assert_trees_all_close(
        jax.tree.map(lambda c: c[others], final_c), jax.tree.map(lambda c: c[others], final), atol=0
    )
    np.testing.assert_array_equal(ys_c[others], ys[others])


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(IDS), lengths=lengths_st, seed=st.integers(0, 2**31 - 1))
def test_reverse_within_lengths_equals_reversing_by_hand(jitted, name, lengths, seed):
    cell, params, fn = jitted[name]
    xs = np.random.default_rng(seed).normal(size=(B, T + PAD, I)).astype(np.float32)
    final, ys = fn(xs, lengths, True)
    by_hand = xs.copy()
    for b, n in enumerate(lengths):
        by_hand[b, :n] = xs[b, :n][::-1]
    final_f, ys_f = fn(by_hand, lengths, False)
    chex.assert_trees_all_close(final, final_f, atol=1e-6)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(ys[b, :n], ys_f[b, :n][::-1], atol=1e-6)


def test_bad_inputs_raise(getkey):
    cell = rj.cells.lstm(H)
    params, xs, carry = setup(cell, getkey())
    cases = [
        (dict(xs=xs[0]), r"xs: expected shape \(batch, time, features\), got \(7, 3\)"),
        (dict(xs=xs[..., :2]), r"params.U: expected shape \(20, 2\) for xs with 2 features.*input_size=3"),
        (dict(xs=xs.astype(jnp.int32)), "xs: expected a floating dtype"),
        (dict(xs=xs.at[1, 2, 0].set(jnp.nan)), r"xs: expected finite values at valid steps, got nan at \S+ \(1, 2"),
        (dict(lengths=jnp.array([1, 2])), r"lengths: expected shape \(4,\)"),
        (dict(lengths=jnp.array([1.0, 2, 3, 4])), "lengths: expected an integer dtype"),
        (dict(lengths=jnp.array([1, 2, 8, 4])), r"lengths: expected values in \[0, 7\].*max 8"),
        (dict(lengths=jnp.array([1, -1, 3, 4])), r"lengths: expected values in \[0, 7\].*min -1"),
        (dict(carry=carry.h), "carry: expected structure"),
        (dict(carry=LSTMState(carry.h[:2], carry.c[:2])), r"carry.h: expected shape \(4, 5\)"),
        (dict(params=rj.cells.gru(H).init(getkey(), I)), "params: expected LSTMParams"),
    ]
    for change, match in cases:
        kwargs = dict(cell=cell, params=params, xs=xs) | change
        with pytest.raises(ValueError, match=match):
            rj.unroll(**kwargs)


def test_remat_keeps_a_fraction_of_the_memory_and_returns_every_carry(getkey):
    """Checkpointing over time: the compiled backward pass of a 1,000-step LSTM holds a small share of the plain
    one's temporary memory (XLA's own count, not a timing), and return_carries still gives every step's state."""
    cell = rj.cells.lstm(32)
    params, xs, _ = setup(cell, getkey(), time=1000)

    def temp(remat):
        grad = jax.jit(jax.grad(lambda p: sum((c**2).sum() for c in rj.unroll(cell, p, xs, remat=remat)[0])))
        return grad.lower(params).compile().memory_analysis().temp_size_in_bytes

    plain, chunked, per_step = temp(False), temp(True), temp(1)
    assert chunked < plain / 5 and chunked < per_step, (plain, chunked, per_step)
    lengths = jnp.array([1000, 3, 0, 517])
    want = rj.unroll(cell, params, xs, lengths=lengths, return_carries=True)
    got = rj.unroll(cell, params, xs, lengths=lengths, return_carries=True, remat=True)
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)


def test_remat_and_unroll_errors(getkey):
    cell = rj.cells.lstm(H)
    params, xs, _ = setup(cell, getkey(), time=40)
    for remat in (0, -2, 2.5, "sqrt"):
        with pytest.raises(ValueError, match="remat: expected True, False or a chunk length"):
            rj.unroll(cell, params, xs, remat=remat)
    with pytest.raises(ValueError, match=r"unroll: unroll=True on 40 steps compiles 40 copies of the step, more than"):
        rj.unroll(cell, params, xs, unroll=True)
    with pytest.raises(ValueError, match=r"unroll: unroll=33 compiles 33 copies"):
        rj.unroll(cell, params, xs, unroll=33)
    with pytest.raises(ValueError, match="unroll: expected True or an int >= 1, got"):
        rj.unroll(cell, params, xs, unroll=0)
    rj.unroll(cell, params, xs[:, :10], unroll=33)  # 10 copies: within the cap
    rj.unroll(cell, params, xs[:, :32], unroll=True)
