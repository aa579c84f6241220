"""rnnjax.analysis.fixed_points against closed forms: the linear RNN's one fixed point, the contracting tanh RNN's
zero, the bistable 1-unit tanh RNN's three, the LSTM's and GRU's Jacobians at zero, the stacked state's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.analysis.fixed_points import FixedPoints, default_tol, find_fixed_points, sample_states


def _orthogonal(key, n, dtype=jnp.float64):
    return jnp.linalg.qr(jax.random.normal(key, (n, n), dtype))[0]


def _linear_rnn(getkey, n, features, radii):
    """A linear RNN, F(a, x) = W a + U x + b, with W = Q diag(radii) Q^T."""
    cell = rj.cells.rnn(n, "linear", dtype=jnp.float64)
    Q = _orthogonal(getkey(), n)
    params = rj.cells.RNNParams(
        U=jax.random.normal(getkey(), (n, features), jnp.float64),
        W=Q @ jnp.diag(jnp.asarray(radii, jnp.float64)) @ Q.T,
        b=jax.random.normal(getkey(), (n,), jnp.float64),
    )
    return cell, params


def test_linear_rnn_has_one_fixed_point_with_jacobian_w(getkey, x64):
    n, features = 5, 3
    cell, params = _linear_rnn(getkey, n, features, [0.9, -0.7, 0.5, 0.3, 0.1])
    x = jax.random.normal(getkey(), (features,), jnp.float64)
    starts = 2 * jax.random.normal(getkey(), (64, n), jnp.float64)
    fp = find_fixed_points(cell, params, x, initial_states=starts, learning_rate=0.1)  # q's slowest mode: (1 - 0.9)^2
    expected = np.linalg.solve(np.eye(n) - params.W, params.U @ x + params.b)  # a* = (I - W)^-1 (U x + b)
    assert isinstance(fp, FixedPoints) and fp.states.shape == (1, n)
    np.testing.assert_allclose(fp.states[0], expected, atol=1e-5)
    assert fp.speeds[0] < 1e-12 and fp.converged == 64 and fp.starts == 64
    np.testing.assert_allclose(fp.jacobians[0], params.W, atol=1e-12)
    np.testing.assert_allclose(np.abs(fp.eigenvalues[0]), [0.9, 0.7, 0.5, 0.3, 0.1], atol=1e-10)
    assert fp.stable.tolist() == [True] and fp.unstable_dims.tolist() == [0]
    np.testing.assert_array_equal(fp.x, x)


def test_linear_saddle_counts_its_unstable_directions(getkey, x64):
    """W with eigenvalues 1.5 and -1.2 outside the unit circle: the one fixed point has two unstable directions."""
    n = 4
    cell, params = _linear_rnn(getkey, n, 2, [1.5, -1.2, 0.5, 0.2])
    starts = jax.random.normal(getkey(), (32, n), jnp.float64)
    fp = find_fixed_points(cell, params, initial_states=starts, learning_rate=0.1)
    expected = np.linalg.solve(np.eye(n) - params.W, params.b)  # x = None: zeros
    np.testing.assert_allclose(fp.states[0], expected, atol=1e-5)
    np.testing.assert_allclose(np.abs(fp.eigenvalues[0]), [1.5, 1.2, 0.5, 0.2], atol=1e-10)
    assert fp.counts() == {"fixed points": 1, "stable": 0, "saddles": 0, "more unstable": 1}
    assert fp.unstable_dims.tolist() == [2]


def test_contracting_tanh_rnn_has_only_zero(getkey, x64):
    """||W|| < 1, b = 0, x = 0: F is a contraction with F(0) = 0, so 0 is its one fixed point, J = W there."""
    n = 6
    cell = rj.cells.rnn(n, gain=0.8, dtype=jnp.float64)  # orthogonal W scaled by 0.8: ||W|| = 0.8
    params = cell.init(getkey(), 2)
    starts = jax.random.uniform(getkey(), (128, n), jnp.float64, -1, 1)
    fp = find_fixed_points(cell, params, initial_states=starts)
    assert fp.states.shape == (1, n)
    np.testing.assert_allclose(fp.states[0], 0, atol=1e-5)
    np.testing.assert_allclose(fp.jacobians[0], params.W, atol=1e-8)
    assert fp.stable.tolist() == [True] and np.abs(fp.eigenvalues[0]).max() == pytest.approx(0.8, abs=1e-6)


def _bisect(f, lo, hi, iters=200):
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(lo) * f(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _bistable(w=2.0):
    cell = rj.cells.rnn(1, dtype=jnp.float64)
    params = rj.cells.RNNParams(U=jnp.zeros((1, 1)), W=jnp.full((1, 1), w), b=jnp.zeros(1))
    return cell, params


def test_bistable_unit_has_three_fixed_points(getkey, x64):
    """a = tanh(w a) with w = 2 > 1: 0 (unstable, slope w) and +-a* with a* = tanh(w a*) (stable, slope
    w (1 - a*^2) < 1); a* by bisection, independently of the library."""
    w = 2.0
    cell, params = _bistable(w)
    star = _bisect(lambda a: np.tanh(w * a) - a, 0.5, 1.0)
    starts = jnp.linspace(-1.5, 1.5, 61)[:, None]
    fp = find_fixed_points(cell, params, initial_states=starts)
    order = np.argsort(fp.states[:, 0])
    np.testing.assert_allclose(fp.states[order, 0], [-star, 0.0, star], atol=1e-6)
    assert fp.stable[order].tolist() == [True, False, True]
    assert fp.unstable_dims[order].tolist() == [0, 1, 0]
    slopes = [w * (1 - star**2), w, w * (1 - star**2)]
    np.testing.assert_allclose(fp.jacobians[order, 0, 0], slopes, atol=1e-5)
    np.testing.assert_allclose(fp.eigenvalues[order, 0].real, slopes, atol=1e-5)
    assert fp.counts() == {"fixed points": 3, "stable": 2, "saddles": 1, "more unstable": 0}
    assert np.all(np.diff(fp.speeds) >= 0)  # lowest speed first


def test_duplicates_and_outliers_are_dropped(getkey, x64):
    cell, params = _bistable()
    starts = jnp.linspace(-1.5, 1.5, 61)[:, None]
    fp = find_fixed_points(cell, params, initial_states=starts)
    assert fp.converged > 3 and len(fp.states) == 3  # many starts, three points
    one = find_fixed_points(cell, params, initial_states=starts, unique_tol=10.0)  # all within 10 of each other
    assert len(one.states) == 1 and one.speeds[0] == fp.speeds.min()
    # 98 starts at 0 and two at +-0.9: the mean distance to the centre is 0.018, the stable points lie 53 times
    # farther; max_distance=10 drops them, None keeps them.
    crowded = jnp.concatenate([jnp.zeros((98, 1)), jnp.asarray([[0.9], [-0.9]])])
    near = find_fixed_points(cell, params, initial_states=crowded)
    assert near.states[:, 0].tolist() == pytest.approx([0.0], abs=1e-6)
    assert len(find_fixed_points(cell, params, initial_states=crowded, max_distance=None).states) == 3


def test_slow_points_are_not_fixed_points(getkey, x64):
    """a = a + 0.01 (W = I, b = 0.01): no fixed point, q = 5e-5 everywhere."""
    cell = rj.cells.rnn(2, "linear", dtype=jnp.float64)
    params = rj.cells.RNNParams(U=jnp.zeros((2, 1)), W=jnp.eye(2), b=jnp.full(2, 0.01))
    fp = find_fixed_points(cell, params, initial_states=jnp.zeros((4, 2)), steps=50)
    assert fp.states.shape == (0, 2) and fp.converged == 0 and fp.jacobians.shape == (0, 2, 2)
    assert fp.counts() == {"fixed points": 0, "stable": 0, "saddles": 0, "more unstable": 0}


def test_lstm_and_gru_at_zero(getkey, x64):
    """With zero biases and x = 0, the zero state is fixed; the Jacobians there in closed form:
    LSTM (gates 1/2, C~ = 0): dh'/dh = W_C / 4, dh'/dc = I / 4, dc'/dh = W_C / 2, dc'/dc = I / 2;
    GRU (r = z = 1/2, n = 0): dh'/dh = W_hn / 4 + I / 2."""
    h = 3
    lstm = rj.cells.lstm(h, gain=0.5, dtype=jnp.float64)
    p = lstm.init(getkey(), 2)
    p = p._replace(b=jnp.zeros_like(p.b))
    fp = find_fixed_points(lstm, p, initial_states=0.3 * jax.random.normal(getkey(), (16, 2 * h), jnp.float64))
    k = int(np.argmin(np.abs(fp.states).max(-1)))
    np.testing.assert_allclose(fp.states[k], 0, atol=1e-5)
    W_C, eye = np.asarray(p.W[2 * h : 3 * h]), np.eye(h)
    expected = np.block([[W_C / 4, eye / 4], [W_C / 2, eye / 2]])
    np.testing.assert_allclose(fp.jacobians[k], expected, atol=1e-6)
    carries = fp.carries()
    assert isinstance(carries, type(lstm.initial_carry(p)))
    assert carries.h.shape == carries.c.shape == (len(fp.states), h)
    np.testing.assert_array_equal(np.concatenate([carries.h, carries.c], -1), fp.states)

    gru = rj.cells.gru(h, gain=0.5, dtype=jnp.float64)
    p = gru.init(getkey(), 2)
    p = p._replace(b=jnp.zeros_like(p.b), b_hn=jnp.zeros_like(p.b_hn))
    fp = find_fixed_points(gru, p, initial_states=0.3 * jax.random.normal(getkey(), (16, h), jnp.float64))
    k = int(np.argmin(np.abs(fp.states).max(-1)))
    np.testing.assert_allclose(fp.states[k], 0, atol=1e-5)
    np.testing.assert_allclose(fp.jacobians[k], np.asarray(p.W[2 * h :]) / 4 + eye / 2, atol=1e-6)


def test_stacked_state_and_one_layer_of_a_net(getkey, x64):
    """Two tanh layers, b = 0, x = 0: the stacked state's fixed point is 0 with J = [[W0, 0], [U1 W0, W1]]."""
    h = 3
    net = rj.RNN(cell=rj.cells.rnn(h, gain=0.5, dtype=jnp.float64), hidden_size=h, num_layers=2)
    params = net.init(getkey(), 2)
    starts = 0.5 * jax.random.normal(getkey(), (32, 2 * h), jnp.float64)
    fp = find_fixed_points(net, params, initial_states=starts)
    (p0,), (p1,) = params
    expected = np.block([[p0.W, np.zeros((h, h))], [p1.U @ p0.W, p1.W]])
    assert fp.states.shape == (1, 2 * h) and len(fp.like) == 2
    np.testing.assert_allclose(fp.states[0], 0, atol=1e-5)
    np.testing.assert_allclose(fp.jacobians[0], expected, atol=1e-8)
    # Layer 1 alone reads layer 0's outputs: its fixed point at the input u solves a = tanh(W1 a + U1 u).
    u = 0.3 * jnp.ones(h, jnp.float64)
    one = find_fixed_points(net, params, u, initial_states=starts[:, :h], layer=1)
    a = one.states[0]
    np.testing.assert_allclose(np.tanh(p1.W @ a + p1.U @ u), a, atol=1e-6)


def test_float32_tolerance_follows_the_rounding(getkey):
    assert default_tol(32, jnp.float64) == 1e-12
    assert default_tol(32, jnp.float32) == pytest.approx(0.5 * 32 * (32 * 2.0**-23) ** 2)
    cell, params = rj.cells.rnn(1), rj.cells.RNNParams(U=jnp.zeros((1, 1)), W=jnp.full((1, 1), 2.0), b=jnp.zeros(1))
    fp = find_fixed_points(cell, params, initial_states=jnp.linspace(-1.5, 1.5, 31)[:, None])
    assert len(fp.states) == 3 and fp.states.dtype == np.float32


def test_sample_states(getkey):
    states = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)
    states = states.at[1, 3:].set(jnp.nan)  # padded steps
    picked = sample_states(states, 200, key=getkey())
    rows = {tuple(r) for r in np.asarray(states).reshape(-1, 3) if np.isfinite(r).all()}
    assert picked.shape == (200, 3) and {tuple(r) for r in np.asarray(picked)} <= rows
    noisy = sample_states(jnp.zeros((1000, 4)), 4000, key=getkey(), noise=0.5)
    assert float(noisy.std()) == pytest.approx(0.5, rel=0.05)
    for kwargs, name in [
        (dict(states=jnp.zeros(3), m=2), "states"),
        (dict(states=jnp.zeros((4, 3)), m=0), "m"),
        (dict(states=jnp.zeros((4, 3)), m=2, noise=-1.0), "noise"),
        (dict(states=jnp.full((4, 3), jnp.nan), m=2), "states"),
    ]:
        with pytest.raises(ValueError, match=name):
            sample_states(key=getkey(), **kwargs)


def test_bad_arguments_raise(getkey):
    cell = rj.cells.rnn(2)
    params = cell.init(getkey(), 3)
    good = jnp.zeros((4, 2))
    cases = [
        (dict(cell="rnn"), "cell"),
        (dict(params=rj.cells.lstm(2).init(getkey(), 3)), "params"),
        (dict(initial_states=jnp.zeros((4, 3))), "initial_states"),
        (dict(initial_states=jnp.zeros(2)), "initial_states"),
        (dict(initial_states=good.at[0, 0].set(jnp.nan)), "initial_states"),
        (dict(initial_states=jnp.zeros((4, 2), jnp.int32)), "initial_states"),
        (dict(x=jnp.zeros(2)), "x"),
        (dict(x=jnp.full(3, jnp.inf)), "x"),
        (dict(steps=0), "steps"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(tol=-1.0), "tol"),
        (dict(unique_tol=-1e-3), "unique_tol"),
        (dict(max_distance=0.0), "max_distance"),
        (dict(layer=0), "layer"),
    ]
    for change, name in cases:
        kwargs = dict(cell=cell, params=params, x=None, initial_states=good) | change
        with pytest.raises(ValueError, match=name):
            find_fixed_points(kwargs.pop("cell"), kwargs.pop("params"), kwargs.pop("x"), **kwargs)
    net = rj.RNN(cell="rnn", hidden_size=2, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match="layer"):
        find_fixed_points(net, net.init(getkey(), 3), initial_states=good)


def test_three_independent_bistable_units_make_a_cube(getkey, x64, tmp_path):
    """W = 2 I on 3 units: each coordinate sits at -a*, 0 or a*, so 3^3 = 27 fixed points, with as many unstable
    directions as zeros: 8 stable (the corners), 12 saddles (the edges), 6 with two (the faces), 1 with three."""
    from rnnjax.plots import dynamics

    cell = rj.cells.rnn(3, dtype=jnp.float64)
    params = rj.cells.RNNParams(U=jnp.zeros((3, 1)), W=2.0 * jnp.eye(3), b=jnp.zeros(3))
    star = _bisect(lambda a: np.tanh(2 * a) - a, 0.5, 1.0)
    grid = jnp.linspace(-1.2, 1.2, 7)
    starts = jnp.stack(jnp.meshgrid(grid, grid, grid), -1).reshape(-1, 3)
    fp = find_fixed_points(cell, params, initial_states=starts)
    assert fp.counts() == {"fixed points": 27, "stable": 8, "saddles": 12, "more unstable": 7}
    levels = np.round(fp.states / star).astype(int)  # each coordinate -1, 0 or 1 times a*
    np.testing.assert_allclose(fp.states, levels * star, atol=1e-6)
    assert len({tuple(r) for r in levels}) == 27
    np.testing.assert_array_equal(fp.unstable_dims, (levels == 0).sum(-1))

    trajectories = np.array(rj.analysis.trajectory(cell, params, 0.3 * jax.random.normal(getkey(), (4, 12, 1))))
    trajectories[1, 5:] = np.nan  # padded steps are left out
    for components in (2, 3):
        path = dynamics.fixed_points(fp, trajectories, tmp_path / f"fp{components}.png", components=components)
        assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="components"):
        dynamics.fixed_points(fp, trajectories, tmp_path / "bad.png", components=4)
    mean, pcs, explained = dynamics.principal_components(starts, 3)
    np.testing.assert_allclose(np.abs(pcs @ pcs.T), np.eye(3), atol=1e-12)
    assert explained.sum() == pytest.approx(1.0) and mean == pytest.approx(np.zeros(3), abs=1e-12)
    xs = np.sign(np.asarray(jax.random.normal(getkey(), (2, 12, 3))))
    assert dynamics.channel_trials(xs, xs, 0.9 * xs, tmp_path / "trials.png").stat().st_size > 0
