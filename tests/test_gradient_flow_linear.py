"""The gradient-flow study's cells linear in their state (minGRU, LRU): their step Jacobian is diagonal, so their
Lyapunov exponents are each unit's mean of log|a_t| (numpy from the papers' equations, against
rj.analysis.lyapunov_spectrum and the experiment's closed form); the gain sweep and Pascanu's bound for them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj

H, I, T, WARMUP = 4, 2, 150, 50


@pytest.fixture
def gf(load_script):
    return load_script("experiments", "gradient_flow")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def mingru_exponents(params, xs: np.ndarray, warmup: int) -> np.ndarray:
    """Feng et al. 2024: h_t = (1 - z_t) h_{t-1} + z_t h~_t with z_t = sigmoid(U_z x_t + b_z), so
    dh_t/dh_{t-1} = diag(1 - z_t); each unit's exponent is the mean of log(1 - z_t) over the counted steps."""
    U_z, b_z = np.asarray(params.U_z, np.float64), np.asarray(params.b_z, np.float64)
    z = sigmoid(xs @ U_z.T + b_z)  # (batch, time, h)
    return -np.sort(-np.log(1 - z[:, warmup:]).mean(axis=1), axis=-1)


def lru_exponents(params) -> np.ndarray:
    """Orvieto et al. 2023: h_t = lambda h_{t-1} + gamma B x_t with |lambda| = exp(-exp(nu_log)); on
    [Re h, Im h] each lambda_j rotates and scales one plane: log|lambda_j| twice, whatever the input."""
    log_modulus = -np.exp(np.asarray(params.nu_log, np.float64))
    return np.sort(np.repeat(log_modulus, 2))[::-1]


@pytest.fixture
def mingru_case(x64, getkey):
    """A float64 minGRU whose units forget at well separated rates (so the QR frame aligns within the warm-up),
    driven by inputs that change every step."""
    cell = rj.cells.mingru(H, dtype=jnp.float64)
    params = cell.init(getkey(), I)
    b = params.b.at[:H].set(jnp.array([-3.0, -1.0, 0.5, 2.0]))  # b_z: the units' mean 1 - z_t apart
    xs = jax.random.normal(getkey(), (2, T, I), jnp.float64)
    return cell, params._replace(b=b), xs


@pytest.fixture
def lru_case(x64, getkey):
    cell = rj.cells.lru(H, state_size=3, dtype=jnp.float64)
    params = cell.init(getkey(), I)
    params = params._replace(nu_log=jnp.log(-jnp.log(jnp.array([0.95, 0.6, 0.3]))))  # |lambda|, well apart
    xs = jax.random.normal(getkey(), (2, T, I), jnp.float64)  # driven: the Jacobian is diag(lambda) all the same
    return cell, params, xs


def _spectrum(cell, params, xs):
    with jax.numpy_dtype_promotion("standard"):  # the QR loop compares int64 steps with int32 ends under x64
        return np.asarray(rj.analysis.lyapunov_spectrum(cell, params, xs, warmup=WARMUP))


def test_mingru_exponents_are_the_mean_log_of_one_minus_z(x64, mingru_case, gf):
    cell, params, xs = mingru_case
    expected = mingru_exponents(params, np.asarray(xs), WARMUP)
    assert np.diff(expected, axis=-1).max() < -0.1  # the case is what it claims: rates well apart
    np.testing.assert_allclose(_spectrum(cell, params, xs), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(gf.diagonal_exponents(cell, params, xs, WARMUP), expected, rtol=1e-12, atol=1e-12)
    # The counted steps are the ones after the warm-up: one step off gives another mean.
    assert np.abs(mingru_exponents(params, np.asarray(xs), WARMUP + 1) - expected).max() > 1e-4


def test_lru_exponents_are_log_abs_lambda_twice_under_any_input(x64, lru_case, gf):
    cell, params, xs = lru_case
    expected = np.broadcast_to(lru_exponents(params), (2, 6))
    np.testing.assert_allclose(expected[0], np.log([0.95, 0.95, 0.6, 0.6, 0.3, 0.3]), rtol=1e-12)
    np.testing.assert_allclose(_spectrum(cell, params, xs), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(gf.diagonal_exponents(cell, params, xs, WARMUP), expected, rtol=1e-12, atol=1e-12)


def test_the_step_jacobian_is_diagonal(x64, mingru_case, lru_case):
    """What the closed form rests on: da_t/da_(t-1) = diag(1 - z_t) (minGRU); for the LRU on [Re h, Im h], the
    blocks [[Re lambda, -Im lambda], [Im lambda, Re lambda]] of each unit's plane."""
    cell, params, xs = mingru_case
    J = np.asarray(rj.analysis.step_jacobians(cell, params, xs))  # (batch, time, h, h)
    z = sigmoid(np.asarray(xs) @ np.asarray(params.U_z).T + np.asarray(params.b_z))
    np.testing.assert_allclose(J, np.einsum("btj,jk->btjk", 1 - z, np.eye(H)), rtol=1e-12, atol=1e-14)

    cell, params, xs = lru_case
    J = np.asarray(rj.analysis.step_jacobians(cell, params, xs))
    lam = np.asarray(params.lambda_)
    blocks = np.block([[np.diag(lam.real), np.diag(-lam.imag)], [np.diag(lam.imag), np.diag(lam.real)]])
    np.testing.assert_allclose(J, np.broadcast_to(blocks, J.shape), rtol=1e-12, atol=1e-14)


def test_the_study_check_at_its_default_size_is_the_qr_methods_convergence(gf):
    """At the published inits (32 units, float32) the measured spectrum meets the closed form: the sums to
    float32 rounding, single exponents within the QR method's alignment error, which shrinks with the steps."""
    key = jax.random.key(0)
    xs = {length: jnp.asarray(rj.data.synthetic.adding_problem(np.random.default_rng(length), 2, length)[0])
          for length in (400, 1600)}  # fmt: skip
    for name in ("mingru", "lru"):
        cell = gf.make_cell(name, 32)
        params = cell.init(key, gf.INPUT_SIZE)
        out = gf.diagonal_check(cell, params, {"short": xs[400], "long": xs[1600]}, 100)
        assert int(out["short"]["n"]) == (64 if name == "lru" else 32)
        for run in ("short", "long"):
            assert float(out[run]["sum_diff"]) < 1e-4, (name, run)
            assert float(out[run]["max_diff"]) < 0.02, (name, run)
            assert abs(float(out[run]["largest"]) - float(out[run]["largest_closed"])) < 2e-3, (name, run)
        assert float(out["long"]["max_diff"]) < float(out["short"]["max_diff"]), name


def test_diagonal_exponents_are_only_for_cells_linear_in_their_state(gf):
    for name in ("rnn", "lstm_fb1", "gru"):
        cell = gf.make_cell(name, 3)
        params = cell.init(jax.random.key(0), gf.INPUT_SIZE)
        assert gf.diagonal_exponents(cell, params, jnp.zeros((1, 5, gf.INPUT_SIZE)), 1) is None, name


def test_the_gain_sweep_of_the_linear_cells(gf):
    """No recurrent weights in the minGRU: one cell at every gain. The LRU's gain is r_max, up to 1."""
    assert {gf.make_cell("mingru", 3, g) for g in (None, 0.5, 1.0, 2.0)} == {rj.cells.mingru(3)}
    assert gf.make_cell("lru", 3) is rj.cells.lru(3)
    assert dict(gf.make_cell("lru", 3, 0.5).options)["r_max"] == 0.5
    assert gf.make_cell("lru", 3, 1.0).options == rj.cells.lru(3).options  # the published init at g = 1
    assert gf.make_cell("lru", 3, 1.25) is None
    key = jax.random.key(1)
    small, full = (gf.make_cell("lru", 8, g).init(key, gf.INPUT_SIZE) for g in (0.5, 1.0))
    np.testing.assert_allclose(np.abs(small.lambda_), 0.5 * np.abs(full.lambda_), rtol=1e-5)  # the same draws


def test_pascanus_bound_is_for_single_matrix_cells_only(gf):
    lags = np.arange(4)
    for name in ("rnn", "irnn"):
        cell = gf.make_cell(name, 3, 1.0)
        params = cell.init(jax.random.key(0), gf.INPUT_SIZE)
        sigma = np.linalg.svd(np.asarray(params.W), compute_uv=False)[0]
        np.testing.assert_allclose(gf.bound_of(cell, params, lags), sigma**lags, rtol=1e-5)
    for name in ("lstm_fb0", "lstm_fb1", "gru", "mingru", "lru"):
        cell = gf.make_cell(name, 3)
        assert gf.bound_of(cell, cell.init(jax.random.key(0), gf.INPUT_SIZE), lags) is None, name
