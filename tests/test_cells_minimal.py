"""minGRU and minLSTM (Feng et al. 2024): a numpy loop of the paper's equations, the parallel scan (in log space
and in linear space) against the sequential one, long sequences, the initialisation, gate traces, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.cells import MinGRUParams, MinLSTMParams
from rnnjax.cells.minimal import g, log_g

pytestmark = pytest.mark.usefixtures("strict_dtypes")

I, H, B, T = 3, 5, 4, 7
NAMES = ["mingru", "minlstm"]
CONFIGS = [(name, positive) for name in NAMES for positive in (True, False)]
IDS = [f"{name}-{'positive' if positive else 'plain'}" for name, positive in CONFIGS]


# The paper's equations in numpy -------------------------------------------------------------------------------


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_g(x):
    return np.where(x >= 0, x + 0.5, np_sigmoid(x))


def np_step(name, positive, p, h, x):
    """One step written from the paper, with each block's own ``Linear`` (no stacked matmul)."""
    p = {k: np.asarray(v) for k, v in p.items()}
    candidate = p["U_h"] @ x + p["b_h"]
    h_tilde = np_g(candidate) if positive else candidate
    if name == "mingru":
        z = np_sigmoid(p["U_z"] @ x + p["b_z"])
        return (1 - z) * h + z * h_tilde
    f = np_sigmoid(p["U_f"] @ x + p["b_f"])
    i = np_sigmoid(p["U_i"] @ x + p["b_i"])
    return f / (f + i) * h + i / (f + i) * h_tilde


def views(name, params):
    blocks = "zh" if name == "mingru" else "fih"
    return {f"{w}_{k}": getattr(params, f"{w}_{k}") for k in blocks for w in ("U", "b")}


def np_unroll(name, positive, params, xs, h0, lengths, reverse):
    """Row by row: the valid steps in the order they run, zeros at padding, the state after the last valid step."""
    p = views(name, params)
    xs, h0 = np.asarray(xs), np.asarray(h0)
    ys = np.zeros((xs.shape[0], xs.shape[1], h0.shape[-1]))
    final = h0.copy()
    for b in range(xs.shape[0]):
        n = xs.shape[1] if lengths is None else int(lengths[b])
        order = range(n - 1, -1, -1) if reverse else range(n)
        h = h0[b]
        for t in order:
            h = np_step(name, positive, p, h, xs[b, t])
            ys[b, t] = h
        final[b] = h
    return final, ys


def make(name, positive, dtype=jnp.float64):
    return rj.cells.make(name, H, positive=positive, dtype=dtype)


def random_params(cell, key):
    """Params drawn wider than the init, so gates and candidates cover both branches of g."""
    params = cell.init(key, I)
    k_u, k_b = jax.random.split(jax.random.fold_in(key, 1))
    return params._replace(
        U=jax.random.normal(k_u, params.U.shape, params.U.dtype),
        b=jax.random.normal(k_b, params.b.shape, params.b.dtype),
    )


@pytest.fixture
def problem(getkey, x64):
    def build(name, positive):
        cell = make(name, positive)
        params = random_params(cell, getkey())
        xs = jax.random.normal(getkey(), (B, T, I), jnp.float64)
        h0 = jax.random.normal(getkey(), (B, H), jnp.float64)  # any sign: h_0 enters linearly
        return cell, params, xs, h0

    return build


# The equations ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,positive", CONFIGS, ids=IDS)
@pytest.mark.parametrize("impl", ["scan", "associative"])
def test_unroll_is_the_papers_loop(name, positive, impl, problem):
    cell, params, xs, h0 = problem(name, positive)
    for lengths in (None, np.array([7, 0, 3, 5])):
        for reverse in (False, True):
            final, ys = rj.unroll(
                cell, params, xs, carry=h0, lengths=None if lengths is None else jnp.asarray(lengths), reverse=reverse,
                impl=impl,
            )  # fmt: skip
            want_final, want_ys = np_unroll(name, positive, params, xs, h0, lengths, reverse)
            where = f"{lengths=} {reverse=}"
            np.testing.assert_allclose(ys, want_ys, rtol=1e-12, atol=1e-12, err_msg=where)
            np.testing.assert_allclose(final, want_final, rtol=1e-12, atol=1e-12, err_msg=where)


@pytest.mark.parametrize("name,positive", CONFIGS, ids=IDS)
def test_step_is_the_papers_step(name, positive, problem):
    cell, params, xs, h0 = problem(name, positive)
    h, y = cell.step(params, h0, xs[:, 0])
    want = np.stack([np_step(name, positive, views(name, params), h0[b], xs[b, 0]) for b in range(B)])
    np.testing.assert_allclose(h, want, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(y, h)  # spec.output = 0: y_t = h_t
    assert cell.spec.output == 0


def test_g_is_positive_continuous_and_log_g_is_its_log(x64):
    x = jnp.concatenate([jnp.linspace(-30.0, 30.0, 601), jnp.array([0.0, -1e-300, 1e-300])])
    assert bool(jnp.all(g(x) > 0))
    np.testing.assert_allclose(g(x), np_g(np.asarray(x)), rtol=1e-15)
    np.testing.assert_allclose(g(jnp.array([-1e-12, 1e-12])), [0.5, 0.5], atol=1e-12)  # continuous at 0
    np.testing.assert_allclose(log_g(x), jnp.log(g(x)), rtol=1e-14, atol=1e-15)
    # Its derivative is g'/g everywhere, at the kink too, so the two forms' gradients agree there as well.
    d_log = jax.vmap(jax.grad(log_g))(x)
    d_g = jax.vmap(jax.grad(g))(x)
    np.testing.assert_allclose(d_log, d_g / g(x), rtol=1e-13, atol=1e-15)
    assert float(jax.grad(log_g)(0.0)) == 2.0
    assert bool(jnp.all(jnp.isfinite(jax.vmap(jax.grad(log_g))(jnp.array([-800.0, 800.0])))))


@pytest.mark.parametrize("name", NAMES)
def test_log_coefficients_are_the_logs_of_the_coefficients(name, x64, getkey):
    cell = make(name, True)
    params = random_params(cell, getkey())
    loop = cell.spec.prepare(params)
    xp = cell.spec.project(loop, 3.0 * jax.random.normal(getkey(), (50, I), jnp.float64))
    a, b = cell.spec.linear.coefficients(loop, xp)
    log_a, log_b = cell.spec.linear.log_coefficients(loop, xp)
    assert bool(jnp.all(a > 0)) and bool(jnp.all(b > 0))
    np.testing.assert_allclose(log_a, jnp.log(a), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(log_b, jnp.log(b), rtol=1e-13, atol=1e-14)


def test_plain_model_has_no_log_space_form():
    """positive=False: b_t can be negative, so only the linear-space associative scan applies."""
    for name in NAMES:
        assert make(name, False, jnp.float32).spec.linear.log_coefficients is None
        assert make(name, True, jnp.float32).spec.linear.log_coefficients is not None


# Sequential == parallel ---------------------------------------------------------------------------------------


def weights(shape):
    return jnp.cos(jnp.arange(int(np.prod(shape)), dtype=jnp.float64).reshape(shape))


def value_and_grads(cell, params, xs, h0, lengths, reverse, impl):
    def loss(params, xs, h0):
        final, ys = rj.unroll(cell, params, xs, carry=h0, lengths=lengths, reverse=reverse, impl=impl)
        return jnp.sum(jnp.sin(ys) * weights(ys.shape)) + jnp.sum(jnp.tanh(final) * weights(final.shape))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, xs, h0)


@pytest.mark.parametrize("name,positive", CONFIGS, ids=IDS)
def test_parallel_equals_sequential_with_gradients(name, positive, problem):
    """float64: values and gradients w.r.t. params, inputs and the initial carry, with lengths (one of 0) and
    reversal."""
    cell, params, xs, h0 = problem(name, positive)
    for lengths in (None, jnp.array([7, 0, 3, 5])):
        for reverse in (False, True):
            sequential = value_and_grads(cell, params, xs, h0, lengths, reverse, "scan")
            parallel = value_and_grads(cell, params, xs, h0, lengths, reverse, "associative")
            for got, want in zip(jax.tree.leaves(parallel), jax.tree.leaves(sequential), strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12, err_msg=f"{lengths=} {reverse=}")
            # A row of length 0 keeps its carry and gets no gradient from the outputs through xs.
            if lengths is not None:
                np.testing.assert_array_equal(parallel[1][1][1], 0.0)


def forgetful(cell, params):
    """Every step keeps about a quarter of the state (a_t ~ 0.27): products of a_t underflow after ~550 steps
    in float64, ~70 in float32."""
    k = 0 if cell.name == "mingru" else 1  # the block that drives a_t down: z up (minGRU), i up (minLSTM)
    return params._replace(b=params.b.at[k * H : (k + 1) * H].set(1.0))


@pytest.mark.parametrize("name,positive", CONFIGS, ids=IDS)
def test_long_sequences_where_products_underflow(name, positive, x64, getkey):
    """T = 2000 in float64: the product of the a_t is 0 in floating point, yet both forms agree, in values and
    gradients, with no NaN or Inf; the log-space form's error grows with |log A_t|."""
    time = 2000
    cell = make(name, positive)
    params = forgetful(cell, cell.init(getkey(), I))
    xs = jax.random.normal(getkey(), (2, time, I), jnp.float64)
    h0 = jnp.full((2, H), 0.7, jnp.float64)
    loop = cell.spec.prepare(params)
    a, _ = cell.spec.linear.coefficients(loop, cell.spec.project(loop, xs))
    assert float(jnp.min(jnp.cumprod(a, axis=1)[:, -1])) == 0.0  # the setting does underflow
    sequential = value_and_grads(cell, params, xs, h0, None, False, "scan")
    parallel = value_and_grads(cell, params, xs, h0, None, False, "associative")
    # Log space: log A_t + cumlogsumexp(log b - log A) cancels terms of size |log A_t| ~ 2600 here, so each
    # b_t carries ~1e-13 relative error, and sums over 2000 steps (the gradients of b) ~3e-9 (measured).
    tol = dict(rtol=1e-7, atol=1e-8) if positive else dict(rtol=1e-11, atol=1e-12)
    for got, want in zip(jax.tree.leaves(parallel), jax.tree.leaves(sequential), strict=True):
        assert bool(jnp.all(jnp.isfinite(got)))
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("name", NAMES)
def test_long_sequences_in_float32(name, getkey):
    """float32, T = 1000: the linear-space scan agrees to rounding; the log-space one (Heinsen's cumsum and
    cumlogsumexp) loses digits as |log A_t| grows, measured 2e-4 at T = 1000; held here to 1e-3."""
    time = 1000
    xs = jax.random.normal(getkey(), (2, time, I))
    for positive, atol in ((False, 1e-5), (True, 1e-3)):
        cell = make(name, positive, jnp.float32)
        params = forgetful(cell, cell.init(getkey(), I))
        _, ys = rj.unroll(cell, params, xs, impl="scan")
        _, ya = rj.unroll(cell, params, xs, impl="associative")
        assert bool(jnp.all(jnp.isfinite(ya)))
        np.testing.assert_allclose(ya, ys, rtol=0, atol=atol, err_msg=f"{positive=}")


# Initialisation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,blocks", [("mingru", 2), ("minlstm", 3)])
def test_init_is_torch_linear(name, blocks, getkey):
    """``U`` and ``b`` ~ U(-1/sqrt(i), 1/sqrt(i)), as nn.Linear(i, k*h) draws them."""
    i, h = 16, 64
    cell = rj.cells.make(name, h)
    params = cell.init(getkey(), i)
    assert type(params) is (MinGRUParams if name == "mingru" else MinLSTMParams)
    assert params.U.shape == (blocks * h, i) and params.b.shape == (blocks * h,)
    assert params.U.dtype == jnp.float32 and params.b.dtype == jnp.float32
    bound = 1.0 / np.sqrt(i)
    for w in (params.U, params.b):
        w = np.asarray(w)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
        assert abs(w.mean()) < 0.1 * bound
        np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.1)  # the uniform's, not a Gaussian's
    # The views are the blocks, in the documented order.
    blocks_order = "zh" if name == "mingru" else "fih"
    for k, gate in enumerate(blocks_order):
        np.testing.assert_array_equal(getattr(params, f"U_{gate}"), params.U[k * h : (k + 1) * h])
        np.testing.assert_array_equal(getattr(params, f"b_{gate}"), params.b[k * h : (k + 1) * h])
    assert not np.array_equal(params.U[:h], params.U[h : 2 * h])  # blocks drawn independently


@pytest.mark.parametrize("name", NAMES)
def test_other_input_inits(name, getkey):
    cell = rj.cells.make(name, 8, input_init="glorot_uniform")
    params = cell.init(getkey(), 4)
    np.testing.assert_array_equal(params.b, 0.0)
    bound = np.sqrt(6.0 / (4 + 8))  # per block: fan_in = i, fan_out = h
    assert float(jnp.max(jnp.abs(params.U))) <= bound
    custom = rj.cells.make(name, 8, input_init=jax.nn.initializers.constant(0.25)).init(getkey(), 4)
    np.testing.assert_array_equal(custom.U, 0.25)


def test_float64_params(x64, getkey):
    params = rj.cells.minlstm(H, dtype=jnp.float64).init(getkey(), I)
    assert params.U.dtype == jnp.float64 and params.b.dtype == jnp.float64


def test_half_precision_params_are_the_float32_draw_rounded(getkey):
    key = getkey()
    p16 = rj.cells.mingru(H, dtype=jnp.bfloat16).init(key, I)
    p32 = rj.cells.mingru(H).init(key, I)
    assert p16.U.dtype == jnp.bfloat16
    np.testing.assert_array_equal(p16.U, p32.U.astype(jnp.bfloat16))
    np.testing.assert_array_equal(p16.b, p32.b.astype(jnp.bfloat16))


def test_factories_are_cached_and_options_readable():
    assert rj.cells.mingru(4) is rj.cells.make("mingru", 4)
    assert rj.cells.minlstm(4, positive=False) is rj.cells.minlstm(4, positive=False)
    assert dict(rj.cells.minlstm(4).options) == {"positive": True, "input_init": "linear", "dtype": jnp.float32}
    assert {"mingru", "minlstm"} <= set(rj.cells.CELLS)


# Gate traces --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gate_traces(name, getkey):
    """What rj.analysis.gate_traces reads of the cell (float32: the analysis' masks meet int64 lengths in x64)."""
    cell = make(name, True, jnp.float32)
    params = random_params(cell, getkey())
    xs = jax.random.normal(getkey(), (B, T, I))
    lengths = jnp.array([7, 0, 3, 5])
    traces = rj.analysis.gate_traces(cell, params, xs, lengths=lengths)
    p = {k: np.asarray(v) for k, v in views(name, params).items()}
    x = np.asarray(xs)
    valid = np.arange(T)[None, :] < np.asarray(lengths)[:, None]
    if name == "mingru":
        want = {"z": np_sigmoid(x @ p["U_z"].T + p["b_z"])}
    else:
        f, i = np_sigmoid(x @ p["U_f"].T + p["b_f"]), np_sigmoid(x @ p["U_i"].T + p["b_i"])
        want = {"f_prime": f / (f + i), "i_prime": i / (f + i)}
        np.testing.assert_allclose(
            traces["f_prime"] + traces["i_prime"], np.where(valid[..., None], np.ones(H), np.nan), rtol=1e-6
        )
    want["h_tilde"] = np_g(x @ p["U_h"].T + p["b_h"])
    _, want["h"] = np_unroll(name, True, params, xs, np.zeros((B, H)), np.asarray(lengths), False)
    assert set(traces) == set(want)
    for key, value in want.items():
        np.testing.assert_allclose(
            traces[key], np.where(valid[..., None], value, np.nan), rtol=1e-5, atol=1e-6, err_msg=key
        )


# In a network --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_in_a_bidirectional_network(name, getkey):
    net = rj.RNN(cell=name, hidden_size=6, num_layers=2, bidirectional=True)
    params = net.init(getkey(), I)
    xs = jax.random.normal(getkey(), (B, T, I))
    ys, _ = net.apply(params, xs, lengths=jnp.array([7, 0, 3, 5]))
    assert ys.shape == (B, T, 12) and bool(jnp.all(jnp.isfinite(ys)))
    np.testing.assert_array_equal(ys[1], 0.0)


# Errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [rj.cells.mingru, rj.cells.minlstm])
@pytest.mark.parametrize(
    "options,match",
    [
        (dict(positive=1), "positive: expected True"),
        (dict(positive="yes"), "positive: expected True"),
        (dict(input_init="orthogonal"), "input_init: expected 'linear'"),
        (dict(dtype=jnp.int32), "dtype: expected a floating dtype"),
    ],
)
def test_bad_options_raise(factory, options, match):
    with pytest.raises(ValueError, match=match):
        factory(4, **options)


@pytest.mark.parametrize("factory", [rj.cells.mingru, rj.cells.minlstm])
def test_bad_sizes_raise(factory, getkey):
    with pytest.raises(ValueError, match="hidden_size"):
        factory(0)
    with pytest.raises(ValueError, match="input_size"):
        factory(4).init(getkey(), 0)


def test_positional_options_are_refused():
    with pytest.raises(TypeError):
        rj.cells.mingru(4, False)


def test_bad_params_inputs_and_impls_raise(getkey):
    cell = rj.cells.minlstm(4)
    params = cell.init(getkey(), I)
    xs = jnp.ones((2, 5, I))
    with pytest.raises(ValueError, match=r"params.U: expected shape \(12, 3\)"):
        rj.unroll(cell, params._replace(U=params.U[:8]), xs)
    with pytest.raises(ValueError, match="MinLSTMParams"):
        rj.unroll(cell, rj.cells.mingru(4).init(getkey(), I), xs)
    with pytest.raises(ValueError, match="input_size=3"):
        rj.unroll(cell, params, jnp.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="no hand-written backward pass"):
        rj.unroll(cell, params, xs, impl="fused")
    with pytest.raises(ValueError, match="carry"):
        cell.step(params, jnp.zeros((2, 3)), jnp.ones((2, I)))
