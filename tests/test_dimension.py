"""rnnjax.analysis.dimension: the participation ratio against closed forms and numpy's eigenvalues, the
Kaplan-Yorke dimension of hand-computed spectra and its edge cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax import analysis
from rnnjax.analysis.dimension import kaplan_yorke_dimension, participation_ratio

pr_jit = jax.jit(participation_ratio)  # where a test checks values only: one compile instead of one per op


def _pr_by_eigenvalues(x: np.ndarray) -> float:
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    return lam.sum() ** 2 / (lam**2).sum()


def test_isotropic_gaussian_data_use_every_dimension():
    x = np.random.default_rng(0).standard_normal((20_000, 10))
    # the sample covariance of T draws: E[tr C^2] = n^2/T + n + ..., so PR ~ n / (1 + n/T)
    assert float(pr_jit(jnp.asarray(x))) == pytest.approx(10.0, rel=0.01)


def test_rank_r_data():
    rng = np.random.default_rng(1)
    n, T, r = 12, 50, 3
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]  # r orthonormal directions
    C = rng.standard_normal((T, r))
    C = np.linalg.qr(C - C.mean(0))[0]  # orthonormal, centred coefficients: equal variance on each direction
    equal = C @ V.T + rng.standard_normal(n)  # a constant offset changes nothing
    assert float(pr_jit(jnp.asarray(equal))) == pytest.approx(r, rel=1e-6)
    unequal = (C * [3.0, 1.0, 0.2]) @ V.T
    pr = float(pr_jit(jnp.asarray(unequal)))
    lam = np.array([9.0, 1.0, 0.04])
    assert pr == pytest.approx(lam.sum() ** 2 / (lam**2).sum(), rel=1e-6) and 1 <= pr < r
    anisotropic = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    assert float(pr_jit(jnp.asarray(anisotropic))) == pytest.approx(_pr_by_eigenvalues(anisotropic))


def test_batches_and_lengths(getkey):
    x = np.random.default_rng(2).standard_normal((2, 30, 4)) * [1.0, 2.0, 0.5, 1.0]
    padded = x.copy()
    padded[1, 20:] = np.nan  # rows beyond a trajectory's length are never read
    pr = pr_jit(jnp.asarray(padded), lengths=jnp.array([30, 20]))
    np.testing.assert_allclose(pr, [_pr_by_eigenvalues(x[0]), _pr_by_eigenvalues(x[1, :20])], rtol=1e-5)
    # trajectory's states of a sequence of length L are its first L + 1 rows (NaN after)
    rnn = rj.cells.rnn(5, gain=1.5, recurrent_init="gaussian")
    params = rnn.init(getkey(), 2)
    xs = jax.random.normal(getkey(), (2, 12, 2))
    states = jax.jit(analysis.trajectory, static_argnums=0)(rnn, params, xs, lengths=jnp.array([12, 7]))
    pr = participation_ratio(states, lengths=jnp.array([13, 8]))  # unjitted: the NaN rows must not be read
    assert np.isfinite(pr).all()
    np.testing.assert_allclose(pr[1], pr_jit(states[1, :8]), rtol=1e-5)


def test_participation_ratio_errors():
    assert np.isnan(float(participation_ratio(jnp.ones((5, 3)))))  # no variance: undefined
    with pytest.raises(ValueError, match="states"):
        participation_ratio(jnp.ones((5,)))
    with pytest.raises(ValueError, match="states"):
        participation_ratio(np.ones((5, 3), int))
    with pytest.raises(ValueError, match="states"):
        participation_ratio(jnp.ones((1, 2, 5, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        participation_ratio(jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        participation_ratio(jnp.ones((2, 5, 3)), lengths=jnp.array([5, 1]))
    with pytest.raises(ValueError, match="finite"):
        participation_ratio(jnp.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="lengths"):
        participation_ratio(jnp.ones((5, 3)), lengths=jnp.array([5]))
    with pytest.raises(ValueError, match="lengths"):
        participation_ratio(jnp.ones((2, 5, 3)), lengths=jnp.array([5, 6]))


def test_kaplan_yorke_of_hand_computed_spectra():
    cases = {
        (0.5, -0.2, -1.0): 2 + 0.3 / 1.0,  # partial sums 0.5, 0.3, -0.7
        (-0.4, 0.1): 1 + 0.1 / 0.4,  # sorted first: 0.1, -0.4
        (0.419, -1.623): 1 + 0.419 / 1.623,  # the Henon map's exponents: D ~ 1.26
        (-0.1, -0.2, -0.3): 0.0,  # a stable fixed point
        (0.2, 0.1, -0.05): 3.0,  # volumes never contract
        (0.0, -1.0): 1.0,
        (0.3, -np.inf): 1.0,  # a direction that collapses at once
    }
    for spectrum, expected in cases.items():
        assert float(kaplan_yorke_dimension(jnp.asarray(spectrum))) == pytest.approx(expected), spectrum
    batch = kaplan_yorke_dimension(jnp.array([[0.5, -0.2, -1.0], [-0.1, -0.2, -0.3]]))
    np.testing.assert_allclose(batch, [2.3, 0.0])


def test_kaplan_yorke_of_a_linear_rnn(getkey, x64):
    # a linear RNN's exponents are log |eigenvalues of W|; volumes contract by |det W| per step
    cell = rj.cells.rnn(4, "linear", dtype=jnp.float64)
    params = cell.init(getkey(), 1)._replace(W=jnp.diag(jnp.array([1.5, 1.1, 0.5, 0.2])))
    lyapunov = jax.jit(analysis.lyapunov_spectrum, static_argnums=0, static_argnames="warmup")
    exponents = lyapunov(cell, params, jnp.zeros((1, 60, 1)), warmup=10, carry=jnp.ones((1, 4)))
    logs = np.log([1.5, 1.1, 0.5])
    assert float(kaplan_yorke_dimension(exponents)[0]) == pytest.approx(2 + logs[:2].sum() / -logs[2], rel=1e-6)


def test_kaplan_yorke_errors():
    with pytest.raises(ValueError, match="exponents"):
        kaplan_yorke_dimension(jnp.array([0.1, jnp.nan]))
    with pytest.raises(ValueError, match="exponents"):
        kaplan_yorke_dimension(jnp.array([jnp.inf, -1.0]))
    with pytest.raises(ValueError, match="exponents"):
        kaplan_yorke_dimension(np.array([1, -2]))
    with pytest.raises(ValueError, match="exponents"):
        kaplan_yorke_dimension(jnp.zeros((3, 0)))
    with pytest.raises(ValueError, match="exponents"):
        kaplan_yorke_dimension(jnp.float32(0.5))
