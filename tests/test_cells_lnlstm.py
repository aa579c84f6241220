"""The layer-normalised LSTM against the equations of Ba, Kiros & Hinton 2016 in numpy (float64), the invariance
layer normalisation gives, the initialisation, and clear errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.cells import LNLSTMParams, LSTMState, ln_lstm
from rnnjax.cells.lnlstm import layer_norm

B, T, I, H = 3, 6, 4, 5


def random_params(seed: int) -> LNLSTMParams:
    """Every leaf random (gains away from 1, biases away from 0): init values would hide a misplaced term."""
    rng = np.random.default_rng(seed)
    shapes = dict(U=(4 * H, I), W=(4 * H, H), b=(4 * H,), alpha_h=(4 * H,), beta_h=(4 * H,), alpha_x=(4 * H,),
                  beta_x=(4 * H,), alpha_c=(H,), beta_c=(H,))  # fmt: skip
    return LNLSTMParams(**{k: jnp.asarray(rng.normal(size=s) * (1.0 if k != "U" else 0.7)) for k, s in shapes.items()})


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def ln(z, alpha, beta, eps):
    """LN(z; alpha, beta) = alpha * (z - mu) / sqrt(sigma^2 + eps) + beta over one vector."""
    mu = z.mean()
    sigma2 = ((z - mu) ** 2).mean()
    return alpha * (z - mu) / np.sqrt(sigma2 + eps) + beta


def reference(p: LNLSTMParams, xs, h0, c0, eps, lengths=None):
    """The paper's LN-LSTM, one row and one step at a time, the gates' blocks in our order f, i, C, o."""
    p = LNLSTMParams(*(np.asarray(a, np.float64) for a in p))
    lengths = np.full(xs.shape[0], xs.shape[1]) if lengths is None else lengths
    hs, cs, ys = np.array(h0, np.float64), np.array(c0, np.float64), np.zeros((*xs.shape[:2], H))
    gate_trace = []
    for n in range(xs.shape[0]):
        h, c = hs[n], cs[n]
        for t in range(lengths[n]):
            pre = ln(p.W @ h, p.alpha_h, p.beta_h, eps) + ln(p.U @ xs[n, t], p.alpha_x, p.beta_x, eps) + p.b
            f, i, g, o = pre[:H], pre[H : 2 * H], pre[2 * H : 3 * H], pre[3 * H :]
            if n == 0 and t == 0:
                gate_trace.append((sigmoid(f), sigmoid(i), np.tanh(g), sigmoid(o)))
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(ln(c, p.alpha_c, p.beta_c, eps))
            ys[n, t] = h
        hs[n], cs[n] = h, c
    return (hs, cs), ys, gate_trace[0]


@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_unroll_is_the_papers_ln_lstm(eps, x64):
    cell = ln_lstm(H, eps=eps, dtype=jnp.float64)
    params = random_params(1)
    rng = np.random.default_rng(2)
    xs, h0, c0 = rng.normal(size=(B, T, I)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    lengths = np.array([T, 2, 0])
    carry = LSTMState(jnp.asarray(h0), jnp.asarray(c0))
    final, ys = rj.unroll(cell, params, jnp.asarray(xs), carry=carry, lengths=jnp.asarray(lengths))
    (h, c), want_ys, _ = reference(params, xs, h0, c0, eps, lengths)
    np.testing.assert_allclose(ys, want_ys, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(final.h, h, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(final.c, c, rtol=1e-11, atol=1e-12)

    (h1, c1), _, (f, i, g, o) = reference(params, xs[:, :1], h0, c0, eps)
    new, y = cell.step(params, carry, jnp.asarray(xs[:, 0]))
    np.testing.assert_allclose(y, h1, rtol=1e-11)
    np.testing.assert_allclose(new.c, c1, rtol=1e-11)
    loop = cell.spec.prepare(params)
    traced = cell.spec.gates(loop, carry, cell.spec.project(loop, jnp.asarray(xs[:, 0])))
    for name, want in zip(("f", "i", "C_tilde", "o"), (f, i, g, o), strict=True):
        np.testing.assert_allclose(traced[name][0], want, rtol=1e-11, err_msg=name)


def test_layer_norm_over_the_last_axis(x64):
    z = np.random.default_rng(0).normal(size=(2, 3, 8)) * 3 + 1
    alpha, beta = np.linspace(0.5, 2, 8), np.linspace(-1, 1, 8)
    got = layer_norm(jnp.asarray(z), jnp.asarray(alpha), jnp.asarray(beta), 1e-5)
    want = np.apply_along_axis(lambda v: ln(v, alpha, beta, 1e-5), -1, z)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_outputs_do_not_change_when_the_weights_are_rescaled(x64):
    """The paper's invariance: LN(a W h) = LN(W h) for a > 0, so scaling U and W changes nothing (up to eps)."""
    cell = ln_lstm(H, eps=1e-12, dtype=jnp.float64)
    params = random_params(3)
    xs = jnp.asarray(np.random.default_rng(4).normal(size=(B, T, I)))
    carry = LSTMState(jnp.asarray(np.random.default_rng(5).normal(size=(B, H))), jnp.zeros((B, H)))
    _, ys = rj.unroll(cell, params, xs, carry=carry)
    _, scaled = rj.unroll(cell, params._replace(U=7.0 * params.U, W=0.01 * params.W), xs, carry=carry)
    np.testing.assert_allclose(scaled, ys, atol=1e-7)  # eps / var(0.01 W h) ~ 1e-8
    plain = rj.cells.lstm(H, dtype=jnp.float64)  # the LSTM without LN is not invariant
    lstm_params = rj.cells.LSTMParams(params.U, params.W, params.b)
    _, a = rj.unroll(plain, lstm_params, xs, carry=carry)
    _, b = rj.unroll(plain, lstm_params._replace(U=7.0 * params.U, W=0.01 * params.W), xs, carry=carry)
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 0.1


def test_the_first_step_from_zeros_is_finite():
    """``W h_0 = 0`` has no variance: eps keeps its layer norm at ``beta_h``, and the gradient finite."""
    cell = ln_lstm(H)
    params = cell.init(jax.random.key(0), I)
    grads = jax.grad(lambda p: rj.unroll(cell, p, jnp.ones((B, T, I)))[1].sum())(params)
    assert all(bool(jnp.isfinite(g).all()) for g in grads)
    assert float(jnp.abs(grads.W).sum()) > 0


def test_runs_as_the_sequential_scan_only():
    cell = ln_lstm(H)
    assert cell.spec.parts is None and cell.spec.linear is None and cell.spec.output == 0
    assert rj.scan.resolve_impl(cell) == "scan"
    with pytest.raises(ValueError, match="impl: ln_lstm has no hand-written backward pass"):
        rj.unroll(cell, cell.init(jax.random.key(0), I), jnp.ones((B, T, I)), impl="fused")


def test_registered_and_in_a_network():
    assert rj.cells.CELLS["ln_lstm"] is ln_lstm
    net = rj.RNN(cell="ln_lstm", hidden_size=H, num_layers=2, bidirectional=True)
    params = net.init(jax.random.key(0), I)
    ys, finals = net.apply(params, jnp.ones((B, T, I)), lengths=jnp.array([T, 1, 0]))
    assert ys.shape == (B, T, 2 * H) and type(finals[1][0]) is LSTMState
    np.testing.assert_array_equal(ys[2], 0.0)


# --- initialisation ---------------------------------------------------------------------------------------


def test_init_as_published():
    params = ln_lstm(H).init(jax.random.key(0), I)
    assert type(params) is LNLSTMParams
    assert params.U.shape == (4 * H, I) and params.W.shape == (4 * H, H) and params.b.shape == (4 * H,)
    for name in ("alpha_h", "alpha_x", "alpha_c"):  # gains start at 1, the layer norms' biases at 0
        np.testing.assert_array_equal(getattr(params, name), 1.0)
    for name in ("beta_h", "beta_x", "beta_c"):
        np.testing.assert_array_equal(getattr(params, name), 0.0)
    assert params.alpha_c.shape == (H,) and params.alpha_h.shape == (4 * H,)
    np.testing.assert_array_equal(params.b_f, 1.0)  # forget_bias, as rj.cells.lstm
    np.testing.assert_array_equal(params.b[H:], 0.0)
    for gate in ("W_f", "W_i", "W_C", "W_o"):  # orthogonal per gate
        block = getattr(params, gate)[:, :H]
        assert getattr(params, gate).shape == (H, H + I)
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-5)
    np.testing.assert_array_equal(ln_lstm(H, 0.0).init(jax.random.key(0), I).b, 0.0)  # the paper's code


def test_init_chrono_and_same_weights_as_the_lstm():
    """With the same options, ``U``, ``W`` and ``b`` are drawn as rj.cells.lstm draws them."""
    key = jax.random.key(7)
    ours, lstm = ln_lstm(H, chrono=20.0).init(key, I), rj.cells.lstm(H, chrono=20.0).init(key, I)
    for name in ("U", "W", "b"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(lstm, name))
    np.testing.assert_array_equal(ours.b_i, -ours.b_f)


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(eps=0.0), r"eps: expected a number in \(0.0, inf\], got 0.0"),
        (dict(eps=float("nan")), "eps: expected a finite number"),
        (dict(forget_bias="1"), "forget_bias: expected a finite number"),
        (dict(recurrent_init="eye"), "recurrent_init: expected one of"),
        (dict(gain=0.0), "gain: expected a number in"),
        (dict(chrono=2.0), "chrono: expected a number in"),
        (dict(dtype="int8"), "dtype: expected a floating dtype"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ln_lstm(H, **kwargs)


def test_bad_params_raise(getkey):
    cell = ln_lstm(H)
    lstm_params = rj.cells.lstm(H).init(getkey(), I)
    with pytest.raises(ValueError, match="params: expected LNLSTMParams, got LSTMParams .*ln_lstm.s init"):
        rj.unroll(cell, lstm_params, jnp.ones((B, T, I)))
    params = cell.init(getkey(), I)
    with pytest.raises(ValueError, match=r"params.alpha_c: expected shape \(5,\) for ln_lstm\(hidden_size=5\)"):
        rj.unroll(cell, params._replace(alpha_c=jnp.ones(4 * H)), jnp.ones((B, T, I)))
