"""Cells: the textbook equations, the initialisers, and clear errors."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.cells import GRUParams, LSTMParams, LSTMState, RNNParams

I, H, B = 4, 6, 3
sigmoid = jax.nn.sigmoid

ALL_CELLS = [
    rj.cells.rnn(H),
    rj.cells.rnn(H, "relu"),
    rj.cells.irnn(H),
    rj.cells.lstm(H),
    rj.cells.gru(H),
    rj.cells.gru(H, reset_after=False),
]
IDS = ["rnn_tanh", "rnn_relu", "irnn", "lstm", "gru", "gru_cho"]

pytestmark = pytest.mark.usefixtures("strict_dtypes")


def _h(carry):
    return carry.h if isinstance(carry, LSTMState) else carry


def _random_carry(cell, params, key):
    zeros = cell.initial_carry(params, (B,))
    leaves, tree = jax.tree.flatten(zeros)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])


@pytest.mark.parametrize("cell", ALL_CELLS, ids=IDS)
def test_shapes(cell, getkey):
    params = cell.init(getkey(), I)
    g = {"rnn": 1, "lstm": 4, "gru": 3}[cell.name]
    chex.assert_shape([params.U, params.W, params.b], [(g * H, I), (g * H, H), (g * H,)])
    carry = cell.initial_carry(params, (B,))
    for leaf in jax.tree.leaves(carry):
        chex.assert_shape(leaf, (B, H))
        assert not leaf.any()
    carry, y = cell.step(params, carry, jax.random.normal(getkey(), (B, I)))
    chex.assert_shape(y, (B, H))
    chex.assert_trees_all_equal_shapes(carry, cell.initial_carry(params, (B,)))
    # Unbatched and multi-axis batches too.
    _, y1 = cell.step(params, cell.initial_carry(params), jnp.ones(I))
    _, y2 = cell.step(params, cell.initial_carry(params, (2, 5)), jnp.ones((2, 5, I)))
    chex.assert_shape([y1, y2], [(H,), (2, 5, H)])


@pytest.mark.parametrize("activation,f", [("tanh", jnp.tanh), ("relu", jax.nn.relu)])
def test_rnn_is_the_elman_equation(activation, f, getkey):
    cell = rj.cells.rnn(H, activation)
    p = cell.init(getkey(), I)
    x, a = jax.random.normal(getkey(), (I,)), jax.random.normal(getkey(), (H,))
    a_new, y = cell.step(p, a, x)
    expected = f(p.U @ x + p.W @ a + p.b)  # a_t = f(U x_t + W a_{t-1} + b)
    np.testing.assert_allclose(a_new, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y, a_new)


def test_lstm_is_the_textbook_lstm(getkey):
    cell = rj.cells.lstm(H)
    p = cell.init(getkey(), I)
    p = p._replace(b=jax.random.normal(getkey(), p.b.shape))
    x = jax.random.normal(getkey(), (I,))
    h, C = jax.random.normal(getkey(), (H,)), jax.random.normal(getkey(), (H,))
    hx = jnp.concatenate([h, x])  # [h_{t-1}, x_t]
    f = sigmoid(p.W_f @ hx + p.b_f)
    i = sigmoid(p.W_i @ hx + p.b_i)
    C_tilde = jnp.tanh(p.W_C @ hx + p.b_C)
    o = sigmoid(p.W_o @ hx + p.b_o)
    C_new = f * C + i * C_tilde
    h_new = o * jnp.tanh(C_new)
    state, y = cell.step(p, LSTMState(h, C), x)
    np.testing.assert_allclose(state.c, C_new, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.h, h_new, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y, state.h)
    chex.assert_shape([p.W_f, p.W_i, p.W_C, p.W_o], (H, H + I))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_is_the_textbook_gru(reset_after, getkey):
    cell = rj.cells.gru(H, reset_after)
    p = cell.init(getkey(), I)
    p = p._replace(b=jax.random.normal(getkey(), p.b.shape))
    if reset_after:
        p = p._replace(b_hn=jax.random.normal(getkey(), (H,)))
    x, h = jax.random.normal(getkey(), (I,)), jax.random.normal(getkey(), (H,))
    hx = jnp.concatenate([h, x])
    r = sigmoid(p.W_r @ hx + p.b_r)
    z = sigmoid(p.W_z @ hx + p.b_z)
    W_hn, U_n = p.W_n[:, :H], p.W_n[:, H:]
    if reset_after:
        n = jnp.tanh(U_n @ x + p.b_n + r * (W_hn @ h + p.b_hn))
    else:
        n = jnp.tanh(U_n @ x + p.b_n + W_hn @ (r * h))
    h_new = (1 - z) * n + z * h
    new, _ = cell.step(p, h, x)
    np.testing.assert_allclose(new, h_new, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ALL_CELLS, ids=IDS)
def test_step_is_recur_of_project(cell, getkey):
    params = cell.init(getkey(), I)
    carry = _random_carry(cell, params, getkey())
    x = jax.random.normal(getkey(), (B, I))
    loop = cell.spec.prepare(params)
    split = cell.spec.recur(loop, carry, cell.spec.project(loop, x))
    chex.assert_trees_all_close(cell.step(params, carry, x), split, rtol=1e-6)


class TestVariants(chex.TestCase):
    """``chex.variants``: every cell's step gives the same with and without jit."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_step(self):
        key = jax.random.key(3)
        for cell in ALL_CELLS:
            params = cell.init(key, I)
            carry = _random_carry(cell, params, jax.random.fold_in(key, 1))
            x = jax.random.normal(jax.random.fold_in(key, 2), (B, I))
            step = self.variant(cell.step)
            chex.assert_trees_all_close(step(params, carry, x), cell.step(params, carry, x), atol=1e-6)


@pytest.mark.parametrize("name,gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
@pytest.mark.parametrize("gain", [0.5, 1.0, 2.0])
def test_orthogonal_recurrent_init_is_per_gate_and_scaled(name, gates, gain, getkey):
    h = 16
    params = rj.cells.make(name, h, gain=gain).init(getkey(), I)
    for k in range(gates):
        block = params.W[k * h : (k + 1) * h]
        np.testing.assert_allclose(block @ block.T, gain**2 * np.eye(h), atol=1e-5 * gain**2)
    if gates > 1:  # independent draws, not one matrix repeated
        assert not np.allclose(params.W[:h], params.W[h : 2 * h])


def test_gaussian_recurrent_init_has_the_stated_variance(getkey):
    h, gain = 400, 1.5
    W = rj.cells.rnn(h, recurrent_init="gaussian", gain=gain).init(getkey(), I).W
    np.testing.assert_allclose(np.std(W), gain / np.sqrt(h), rtol=0.02)
    # The circular law: the spectral radius approaches the gain for large h.
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(np.asarray(W))).max(), gain, rtol=0.1)


def test_irnn_is_identity_relu(getkey):
    cell = rj.cells.irnn(H, gain=0.9)
    p = cell.init(getkey(), I)
    np.testing.assert_array_equal(p.W, np.float32(0.9) * np.eye(H, dtype=np.float32))
    np.testing.assert_array_equal(p.b, np.zeros(H))
    assert 0 < np.std(p.U) < 3e-3
    assert dict(cell.options)["activation"] == "relu"


@pytest.mark.parametrize("init,bound", [("glorot_uniform", np.sqrt(6 / (I + H))), ("torch", 1 / np.sqrt(H))])
def test_input_init_bounds(init, bound, getkey):
    U = rj.cells.lstm(H, input_init=init).init(getkey(), I).U
    assert np.abs(U).max() <= bound
    assert np.abs(U).max() > 0.7 * bound


def test_forget_bias_is_an_initialiser(getkey):
    p = rj.cells.lstm(H, forget_bias=2.5).init(getkey(), I)
    np.testing.assert_array_equal(p.b_f, np.full(H, 2.5))
    np.testing.assert_array_equal(jnp.concatenate([p.b_i, p.b_C, p.b_o]), np.zeros(3 * H))
    # Nothing is added in the forward pass: with b_f = 0 the forget gate is sigmoid(0) = 1/2 at zero input.
    cell0 = rj.cells.lstm(H, forget_bias=0.0)
    p0 = cell0.init(getkey(), I)._replace(W=jnp.zeros((4 * H, H)), U=jnp.zeros((4 * H, I)))
    p0 = p0._replace(b=p0.b.at[2 * H : 3 * H].set(10.0))  # candidate ~ 1, input gate 1/2
    state, _ = cell0.step(p0, LSTMState(jnp.zeros(H), jnp.ones(H)), jnp.zeros(I))
    np.testing.assert_allclose(state.c, 0.5 * 1 + 0.5 * np.tanh(10.0), rtol=1e-6)


def test_chrono_init(getkey):
    t_max = 50.0
    p = rj.cells.lstm(64, chrono=t_max).init(getkey(), I)
    assert (p.b_f >= 0).all() and (p.b_f <= np.log(t_max - 1)).all()
    assert np.std(p.b_f) > 0.3
    np.testing.assert_array_equal(p.b_i, -p.b_f)
    g = rj.cells.gru(64, chrono=t_max).init(getkey(), I)
    assert (g.b_z >= 0).all() and (g.b_z <= np.log(t_max - 1)).all() and np.std(g.b_z) > 0.3
    np.testing.assert_array_equal(g.b_r, np.zeros(64))


def test_factories_are_cached_and_options_readable():
    assert rj.cells.lstm(8) is rj.cells.lstm(8)
    assert rj.cells.lstm(8) is not rj.cells.lstm(8, forget_bias=0.0)
    assert dict(rj.cells.gru(8, False).options)["reset_after"] is False
    assert hash(rj.RNN(cell="gru", hidden_size=8)) == hash(rj.RNN(cell="gru", hidden_size=8))


def test_float64_params(x64, getkey):
    cell = rj.cells.lstm(H, dtype=jnp.float64)
    p = cell.init(getkey(), I)
    assert p.W.dtype == jnp.float64
    carry, y = cell.step(p, cell.initial_carry(p, (B,)), jnp.ones((B, I), jnp.float64))
    assert y.dtype == jnp.float64 and carry.c.dtype == jnp.float64


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: rj.cells.rnn(H, "sigmoid"), "activation: expected one of"),
        (lambda: rj.cells.rnn(0), "hidden_size: expected a positive int"),
        (lambda: rj.cells.lstm(H, recurrent_init="eye"), "recurrent_init: expected one of"),
        (lambda: rj.cells.gru(H, input_init="xavier"), "input_init: expected one of"),
        (lambda: rj.cells.make("transformer", H), "cell: expected one of"),
        (lambda: rj.cells.lstm(H, chrono=1.5).init(jax.random.key(0), I), "chrono: expected"),
        (lambda: rj.cells.lstm(H).init(jax.random.key(0), 0), "input_size: expected a positive int"),
    ],
)
def test_bad_configuration_raises(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_params_and_inputs_raise(getkey):
    lstm, gru = rj.cells.lstm(H), rj.cells.gru(H)
    p = lstm.init(getkey(), I)
    carry = lstm.initial_carry(p, (B,))
    with pytest.raises(ValueError, match="params: expected LSTMParams.*got GRUParams"):
        lstm.step(gru.init(getkey(), I), carry, jnp.ones((B, I)))
    with pytest.raises(ValueError, match=r"params.U: expected shape \(24, 4\) for lstm\(hidden_size=6\)"):
        rj.cells.lstm(H).step(rj.cells.lstm(H + 1).init(getkey(), I), carry, jnp.ones((B, I)))
    with pytest.raises(ValueError, match="x: expected 4 features on the last axis"):
        lstm.step(p, carry, jnp.ones((B, I + 1)))
    with pytest.raises(ValueError, match="x: expected a floating dtype"):
        lstm.step(p, carry, jnp.ones((B, I), jnp.int32))
    with pytest.raises(ValueError, match="params.b_hn: expected None"):
        rj.cells.gru(H, reset_after=False).step(gru.init(getkey(), I), jnp.zeros(H), jnp.ones(I))
    cho = rj.cells.gru(H, reset_after=False).init(getkey(), I)
    with pytest.raises(ValueError, match="params.b_hn: expected an array for gru"):
        gru.step(cho, jnp.zeros(H), jnp.ones(I))


def test_params_are_namedtuples_with_textbook_names(getkey):
    assert RNNParams._fields == ("U", "W", "b")
    assert LSTMParams._fields == ("U", "W", "b")
    assert GRUParams._fields == ("U", "W", "b", "b_hn")
    p = rj.cells.lstm(H).init(getkey(), I)
    # The views are exact slices of the fused weights: gate order f, i, C, o.
    np.testing.assert_array_equal(p.W_i[:, :H], p.W[H : 2 * H])
    np.testing.assert_array_equal(p.W_o[:, H:], p.U[3 * H :])


def test_mixed_dtypes_raise(x64, getkey):
    cell = rj.cells.rnn(H)
    p = cell.init(getkey(), I)
    with pytest.raises(ValueError, match="x: expected the params' dtype float32, got float64"):
        cell.step(p, cell.initial_carry(p), jnp.ones(I, jnp.float64))
