"""The LRU (Orvieto et al. 2023) against a numpy loop of the paper's equations, its two implementations against
each other, its ring initialisation, its Lyapunov exponents and its errors."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import rnnjax as rj
from rnnjax.cells.lru import LRUParams, lru

I, H, N, B, T = 4, 3, 5, 3, 9

pytestmark = pytest.mark.usefixtures("strict_dtypes")


def reference(params: LRUParams, xs: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's equations for one sequence, float64 and complex128, one step at a time.

    ``xs: (t, i)``, ``h0: (N,)`` complex; returns ``(h_T, ys: (t, h))``.
    """
    p = {k: np.asarray(v, np.float64) for k, v in params._asdict().items()}
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    gamma = np.exp(p["gamma_log"])
    B_ = p["B_re"] + 1j * p["B_im"]
    C = p["C_re"] + 1j * p["C_im"]
    h, ys = np.asarray(h0, np.complex128), []
    for x in xs:
        h = lam * h + gamma * (B_ @ x)
        ys.append((C @ h).real + p["D"] @ x)
    return h, np.array(ys).reshape(len(xs), p["D"].shape[0])


def random_params(cell, key) -> LRUParams:
    """Params as init builds them, with ``gamma_log`` moved off ``log sqrt(1 - |lambda|^2)`` so that a step
    that recomputed ``gamma`` from ``lambda`` instead of reading the param would fail."""
    params = cell.init(key, I)
    noise = 0.3 * jax.random.normal(jax.random.fold_in(key, 1), params.gamma_log.shape, params.gamma_log.dtype)
    return params._replace(gamma_log=params.gamma_log + noise)


def random_carry(params, key, batch=B):
    re, im = jax.random.normal(key, (2, batch, params.nu_log.shape[-1]), params.B_re.dtype)
    return jax.lax.complex(re, im)


def test_shapes_and_dtypes(getkey):
    cell = lru(H, state_size=N)
    params = cell.init(getkey(), I)
    chex.assert_shape(
        list(params), [(N, I), (N, I), (H, N), (H, N), (H, I), (N,), (N,), (N,)]
    )  # B_re, B_im, C_re, C_im, D, nu_log, theta_log, gamma_log
    assert all(leaf.dtype == jnp.float32 for leaf in params)
    carry = cell.initial_carry(params, (B,))
    assert carry.dtype == jnp.complex64 and carry.shape == (B, N) and not carry.any()
    carry, y = cell.step(params, carry, jax.random.normal(getkey(), (B, I)))
    assert carry.dtype == jnp.complex64 and y.dtype == jnp.float32
    chex.assert_shape([carry, y], [(B, N), (B, H)])
    _, y = cell.step(params, cell.initial_carry(params, (2, 5)), jnp.ones((2, 5, I)))
    chex.assert_shape(y, (2, 5, H))
    assert cell.spec.output is None and cell.spec.linear is not None and cell.spec.parts is None
    assert lru(H).init(getkey(), I).nu_log.shape == (H,)  # state_size defaults to hidden_size


def test_registered():
    assert rj.cells.CELLS["lru"] is lru
    assert rj.cells.make("lru", H, state_size=N) is lru(H, state_size=N)


@pytest.mark.parametrize("dtype,complex_dtype", [(jnp.float64, jnp.complex128), (jnp.bfloat16, jnp.complex64)])
def test_carry_dtype_follows_the_params(dtype, complex_dtype, x64, getkey):
    cell = lru(H, state_size=N, dtype=dtype)
    params = cell.init(getkey(), I)
    assert all(leaf.dtype == dtype for leaf in params)
    assert cell.initial_carry(params, (B,)).dtype == complex_dtype
    carry, ys = rj.unroll(cell, params, jnp.ones((B, T, I), dtype), impl="associative")
    assert carry.dtype == complex_dtype and ys.dtype == dtype


@pytest.mark.parametrize("impl", ["step", "scan", "associative"])
def test_equals_the_papers_equations(impl, x64, getkey):
    cell = lru(H, state_size=N, r_min=0.5, max_phase=math.pi, dtype=jnp.float64)
    params = random_params(cell, getkey())
    xs = jax.random.normal(getkey(), (B, T, I), jnp.float64)
    h0 = random_carry(params, getkey())
    if impl == "step":
        carry, ys = h0, []
        for t in range(T):
            carry, y = cell.step(params, carry, xs[:, t])
            ys.append(y)
        ys = jnp.stack(ys, axis=1)
    else:
        carry, ys = rj.unroll(cell, params, xs, carry=h0, impl=impl)
    for b in range(B):
        h_ref, ys_ref = reference(params, np.asarray(xs[b]), np.asarray(h0[b]))
        np.testing.assert_allclose(ys[b], ys_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(carry[b], h_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("impl", ["scan", "associative"])
def test_lengths_and_reverse_equal_the_reference(impl, reverse, x64, getkey):
    cell = lru(H, state_size=N, dtype=jnp.float64)
    params = random_params(cell, getkey())
    xs = jax.random.normal(getkey(), (B, T, I), jnp.float64)
    h0 = random_carry(params, getkey())
    lengths = jnp.array([T, 0, 4])
    carry, ys = rj.unroll(cell, params, xs, carry=h0, lengths=lengths, impl=impl, reverse=reverse)
    for b, n in enumerate(np.asarray(lengths)):
        valid = np.asarray(xs[b, :n])
        h_ref, ys_ref = reference(params, valid[::-1] if reverse else valid, np.asarray(h0[b]))
        np.testing.assert_allclose(ys[b, :n], ys_ref[::-1] if reverse else ys_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(ys[b, n:], 0.0)
        np.testing.assert_allclose(carry[b], h_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [T, 0, 4]], ids=["full", "lengths"])
def test_associative_equals_scan_with_gradients(lengths, reverse, x64, getkey):
    cell = lru(H, state_size=N, r_min=0.3, dtype=jnp.float64)
    params = random_params(cell, getkey())
    xs = jax.random.normal(getkey(), (B, T, I), jnp.float64)
    h0 = random_carry(params, getkey())
    w = jax.random.normal(getkey(), (B, T, H), jnp.float64)
    v = random_carry(params, getkey())
    lengths = None if lengths is None else jnp.array(lengths)

    def loss(impl):
        def f(params, xs, h0):
            carry, ys = rj.unroll(cell, params, xs, carry=h0, lengths=lengths, reverse=reverse, impl=impl)
            return jnp.sum(w * ys) + jnp.sum((v.conj() * carry).real)  # reads Re and Im of the final state

        return f

    for argnum in range(3):
        (ref, g_ref), (got, g) = (jax.value_and_grad(loss(i), argnum)(params, xs, h0) for i in ("scan", "associative"))
        np.testing.assert_allclose(got, ref, rtol=1e-12)
        chex.assert_trees_all_close(g, g_ref, rtol=1e-10, atol=1e-12)
        assert all(bool(jnp.any(leaf != 0)) for leaf in jax.tree.leaves(g))


def test_gradients_pass_a_numerical_check(x64, getkey):
    cell = lru(H, state_size=N, r_min=0.3, dtype=jnp.float64)
    params = random_params(cell, getkey())
    xs = jax.random.normal(getkey(), (2, 5, I), jnp.float64)

    def f(params, xs):
        return rj.unroll(cell, params, xs, impl="associative")[1]

    jax.test_util.check_grads(f, (params, xs), order=1, modes=["rev"])


def test_time_zero(getkey):
    cell = lru(H, state_size=N)
    params = cell.init(getkey(), I)
    h0 = random_carry(params, getkey())
    carry, ys = rj.unroll(cell, params, jnp.zeros((B, 0, I)), carry=h0, impl="associative")
    np.testing.assert_array_equal(carry, h0)
    assert ys.shape == (B, 0, H)


def test_projection_runs_over_any_leading_dims(getkey):
    """``project`` is all that reads ``x``: hoisted over the sequence or run in the loop, the same result."""
    cell = lru(H, state_size=N)
    params = cell.init(getkey(), I)
    xs = jax.random.normal(getkey(), (B, T, I))
    loop = cell.spec.prepare(params)
    xp = cell.spec.project(loop, xs)
    assert xp.shape == (B, T, 2 * N + H) and xp.dtype == jnp.float32
    np.testing.assert_allclose(xp[:, 2], cell.spec.project(loop, xs[:, 2]), rtol=1e-6)
    hoisted = rj.unroll(cell, params, xs, impl="scan", hoist=True)
    inside = rj.unroll(cell, params, xs, impl="scan", hoist=False)
    chex.assert_trees_all_close(hoisted, inside, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("r_min,r_max,max_phase", [(0.0, 1.0, 2 * math.pi), (0.4, 0.9, math.pi / 10)])
def test_ring_initialisation(r_min, r_max, max_phase, x64, getkey):
    """|lambda|^2 is uniform on [r_min^2, r_max^2] (lambda uniform on the ring's area), the phase uniform on
    [0, max_phase], and gamma = sqrt(1 - |lambda|^2)."""
    n = 4000
    params = lru(2, state_size=n, r_min=r_min, r_max=r_max, max_phase=max_phase, dtype=jnp.float64).init(getkey(), 3)
    lam = np.asarray(params.lambda_)
    modulus, phase = np.abs(lam), np.exp(np.asarray(params.theta_log))
    assert np.all((r_min <= modulus) & (modulus <= r_max) & (modulus < 1))
    assert np.all((phase > 0) & (phase <= max_phase))
    np.testing.assert_allclose(np.exp(params.gamma_log), np.sqrt(1 - modulus**2), rtol=1e-12)
    ring = scipy.stats.uniform(r_min**2, r_max**2 - r_min**2)
    assert scipy.stats.kstest(modulus**2, ring.cdf).pvalue > 1e-3
    assert scipy.stats.kstest(phase, scipy.stats.uniform(0, max_phase).cdf).pvalue > 1e-3
    # a uniform |lambda| (not |lambda|^2) would fail: the test can tell the two apart
    assert scipy.stats.kstest(modulus, scipy.stats.uniform(r_min, r_max - r_min).cdf).pvalue < 1e-3


def test_gamma_at_init_in_float32(getkey):
    params = lru(H, state_size=2000, r_min=0.9, r_max=0.999).init(getkey(), I)
    modulus = np.abs(np.asarray(params.lambda_, np.complex128))
    np.testing.assert_allclose(np.exp(params.gamma_log), np.sqrt(1 - modulus**2), rtol=1e-4)
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in params)


def test_glorot_like_weights(getkey):
    """B_re, B_im ~ N(0, 1/(2i)), C_re, C_im ~ N(0, 1/N), D ~ N(0, 1/i) (paper, appendix A)."""
    i, n, h = 50, 400, 300
    params = lru(h, state_size=n).init(getkey(), i)
    for leaf, variance in [(params.B_re, 1 / (2 * i)), (params.B_im, 1 / (2 * i)), (params.C_re, 1 / n),
                           (params.C_im, 1 / n), (params.D, 1 / i)]:  # fmt: skip
        values = np.asarray(leaf, np.float64).ravel()
        assert abs(values.mean()) < 4 * math.sqrt(variance / values.size)
        np.testing.assert_allclose(values.var(), variance, rtol=0.05)
    assert not np.allclose(params.B_re, params.B_im)


def test_lyapunov_exponents_are_log_abs_lambda(x64, getkey):
    """At zero input the LRU is the linear map h -> lambda h; on [Re h, Im h] each |lambda_j| is a rotation
    and a scaling of one plane, so log|lambda_j| is an exponent twice."""
    n = 3
    cell = lru(H, state_size=n, dtype=jnp.float64)
    params = cell.init(getkey(), I)
    params = params._replace(nu_log=jnp.log(-jnp.log(jnp.array([0.95, 0.5, 0.2]))))  # well apart: fast alignment
    xs = jnp.zeros((2, 150, I), jnp.float64)
    carry = random_carry(params, getkey(), 2)
    with jax.numpy_dtype_promotion("standard"):  # the QR loop compares int64 steps with int32 ends under x64
        exponents = rj.analysis.lyapunov_spectrum(cell, params, xs, carry=carry, warmup=50)
    expected = np.sort(np.repeat(-np.exp(np.asarray(params.nu_log)), 2))[::-1]
    np.testing.assert_allclose(expected, np.log([0.95, 0.95, 0.5, 0.5, 0.2, 0.2]), rtol=1e-12)
    for row in np.asarray(exponents):
        np.testing.assert_allclose(row, expected, rtol=1e-10, atol=1e-12)


def test_jit_and_vmap(getkey):
    cell = lru(H, state_size=N)
    params = cell.init(getkey(), I)
    xs = jax.random.normal(getkey(), (B, T, I))
    ref = rj.unroll(cell, params, xs, impl="associative")[1]
    jitted = jax.jit(lambda p, x: rj.unroll(cell, p, x, impl="associative")[1])(params, xs)
    mapped = jax.vmap(lambda x: cell.step(params, cell.initial_carry(params), x)[1])(xs[:, 0])
    np.testing.assert_allclose(jitted, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mapped, ref[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "options,message",
    [
        (dict(r_min=0.5, r_max=0.5), "r_min: expected a number below r_max"),
        (dict(r_min=0.9, r_max=0.5), "r_min: expected a number below r_max"),
        (dict(r_max=1.1), r"r_max: expected a number in \(0.0, 1.0\]"),
        (dict(r_max=0.0), r"r_max: expected a number in \(0.0, 1.0\]"),
        (dict(r_min=-0.1), r"r_min: expected a number in \[0.0, 1.0\]"),
        (dict(r_min=float("nan")), "r_min: expected a finite number"),
        (dict(max_phase=0.0), r"max_phase: expected a number in \(0.0, 6.28"),
        (dict(max_phase=7.0), r"max_phase: expected a number in \(0.0, 6.28"),
        (dict(state_size=0), "state_size: expected a positive int"),
        (dict(state_size=2.0), "state_size: expected a positive int"),
        (dict(dtype=jnp.int32), "dtype: expected a floating dtype"),
        (dict(dtype=jnp.complex64), "dtype: expected a floating dtype"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        lru(H, **options)


def test_bad_hidden_size_and_carry(getkey):
    with pytest.raises(ValueError, match="hidden_size: expected a positive int"):
        lru(0)
    cell = lru(H, state_size=N)
    params = cell.init(getkey(), I)
    x = jnp.ones((B, I))
    with pytest.raises(ValueError, match="carry.*complex64"):
        cell.step(params, jnp.zeros((B, N)), x)  # a real carry
    with pytest.raises(ValueError, match="carry.*shape"):
        cell.step(params, jnp.zeros((B, H), jnp.complex64), x)  # hidden_size, not state_size
    with pytest.raises(ValueError, match="params.nu_log"):
        cell.step(params._replace(nu_log=params.nu_log.at[0].set(jnp.nan)), cell.initial_carry(params, (B,)), x)
    with pytest.raises(ValueError, match=r"params.theta_log: expected shape \(5,\)"):
        cell.step(params._replace(theta_log=params.theta_log[:2]), cell.initial_carry(params, (B,)), x)
    with pytest.raises(ValueError, match="output reads its input"):
        rj.cells.output_of(cell, cell.initial_carry(params, (B,)))
