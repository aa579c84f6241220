"""Gradient-flow analysis: step Jacobians and their products against direct jacrev and closed forms; padded
batches against each sequence cut to its length; layers, directions and stacks of an RNN against jax.jacrev of
hand-written compositions; products that leave float32's range; the checks of every argument."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax import analysis
from rnnjax.cells import LSTMState

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
    for t in (T, 3, 0):
        accumulated = analysis.jacobian_products(J, t)
        pulled = analysis.trajectory_products(cell, params, xs, t)
        direct = analysis.direct_products(cell, params, xs, t)
        scale = np.abs(np.asarray(direct)).max()
        np.testing.assert_allclose(accumulated, direct, atol=1e-5 * scale, rtol=1e-5)
        np.testing.assert_allclose(pulled, direct, atol=1e-5 * scale, rtol=1e-5)


def test_accumulated_products_equal_direct_jacrev_float64(x64):
    for cell in (rj.cells.rnn(H, dtype=jnp.float64), rj.cells.lstm(H, dtype=jnp.float64)):
        params, xs = setup(cell, seed=2, dtype=jnp.float64)
        J = analysis.step_jacobians(cell, params, xs)
        accumulated = analysis.jacobian_products(J)
        pulled = analysis.trajectory_products(cell, params, xs)
        direct = analysis.direct_products(cell, params, xs, T)
        scale = np.abs(np.asarray(direct)).max()
        np.testing.assert_allclose(accumulated, direct, atol=1e-10 * scale, rtol=1e-10)
        np.testing.assert_allclose(pulled, direct, atol=1e-10 * scale, rtol=1e-10)


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


@pytest.mark.parametrize("cell", CELLS[2:], ids=IDS[2:])
def test_gate_traces_are_what_the_step_computes(cell):
    params, xs = setup(cell, seed=6)
    traces = analysis.gate_traces(cell, params, xs)
    final, ys, carries = rj.unroll(cell, params, xs, return_carries=True)
    np.testing.assert_allclose(traces["h"], ys, atol=1e-6)
    if cell.name == "lstm":
        np.testing.assert_allclose(traces["c"], carries.c, atol=1e-6)
        C_prev = np.concatenate([np.zeros((B, 1, H)), np.asarray(traces["c"])[:, :-1]], axis=1)
        # C_t = f_t * C_{t-1} + i_t * C~_t and h_t = o_t * tanh(C_t), from the traces alone
        np.testing.assert_allclose(traces["c"], traces["f"] * C_prev + traces["i"] * traces["C_tilde"], atol=1e-6)
        np.testing.assert_allclose(traces["h"], traces["o"] * np.tanh(traces["c"]), atol=1e-6)
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


# --- padding: a padded batch is each sequence cut to its own length ------------------------------------------

LENGTHS = (T, 4, 2)


def padded_setup(cell, seed=8):
    params = cell.init(jax.random.key(seed), I)
    xs = jax.random.normal(jax.random.key(seed + 1), (len(LENGTHS), T, I))
    xs = xs.at[1, LENGTHS[1] :].set(jnp.nan)  # padding is never read
    return params, xs, jnp.asarray(LENGTHS)


def assert_cut(padded, cut, length, axis_len=None):
    """``padded[:length]`` equals ``cut`` and the rest is NaN."""
    padded, cut = np.asarray(padded), np.asarray(cut)
    np.testing.assert_allclose(padded[:length], cut, rtol=2e-5, atol=1e-6)
    assert np.isnan(padded[length:]).all()


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_padded_batch_equals_each_sequence_cut_to_its_length(cell):
    params, xs, lengths = padded_setup(cell)
    states = analysis.trajectory(cell, params, xs, lengths=lengths)
    J = analysis.step_jacobians(cell, params, xs, lengths=lengths)
    products = analysis.jacobian_products(J, lengths=lengths)
    pulled = analysis.trajectory_products(cell, params, xs, lengths=lengths)
    by_lag = analysis.norms_by_lag(J, lengths=lengths)
    N = analysis.norm_matrix(J, lengths=lengths)
    direct = analysis.direct_products(cell, params, xs, T, lengths=lengths)
    lyap = analysis.lyapunov_spectrum(cell, params, xs, warmup=1, lengths=lengths)

    def loss(ys, final):
        return jnp.sum(jnp.tanh(ys).sum(1) ** 2) + jnp.sum(analysis.state_vector(final) ** 2)

    grads = analysis.state_gradients(cell, params, xs, loss, lengths=lengths)
    traces = analysis.gate_traces(cell, params, xs, lengths=lengths) if cell.spec.gates is not None else {}
    for b, L in enumerate(LENGTHS):
        cut = xs[b : b + 1, :L]
        J_cut = analysis.step_jacobians(cell, params, cut)
        assert_cut(states[b], analysis.trajectory(cell, params, cut)[0], L + 1)
        assert_cut(J[b], J_cut[0], L)
        assert_cut(products[b], analysis.jacobian_products(J_cut)[0], L + 1)
        assert_cut(pulled[b], analysis.trajectory_products(cell, params, cut)[0], L + 1)
        assert_cut(direct[b], analysis.direct_products(cell, params, cut, L)[0], L + 1)
        cut_lag = analysis.norms_by_lag(J_cut)
        assert_cut(by_lag.norms[b], cut_lag.norms[0], L + 1)
        assert np.asarray(by_lag.valid[b]).sum() == L + 1
        np.testing.assert_allclose(by_lag.rate[b], cut_lag.rate[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(N[b, : L + 1, : L + 1], analysis.norm_matrix(J_cut[0]), rtol=2e-5, atol=1e-7)
        assert np.isnan(np.asarray(N[b, L + 1 :])).all()
        np.testing.assert_allclose(lyap[b], analysis.lyapunov_spectrum(cell, params, cut, warmup=1)[0], rtol=1e-4,
                                   atol=1e-5)  # fmt: skip
        assert_cut(grads[b], analysis.state_gradients(cell, params, cut, loss)[0], L)
        for name, trace in traces.items():
            assert_cut(trace[b], analysis.gate_traces(cell, params, cut)[name][0], L)


def test_padding_under_jit_matches_eager():
    cell = rj.cells.lstm(H)
    params, xs, lengths = padded_setup(cell)

    @jax.jit
    def measure(params, xs, lengths):
        J = analysis.step_jacobians(cell, params, xs, lengths=lengths)
        return analysis.norms_by_lag(J, lengths=lengths).norms, analysis.lyapunov_from_jacobians(J, lengths=lengths)

    eager_J = analysis.step_jacobians(cell, params, xs, lengths=lengths)
    norms, lyap = measure(params, xs, lengths)
    np.testing.assert_allclose(norms, analysis.norms_by_lag(eager_J, lengths=lengths).norms, rtol=1e-5)
    np.testing.assert_allclose(lyap, analysis.lyapunov_from_jacobians(eager_J, lengths=lengths), rtol=1e-5)


def test_a_sequence_of_length_zero_keeps_only_its_initial_state():
    cell = rj.cells.gru(H)
    params, xs = setup(cell)
    lengths = jnp.asarray([T, 0])
    states = analysis.trajectory(cell, params, xs, lengths=lengths)
    assert np.isfinite(np.asarray(states[1, 0])).all() and np.isnan(np.asarray(states[1, 1:])).all()
    products = analysis.jacobian_products(analysis.step_jacobians(cell, params, xs, lengths=lengths), 3, lengths)
    np.testing.assert_allclose(products[1, 0], np.eye(H))  # da_0/da_0
    assert np.isnan(np.asarray(products[1, 1:])).all()
    lyap = analysis.lyapunov_spectrum(cell, params, xs, warmup=0, lengths=lengths)
    assert np.isfinite(np.asarray(lyap[0])).all() and np.isnan(np.asarray(lyap[1])).all()


# --- layers, directions and the stacked state of an rj.RNN ---------------------------------------------------


def one_step(cell, p):
    """The hand-written step on state vectors of one example."""
    like = cell.initial_carry(p)

    def f(a, x):
        new, _ = cell.step(p, analysis.state_from_vector(a, like), x)
        return analysis.state_vector(new)

    return f


def reversed_within(u, L):
    """One sequence ``(time, features)`` reversed in its first L steps."""
    return jnp.concatenate([u[:L][::-1], u[L:]], axis=0)


@pytest.mark.parametrize("cell", [rj.cells.rnn(H), rj.cells.lstm(H), rj.cells.gru(H)], ids=["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layer, direction", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_layer_and_direction_of_a_bidirectional_stack_against_jacrev_by_hand(cell, layer, direction):
    net = rj.RNN(cell=cell, num_layers=2, bidirectional=True)
    params = net.init(jax.random.key(9), I)
    xs = jax.random.normal(jax.random.key(10), (2, T, I))
    lengths = jnp.asarray([T, 4])
    J = analysis.step_jacobians(net, params, xs, lengths=lengths, layer=layer, direction=direction)
    states = analysis.trajectory(net, params, xs, lengths=lengths, layer=layer, direction=direction)
    ys, finals = net.apply(params, xs, lengths=lengths)
    below = xs if layer == 0 else net.__class__(cell=cell, bidirectional=True).apply(params[:1], xs, lengths)[0]
    f = one_step(cell, params[layer][direction])
    for b, L in enumerate((T, 4)):
        u = below[b] if direction == 0 else reversed_within(below[b], L)
        a = analysis.state_vector(cell.initial_carry(params[layer][direction]))
        for s in range(L):  # the hand-written loop: J_s = jacrev(f) at (a_{s-1}, u_s)
            np.testing.assert_allclose(J[b, s], jax.jacrev(f)(a, u[s]), rtol=1e-5, atol=1e-6)
            a = f(a, u[s])
            np.testing.assert_allclose(states[b, s + 1], a, rtol=1e-5, atol=1e-6)
        assert np.isnan(np.asarray(J[b, L:])).all()
        np.testing.assert_allclose(a, analysis.state_vector(finals[layer][direction])[b], rtol=1e-5, atol=1e-6)
    pulled = analysis.trajectory_products(net, params, xs, lengths=lengths, layer=layer, direction=direction)
    np.testing.assert_allclose(pulled, analysis.jacobian_products(J, lengths=lengths), rtol=1e-5, atol=1e-6)
    if layer == 1:  # the last layer's h are the network's outputs, steps in their order of running
        traces = {}
        if cell.spec.gates is not None:
            traces = analysis.gate_traces(net, params, xs, lengths=lengths, layer=1, direction=direction)
        part = ys[..., direction * H : (direction + 1) * H]
        for b, L in enumerate((T, 4)):
            expected = part[b, :L] if direction == 0 else part[b, :L][::-1]
            np.testing.assert_allclose(states[b, 1 : L + 1, :H], expected, rtol=1e-5, atol=1e-6)
            if traces:
                np.testing.assert_allclose(traces["h"][b, :L], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", [rj.cells.rnn(H), rj.cells.lstm(H)], ids=["rnn", "lstm"])
def test_stacked_state_against_jacrev_of_the_composed_step(cell):
    net = rj.RNN(cell=cell, num_layers=2)
    params = net.init(jax.random.key(11), I)
    xs = jax.random.normal(jax.random.key(12), (2, T, I))
    f0, f1 = one_step(cell, params[0][0]), one_step(cell, params[1][0])
    n = analysis.state_vector(cell.initial_carry(params[0][0])).shape[-1]

    def g(a, x):  # layer 1 reads layer 0's new output h
        a0 = f0(a[:n], x)
        return jnp.concatenate([a0, f1(a[n:], a0[:H])])

    J = analysis.step_jacobians(net, params, xs)
    states = analysis.trajectory(net, params, xs)
    assert J.shape == (2, T, 2 * n, 2 * n)
    for b in range(2):
        a = jnp.zeros(2 * n)
        for s in range(T):
            np.testing.assert_allclose(J[b, s], jax.jacrev(g)(a, xs[b, s]), rtol=1e-5, atol=1e-6)
            a = g(a, xs[b, s])
        np.testing.assert_allclose(states[b, -1], a, rtol=1e-5, atol=1e-6)
    _, finals = net.apply(params, xs)
    final = jnp.concatenate([analysis.state_vector(finals[0][0]), analysis.state_vector(finals[1][0])], -1)
    np.testing.assert_allclose(states[:, -1], final, rtol=1e-5, atol=1e-6)
    products = analysis.jacobian_products(J)
    direct = analysis.direct_products(net, params, xs, T)
    np.testing.assert_allclose(products, direct, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(analysis.trajectory_products(net, params, xs), direct, rtol=1e-4, atol=1e-6)

    def loss(ys, finals):  # the network's last output: depends on the state through a_T only
        return jnp.sum((ys[:, -1] - 1.0) ** 2)

    grads = analysis.state_gradients(net, params, xs, loss)
    for k in range(1, T + 1):
        np.testing.assert_allclose(grads[:, k - 1], jnp.einsum("bi,bij->bj", grads[:, -1], products[:, k]),
                                   rtol=1e-4, atol=1e-6)  # fmt: skip
    exponents = analysis.lyapunov_spectrum(net, params, xs, warmup=1, k=2)
    np.testing.assert_allclose(exponents, analysis.lyapunov_from_jacobians(J, k=2, warmup=1), rtol=1e-5)


def test_one_layer_rnn_is_its_cell():
    cell = rj.cells.gru(H)
    net = rj.RNN(cell=cell)
    params = net.init(jax.random.key(13), I)
    xs = jax.random.normal(jax.random.key(14), (B, T, I))
    np.testing.assert_allclose(analysis.step_jacobians(net, params, xs),
                               analysis.step_jacobians(cell, params[0][0], xs), rtol=1e-6)  # fmt: skip


# --- products that leave float32's range --------------------------------------------------------------------


def linear_jacobians(gain, dtype=jnp.float32, time=100):
    cell = rj.cells.rnn(H, "linear", recurrent_init="orthogonal", gain=gain, dtype=dtype)
    params = cell.init(jax.random.key(15), I)
    return analysis.step_jacobians(cell, params, jnp.zeros((1, time, I), dtype))[0]


def test_underflow_in_float32_is_marked_and_warned_not_silently_dropped():
    J = linear_jacobians(0.1)  # ||da_T/da_k|| = 0.1^lag: 1e-100 at lag 100, far below float32's 1.2e-38
    with pytest.warns(analysis.NormRangeWarning, match="underflowed"):
        lag = analysis.norms_by_lag(J)
    underflow = np.asarray(lag.underflow)
    assert not underflow[:37].any() and underflow[39:].all(), np.flatnonzero(underflow)
    assert not np.asarray(lag.overflow).any()
    np.testing.assert_allclose(lag.rate, np.log(0.1), rtol=1e-3)  # from the lags still in range
    with pytest.warns(analysis.NormRangeWarning, match=r"underflowed .* from lag 3[89]"):
        rate, _ = analysis.fit_rate(lag.lags, lag.norms)
    np.testing.assert_allclose(rate, np.log(0.1), rtol=1e-3)
    with pytest.warns(analysis.NormRangeWarning, match="underflowed"):  # under jit, too
        jax.block_until_ready(jax.jit(analysis.norms_by_lag)(J))
        jax.effects_barrier()


def test_float64_reaches_1e_minus_100_and_overflow_is_marked(x64, recwarn):
    lag = analysis.norms_by_lag(linear_jacobians(0.1, jnp.float64))
    np.testing.assert_allclose(lag.norms, 0.1 ** np.arange(101), rtol=1e-8)
    assert not np.asarray(lag.underflow).any() and not recwarn.list
    with jax.enable_x64(False), pytest.warns(analysis.NormRangeWarning, match="overflowed"):
        big = analysis.norms_by_lag(linear_jacobians(10.0, time=60))
    overflow = np.asarray(big.overflow)
    assert not overflow[:38].any() and overflow[40:].all()
    np.testing.assert_allclose(big.rate, np.log(10.0), rtol=1e-3)


# --- the checks of every argument ---------------------------------------------------------------------------


def bad_inputs():
    """``(name, call, message)``: each call must raise a ValueError matching the message."""
    lstm = rj.cells.lstm(H)
    p = lstm.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))
    J = jnp.zeros((5, 3, 3))
    carry = lstm.initial_carry(p, (B,))
    net = rj.RNN(cell=lstm, num_layers=2, bidirectional=True)
    net_params = net.init(jax.random.key(1), I)
    stack = rj.RNN(cell=lstm, num_layers=2)
    sj = analysis.step_jacobians
    return [
        ("t float", lambda: analysis.jacobian_products(J, 2.5), r"t: expected an int in \[0, 5\].*got float 2.5"),
        ("t bool", lambda: analysis.jacobian_products(J, True), "t: expected an int .* got bool"),
        ("t too large", lambda: analysis.jacobian_products(J, 6), r"t: expected an int in \[0, 5\]"),
        ("t negative", lambda: analysis.jacobian_products(J, -1), r"t: expected an int in \[0, 5\]"),
        ("t of direct_products", lambda: analysis.direct_products(lstm, p, xs, 1.0), "t: expected an int"),
        ("t of trajectory_products", lambda: analysis.trajectory_products(lstm, p, xs, T + 1),
         r"t: expected an int in \[0, 6\]"),
        ("jacobians rank 2", lambda: analysis.jacobian_products(J[0]), r"jacobians: expected square .* \(3, 3\)"),
        ("jacobians not square", lambda: analysis.norm_matrix(jnp.zeros((5, 3, 2))), "jacobians: expected square"),
        ("jacobians int", lambda: analysis.norms_by_lag(jnp.zeros((5, 3, 3), int)), "jacobians: expected a floating"),
        ("jacobians list", lambda: analysis.jacobian_products([[1.0]]), "jacobians: expected an array"),
        ("lengths shape", lambda: analysis.jacobian_products(J, lengths=np.asarray([3])), "lengths: expected shape"),
        ("lengths float", lambda: analysis.norm_matrix(J, lengths=2.0), "lengths: expected integers"),
        ("lengths range", lambda: analysis.lyapunov_from_jacobians(J, lengths=6), "lengths: expected values in"),
        ("ord", lambda: analysis.matrix_norm(J, "nuclear"), r"ord: expected one of \('spectral', 'fro'\)"),
        ("ord of norm_matrix", lambda: analysis.norm_matrix(J, "nuclear"), "ord: expected one of"),
        ("k", lambda: analysis.lyapunov_from_jacobians(J, k=4), r"k: expected an int in \[1, 3\]"),
        ("k float", lambda: analysis.lyapunov_from_jacobians(J, k=1.5), "k: expected an int"),
        ("warmup", lambda: analysis.lyapunov_from_jacobians(J, warmup=5), r"warmup: expected an int in \[0, 4\]"),
        ("k of the spectrum", lambda: analysis.lyapunov_spectrum(lstm, p, xs, k=2 * H + 1, warmup=0),
         r"k: expected an int in \[1, 8\]"),
        ("warmup of the spectrum", lambda: analysis.lyapunov_spectrum(lstm, p, xs),
         r"warmup: expected an int in \[0, 5\]"),
        ("min_lag", lambda: analysis.norms_by_lag(J, min_lag=-1), "min_lag: expected an int >= 0"),
        ("fit lags", lambda: analysis.fit_rate(jnp.arange(3), jnp.ones(4)), r"lags: expected shape \(4,\)"),
        ("cell name", lambda: sj("lstm", p, xs), r"build it with rj.cells.make\('lstm', hidden_size\)"),
        ("cell other", lambda: analysis.trajectory(None, p, xs), "cell: expected a Cell .* got NoneType"),
        ("params type", lambda: sj(lstm, rj.cells.gru(H).init(jax.random.key(0), I), xs), "params: expected LSTMPa"),
        ("params NaN", lambda: sj(lstm, p._replace(W=p.W.at[0, 0].set(jnp.nan)), xs), r"params.W: expected finite"),
        ("xs rank", lambda: sj(lstm, p, xs[0]), r"xs: expected shape \(batch, time, features\)"),
        ("xs dtype", lambda: sj(lstm, p, xs.astype(jnp.float16)), "xs: expected the params' dtype float32, got float1"),
        ("xs features", lambda: sj(lstm, p, jnp.ones((B, T, I + 1))), "xs: expected 3 features"),
        ("xs NaN", lambda: sj(lstm, p, xs.at[0, 1, 0].set(jnp.nan)), r"xs: expected finite .* index \(0, 1, 0\)"),
        ("xs lengths", lambda: sj(lstm, p, xs, lengths=jnp.asarray([T + 1, 1])), r"lengths: expected values in \[0, 6"),
        ("carry structure", lambda: sj(lstm, p, xs, carry.h), "carry: expected structure"),
        ("carry shape", lambda: sj(lstm, p, xs, LSTMState(carry.h[:1], carry.c)), r"carry.h: expected shape \(2, 4\)"),
        ("carry dtype", lambda: sj(lstm, p, xs, LSTMState(carry.h, carry.c.astype(jnp.float16))),
         "carry.c: expected the params' dtype float32"),
        ("carry NaN", lambda: sj(lstm, p, xs, LSTMState(carry.h + jnp.nan, carry.c)), "carry.h: expected finite"),
        ("layer of a Cell", lambda: sj(lstm, p, xs, layer=1), "layer, direction: expected None and 0 for a Cell"),
        ("layer range", lambda: sj(net, net_params, xs, layer=2), r"layer: expected an int in \[0, 1\]"),
        ("direction", lambda: sj(rj.RNN(cell=lstm), ((p,),), xs, direction=1), r"direction: expected an int in \[0, 0"),
        ("bidirectional stack", lambda: sj(net, net_params, xs), "layer: expected an int in .* bidirectional"),
        ("net params", lambda: sj(net, net_params[:1], xs, layer=0), "params: expected 2 layers of 2 direction"),
        ("net layer params", lambda: sj(net, (net_params[0], net_params[0]), xs, layer=0),
         r"params\[1\]\[0\].U: expected shape \(16, 8\) to read 8 features"),
        ("net carry", lambda: sj(net, net_params, xs, carry, layer=0), "carry: expected structure"),
        ("gates", lambda: analysis.gate_traces(rj.cells.rnn(H), rj.cells.rnn(H).init(jax.random.key(0), I), xs),
         "cell: expected a gated cell"),
        ("gates of a stack", lambda: analysis.gate_traces(stack, stack.init(jax.random.key(2), I), xs),
         "layer: expected one layer"),
        ("loss", lambda: analysis.state_gradients(lstm, p, xs, "mse"), "loss: expected a function"),
        ("reach", lambda: analysis.gradient_reach(jnp.zeros((T, H))), r"gradients: expected \(batch, time, n\)"),
        ("blocks cell", lambda: analysis.blocks(J, "lstm"), "cell: expected a Cell"),
        ("blocks size", lambda: analysis.blocks(jnp.zeros((5, H, H)), lstm), r"matrix: expected \(..., 8, 8\)"),
        ("bound W", lambda: analysis.pascanu_bound(jnp.zeros((3, 4)), jnp.arange(3)), "W: expected square"),
        ("bound gamma", lambda: analysis.pascanu_bound(jnp.eye(3), jnp.arange(3), -1.0), "gamma: expected a number"),
        ("eigenvalues", lambda: analysis.eigenvalues(np.zeros((3, 4))), "W: expected one square matrix"),
        ("singular values", lambda: analysis.singular_values(jnp.zeros(3)), "matrices: expected square"),
    ]  # fmt: skip


BAD = bad_inputs()


@pytest.mark.parametrize("call, message", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_inputs_raise_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_state_gradients_of_one_layer_against_grad_of_a_hand_written_network():
    cell = rj.cells.lstm(H)
    net = rj.RNN(cell=cell, num_layers=2)
    params = net.init(jax.random.key(16), I)
    xs = jax.random.normal(jax.random.key(17), (B, T, I))
    lengths = jnp.asarray([T, 3])
    f0, f1 = one_step(cell, params[0][0]), one_step(cell, params[1][0])

    def loss(ys, finals):
        return jnp.sum(ys**2) + jnp.sum(finals[1][0].c)

    def by_hand(eps, x_seq, L):  # one sequence: layer 0's states perturbed, layer 1 reads their h
        a0, a1, total = jnp.zeros(2 * H), jnp.zeros(2 * H), 0.0
        for s in range(L):
            a0 = f0(a0, x_seq[s]) + eps[s]
            a1 = f1(a1, a0[:H])
            total = total + jnp.sum(a1[:H] ** 2)
        return total + jnp.sum(a1[H:])

    grads = analysis.state_gradients(net, params, xs, loss, lengths=lengths, layer=0)
    for b, L in enumerate((T, 3)):
        expected = jax.grad(by_hand)(jnp.zeros((T, 2 * H)), xs[b], L)
        assert_cut(grads[b], expected[:L], L)


def test_a_net_with_a_learned_initial_state_is_analysed_from_it_and_zoneout_is_refused(getkey):
    """``learn_initial``: the analysis starts from the learned carry, as ``net.apply`` does; a zoneout net's
    evaluation step is not its cell's, so the analysis refuses it instead of studying another map."""
    net = rj.RNN("gru", 4, learn_initial=True)
    params = net.init(getkey(), 3)
    params = params._replace(initial=jax.tree.map(lambda a: a + 0.3, params.initial))
    xs = jax.random.normal(getkey(), (2, 5, 3))
    plain = rj.RNN("gru", 4)
    carry = net.initial_carry(params, 2)
    np.testing.assert_allclose(
        analysis.step_jacobians(net, params, xs), analysis.step_jacobians(plain, params.cells, xs, carry), atol=1e-6
    )
    with pytest.raises(ValueError, match="net: expected a net whose step is its cell's, got zoneout=0.1"):
        analysis.step_jacobians(rj.RNN("gru", 4, zoneout=0.1), params.cells, xs)
