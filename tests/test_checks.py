"""Every public function checks what it is given: one parametrised case per class of bad input.

Each case is a call that once failed deep inside JAX, with an internal shape, or not at all; each must
raise a ValueError whose message starts with the argument's name.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.checks import check_finite_tree, check_float, check_key, check_positive_int, check_probability

B, T, I, H = 3, 4, 2, 5
KEY = jax.random.key(0)
CELLS = {
    "rnn": rj.cells.rnn(H),
    "irnn": rj.cells.irnn(H),
    "lstm": rj.cells.lstm(H),
    "gru": rj.cells.gru(H),
    "gru_cho": rj.cells.gru(H, reset_after=False),
}


def _setup(name):
    cell = CELLS[name]
    params = cell.init(KEY, I)
    return cell, params, cell.initial_carry(params, (B,)), jnp.ones((B, T, I))


def _cast(carry, dtype):
    return jax.tree.map(lambda c: c.astype(dtype), carry)


def _nan_params(params):
    return params._replace(W=params.W.at[0, 0].set(jnp.nan))


# (name, call(cell, params, carry, xs), the start of the message)
CELL_CASES = {
    "step_carry_bf16": (
        lambda c, p, h, xs: c.step(p, _cast(h, jnp.bfloat16), xs[:, 0]),
        r"carry\S*: expected the params",
    ),
    "step_carry_batch": (lambda c, p, h, xs: c.step(p, h, xs[:2, 0]), r"carry\S*: expected shape \(2, 5\)"),
    "step_carry_nan": (
        lambda c, p, h, xs: c.step(p, jax.tree.map(lambda a: a.at[0, 0].set(jnp.nan), h), xs[:, 0]),
        "carry.*: expected finite values",
    ),
    "step_params_nan": (lambda c, p, h, xs: c.step(_nan_params(p), h, xs[:, 0]), r"params.W: expected finite"),
    "step_x_dtype": (lambda c, p, h, xs: c.step(p, h, xs[:, 0].astype(jnp.bfloat16)), r"x: expected the params' dtype"),
    "unroll_carry_f16": (lambda c, p, h, xs: rj.unroll(c, p, xs, carry=_cast(h, jnp.float16)), "carry.*: expected the"),
    "unroll_params_nan": (lambda c, p, h, xs: rj.unroll(c, _nan_params(p), xs), r"params.W: expected finite"),
    "unroll_cell_name": (lambda c, p, h, xs: rj.unroll(c.name, p, xs), "cell: expected a Cell"),
    "unroll_features": (lambda c, p, h, xs: rj.unroll(c, p, xs[..., :1]), r"params.U: expected shape \(\d+, 1\)"),
    "unroll_xs_dtype": (lambda c, p, h, xs: rj.unroll(c, p, xs.astype(jnp.float16)), r"xs: expected the params' dtype"),
    "unroll_lengths_bool": (lambda c, p, h, xs: rj.unroll(c, p, xs, lengths=np.ones(B, bool)), "lengths: expected an"),
    "unroll_lengths_int64": (
        lambda c, p, h, xs: rj.unroll(c, p, xs, lengths=np.array([2**31 + 2, 1, 1])),
        r"lengths: expected values in \[0, 4\]",
    ),
    "init_int_key": (lambda c, p, h, xs: c.init(0, I), "key: expected a PRNG key"),
    "init_input_size": (lambda c, p, h, xs: c.init(KEY, 0), "input_size: expected a positive int"),
    "initial_carry_batch": (lambda c, p, h, xs: c.initial_carry(p, "3"), "batch_shape: expected a tuple"),
}


@pytest.mark.parametrize("case", CELL_CASES)
@pytest.mark.parametrize("name", CELLS)
def test_bad_cell_calls_raise(name, case):
    call, match = CELL_CASES[case]
    with pytest.raises(ValueError, match="^" + match):
        call(*_setup(name))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: rj.cells.rnn(H, gain=float("nan")), "gain: expected a finite number"),
        (lambda: rj.cells.lstm(H, gain=-1.0), r"gain: expected a number in \(0.0, inf\]"),
        (lambda: rj.cells.gru(H, gain=0.0), "gain:"),
        (lambda: rj.cells.irnn(H, gain=float("inf")), "gain:"),
        (lambda: rj.cells.rnn(H, gain="1"), "gain:"),
        (lambda: rj.cells.rnn(H, bias=float("nan")), "bias:"),
        (lambda: rj.cells.lstm(H, forget_bias=float("inf")), "forget_bias:"),
        (lambda: rj.cells.lstm(H, chrono=2), "chrono:"),
        (lambda: rj.cells.gru(H, dtype=jnp.int32), "dtype: expected a floating dtype"),
        (lambda: rj.cells.lstm(H, dtype=None), "dtype: expected a floating dtype"),
        (lambda: rj.cells.rnn(0), "hidden_size:"),
        (lambda: rj.cells.rnn(True), "hidden_size:"),
        (lambda: rj.cells.make(3, H), "cell:"),
        (lambda: rj.RNN("lstm", H, dropout="0.1"), r"dropout: expected a probability in \[0, 1\), got str"),
        (lambda: rj.RNN("lstm", H, num_layers=1.0), "num_layers:"),
        (lambda: rj.RNN("lstm", 0), "hidden_size:"),
        (lambda: rj.RNN("lstm", H, bidirectional=1), "bidirectional:"),
        (lambda: rj.RNN("lstm", H).init(0, I), "key: expected a PRNG key"),
        (lambda: rj.RNN("lstm", H).init(KEY, -1), "input_size:"),
    ],
)
def test_bad_options_raise(build, match):
    with pytest.raises(ValueError, match="^" + match):
        build()


def test_network_errors_name_the_layer():
    net = rj.RNN("gru", H, num_layers=2, bidirectional=True)
    params = net.init(KEY, I)
    xs = jnp.ones((B, T, I))
    other = rj.RNN("gru", H + 1, num_layers=2, bidirectional=True).init(KEY, I)
    wrong_layer_1 = (params[0], other[1])
    with pytest.raises(ValueError, match=r"^params\[1\]\[0\].U: expected shape \(15, 12\) for gru\(hidden_size=5\)"):
        net.apply(wrong_layer_1, xs)
    wider = rj.RNN("gru", H, bidirectional=True).init(KEY, 2 * H + 1)
    with pytest.raises(ValueError, match=r"^params\[1\]\[0\].U: expected shape \(15, 10\) to read layer 0's outputs"):
        net.apply((params[0], wider[0]), xs)
    with pytest.raises(ValueError, match=r"^params\[0\]\[0\].U: expected shape \(15, 3\) for xs with 3 features"):
        net.apply(params, jnp.ones((B, T, I + 1)))
    with pytest.raises(ValueError, match="^key: expected a PRNG key"):
        rj.RNN("gru", H, dropout=0.5, num_layers=2).apply(rj.RNN("gru", H, num_layers=2).init(KEY, I), xs, key=1)


LABEL_LOSSES = [rj.losses.cross_entropy, rj.losses.accuracy, rj.losses.softmax_squared_error]


@pytest.mark.parametrize("loss", LABEL_LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [-1, 4, 100])
def test_labels_out_of_range_raise_or_give_nan_under_jit(loss, bad):
    logits = jax.random.normal(KEY, (B, T, 4))
    labels = jnp.zeros((B, T), jnp.int32).at[1, 2].set(bad)
    with pytest.raises(ValueError, match=r"^labels: expected classes in \[0, 4\) at valid steps"):
        loss(logits, labels)
    assert np.isnan(jax.jit(loss)(logits, labels))  # never a wrong class's score, never silent
    mask = jnp.ones((B, T)).at[1, 2].set(0.0)  # a masked step may hold anything (e.g. -100 as padding)
    assert np.isfinite(loss(logits, labels, mask)) and np.isfinite(jax.jit(loss)(logits, labels, mask))
    assert loss(logits, labels, mask) == loss(logits, labels.at[1, 2].set(0), mask)


def test_mask_from_lengths_checks_and_documents():
    np.testing.assert_array_equal(rj.losses.mask_from_lengths(jnp.array([3, 1]), 4), [[1, 1, 1, 0], [1, 0, 0, 0]])
    with pytest.raises(ValueError, match="^time:"):
        rj.losses.mask_from_lengths(jnp.array([3, 1]), -1)
    with pytest.raises(ValueError, match="^lengths:"):
        rj.losses.mask_from_lengths(jnp.array([[3, 1]]), 4)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: check_positive_int(2.0, "n"), "n: expected a positive int, got float 2.0"),
        (lambda: check_positive_int(False, "n"), "n: expected a positive int, got bool False"),
        (lambda: check_float(float("nan"), "g"), "g: expected a finite number"),
        (lambda: check_float(-1, "g", low=0), r"g: expected a number in \[0, inf\], got -1.0"),
        (lambda: check_probability("0.1", "p"), r"p: expected a probability in \[0, 1\), got str '0.1'"),
        (lambda: check_key(0), r"key: expected a PRNG key \(make one with jax.random.key\(seed\)\), got int 0"),
        (lambda: check_key(jax.random.split(KEY)), "key: expected a single PRNG key"),
        (lambda: check_finite_tree({"a": jnp.array([1.0, jnp.inf])}, "t"), r"t\['a'\]: expected finite values"),
    ],
)
def test_the_shared_checks(call, match):
    with pytest.raises(ValueError, match="^" + match):
        call()


def test_the_shared_checks_accept_what_is_right():
    assert check_positive_int(np.int64(3), "n") == 3
    assert check_float(np.float32(0.5), "g", low=0, low_open=True) == 0.5
    check_key(jax.random.PRNGKey(0))
    check_finite_tree(jax.jit(lambda x: (check_finite_tree(x, "x"), x)[1])(jnp.ones(2)), "x")  # tracers pass
