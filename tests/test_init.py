"""Initialisers: shapes and dtypes, the distributions they promise, half precision as a rounded float32
draw, and clear errors for bad arguments."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax import init

I, H = 5, 8
GATES = [1, 3, 4]  # rnn, gru, lstm
# Unit roundoff u = 2^-p (p significand bits) of each dtype: a float32 value rounded to it moves by at
# most u times its size.
DTYPES = {"bfloat16": (jnp.bfloat16, 2.0**-8), "float16": (jnp.float16, 2.0**-11), "float32": (jnp.float32, 0.0)}
HALF = ["bfloat16", "float16"]
INPUT_INITS = [*init.INPUT_INITS, jax.nn.initializers.normal(0.1)]
INPUT_IDS = [*init.INPUT_INITS, "callable"]


@pytest.fixture
def precision():
    """Float32 matmuls at full precision (no TF32 on GPUs) for the orthogonality checks."""
    with jax.default_matmul_precision("highest"):
        yield


def f64(x) -> np.ndarray:
    return np.asarray(x, np.float64)


# --- shapes, dtypes, and half precision as the float32 draw rounded ------------------------------------


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("gates", GATES)
@pytest.mark.parametrize("fn", INPUT_INITS, ids=INPUT_IDS)
def test_input_weights(fn, gates, dtype, getkey):
    dt, _ = DTYPES[dtype]
    key = getkey()
    U = init.input_weights(key, fn, gates, H, I, dt)
    chex.assert_shape(U, (gates * H, I))
    assert U.dtype == dt and np.isfinite(f64(U)).all() and np.abs(f64(U)).max() > 0
    # The same key gives the float32 draw, rounded once.
    chex.assert_trees_all_equal(U, init.input_weights(key, fn, gates, H, I, jnp.float32).astype(dt))
    if gates > 1:  # each gate's block drawn on its own
        assert not np.array_equal(U[:H], U[H : 2 * H])


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("gates", GATES)
@pytest.mark.parametrize("name", init.RECURRENT_INITS)
def test_recurrent_weights(name, gates, dtype, getkey):
    dt, _ = DTYPES[dtype]
    key = getkey()
    W = init.recurrent_weights(key, name, gates, H, 1.5, dt)
    chex.assert_shape(W, (gates * H, H))
    assert W.dtype == dt and np.isfinite(f64(W)).all()
    chex.assert_trees_all_equal(W, init.recurrent_weights(key, name, gates, H, 1.5, jnp.float32).astype(dt))


def test_float64_draws_in_float64(x64, getkey):
    key = getkey()
    for name in init.RECURRENT_INITS:
        W = init.recurrent_weights(key, name, 4, H, 1.0, jnp.float64)
        assert W.dtype == jnp.float64
    U = init.input_weights(key, "glorot_uniform", 4, H, I, jnp.float64)
    b = init.chrono_bias(key, H, 10.0, jnp.float64)
    assert U.dtype == b.dtype == jnp.float64
    # Drawn in float64, not a float32 draw cast up: some entry has bits below float32's.
    assert not np.array_equal(f64(U), f64(U.astype(jnp.float32)))


def test_initialisers_jit(getkey):
    draw = jax.jit(lambda k: init.recurrent_weights(k, "orthogonal", 4, H, 1.0, jnp.bfloat16))
    assert draw(getkey()).dtype == jnp.bfloat16


# --- the distributions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("gain", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("gates", GATES)
def test_orthogonal_is_gain_times_orthogonal_per_gate(gates, gain, dtype, getkey, precision):
    dt, u = DTYPES[dtype]
    h = 16
    W = f64(init.recurrent_weights(getkey(), "orthogonal", gates, h, gain, dt))
    # In float32, Q^T Q = gain^2 I to float32's rounding (h-term sums of O(1/h) products: 1e-6 with margin).
    # Rounded to half precision each entry moves by at most u |q|, so each entry of Q^T Q moves by at most
    # (2u + u^2) sum_k |q_ki| |q_kj| <= (2u + u^2) gain^2 (Cauchy-Schwarz on two columns of norm gain).
    tol = max(1e-6, 2 * u + u * u) * gain**2
    for k in range(gates):
        Q = W[k * h : (k + 1) * h]
        np.testing.assert_allclose(Q.T @ Q, gain**2 * np.eye(h), rtol=0, atol=tol)
        np.testing.assert_allclose(Q @ Q.T, gain**2 * np.eye(h), rtol=0, atol=tol)
    if gates > 1:  # independent draws, not one matrix repeated
        assert not np.allclose(W[:h], W[h : 2 * h])


def test_orthogonal_float64(x64, getkey):
    W = f64(init.recurrent_weights(getkey(), "orthogonal", 4, 16, 1.5, jnp.float64))
    for k in range(4):
        Q = W[k * 16 : (k + 1) * 16]
        np.testing.assert_allclose(Q.T @ Q, 2.25 * np.eye(16), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_identity(dtype):
    dt, _ = DTYPES[dtype]
    W = init.recurrent_weights(jax.random.key(0), "identity", 3, H, 0.9, dt)
    chex.assert_trees_all_equal(W, jnp.tile(jnp.eye(H, dtype=jnp.float32) * np.float32(0.9), (3, 1)).astype(dt))


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_gaussian_variance(dtype, getkey):
    dt, u = DTYPES[dtype]
    h, gain = 400, 1.5
    W = f64(init.recurrent_weights(getkey(), "gaussian", 1, h, gain, dt))
    sigma, n = gain / np.sqrt(h), h * h
    # n = 160000 draws: the sample std has a relative standard error 1/sqrt(2n) ~ 0.18%, the mean sigma/sqrt(n);
    # 5 standard errors (0.9%) plus the rounding of each entry (at most u relative).
    np.testing.assert_allclose(W.std(), sigma, rtol=5 / np.sqrt(2 * n) + u)
    assert abs(W.mean()) < 5 * sigma / np.sqrt(n)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_torch_uniform_bounds(dtype, getkey):
    dt, u = DTYPES[dtype]
    h, gain = 64, 2.0
    bound = 1 / np.sqrt(h)
    W = f64(init.recurrent_weights(getkey(), "torch", 4, h, gain, dt))
    U = f64(init.input_weights(getkey(), "torch", 4, h, I, dt))
    # U(-bound, bound) over 16384 (1280) draws reaches past 0.99 (0.9) of the bound; rounding moves it by u.
    assert 0.99 * gain * bound < np.abs(W).max() <= gain * bound * (1 + u)
    assert 0.9 * bound < np.abs(U).max() <= bound * (1 + u)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_glorot_uniform_bound_is_per_gate(dtype, getkey):
    dt, u = DTYPES[dtype]
    U = f64(init.input_weights(getkey(), "glorot_uniform", 4, 64, 32, dt))
    bound = np.sqrt(6 / (64 + 32))  # fan_in = i, fan_out = h: each gate as its own layer
    assert 0.95 * bound < np.abs(U).max() <= bound * (1 + u)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_chrono_range(dtype, getkey):
    dt, u = DTYPES[dtype]
    t_max = 50.0
    key = getkey()
    b = init.chrono_bias(key, 256, t_max, dt)
    assert b.dtype == dt
    chex.assert_trees_all_equal(b, init.chrono_bias(key, 256, t_max, jnp.float32).astype(dt))
    b = f64(b)
    # log(U(1, T_max - 1)): in [0, log(T_max - 1)], spread over it.
    assert (b >= 0).all() and (b <= np.log(t_max - 1) * (1 + u)).all()
    assert b.min() < 0.5 and b.max() > np.log(t_max - 1) - 0.1 and b.std() > 0.3


# --- errors ----------------------------------------------------------------------------------------------

BAD_NUMBERS = [float("nan"), float("inf"), float("-inf"), True, False, "1.0", None, [1.0], jnp.array(1.0)]
BAD_IDS = ["nan", "inf", "-inf", "True", "False", "str", "None", "list", "array"]


@pytest.mark.parametrize("gain", [*BAD_NUMBERS, 0.0, 0, -1.0, -1e-9], ids=[*BAD_IDS, "0.0", "0", "-1", "-tiny"])
def test_bad_gain_raises(gain):
    with pytest.raises(ValueError, match="^gain: expected"):
        init.check_gain(gain)
    with pytest.raises(ValueError, match="^gain: expected"):
        init.recurrent_weights(jax.random.key(0), "orthogonal", 1, H, gain, jnp.float32)


@pytest.mark.parametrize("gain", [1, 0.5, np.float32(2.0), np.float64(1e-3), 1e6])
def test_good_gain(gain):
    assert init.check_gain(gain) == float(gain) and type(init.check_gain(gain)) is float


@pytest.mark.parametrize(
    "t_max", [*BAD_NUMBERS[:-2], 2.0, 2, 1.5, 0.0, -10.0], ids=[*BAD_IDS[:-2], "2.0", "2", "1.5", "0", "-10"]
)
def test_bad_chrono_raises(t_max):
    if t_max is None:  # None is no chrono: fine for check_chrono, not for chrono_bias
        assert init.check_chrono(None) is None
    else:
        with pytest.raises(ValueError, match="^chrono: expected .*T_max"):
            init.check_chrono(t_max)
    with pytest.raises(ValueError, match="^chrono: expected"):
        init.chrono_bias(jax.random.key(0), H, t_max, jnp.float32)


def test_good_chrono():
    assert init.check_chrono(2.5) == 2.5 and init.check_chrono(np.int64(100)) == 100.0


@pytest.mark.parametrize("dtype", [jnp.int32, "int8", jnp.complex64, "foo", None, 3, object], ids=str)
def test_bad_dtype_raises(dtype):
    with pytest.raises(ValueError, match="^dtype: expected a floating dtype"):
        init.check_dtype(dtype)
    with pytest.raises(ValueError, match="^dtype: expected a floating dtype"):
        init.input_weights(jax.random.key(0), "glorot_uniform", 1, H, I, dtype)


def test_draw_dtype(x64):
    assert init.draw_dtype(jnp.bfloat16) == init.draw_dtype("float16") == init.draw_dtype(jnp.float32) == jnp.float32
    assert init.draw_dtype(jnp.float64) == jnp.float64
    with jax.enable_x64(False):  # float64 params are float32 then, and so is the draw
        assert init.check_dtype(jnp.float64) == init.draw_dtype(jnp.float64) == jnp.float32


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: init.input_weights(jax.random.key(0), "xavier", 1, H, I, jnp.float32), "^input_init: expected"),
        (lambda: init.input_weights(jax.random.key(0), 3, 1, H, I, jnp.float32), "^input_init: expected"),
        (lambda: init.recurrent_weights(jax.random.key(0), "eye", 1, H, 1.0, jnp.float32), "^recurrent_init:"),
        (lambda: init.recurrent_weights(0, "orthogonal", 1, H, 1.0, jnp.float32), "^key: expected a PRNG key"),
        (lambda: init.chrono_bias(jnp.zeros(3), H, 10.0, jnp.float32), "^key: expected a PRNG key"),
    ],
    ids=["input_name", "input_int", "recurrent_name", "key_int", "key_shape"],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("rows, cols", [(8, 8), (8, 3), (3, 8), (1, 5)])
def test_orthogonal_is_jax_draw_and_the_same_under_vmap(rows, cols, getkey):
    key = getkey()
    Q = init.orthogonal(key, rows, cols, jnp.float32)
    np.testing.assert_array_equal(Q, jax.nn.initializers.orthogonal()(key, (rows, cols), jnp.float32))
    small = min(rows, cols)
    np.testing.assert_allclose(Q @ Q.T if rows < cols else Q.T @ Q, np.eye(small), atol=1e-6)
    keys = jax.random.split(key, 6).reshape(2, 3)
    batched = jax.jit(jax.vmap(jax.vmap(lambda k: init.orthogonal(k, rows, cols, jnp.float32))))(keys)
    np.testing.assert_array_equal(
        batched, np.stack([[init.orthogonal(k, rows, cols, jnp.float32) for k in r] for r in keys])
    )


HANGS = """
import jax, rnnjax as rj
model = rj.models.ManyToOne(rj.RNN(cell="gru", hidden_size=50), output_size=4)
init = jax.jit(jax.vmap(lambda k: model.init(k, 6)))
for i in range(10):
    jax.block_until_ready(init(jax.random.split(jax.random.key(i), 5)))
print("ok")
"""


def test_vmapped_init_of_a_gated_cell_does_not_hang_on_two_cores():
    """jaxlib 0.10.2's batched CPU QR deadlocks a 2-thread pool when a program holds two of them (a GRU's gates
    under vmap, batch 5): it hung on the second call before the draws went through init._serial_qr. The child is
    held to 2 cores, the pool's size here."""
    import os
    import subprocess
    import sys

    cores = sorted(os.sched_getaffinity(0))[:2]
    out = subprocess.run(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {cores}); exec({HANGS!r})"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
