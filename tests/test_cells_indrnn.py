"""The IndRNN against the paper's equation in numpy (float64), its gradient in closed form, the initialisation and
the constraint of the recurrent weights as the authors regulate them, and clear errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.cells import IndRNNParams, constrain_indrnn, indrnn
from rnnjax.cells.indrnn import recurrent_bound

B, T, I, H = 3, 7, 4, 6
ACTS = {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh}


def random_params(seed: int, u_scale: float = 1.2) -> IndRNNParams:
    """Params with both signs in ``u`` and a bias that leaves some ReLU units off: zeros or init values would
    hide a misplaced term."""
    rng = np.random.default_rng(seed)
    return IndRNNParams(
        U=jnp.asarray(rng.normal(size=(H, I))),
        u=jnp.asarray(rng.uniform(-u_scale, u_scale, size=H)),
        b=jnp.asarray(rng.normal(size=H) * 0.5),
    )


def reference(params: IndRNNParams, xs: np.ndarray, h0: np.ndarray, activation: str, lengths=None):
    """``h_t = sigma(U x_t + u * h_{t-1} + b)`` step by step; padded steps hold ``h`` and output zeros."""
    U, u, b = (np.asarray(a, np.float64) for a in params)
    f = ACTS[activation]
    lengths = np.full(xs.shape[0], xs.shape[1]) if lengths is None else lengths
    ys = np.zeros((xs.shape[0], xs.shape[1], H))
    h = np.array(h0, np.float64)
    for n in range(xs.shape[0]):
        for t in range(lengths[n]):
            h[n] = f(U @ xs[n, t] + u * h[n] + b)
            ys[n, t] = h[n]
    return h, ys


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_unroll_is_the_papers_recurrence(activation, x64):
    cell = indrnn(H, activation, dtype=jnp.float64)
    params = random_params(1)
    rng = np.random.default_rng(2)
    xs, h0 = rng.normal(size=(B, T, I)), np.abs(rng.normal(size=(B, H)))
    lengths = np.array([T, 3, 0])
    final, ys = rj.unroll(cell, params, jnp.asarray(xs), carry=jnp.asarray(h0), lengths=jnp.asarray(lengths))
    want_final, want_ys = reference(params, xs, h0, activation, lengths)
    np.testing.assert_allclose(ys, want_ys, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(final, want_final, rtol=1e-12, atol=1e-12)
    assert (want_ys[0] == 0).any() if activation == "relu" else True  # some units are off: ReLU is exercised

    carry, y = cell.step(params, jnp.asarray(h0), jnp.asarray(xs[:, 0]))
    one, _ = reference(params, xs[:, :1], h0, activation)
    np.testing.assert_allclose(y, one, rtol=1e-12)
    np.testing.assert_array_equal(carry, y)


def test_gradient_over_time_is_u_to_the_power_of_the_steps(x64):
    """Active ReLU units: ``dh_T / dh_0 = diag(u^T)`` (the paper's section 3.1), each unit on its own."""
    cell = indrnn(H, dtype=jnp.float64)
    params = random_params(3)._replace(u=jnp.linspace(0.5, 1.1, H), b=jnp.full(H, 50.0))  # every unit stays on
    xs = jnp.asarray(np.random.default_rng(4).normal(size=(1, T, I)))
    jac = jax.jacrev(lambda h0: rj.unroll(cell, params, xs, carry=h0)[0][0])(jnp.ones((1, H)))[:, 0]
    np.testing.assert_allclose(jac, np.diag(np.asarray(params.u) ** T), rtol=1e-12, atol=1e-15)


def test_runs_as_the_sequential_scan_only():
    cell = indrnn(H)
    assert cell.spec.parts is None and cell.spec.linear is None and cell.spec.gates is None
    assert rj.scan.resolve_impl(cell) == "scan" and rj.scan.resolve_impl(cell, platform="gpu") == "scan"
    params = cell.init(jax.random.key(0), I)
    for impl in ("fused", "associative"):
        with pytest.raises(ValueError, match="impl: indrnn .*use impl='scan'"):
            rj.unroll(cell, params, jnp.ones((B, T, I)), impl=impl)


def test_registered_and_in_a_network():
    assert rj.cells.CELLS["indrnn"] is indrnn
    net = rj.RNN(cell="indrnn", hidden_size=H, num_layers=2, bidirectional=True)
    params = net.init(jax.random.key(0), I)
    assert type(params[1][1]) is IndRNNParams and params[1][1].U.shape == (H, 2 * H)
    ys, _ = net.apply(params, jnp.ones((B, T, I)))
    assert ys.shape == (B, T, 2 * H)


# --- initialisation, as the authors draw it -----------------------------------------------------------------

BIG = 4096  # units: quantiles of U(low, high) within 3% of the range


def assert_uniform(u: np.ndarray, low: float, high: float) -> None:
    assert u.min() >= low and u.max() <= high
    levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    np.testing.assert_allclose(np.quantile(u, levels), low + (high - low) * levels, atol=0.03 * (high - low))


def test_init_as_published():
    params = indrnn(BIG).init(jax.random.key(0), 8)
    assert type(params) is IndRNNParams and params.U.shape == (BIG, 8) and params.U.dtype == jnp.float32
    np.testing.assert_allclose(np.std(params.U), 1e-3, rtol=0.03)  # U ~ N(0, 0.001^2), the adding problem's
    assert abs(np.mean(params.U)) < 1e-4
    assert_uniform(np.asarray(params.u), 0.0, 1.0)  # ReLU: u ~ U(0, 1), memories of different lengths
    np.testing.assert_array_equal(params.b, 0.0)


@pytest.mark.parametrize("t_max", [10, 784, 5000])
def test_init_with_t_max(t_max):
    bound = 2.0 ** (1.0 / t_max)
    assert recurrent_bound(t_max) == pytest.approx(bound) and recurrent_bound(t_max, 10.0) == 10.0 ** (1 / t_max)
    assert_uniform(np.asarray(indrnn(BIG, t_max=t_max).init(jax.random.key(1), 2).u, np.float64), 0.0, bound)
    long = np.asarray(indrnn(BIG, t_max=t_max, long_memory=True).init(jax.random.key(2), 2).u, np.float64)
    assert_uniform(long, 1.0 / bound - 1e-7, bound + 1e-7)  # the last layer's: a memory over t_max steps
    # every unit keeps a gradient sent back over t_max steps within [1/gamma, gamma] (up to float32 rounding)
    assert (long**t_max >= 0.5 * (1 - 1e-3)).all() and (long**t_max <= 2.0 * (1 + 1e-3)).all()


def test_init_tanh_is_symmetric():
    assert_uniform(np.asarray(indrnn(BIG, "tanh").init(jax.random.key(3), 2).u), -1.0, 1.0)
    bound = 10.0 ** (1 / 100)
    assert_uniform(np.asarray(indrnn(BIG, "tanh", t_max=100, gamma=10.0).init(jax.random.key(4), 2).u), -bound, bound)


def test_long_memory_with_gamma_one_is_all_ones():
    np.testing.assert_array_equal(indrnn(H, t_max=50, gamma=1.0, long_memory=True).init(jax.random.key(0), 2).u, 1.0)


def test_init_in_float64(x64):
    params = indrnn(H, dtype=jnp.float64, input_init="glorot_uniform").init(jax.random.key(0), I)
    assert all(p.dtype == jnp.float64 for p in params)


# --- the constraint ---------------------------------------------------------------------------------------


def test_constrain_clips_u_and_nothing_else():
    params = IndRNNParams(jnp.ones((2, 3)), jnp.array([-3.0, -0.5, 0.0, 0.9, 1.001, 7.0]), jnp.full(6, 5.0))
    bound = 2.0 ** (1 / 100)
    out = constrain_indrnn(params, 100)
    np.testing.assert_allclose(out.u, [-bound, -0.5, 0.0, 0.9, 1.001, bound], rtol=1e-7)
    np.testing.assert_array_equal(out.U, params.U)
    np.testing.assert_array_equal(out.b, params.b)
    assert out.u.dtype == params.u.dtype
    np.testing.assert_allclose(constrain_indrnn(params, 100, gamma=1.0).u, [-1, -0.5, 0, 0.9, 1, 1])
    assert (np.abs(np.asarray(out.u, np.float64)) ** 100 <= 2.0 + 1e-5).all()  # no gradient grows past gamma


def test_constrain_after_an_optimiser_step_over_a_network():
    """The documented use: a pure function over any pytree holding IndRNNParams, after each update, under jit."""
    optax = pytest.importorskip("optax")
    net = rj.RNN(cell=indrnn(H, t_max=T, input_init="glorot_uniform"), num_layers=2)
    params = {"rnn": net.init(jax.random.key(0), I), "head": jnp.ones(3)}
    opt = optax.sgd(10.0)
    state = opt.init(params)

    @jax.jit
    def train_step(params, state):
        # -sum(ys): every active unit's u grows, out of the bound after one large step
        grads = jax.grad(lambda p: -net.apply(p["rnn"], jnp.ones((B, T, I)))[0].sum() + p["head"].sum())(params)
        updates, state = opt.update(grads, state)
        return constrain_indrnn(optax.apply_updates(params, updates), T), state

    new, _ = train_step(params, state)
    bound = recurrent_bound(T)
    for layer in new["rnn"]:
        assert float(jnp.max(jnp.abs(layer[0].u))) <= bound * (1 + 1e-6)
    assert float(jnp.max(jnp.abs(new["rnn"][1][0].u))) == pytest.approx(bound)
    np.testing.assert_allclose(new["head"], params["head"] - 10.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: constrain_indrnn({"a": jnp.ones(2)}, 10), "params: expected a pytree holding IndRNNParams"),
        (lambda p: constrain_indrnn(p, 0), r"t_max: expected a number in \(0.0, inf\]"),
        (lambda p: constrain_indrnn(p, float("nan")), "t_max: expected a finite number"),
        (lambda p: constrain_indrnn(p, 10, gamma=0.5), r"gamma: expected a number in \[1.0, inf\].*largest factor"),
    ],
)
def test_constrain_errors(call, match):
    params = indrnn(H).init(jax.random.key(0), I)
    with pytest.raises(ValueError, match=match):
        call(params)


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(activation="sigmoid"), r"activation: expected one of \('relu', 'tanh'\), got 'sigmoid'"),
        (dict(t_max=0), r"t_max: expected a number in \(0.0, inf\], got 0.0"),
        (dict(t_max=True), "t_max: expected a finite number, got bool True"),
        (dict(t_max=float("inf")), "t_max: expected a finite number"),
        (dict(gamma=0.9), r"gamma: expected a number in \[1.0, inf\], got 0.9"),
        (dict(long_memory=True), "long_memory: needs t_max"),
        (dict(long_memory=1, t_max=5), "long_memory: expected True or False, got 1"),
        (dict(input_init="uniform"), "input_init: expected one of"),
        (dict(dtype=jnp.int32), "dtype: expected a floating dtype"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        indrnn(H, **kwargs)


def test_bad_params_raise(getkey):
    cell = indrnn(H)
    with pytest.raises(ValueError, match="params: expected IndRNNParams, got RNNParams .*indrnn.s init"):
        rj.unroll(cell, rj.cells.rnn(H).init(getkey(), I), jnp.ones((B, T, I)))
    params = cell.init(getkey(), I)
    with pytest.raises(ValueError, match=r"params.u: expected shape \(6,\) for indrnn\(hidden_size=6\)"):
        rj.unroll(cell, params._replace(u=jnp.ones(H + 1)), jnp.ones((B, T, I)))
    with pytest.raises(ValueError, match="params.u: expected finite values"):
        rj.unroll(cell, params._replace(u=params.u.at[0].set(jnp.nan)), jnp.ones((B, T, I)))
