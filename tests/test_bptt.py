"""BPTT: the textbook's explicit sums against autodiff, their terms by hand, and truncated BPTT."""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax import bptt
from rnnjax.bptt import ElmanParams
from rnnjax.cells import LSTMParams, LSTMState

pytestmark = pytest.mark.usefixtures("strict_dtypes")  # mixed dtypes must be explicit in the library

B, I, H, K = 3, 4, 5, 3  # batch, inputs, hidden, outputs (classes)


def elman_setup(seed, time, loss, every_step):
    """Float64 params and data from numpy (no JAX random op to compile per shape)."""
    rng = np.random.default_rng(seed)
    shapes = ElmanParams(U=(H, I), W=(H, H), b=(H,), V=(K, H), c=(K,))
    params = ElmanParams(*(jnp.asarray(0.6 * rng.normal(size=s)) for s in shapes))
    xs = jnp.asarray(rng.normal(size=(B, time, I)))
    a0 = jnp.asarray(0.5 * rng.normal(size=(B, H)))
    steps = (B, time) if every_step else (B,)
    if loss == "cross_entropy":
        targets = jnp.asarray(rng.integers(0, K, steps), jnp.int32)
    else:
        targets = jnp.asarray(rng.normal(size=(*steps, K)))
    return params, xs, a0, targets


# Jitted once per configuration and shape: run eagerly, every small op and scan compiles on its own.
@functools.partial(jax.jit, static_argnames=("activation", "loss", "every_step"))
def explicit_and_autodiff(params, xs, targets, a0, *, activation, loss, every_step):
    kw = dict(activation=activation, loss=loss, every_step=every_step)
    return bptt.explicit_grads(params, xs, targets, a0, **kw), jax.grad(bptt.elman_loss)(params, xs, targets, a0, **kw)


@functools.partial(jax.jit, static_argnames=("activation", "loss", "every_step"))
def per_step_terms(params, xs, targets, a0, *, activation, loss, every_step):
    kw = dict(activation=activation, loss=loss, every_step=every_step)
    return bptt.explicit_grads(params, xs, targets, a0, per_step=True, **kw)


def assert_rel_close(got, want, tol=1e-10, may_vanish=()):
    """Each leaf within ``tol`` of ``want``, relative to the largest entry of ``want``."""
    for name, g, w in zip(ElmanParams._fields, got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, name
        scale = np.abs(w).max()
        if name in may_vanish and scale == 0:
            assert np.all(g == 0), f"dL/d{name} should be exactly zero"
            continue
        assert scale > 0, f"dL/d{name} is zero: the comparison would be empty"
        err = np.abs(g - w).max() / scale
        assert err <= tol, f"dL/d{name}: relative error {err:.2e}"


# Every pair of factors meets in all its combinations in 8 cases (a covering array of strength 2),
# not the 64 of the full grid: each case compiles two scans, which takes seconds on a busy machine.
# Bits: l = loss, (b0, b1) = length; every_step = b1 ^ l, activation = b0 ^ l, a0 = b0 ^ b1 ^ l.
LENGTHS = [1, 2, 7, 30]
CASES = [
    (
        time,
        ["cross_entropy", "mse"][l],
        [False, True][(i >> 1) ^ l],
        ["tanh", "relu"][(i & 1) ^ l],
        ["a0", "zeros"][(i & 1) ^ (i >> 1) ^ l],
    )
    for i, time in enumerate(LENGTHS)
    for l in (0, 1)
]


def test_cases_cover_every_pair():
    for f, g in itertools.combinations(range(5), 2):
        levels_f = {case[f] for case in CASES}
        levels_g = {case[g] for case in CASES}
        assert {(case[f], case[g]) for case in CASES} == set(itertools.product(levels_f, levels_g))


@pytest.mark.parametrize("time, loss, every_step, activation, a0", CASES)
def test_explicit_grads_equal_autodiff(time, loss, every_step, activation, a0, x64):
    params, xs, a0_value, targets = elman_setup(0, time, loss, every_step)
    a0_value = a0_value if a0 == "a0" else None
    grads, auto = explicit_and_autodiff(
        params, xs, targets, a0_value, activation=activation, loss=loss, every_step=every_step
    )
    # With one step from a zero state, dL/dW = dz_1 a_0^T vanishes exactly.
    assert_rel_close(grads, auto, may_vanish=("W",) if time == 1 and a0_value is None else ())


# ---------------------------------------------------------------- per-step terms by hand


def np_softmax(o):
    e = np.exp(o - o.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_forward(p, xs, a0):
    """The tanh Elman net in numpy: lists of z_t, a_t, o_t for t = 1..T."""
    a, zs, hs, os_ = a0, [], [], []
    for t in range(xs.shape[1]):
        z = xs[:, t] @ p.U.T + a @ p.W.T + p.b
        a = np.tanh(z)
        zs.append(z)
        hs.append(a)
        os_.append(a @ p.V.T + p.c)
    return zs, hs, os_


def test_per_step_terms_by_hand_one_step(x64):
    """T = 1, one output (at the last step), cross-entropy: dL/dW = f'(z_1) * (V^T dL/do_1) a_0^T."""
    config = dict(activation="tanh", loss="cross_entropy", every_step=False)
    params, xs, a0, targets = elman_setup(0, 1, "cross_entropy", False)
    terms = per_step_terms(params, xs, targets, a0, **config)
    p = ElmanParams(*map(np.asarray, params))
    x, a_0, y = np.asarray(xs), np.asarray(a0), np.asarray(targets)
    (z1,), (a1,), (o1,) = np_forward(p, x, a_0)
    d_o1 = (np_softmax(o1) - np.eye(K)[y]) / B  # softmax minus one-hot; the loss is a batch mean
    d_z1 = (1 - np.tanh(z1) ** 2) * (d_o1 @ p.V)  # f'(z_1) * V^T dL/do_1, one row per sequence
    want = ElmanParams(U=d_z1.T @ x[:, 0], W=d_z1.T @ a_0, b=d_z1.sum(0), V=d_o1.T @ a1, c=d_o1.sum(0))
    for name, w in zip(ElmanParams._fields, want):
        got = np.asarray(getattr(terms, name))
        assert got.shape == (1, *w.shape), name
        np.testing.assert_allclose(got[0], w, rtol=1e-10, atol=1e-14, err_msg=name)
    assert np.abs(want.W).max() > 1e-3


def test_per_step_terms_by_hand_two_steps(x64):
    """T = 2, an output at each step, squared error: the future reaches back through W.

    dL/dW term 2 = dz_2 a_1^T with dz_2 = f'(z_2) * V^T do_2;
    dL/dW term 1 = dz_1 a_0^T with dz_1 = f'(z_1) * (V^T do_1 + W^T dz_2).
    """
    config = dict(activation="tanh", loss="mse", every_step=True)
    params, xs, a0, targets = elman_setup(0, 2, "mse", True)
    terms = per_step_terms(params, xs, targets, a0, **config)
    p = ElmanParams(*map(np.asarray, params))
    x, a_0, y = np.asarray(xs), np.asarray(a0), np.asarray(targets)
    (z1, z2), (a1, a2), (o1, o2) = np_forward(p, x, a_0)
    d_o1, d_o2 = (o1 - y[:, 0]) / B, (o2 - y[:, 1]) / B
    d_z2 = (1 - np.tanh(z2) ** 2) * (d_o2 @ p.V)
    d_z1 = (1 - np.tanh(z1) ** 2) * (d_o1 @ p.V + d_z2 @ p.W)
    by_hand = {
        ("W", 1): d_z2.T @ a1,
        ("W", 0): d_z1.T @ a_0,
        ("U", 0): d_z1.T @ x[:, 0],
        ("U", 1): d_z2.T @ x[:, 1],
        ("b", 1): d_z2.sum(0),
        ("V", 0): d_o1.T @ a1,
        ("V", 1): d_o2.T @ a2,
        ("c", 0): d_o1.sum(0),
    }
    for (name, t), want in by_hand.items():
        got = np.asarray(getattr(terms, name)[t])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14, err_msg=f"{name}[{t}]")
    # The recursion matters: without W^T dz_2 the first term would differ.
    no_future = ((1 - np.tanh(z1) ** 2) * (d_o1 @ p.V)).T @ a_0
    assert not np.allclose(np.asarray(terms.W[0]), no_future, rtol=1e-6)
    # The terms add up to the gradient (this case is one of CASES: no new compile).
    _, auto = explicit_and_autodiff(params, xs, targets, a0, **config)
    chex.assert_trees_all_equal_shapes(terms, jax.tree.map(lambda g: jnp.stack([g, g]), auto))
    assert_rel_close(jax.tree.map(lambda t: t.sum(0), terms), auto)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [bptt.elman_loss, bptt.explicit_grads], ids=["elman_loss", "explicit_grads"])
def test_bad_inputs_raise(fn):
    # The checks read shapes only: numpy arrays will do, and nothing compiles.
    params = ElmanParams(*(np.zeros(s, np.float32) for s in [(H, I), (H, H), (H,), (K, H), (K,)]))
    xs, values = np.zeros((B, 4, I), np.float32), np.zeros((B, 4, K), np.float32)
    targets = np.zeros((B, 4), np.int32)
    with pytest.raises(ValueError, match="^xs:"):
        fn(params, xs[0], targets)  # rank 2
    with pytest.raises(ValueError, match="^xs:"):
        fn(params, xs[..., :-1], targets)  # wrong feature size
    with pytest.raises(ValueError, match="^targets:"):
        fn(params, xs, targets[:, :-1])
    with pytest.raises(ValueError, match="^targets:"):
        fn(params, xs, targets, every_step=False)  # (batch,) expected
    with pytest.raises(ValueError, match="^targets:"):
        fn(params, xs, values, loss="mse", every_step=False)
    with pytest.raises(ValueError, match="^targets:"):
        fn(params, xs, values[..., :-1], loss="mse")
    with pytest.raises(ValueError, match="^loss:"):
        fn(params, xs, targets, loss="hinge")
    with pytest.raises(ValueError, match="^activation:"):
        fn(params, xs, targets, activation="sigmoid")
    with pytest.raises(ValueError, match=r"^targets: expected classes in \[0, 3\)"):
        fn(params, xs, targets - 1)  # -1 would score the last class
    with pytest.raises(ValueError, match="^targets: expected integer class labels"):
        fn(params, xs, targets.astype(np.float32))
    with pytest.raises(ValueError, match="^params.V: expected shape"):
        fn(params._replace(V=np.zeros((K, H + 1), np.float32)), xs, targets)
    with pytest.raises(ValueError, match="^params.b: expected finite values"):
        fn(params._replace(b=np.full(H, np.nan, np.float32)), xs, targets)
    with pytest.raises(ValueError, match="^params: expected ElmanParams"):
        fn(tuple(params), xs, targets)
    with pytest.raises(ValueError, match="^a0: expected shape"):
        fn(params, xs, targets, np.zeros((B + 1, H), np.float32))
    with pytest.raises(ValueError, match="^xs: expected finite values"):
        fn(params, np.full_like(xs, np.inf), targets)


def test_bad_truncation_arguments_raise():
    batch = {"x": np.zeros((2, 6, 1), np.float32)}
    for k, match in [(0, "^k: expected a positive int"), (True, "^k:"), (2.0, "^k:"), (7, "^k: expected at most")]:
        with pytest.raises(ValueError, match=match):
            bptt.split_chunks(batch, k)
    with pytest.raises(ValueError, match="^batch: expected every array to share"):
        bptt.split_chunks({"x": np.zeros((2, 6)), "y": np.zeros((2, 5))}, 2)
    with pytest.raises(ValueError, match="^chunk_loss: expected a function"):
        bptt.truncated_value_and_grad(None, {}, {}, batch, 2)


# ---------------------------------------------------------------- truncated BPTT

TB, TT, TI, TH = 3, 6, 2, 5  # batch, time, inputs, hidden of the truncation tests
CELL = rj.cells.lstm(TH, dtype=jnp.float64)


class Model(NamedTuple):
    """An LSTM with a linear readout ``y^_t = V h_t + c``."""

    cell: LSTMParams
    V: jax.Array
    c: jax.Array


def chunk_loss(params: Model, carry: LSTMState, chunk):
    """Squared error at every step, summed over steps and batch; returns ``(loss, final_carry)``."""
    xs, ys = chunk
    carry, hs = rj.unroll(CELL, params.cell, xs, carry=carry)
    predictions = hs @ params.V.T + params.c
    return ((predictions - ys) ** 2).mean(-1).sum(), carry


# The references, jitted: full BPTT over whatever steps they get (one compile per shape, shared by tests).
chunk_value_and_grad = jax.jit(jax.value_and_grad(chunk_loss, has_aux=True))
chunk_value = jax.jit(chunk_loss)


def lstm_setup(seed=0):
    """Float64 params, carry and data from numpy; ``b_f`` is shifted by +1, like ``CELL.init``'s forget bias."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: jnp.asarray(rng.normal(size=shape))  # noqa: E731
    b = normal(4 * TH).at[:TH].add(1.0)
    params = Model(LSTMParams(0.5 * normal(4 * TH, TI), 0.4 * normal(4 * TH, TH), b), 0.5 * normal(1, TH), normal(1))
    carry = LSTMState(0.5 * normal(TB, TH), 0.5 * normal(TB, TH))
    return params, carry, (normal(TB, TT, TI), normal(TB, TT, 1))


def hand_truncated(params, carry, batch, k, resets=None, initial=None):
    """Truncated BPTT written out: a Python loop over chunks, the carry cut between them."""
    xs, ys = batch
    total, grads = 0.0, jax.tree.map(jnp.zeros_like, params)
    for j, start in enumerate(range(0, xs.shape[1], k)):
        carry = jax.lax.stop_gradient(carry)
        if resets is not None:
            row = resets[:, j][:, None]
            carry = jax.tree.map(lambda init, c: jnp.where(row, init, c), initial, carry)
        chunk = (xs[:, start : start + k], ys[:, start : start + k])
        (loss, carry), g = chunk_value_and_grad(params, carry, chunk)
        total, grads = total + float(loss), jax.tree.map(jnp.add, grads, g)
    return total, grads, carry


def max_abs_diff(a, b):
    return max(float(jnp.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# Jitted here for time: run eagerly, the scan over chunks and the last, shorter chunk compile on every call.
# The eager path runs in test_resets_start_a_row_afresh.
truncated_jit = jax.jit(bptt.truncated_value_and_grad, static_argnums=(0, 4))


# T = 6: k = 4 leaves a shorter last chunk (2 steps), k = 6 is full BPTT; a k that divides T
# (k = 2, three chunks) runs eagerly in test_resets_start_a_row_afresh.
@pytest.mark.parametrize("k", [4, TT])
def test_truncation_equals_chunks_by_hand(k, x64):
    params, carry, batch = lstm_setup()
    loss, grads, final = truncated_jit(chunk_loss, params, carry, batch, k)
    want = hand_truncated(params, carry, batch, k)
    chex.assert_trees_all_close((loss, grads, final), want, rtol=1e-12, atol=1e-14)
    (full_loss, full_final), full_grads = chunk_value_and_grad(params, carry, batch)
    # Truncation changes the gradient, not the forward pass.
    chex.assert_trees_all_close((loss, final), (full_loss, full_final), rtol=1e-12, atol=1e-14)
    if k == TT:
        chex.assert_trees_all_close(grads, full_grads, rtol=1e-12, atol=1e-14)
    else:
        assert max_abs_diff(grads, full_grads) > 1e-4, "truncated = full gradient: the carry was not cut"


def test_resets_start_a_row_afresh(x64):
    """A reset at chunk 1 of row 0: from step k on, that row runs as if alone from zeros (eagerly)."""
    params, carry, (xs, ys) = lstm_setup()
    k = 2  # chunks: steps 0-1, 2-3, 4-5
    resets = jnp.zeros((TB, 3), bool).at[0, 1].set(True)
    loss, grads, final = bptt.truncated_value_and_grad(chunk_loss, params, carry, (xs, ys), k, resets=resets)
    (full_loss, full_final), _ = chunk_value_and_grad(params, carry, (xs, ys))
    (_, after_k), _ = chunk_value_and_grad(params, carry, (xs[:, :k], ys[:, :k]))
    # Row 0 alone from step k: from zeros, and (without the reset) from its carried state.
    row0 = lambda tree: jax.tree.map(lambda c: c[:1], tree)  # noqa: E731
    zeros = jax.tree.map(jnp.zeros_like, row0(carry))
    late_from_zeros, final0 = chunk_value(params, zeros, (xs[:1, k:], ys[:1, k:]))
    late_carried, _ = chunk_value(params, row0(after_k), (xs[:1, k:], ys[:1, k:]))
    np.testing.assert_allclose(float(loss - full_loss), float(late_from_zeros - late_carried), rtol=1e-10)
    chex.assert_trees_all_close(row0(final), final0, rtol=1e-12, atol=1e-14)
    chex.assert_trees_all_close(
        jax.tree.map(lambda c: c[1:], final), jax.tree.map(lambda c: c[1:], full_final), rtol=1e-12, atol=1e-14
    )
    assert max_abs_diff(row0(final), row0(full_final)) > 1e-4  # the reset did something
    # The gradient: the chunks by hand, row 0's carry replaced by zeros at chunk 1.
    _, want_grads, _ = hand_truncated(params, carry, (xs, ys), k, resets, jax.tree.map(jnp.zeros_like, carry))
    chex.assert_trees_all_close(grads, want_grads, rtol=1e-12, atol=1e-14)


def test_resets_to_a_given_initial_carry_under_jit(x64):
    params, carry, batch = lstm_setup()
    resets = jnp.zeros((TB, 2), bool).at[1, 1].set(True).at[2, 0].set(True)
    initial = jax.tree.map(lambda c: 0.3 * jnp.flip(c, 0), carry)
    got = truncated_jit(chunk_loss, params, carry, batch, 4, resets=resets, initial_carry=initial)
    want = hand_truncated(params, carry, batch, 4, resets, initial)
    chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-14)
    # The reset rows differ from a run without resets.
    no_reset = truncated_jit(chunk_loss, params, carry, batch, 4)
    assert max_abs_diff(got[2].h[1:], no_reset[2].h[1:]) > 1e-4
    chex.assert_trees_all_close(got[2].h[0], no_reset[2].h[0], rtol=1e-12, atol=1e-14)


def test_truncation_bad_arguments_raise(x64):
    params, carry, batch = lstm_setup()
    for k in (0, -1, TT + 1):
        with pytest.raises(ValueError, match="^k:"):
            bptt.truncated_value_and_grad(chunk_loss, params, carry, batch, k)
    for shape in ((TB, 2), (TB, 4), (TB,), (1, 3)):  # k = 2: three chunks
        with pytest.raises(ValueError, match="^resets:"):
            bptt.truncated_value_and_grad(chunk_loss, params, carry, batch, 2, resets=jnp.zeros(shape, bool))


def test_split_chunks():
    xs = np.arange(2 * 7 * 3).reshape(2, 7, 3)
    ys = np.arange(2 * 7).reshape(2, 7) + 100
    chunks, rest = bptt.split_chunks({"x": jnp.asarray(xs), "y": jnp.asarray(ys)}, 3)
    chex.assert_shape(chunks["x"], (2, 2, 3, 3))
    chex.assert_shape(chunks["y"], (2, 2, 3))
    for j in range(2):
        np.testing.assert_array_equal(np.asarray(chunks["x"][j]), xs[:, 3 * j : 3 * j + 3])
        np.testing.assert_array_equal(np.asarray(chunks["y"][j]), ys[:, 3 * j : 3 * j + 3])
    np.testing.assert_array_equal(np.asarray(rest["x"]), xs[:, 6:])
    np.testing.assert_array_equal(np.asarray(rest["y"]), ys[:, 6:])
    chunks, rest = bptt.split_chunks(jnp.asarray(xs), 7)
    assert rest is None
    np.testing.assert_array_equal(np.asarray(chunks[0]), xs)
    for k in (0, 8):
        with pytest.raises(ValueError, match="^k:"):
            bptt.split_chunks(jnp.asarray(xs), k)
