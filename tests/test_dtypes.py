"""Half precision end to end: every cell in bfloat16 and float16 against the float32 computation.

Each case draws the params in the dtype under test (``cell(dtype=...).init``) and runs the same
weights and inputs, cast exactly to float32, as the reference: the difference is then the rounding
of the computation alone, not of the weights. (float64 is checked far more strictly elsewhere: against
autodiff and PyTorch in float64, in test_fused, test_scan and test_interop.)

Tolerances, against float32, in units of the tested dtype's unit roundoff ``u = 2^-p`` (p significand
bits: bfloat16 8, ``u = 2^-8 ~ 3.9e-3``; float16 11, ``u = 2^-11 ~ 4.9e-4``). Each error is measured against the
largest entry of the reference (outputs are O(1): tanh, ReLU of O(1) inputs, gates):

* one step rounds its result k ~ 4 (RNN: matmul, bias, activation) to 8 (LSTM: matmul, bias, three
  gates, two products, a sum) times by at most u each; XLA:CPU accumulates a half-precision matmul in
  float32 and rounds once;
* the recurrence does not amplify errors (orthogonal W of gain 1, ``|tanh'|, |sigmoid'| <= 1``), so
  after T = 6 steps an output carries n = T k ~ 50 roundings: ~sqrt(n) u ~ 7u when they are
  independent, n u when they all align.
* ``STEP = 4u`` for one step (k roundings, sqrt(8) ~ 3 typical); ``SEQ = 16u`` for a sequence, about
  twice the random-walk size; ``GRAD = 32u`` for gradients, whose backward pass doubles the chain
  and rounds each weight gradient (a sum over time and batch) once more; the 2-layer bidirectional
  network's chains are twice as long again: ``NET = 32u`` for its outputs.

Measured (max error / max reference, over 8 seeds): outputs 1-3u, gradients 1-5u. A ReLU whose
pre-activation lies within rounding of 0 switches off in one computation and not the other, which
changes that unit's gradient by its whole size: a property of the derivative, not an error. The
gradient tests of the ReLU cells take the first seed whose units are on and off at the same steps in
both dtypes (:func:`_relu_seed`); the step and unroll tests use seed 0 for every cell.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.cells import LSTMState

B, T, I, H = 3, 6, 4, 16
LENGTHS = np.array([T, 2, 4])

CELLS = {
    "rnn_tanh": lambda dt: rj.cells.rnn(H, dtype=dt),
    "rnn_relu": lambda dt: rj.cells.rnn(H, "relu", dtype=dt),
    "irnn": lambda dt: rj.cells.irnn(H, dtype=dt),
    "lstm": lambda dt: rj.cells.lstm(H, dtype=dt),
    "gru": lambda dt: rj.cells.gru(H, dtype=dt),
    "gru_cho": lambda dt: rj.cells.gru(H, reset_after=False, dtype=dt),
}
# The dtype under test and its unit roundoff against the float32 reference (see the module docstring).
# float32 is the reference itself; float64 against the float32 reference is checked far more strictly
# (against autodiff and PyTorch in float64) by test_fused, test_scan and test_interop.
DTYPES = {
    "bfloat16": (jnp.bfloat16, 2.0**-8),
    "float16": (jnp.float16, 2.0**-11),
}
STEP, SEQ, GRAD, NET = 4, 16, 32, 32

# Cases that fail in half precision, with the reason: {(cell, dtype): reason}. None at present.
XFAIL: dict[tuple[str, str], str] = {}

pytestmark = pytest.mark.usefixtures("strict_dtypes")


def _cases():
    for cell in CELLS:
        for dtype in DTYPES:
            marks = [pytest.mark.xfail(strict=True, reason=XFAIL[cell, dtype])] if (cell, dtype) in XFAIL else []
            yield pytest.param(cell, dtype, id=f"{cell}-{dtype}", marks=marks)


CASES = list(_cases())


@pytest.fixture
def precision(request):
    """Float32 matmuls at full precision (no TF32 on GPUs)."""
    with jax.default_matmul_precision("highest"):
        yield DTYPES[request.node.callspec.params["dtype"]]


def normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def cast(tree, dtype):
    return jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree)


def setup(name: str, dtype, seed: int = 0):
    """The cell, params drawn in ``dtype`` (biases moved off zero) and inputs, with their float32 twins."""
    cell = CELLS[name](dtype)
    params = cell.init(jax.random.key(seed), I)
    params = params._replace(b=params.b + jnp.asarray(normal(seed + 1, params.b.shape, 0.3)).astype(dtype))
    xs = jnp.asarray(normal(seed + 2, (B, T, I))).astype(dtype)
    for leaf in jax.tree.leaves(params):
        assert leaf.dtype == dtype
    return cell, params, xs, cast(params, jnp.float32), xs.astype(jnp.float32)


def assert_close(got, want, dtype, tol: float) -> None:
    """``got`` has ``dtype`` and lies within ``tol`` times the largest entry of ``want``, leaf by leaf."""
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert g.dtype == dtype, (g.dtype, dtype)
        scale = float(np.abs(np.asarray(w, np.float64)).max())
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=0, atol=tol * scale)


@pytest.mark.parametrize("name,dtype", CASES)
def test_step(name, dtype, precision):
    dt, u = precision
    cell, params, xs, params32, xs32 = setup(name, dt)
    carry = cast(jax.tree.map(lambda c: normal(5, c.shape, 0.5), cell.initial_carry(params, (B,))), dt)
    got = cell.step(params, carry, xs[:, 0])
    want = cell.step(params32, cast(carry, jnp.float32), xs32[:, 0])
    assert_close(got, want, dt, STEP * u)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("name,dtype", CASES)
def test_unroll(name, dtype, with_lengths, reverse, precision):
    dt, u = precision
    cell, params, xs, params32, xs32 = setup(name, dt)
    lengths = LENGTHS if with_lengths else None
    got = rj.unroll(cell, params, xs, lengths=lengths, reverse=reverse)
    want = rj.unroll(cell, params32, xs32, lengths=lengths, reverse=reverse)
    assert_close(got, want, dt, SEQ * u)
    if with_lengths:  # padding stays exactly zero in every dtype
        valid = np.arange(T)[None, :] < LENGTHS[:, None]
        assert not np.asarray(got[1], np.float32)[~valid].any()


@pytest.mark.parametrize(
    "backward,hoist", [("auto", False), ("auto", True), ("scan", False)], ids=["fused", "fused_hoist", "scan"]
)
@pytest.mark.parametrize("name,dtype", CASES)
def test_gradients(name, dtype, backward, hoist, precision):
    """Forward and reverse scans with lengths, the outputs and the final state in the loss; ``hoist=True``
    is the default on accelerators (the input projection before the loop)."""
    dt, u = precision
    cell = CELLS[name](dt)

    def outputs(seed: int, dtype) -> list:
        _, params, xs, params32, xs32 = setup(name, dt, seed)
        p, x = (params, xs) if dtype == dt else (params32, xs32)
        return [rj.unroll(cell, p, x, lengths=LENGTHS, reverse=reverse)[1] for reverse in (False, True)]

    cell, params, xs, params32, xs32 = setup(name, dt, seed=_relu_seed(name, dt, outputs))
    R, S = normal(7, (2, B, T, H)), normal(8, (2, B, H))

    def loss(params, xs):
        total = 0.0
        for k, reverse in enumerate((False, True)):
            final, ys = rj.unroll(cell, params, xs, lengths=LENGTHS, reverse=reverse, impl=backward, hoist=hoist)
            h = final.h if isinstance(final, LSTMState) else final
            # The loss in float32: its own rounding is not what is measured.
            total = total + jnp.sum(ys.astype(jnp.float32) * R[k]) + jnp.sum(h.astype(jnp.float32) * S[k])
        return total

    got = jax.grad(loss, argnums=(0, 1))(params, xs)
    want = jax.grad(loss, argnums=(0, 1))(params32, xs32)
    assert_close(got, want, dt, GRAD * u)


# The network composes what the tests above check per cell and dtype: one half dtype keeps the suite short.
@pytest.mark.parametrize("name,dtype", [c for c in CASES if c.values[1] == "bfloat16"])
def test_network(name, dtype, precision):
    """``rj.RNN``, 2 layers, bidirectional, with lengths: outputs, final states and gradients."""
    dt, u = precision
    cell = CELLS[name](dt)
    net = rj.RNN(cell, num_layers=2, bidirectional=True)
    first = rj.RNN(cell, num_layers=1, bidirectional=True)

    def draw(seed: int, dtype) -> tuple:
        params, xs = net.init(jax.random.key(seed), I), jnp.asarray(normal(seed + 2, (B, T, I))).astype(dt)
        return (params, xs) if dtype == dt else (cast(params, jnp.float32), xs.astype(jnp.float32))

    def outputs(seed: int, dtype) -> list:  # each layer's
        params, xs = draw(seed, dtype)
        return [first.apply(params[:1], xs, LENGTHS)[0], net.apply(params, xs, LENGTHS)[0]]

    seed = _relu_seed(name, dt, outputs)
    (params, xs), (params32, xs32) = draw(seed, dt), draw(seed, jnp.float32)
    R = normal(3, (B, T, 2 * H))

    got = net.apply(params, xs, LENGTHS)
    want = net.apply(params32, xs32, LENGTHS)
    assert_close(got, want, dt, NET * u)

    def loss(params, xs):
        return jnp.sum(net.apply(params, xs, LENGTHS)[0].astype(jnp.float32) * R)

    assert_close(jax.grad(loss)(params, xs), jax.grad(loss)(params32, xs32), dt, GRAD * u)


def _relu_seed(name: str, dtype, outputs) -> int:
    """The first seed whose ReLU units are on and off at the same steps in ``dtype`` and in float32;
    0 for the other cells. ``outputs(seed, dtype)`` gives every ReLU layer's outputs: a unit is on
    where its output is > 0. A unit whose pre-activation lies within rounding of 0 may switch, and its
    gradient with it, by its whole size: a property of ReLU's derivative, not an error (module docstring)."""
    if name not in ("rnn_relu", "irnn"):
        return 0
    for seed in range(20):
        got, want = outputs(seed, dtype), outputs(seed, jnp.float32)
        if all(np.array_equal(np.asarray(g, np.float32) > 0, np.asarray(w) > 0) for g, w in zip(got, want)):
            return seed
    raise AssertionError(f"no seed in 0..19 whose ReLU units agree in {jnp.dtype(dtype).name} and float32")
