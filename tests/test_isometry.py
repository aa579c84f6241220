"""rnnjax.analysis.isometry: end-to-end Jacobian spectra against closed forms and a reference, the mean-field
quadrature against Monte Carlo and polynomial moments, and chi^T against the measured mean of sigma^2."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax import analysis
from rnnjax.analysis import isometry as iso

# Jitted where a test only checks values: eager dispatch compiles every small op anew (seconds on a busy CPU).
spectra = jax.jit(iso.end_to_end_singular_values, static_argnums=(0, 3))
direct_products = jax.jit(analysis.direct_products, static_argnums=(0, 3))


def test_linear_rnn_products_are_powers_of_W(getkey, x64):
    # a_t = W a_(t-1) + U x_t + b: J_t = W for every t, so da_T/da_0 = W^T exactly.
    for ensemble in ("gaussian", "orthogonal"):
        cell, params = iso.mean_field_init(getkey(), 6, 3, sigma_w=1.3, sigma_b=0.5, sigma_u=1.0, ensemble=ensemble,
                                           activation="linear", dtype=jnp.float64)  # fmt: skip
        xs = jax.random.normal(getkey(), (2, 5, 3), jnp.float64)
        sv = spectra(cell, params, xs, (0, 3))
        assert sv.shape == (2, 2, 6)
        W = np.asarray(params.W)
        for i, T in enumerate((0, 3)):
            expected = np.linalg.svd(np.linalg.matrix_power(W, T), compute_uv=False)
            np.testing.assert_allclose(sv[:, i], np.broadcast_to(expected, (2, 6)), rtol=1e-10)
        if ensemble == "orthogonal":  # sigma_w Q: every singular value of (sigma_w Q)^T is sigma_w^T
            np.testing.assert_allclose(sv[:, 1], 1.3**3, rtol=1e-10)
    # lengths: a sequence of length L < T holds its state, so its product is W^L
    sv = spectra(cell, params, xs, (3,), lengths=jnp.array([5, 2]))
    np.testing.assert_allclose(sv[1, 0], np.linalg.svd(np.linalg.matrix_power(W, 2), compute_uv=False), rtol=1e-10)


def test_tanh_products_match_the_reference(getkey, x64):
    cell, params = iso.mean_field_init(getkey(), 5, 2, sigma_w=1.5, sigma_b=0.3, sigma_u=1.0, dtype=jnp.float64)
    xs = jax.random.normal(getkey(), (2, 4, 2), jnp.float64)
    carry = jax.random.normal(getkey(), (2, 5), jnp.float64) * 0.3
    sv = spectra(cell, params, xs, (4,), carry)
    direct = direct_products(cell, params, xs, 4, carry)[:, 0]  # jax.jacrev through the unrolled steps
    np.testing.assert_allclose(sv[:, 0], np.linalg.svd(np.asarray(direct), compute_uv=False), rtol=1e-9)
    with pytest.raises(ValueError, match="times"):
        iso.end_to_end_singular_values(cell, params, xs, (5,))
    with pytest.raises(ValueError, match="times"):
        iso.end_to_end_singular_values(cell, params, xs, 3)


def test_mean_field_init_draws_the_stated_scales(getkey):
    cell, params = iso.mean_field_init(getkey(), 300, 50, sigma_w=1.7, sigma_b=0.4, sigma_u=0.8)
    # one cell for every draw (the init lives in the params): one compiled analysis serves them all
    same, orth = iso.mean_field_init(getkey(), 300, 50, sigma_w=0.9, ensemble="orthogonal")
    assert same is cell and cell.name == "rnn" and dict(cell.options)["activation"] == "tanh"
    U, W, b = (np.asarray(p) for p in params)
    assert W.var() * 300 == pytest.approx(1.7**2, rel=0.02)  # 4 standard errors of a variance of 90,000 draws
    assert U.var() * 50 == pytest.approx(0.8**2, rel=0.04)
    assert b.std() == pytest.approx(0.4, rel=0.2)
    np.testing.assert_allclose(np.linalg.svd(np.asarray(orth.W), compute_uv=False), 0.9, rtol=1e-4)
    assert not np.any(orth.b) and orth.U.shape == (300, 50) and not np.any(orth.U)  # sigma_b = sigma_u = 0
    with pytest.raises(ValueError, match="ensemble"):
        iso.mean_field_init(getkey(), 4, 2, sigma_w=1.0, ensemble="uniform")
    with pytest.raises(ValueError, match="sigma_w"):
        iso.mean_field_init(getkey(), 4, 2, sigma_w=0.0)


def test_quadrature_against_monte_carlo_and_moments():
    z = np.random.default_rng(0).standard_normal(400_000)
    for q in (0.05, 1.0, 4.0):
        for f in (lambda h: np.tanh(h) ** 2, lambda h: np.cosh(h) ** -4, lambda h: np.cosh(h) ** -8):
            samples = f(np.sqrt(q) * z)
            assert abs(iso.gaussian_expectation(f, q) - samples.mean()) < 4 * samples.std() / np.sqrt(z.size)
        # moments of the Gaussian: E[h^4] = 3 q^2, E[h^6] = 15 q^3
        assert iso.gaussian_expectation(lambda h: h**4, q) == pytest.approx(3 * q**2, rel=1e-12)
        assert iso.gaussian_expectation(lambda h: h**6, q) == pytest.approx(15 * q**3, rel=1e-12)
    # Gauss-Hermite (101 nodes) agrees where its nodes resolve the integrand, at small q
    nodes, weights = np.polynomial.hermite_e.hermegauss(101)
    for q in (0.01, 0.3, 1.0):
        for f in (lambda h: np.tanh(h) ** 2, lambda h: np.cosh(h) ** -4):
            hermite = f(np.sqrt(q) * nodes) @ weights / np.sqrt(2 * np.pi)
            assert iso.gaussian_expectation(f, q) == pytest.approx(hermite, rel=1e-6)
    np.testing.assert_allclose(
        iso.gaussian_expectation(np.cos, np.array([0.5, 2.0])), np.exp(-np.array([0.5, 2.0]) / 2)
    )
    with pytest.raises(ValueError, match="q"):
        iso.gaussian_expectation(np.tanh, -1.0)


def test_fixed_points_and_the_critical_line():
    for sw, sb, su in ((0.8, 0.3, 0.0), (1.5, 0.0, 0.0), (2.0, 0.1, 0.5), (1.0, 0.0, 0.2)):
        q = iso.fixed_point(sw, sb, su)
        assert q > 0 and iso.variance_map(q, sw, sb, su) == pytest.approx(q, rel=1e-10)
    assert iso.fixed_point(0.9) == 0.0 and iso.fixed_point(1.0) == 0.0  # no bias, no inputs: the zero state
    assert iso.fixed_point(0.5, 0.3, 0.4, 2.0, "linear") == pytest.approx((0.09 + 0.32) / 0.75)
    assert iso.fixed_point(1.0, 0.1, activation="linear") == np.inf
    with pytest.raises(ValueError, match="finite fixed point"):
        iso.mean_field(1.0, 0.1, activation="linear")
    mf = iso.mean_field(1.0)  # q* = 0: tanh' = 1 there, chi = sigma_w^2
    assert mf.q_star == 0.0 and mf.chi == pytest.approx(1.0, abs=1e-15) and mf.mu_2 == pytest.approx(1.0, abs=1e-15)
    for q_star in (0.02, 0.3, 1.0):
        sw, sb = iso.critical_point(q_star, sigma_u=0.001)
        mf = iso.mean_field(sw, sb, 0.001)
        assert mf.q_star == pytest.approx(q_star, rel=1e-8) and mf.chi == pytest.approx(1.0, rel=1e-10)
    assert iso.critical_point(0.05)[0] > 1  # the line leaves sigma_w = 1 as q* grows
    with pytest.raises(ValueError, match="sigma_u"):
        iso.critical_point(0.05, sigma_u=0.1)  # slack ~ 1.3e-4 < 0.01
    with pytest.raises(ValueError, match="q_star"):
        iso.critical_point(0.0)
    with pytest.raises(ValueError, match="activation"):
        iso.variance_map(1.0, 1.0, activation="relu")
    with pytest.raises(ValueError, match="sigma_b"):
        iso.variance_map(1.0, 1.0, sigma_b=-0.1)


def test_predicted_moments():
    lin = iso.mean_field(0.9, 0.1, activation="linear")  # phi' = 1: mu_2 / mu_1^2 = 1
    mean, nvar = iso.predicted_moments(lin, [0, 1, 10], "gaussian")
    np.testing.assert_allclose(mean, 0.81 ** np.array([0, 1, 10]))
    np.testing.assert_allclose(nvar, [0, 1, 10])  # the Fuss-Catalan spread of a product of Gaussian matrices
    np.testing.assert_allclose(iso.predicted_moments(lin, [10], "orthogonal")[1], [0.0], atol=1e-12)
    with pytest.raises(ValueError, match="ensemble"):
        iso.predicted_moments(lin, [1], "haar")
    with pytest.raises(ValueError, match="mf"):
        iso.predicted_moments((1.0, 1.0), [1])


@functools.partial(jax.jit, static_argnums=(0, 4))
def _measure(cell, params, a0, xs, burn):
    carry = analysis.trajectory(cell, params, xs[:, :burn], a0)[:, -1]
    sv = iso.end_to_end_singular_values(cell, params, xs[:, burn:], (1, 10), carry)
    return iso.squared_moments(sv, axis=(0, 2))


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_chi_T_against_the_measured_mean(getkey, ensemble):
    # A driven tanh RNN of n = 256 from its stationary state (a_0 = tanh(sqrt(q*) z), 30 steps of burn-in):
    # the mean of sigma^2 per step within 3% of chi (measured up to 1.6% at T = 10, seeds 0-1), the normalised
    # variance within 20% of the free-probability value.
    n, d, burn = 256, 32, 30
    sw, sb, su = 1.5, 0.3, 1.0
    mf = iso.mean_field(sw, sb, su)
    cell, params = iso.mean_field_init(getkey(), n, d, sigma_w=sw, sigma_b=sb, sigma_u=su, ensemble=ensemble)
    a0 = jnp.tanh(np.sqrt(mf.q_star) * jax.random.normal(getkey(), (4, n)))
    xs = jax.random.normal(getkey(), (4, burn + 10, d))
    m1, nvar = (np.asarray(v) for v in _measure(cell, params, a0, xs, burn))
    pred_mean, pred_nvar = iso.predicted_moments(mf, [1, 10], ensemble)
    np.testing.assert_allclose(np.log(m1) / [1, 10], np.log(mf.chi), atol=0.03)
    np.testing.assert_allclose(m1, pred_mean, rtol=0.35)
    np.testing.assert_allclose(nvar, pred_nvar, rtol=0.2)


def test_squared_moments():
    sv = jnp.array([[1.0, 1.0], [2.0, 0.0]])
    m1, nvar = iso.squared_moments(sv, axis=(0, 1))  # lambda = 1, 1, 4, 0: mean 1.5, E[lambda^2] = 4.5
    assert float(m1) == 1.5 and float(nvar) == pytest.approx(4.5 / 2.25 - 1)
    m1, nvar = iso.squared_moments(sv)
    np.testing.assert_allclose(m1, [1.0, 2.0])
    np.testing.assert_allclose(nvar, [0.0, 1.0])
    with pytest.raises(ValueError, match="singular"):
        iso.squared_moments(jnp.array([1, 2]))
