"""Gradient-flow analysis: step Jacobians and their products against direct jacrev and closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax import analysis

I, H, B, T = 3, 4, 2, 6
CELLS = [rj.cells.rnn(H), rj.cells.irnn(H), rj.cells.lstm(H), rj.cells.gru(H), rj.cells.gru(H, False)]
IDS = ["rnn", "irnn", "lstm", "gru", "gru_cho"]


def setup(cell, seed=0, dtype=jnp.float32, time=T):
    key = jax.random.key(seed)
    params = cell.init(key, I)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (B, time, I), dtype)
    return params, xs


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_step_jacobians_shapes_and_trajectory(cell):
    params, xs = setup(cell)
    J = analysis.step_jacobians(cell, params, xs)
    n = 2 * H if cell.name == "lstm" else H
    assert J.shape == (B, T, n, n)
    states = analysis.trajectory(cell, params, xs)
    assert states.shape == (B, T + 1, n)
    final, ys = rj.unroll(cell, params, xs)
    np.testing.assert_allclose(states[:, -1], analysis.state_vector(final), atol=1e-6)
    if cell.name == "lstm":
        parts = analysis.blocks(J, cell)
        assert set(parts) == {"hh", "hc", "ch", "cc"} and parts["cc"].shape == (B, T, H, H)


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_accumulated_products_equal_direct_jacrev_fp32(cell):
    params, xs = setup(cell, seed=1)
    J = analysis.step_jacobians(cell, params, xs)
    for t in (T, 3):
        accumulated = analysis.jacobian_products(J, t)
        direct = analysis.direct_products(cell, params, xs, t)
        scale = np.abs(np.asarray(direct)).max()
        np.testing.assert_allclose(accumulated, direct, atol=1e-5 * scale, rtol=1e-5)


def test_accumulated_products_equal_direct_jacrev_float64(x64):
    for cell in (rj.cells.rnn(H, dtype=jnp.float64), rj.cells.lstm(H, dtype=jnp.float64)):
        params, xs = setup(cell, seed=2, dtype=jnp.float64)
        J = analysis.step_jacobians(cell, params, xs)
        accumulated = analysis.jacobian_products(J)
        direct = analysis.direct_products(cell, params, xs, T)
        scale = np.abs(np.asarray(direct)).max()
        np.testing.assert_allclose(accumulated, direct, atol=1e-10 * scale, rtol=1e-10)


def test_tanh_step_jacobian_is_the_closed_form():
    cell = rj.cells.rnn(H)
    params, xs = setup(cell, seed=3)
    states = analysis.trajectory(cell, params, xs)
    J = analysis.step_jacobians(cell, params, xs)
    # da_t/da_{t-1} = diag(1 - a_t^2) W
    expected = (1 - states[:, 1:, :, None] ** 2) * params.W
    np.testing.assert_allclose(J, expected, atol=1e-6)


def test_linear_rnn_products_are_powers_of_W(x64):
    cell = rj.cells.rnn(H, "linear", dtype=jnp.float64)
    params, xs = setup(cell, seed=4, dtype=jnp.float64)
    products = analysis.jacobian_products(analysis.step_jacobians(cell, params, xs))
    W = np.asarray(params.W)
    for k in range(T + 1):
        np.testing.assert_allclose(products[:, k], np.broadcast_to(np.linalg.matrix_power(W, T - k), (B, H, H)),
                                   atol=1e-12)  # fmt: skip


def test_norm_matrix_matches_products():
    cell = rj.cells.gru(H)
    params, xs = setup(cell, seed=5)
    J = analysis.step_jacobians(cell, params, xs)[0]
    N = analysis.norm_matrix(J)
    assert N.shape == (T + 1, T + 1)
    assert np.isnan(np.asarray(N)[np.triu_indices(T + 1, 1)]).all()
    for t in (1, 4, T):
        row = analysis.matrix_norm(analysis.jacobian_products(J, t))
        np.testing.assert_allclose(N[t, : t + 1], row, rtol=1e-5)
    fro = analysis.norm_matrix(J, "fro")
    np.testing.assert_allclose(fro[T, 0], np.linalg.norm(np.asarray(analysis.jacobian_products(J)[0])), rtol=1e-5)


def test_norms_by_lag_fit_and_pascanu_bound():
    cell = rj.cells.rnn(16, "linear", recurrent_init="orthogonal", gain=0.8)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.zeros((1, 30, I))
    lag = analysis.norms_by_lag(analysis.step_jacobians(cell, params, xs)[0])
    # Orthogonal W scaled by 0.8: every product's norm is exactly 0.8^lag, so the fitted rate is log 0.8.
    np.testing.assert_allclose(lag.norms, 0.8 ** np.arange(31), rtol=1e-4)
    np.testing.assert_allclose(lag.rate, np.log(0.8), rtol=1e-4)
    bound = analysis.pascanu_bound(params.W, lag.lags)
    np.testing.assert_allclose(bound, lag.norms, rtol=1e-4)  # tight for a scaled orthogonal W
    tanh = rj.cells.rnn(16, gain=1.5)
    p = tanh.init(jax.random.key(1), I)
    measured = analysis.norms_by_lag(
        analysis.step_jacobians(tanh, p, jax.random.normal(jax.random.key(2), (1, 30, I)))[0]
    )
    assert (np.asarray(measured.norms) <= np.asarray(analysis.pascanu_bound(p.W, measured.lags)) * (1 + 1e-5)).all()


def test_lyapunov_of_a_linear_rnn_is_log_abs_eigenvalues(x64):
    h = 8
    cell = rj.cells.rnn(h, "linear", recurrent_init="gaussian", gain=0.9, dtype=jnp.float64)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.zeros((1, 400, I), jnp.float64)
    exponents = analysis.lyapunov_spectrum(cell, params, xs, warmup=100)[0]
    expected = np.sort(np.log(np.abs(analysis.eigenvalues(params.W))))[::-1]
    np.testing.assert_allclose(exponents, expected, atol=0.02)


def test_lyapunov_of_a_contracting_tanh_rnn_is_log_abs_eigenvalues(x64):
    h = 32
    cell = rj.cells.rnn(h, recurrent_init="gaussian", gain=0.7, dtype=jnp.float64)
    params = cell.init(jax.random.key(1), I)
    a0 = jax.random.normal(jax.random.key(2), (1, h), jnp.float64)  # away from the fixed point 0
    exponents = analysis.lyapunov_spectrum(cell, params, jnp.zeros((1, 600, I), jnp.float64), carry=a0, k=4,
                                           warmup=300)[0]  # fmt: skip
    expected = np.sort(np.log(np.abs(analysis.eigenvalues(params.W))))[::-1][:4]
    np.testing.assert_allclose(exponents, expected, atol=0.02)


def test_largest_exponent_crosses_zero_near_gain_one():
    # Autonomous tanh RNN, W ~ N(0, g^2/h): ordered below g = 1 (perturbations die out), chaotic above it
    # (Sompolinsky, Crisanti & Sommers 1988); h = 200 is large enough for the crossing to sit near 1.
    h = 200
    largest = {}
    for gain in (0.9, 1.1, 1.5):
        cell = rj.cells.rnn(h, recurrent_init="gaussian", gain=gain)
        params = cell.init(jax.random.key(3), 1)
        a0 = 0.5 * jax.random.normal(jax.random.key(4), (1, h))
        exponents = analysis.lyapunov_spectrum(cell, params, jnp.zeros((1, 600, 1)), a0, k=1, warmup=300)
        largest[gain] = float(exponents[0, 0])
    assert largest[0.9] < -0.01 and largest[1.5] > 0.01, largest
    assert abs(largest[1.1]) < 0.02, largest


def test_errors():
    J = jnp.zeros((5, 3, 3))
    with pytest.raises(ValueError, match=r"t: expected a time in \[0, 5\]"):
        analysis.jacobian_products(J, 6)
    with pytest.raises(ValueError, match="ord: expected"):
        analysis.matrix_norm(J, "nuclear")
    with pytest.raises(ValueError, match="k: expected 1..3"):
        analysis.lyapunov_from_jacobians(J, k=4)
    with pytest.raises(ValueError, match="warmup: expected"):
        analysis.lyapunov_from_jacobians(J, warmup=5)
    with pytest.raises(ValueError, match="jacobians: expected"):
        analysis.norm_matrix(J[None])


@pytest.mark.parametrize("cell", CELLS[2:], ids=IDS[2:])
def test_gate_traces_are_what_the_step_computes(cell):
    params, xs = setup(cell, seed=6)
    traces = analysis.gate_traces(cell, params, xs)
    final, ys, carries = rj.unroll(cell, params, xs, return_carries=True)
    np.testing.assert_allclose(traces["h"], ys, atol=1e-6)
    if cell.name == "lstm":
        np.testing.assert_allclose(traces["C"], carries.c, atol=1e-6)
        C_prev = np.concatenate([np.zeros((B, 1, H)), np.asarray(traces["C"])[:, :-1]], axis=1)
        # C_t = f_t * C_{t-1} + i_t * C~_t and h_t = o_t * tanh(C_t), from the traces alone
        np.testing.assert_allclose(traces["C"], traces["f"] * C_prev + traces["i"] * traces["C_tilde"], atol=1e-6)
        np.testing.assert_allclose(traces["h"], traces["o"] * np.tanh(traces["C"]), atol=1e-6)
        assert ((np.asarray(traces["f"]) > 0) & (np.asarray(traces["f"]) < 1)).all()
    else:
        h_prev = np.concatenate([np.zeros((B, 1, H)), np.asarray(traces["h"])[:, :-1]], axis=1)
        np.testing.assert_allclose(traces["h"], (1 - traces["z"]) * traces["n"] + traces["z"] * h_prev, atol=1e-6)


def test_gate_traces_need_a_gated_cell():
    cell = rj.cells.rnn(H)
    params, xs = setup(cell)
    with pytest.raises(ValueError, match="cell: expected a gated cell"):
        analysis.gate_traces(cell, params, xs)


@pytest.mark.parametrize("cell", CELLS[:3], ids=IDS[:3])
def test_state_gradients_are_the_jacobian_products_applied_to_the_last_gradient(cell):
    params, xs = setup(cell, seed=7)
    target = jnp.ones((B, H))

    def loss(ys, final):
        return jnp.sum((ys[:, -1] - target) ** 2)

    grads = analysis.state_gradients(cell, params, xs, loss)
    n = 2 * H if cell.name == "lstm" else H
    assert grads.shape == (B, T, n)
    products = analysis.jacobian_products(analysis.step_jacobians(cell, params, xs))  # da_T/da_k
    last = grads[:, -1]  # dL/da_T
    for k in range(1, T + 1):  # dL/da_k = dL/da_T  da_T/da_k
        np.testing.assert_allclose(grads[:, k - 1], jnp.einsum("bi,bij->bj", last, products[:, k]), atol=1e-5)
    reach = analysis.gradient_reach(grads)
    assert reach.shape == (T,) and (np.asarray(reach) >= 0).all()
