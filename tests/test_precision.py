"""Mixed precision (rnnjax.precision): bfloat16 matmuls with float32 accumulation, float32 params and the rest."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.precision import matmul, matmul_into

BF16 = jnp.bfloat16
CELLS = [
    ("rnn", {}),
    ("lstm", {}),
    ("gru", {}),
    ("lstm", {"proj_size": 3}),  # the projection W_hr is a matrix too, rounded with the others
    ("gru", {"reset_after": False}),  # the Cho GRU: W_hn is the extra matrix
]


def _round(a):
    """``a`` rounded to bfloat16 and back, in float64."""
    return np.asarray(jnp.asarray(a, jnp.float32).astype(BF16).astype(jnp.float32), np.float64)


def test_a_mixed_step_is_the_step_on_rounded_operands_accumulated_in_float32():
    cell = rj.cells.rnn(6, matmul_dtype=BF16)
    params = cell.init(jax.random.key(0), 4)
    x = jax.random.normal(jax.random.key(1), (3, 4))
    a0 = jax.random.normal(jax.random.key(2), (3, 6))
    a, y = cell.step(params, a0, x)
    # a_t = tanh(bf16(x) bf16(U)^T + bf16(a) bf16(W)^T + b), every product and sum in (at least) float32
    want = np.tanh(_round(x) @ _round(params.U).T + _round(a0) @ _round(params.W).T + np.asarray(params.b))
    assert a.dtype == jnp.float32 and y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(a), want, atol=2e-6)
    # ... and not the float32 step: the rounding is there
    f64 = lambda v: np.asarray(v, np.float64)  # noqa: E731
    full = np.tanh(f64(x) @ f64(params.U).T + f64(a0) @ f64(params.W).T + f64(params.b))
    assert np.max(np.abs(np.asarray(a) - full)) > 1e-4


@pytest.mark.parametrize("name,options", CELLS, ids=[f"{n}{o or ''}" for n, o in CELLS])
def test_mixed_cells_stay_near_float32_and_both_backward_passes_agree(name, options):
    plain = rj.cells.make(name, 16, **options)
    mixed = rj.cells.make(name, 16, matmul_dtype=BF16, **options)
    params = plain.init(jax.random.key(0), 5)
    xs = jax.random.normal(jax.random.key(1), (4, 30, 5))
    lengths = jnp.array([30, 12, 1, 25])

    def loss(cell, impl):
        return jax.jit(jax.value_and_grad(lambda p: rj.unroll(cell, p, xs, lengths=lengths, impl=impl)[1].sum()))

    _, g32 = loss(plain, "scan")(params)
    ys32 = rj.unroll(plain, params, xs, lengths=lengths)[1]
    ys = rj.unroll(mixed, params, xs, lengths=lengths)[1]
    assert ys.dtype == jnp.float32
    assert 0 < _rel(ys, ys32) < 2e-2
    impls = ["scan", "fused"] if mixed.spec.parts is not None else ["scan"]
    grads = {impl: loss(mixed, impl)(params)[1] for impl in impls}
    for impl, g in grads.items():
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(g)), impl  # float32 master weights
        for got, want in zip(jax.tree.leaves(g), jax.tree.leaves(g32), strict=True):
            assert _rel(got, want) < 3e-2, impl
    if len(grads) == 2:
        for got, want in zip(jax.tree.leaves(grads["fused"]), jax.tree.leaves(grads["scan"]), strict=True):
            assert _rel(got, want) < 2e-2


def test_the_mixed_matmuls_are_bfloat16_dots_with_float32_results():
    cell = rj.cells.lstm(8, matmul_dtype=BF16)
    params = cell.init(jax.random.key(0), 3)
    xs = jnp.ones((2, 5, 3))
    grad = jax.grad(lambda p: rj.unroll(cell, p, xs)[1].sum())
    text = jax.jit(grad).lower(params).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    mixed = [line for line in dots if "bf16" in line.split("->")[0] and line.rstrip().endswith("f32>")]
    assert dots and len(mixed) == len(dots), "\n".join(dots)
    plain = jax.jit(jax.grad(lambda p: rj.unroll(rj.cells.lstm(8), p, xs)[1].sum())).lower(params).as_text()
    assert "bf16" not in plain


def test_mixed_precision_trains_float32_params_with_optax():
    model = rj.models.ManyToOne(rj.RNN(cell=rj.cells.lstm(8, matmul_dtype=BF16)), output_size=1)
    tx = rj.train.optimizer("adam", 1e-2)
    state = rj.train.TrainState.create(model.init(jax.random.key(0), 2), tx)
    xs, ys = rj.data.adding_problem(np.random.default_rng(0), 16, 10)

    def loss_fn(params, batch, key):
        return rj.losses.mse(model.apply(params, batch[0]), batch[1]), {}

    step = jax.jit(rj.train.make_train_step(loss_fn, tx))
    losses = []
    for s in range(30):
        state, metrics = step(state, (xs, ys), jax.random.key(s))
        losses.append(float(metrics["loss"]))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.params))
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def test_a_model_definition_keeps_the_matmul_dtype():
    model = rj.models.ManyToOne(rj.RNN(cell=rj.cells.gru(4, matmul_dtype="bfloat16")), output_size=1)
    config = rj.models.to_config(model)
    rebuilt = rj.models.from_config(config)
    assert dict(rebuilt.rnn.cell.options)["matmul_dtype"] == jnp.dtype(BF16)
    assert rebuilt.rnn.cell.options == model.rnn.cell.options


@pytest.mark.parametrize(
    "matmul_dtype,dtype,match",
    [
        ("int8", jnp.float32, "expected None or one of"),
        (jnp.float32, jnp.float32, "expected None or one of"),
        ("no such dtype", jnp.float32, "expected None or one of"),
        (BF16, BF16, "not narrower than the params' dtype bfloat16"),
        (jnp.float16, BF16, "not narrower"),
    ],
)
def test_a_bad_matmul_dtype_is_named(matmul_dtype, dtype, match):
    with pytest.raises(ValueError, match=match):
        rj.cells.lstm(4, matmul_dtype=matmul_dtype, dtype=dtype)


def test_matmul_and_matmul_into():
    a = jax.random.normal(jax.random.key(0), (5, 7))
    w = jax.random.normal(jax.random.key(1), (7, 3))
    assert np.array_equal(matmul(a, w), a @ w)  # one dtype: the plain product
    got = matmul(a, w.astype(BF16))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), _round(a) @ _round(w), atol=1e-5)
    into = matmul_into(a, w, BF16)
    assert into.dtype == BF16
    np.testing.assert_allclose(np.asarray(into.astype(jnp.float32)), _round(_round(a) @ _round(w)), atol=1e-6)
    assert matmul_into(a, w, jnp.float32).dtype == jnp.float32


def _rel(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
