"""The stacked network: equal to torch.nn.RNN/LSTM/GRU (outputs, final states, gradients), dropout,
carries, and clear errors."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnjax as rj
from rnnjax.cells import GRUParams, LSTMParams, LSTMState, RNNParams

B, T, I, H = 3, 6, 4, 5
LENGTHS = np.array([T, 2, 4])  # the full length and a short one
ATOL = 1e-5

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
STRUCTURES = [(1, False), (1, True), (2, False), (2, True)]  # (num_layers, bidirectional)

# Block order of the stacked gates: our block k is PyTorch's block ORDER[k]. PyTorch stacks the LSTM's
# gates as (i, f, g, o), we as (f, i, C, o); the RNN (one block) and the GRU (r, z, n) agree.
TORCH_BLOCKS = {"rnn": [0], "lstm": [1, 0, 2, 3], "gru": [0, 1, 2]}


# --- helpers --------------------------------------------------------------------------------------------


def cell_name(kind: str) -> str:
    return kind.split("_")[0]


def torch_module(kind: str, num_layers: int = 1, bidirectional: bool = False, *, seed: int = 0, **kwargs):
    """A float32 ``torch.nn.RNN/LSTM/GRU`` (batch_first) with PyTorch's own random weights."""
    torch.manual_seed(seed)
    common = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **kwargs)
    if kind.startswith("rnn"):
        return torch.nn.RNN(I, H, nonlinearity=kind.split("_")[1], **common)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](I, H, **common)


def normal(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def random_carry(net: rj.RNN, params, seed: int):
    """A carry with the structure of ``net.initial_carry`` and standard normal leaves."""
    leaves, tree = jax.tree.flatten(net.initial_carry(params, B))
    return jax.tree.unflatten(tree, [normal(seed + k, x.shape) for k, x in enumerate(leaves)])


def to_torch_state(carry):
    """Our ``carry[layer][direction]`` as PyTorch's ``h0`` (or ``(h0, c0)``): (layers * dirs, batch, h)."""
    flat = [c for layer in carry for c in layer]  # index layer * num_directions + direction

    def stack(xs):
        return torch.from_numpy(np.stack([np.array(x) for x in xs]))

    if isinstance(flat[0], LSTMState):
        return stack([c.h for c in flat]), stack([c.c for c in flat])
    return stack(flat)


def from_torch_state(state, num_layers: int, num_directions: int):
    """PyTorch's ``h_n`` (or ``(h_n, c_n)``) in our layout ``finals[layer][direction]``."""

    def at(k):
        if isinstance(state, tuple):
            return LSTMState(state[0][k].detach().numpy(), state[1][k].detach().numpy())
        return state[k].detach().numpy()

    return tuple(tuple(at(layer * num_directions + d) for d in range(num_directions)) for layer in range(num_layers))


def run_torch(module, xs, lengths=None, carry=None):
    """PyTorch's ``(out, state)``, through a packed sequence when ``lengths`` are given."""
    x = torch.from_numpy(np.array(xs))
    if lengths is not None:
        x = pack_padded_sequence(x, torch.as_tensor(np.array(lengths)), batch_first=True, enforce_sorted=False)
    out, state = module(x, None if carry is None else to_torch_state(carry))
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=xs.shape[1])
    return out, state


def torch_grads_as_ours(module, name: str):
    """The ``.grad`` of every PyTorch weight, mapped to our params layout (written out independently of
    ``rj.interop``)."""
    h = module.hidden_size

    def blocks(x):
        parts = np.split(x, len(TORCH_BLOCKS[name]), axis=0)
        return np.concatenate([parts[k] for k in TORCH_BLOCKS[name]], axis=0)

    def direction(layer: int, d: int):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        g = {n: getattr(module, n + sfx).grad.numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        U, W = blocks(g["weight_ih"]), blocks(g["weight_hh"])
        if name == "gru":
            # r and z see b_ih + b_hh, the candidate sees its b_ih alone and its b_hh inside the reset.
            np.testing.assert_allclose(g["bias_ih"][: 2 * h], g["bias_hh"][: 2 * h], rtol=1e-5, atol=1e-6)
            return GRUParams(U, W, g["bias_ih"], g["bias_hh"][2 * h :])
        # Our b is b_ih + b_hh: both of PyTorch's biases get the gradient of b.
        np.testing.assert_allclose(g["bias_ih"], g["bias_hh"], rtol=1e-5, atol=1e-6)
        return (LSTMParams if name == "lstm" else RNNParams)(U, W, blocks(g["bias_ih"]))

    num_directions = 2 if module.bidirectional else 1
    return tuple(tuple(direction(layer, d) for d in range(num_directions)) for layer in range(module.num_layers))


def finals_term(finals, S_h, S_c):
    """``sum(h_n * S_h) + sum(c_n * S_c)`` over every layer and direction (our layout)."""
    total = 0.0
    for layer, layer_finals in enumerate(finals):
        for d, f in enumerate(layer_finals):
            k = layer * len(layer_finals) + d
            if isinstance(f, LSTMState):
                total = total + jnp.sum(f.h * S_h[k]) + jnp.sum(f.c * S_c[k])
            else:
                total = total + jnp.sum(f * S_h[k])
    return total


def assert_close(got, want, atol: float = ATOL, rtol: float = 0.0) -> None:
    chex.assert_trees_all_close(got, want, atol=atol, rtol=rtol)


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# --- equal to PyTorch -----------------------------------------------------------------------------------


# Gradients on the smallest net and on the one with every path: forward and backward scans, with and
# without lengths, a second layer reading both directions (each backward compilation costs about a second).
GRADIENT_STRUCTURES = [(1, False), (2, True)]


@functools.cache
def torch_case(kind: str, num_layers: int, bidirectional: bool, with_lengths: bool):
    """Ours and PyTorch's outputs, final states and (for GRADIENT_STRUCTURES) gradients of one scalar loss,
    with copied weights.

    Cached so that the forward and the gradient tests share one compilation per case.
    """
    module = torch_module(kind, num_layers, bidirectional)
    net, params = rj.interop.from_torch(module)
    D = net.num_directions
    xs, R = normal(1, (B, T, I)), normal(2, (B, T, D * H))
    S_h, S_c = normal(3, (num_layers * D, B, H)), normal(4, (num_layers * D, B, H))
    lengths = LENGTHS if with_lengths else None

    def loss(params):
        ys, finals = net.apply(params, xs, lengths)
        return jnp.sum(ys * R) + finals_term(finals, S_h, S_c), (ys, finals)

    with_grads = (num_layers, bidirectional) in GRADIENT_STRUCTURES
    if with_grads:
        (value, (ys, finals)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    else:
        value, (ys, finals) = jax.jit(loss)(params)
        grads = None

    out, state = run_torch(module, xs, lengths)
    h_n = state[0] if isinstance(state, tuple) else state
    torch_value = (out * torch.from_numpy(R)).sum() + (h_n * torch.from_numpy(S_h)).sum()
    if isinstance(state, tuple):
        torch_value = torch_value + (state[1] * torch.from_numpy(S_c)).sum()
    torch_value.backward()
    return {
        "ours": (ys, finals, value, grads),
        "torch": (
            out.detach().numpy(),
            from_torch_state(state, num_layers, D),
            torch_value.item(),
            torch_grads_as_ours(module, cell_name(kind)),
        ),
        "net": net,
    }


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("num_layers,bidirectional", STRUCTURES, ids=["1x1", "1x2", "2x1", "2x2"])
@pytest.mark.parametrize("kind", KINDS)
def test_outputs_and_final_states_match_torch(kind, num_layers, bidirectional, with_lengths):
    case = torch_case(kind, num_layers, bidirectional, with_lengths)
    ys, finals, value, _ = case["ours"]
    out, torch_finals, torch_value, _ = case["torch"]
    net = case["net"]
    assert net.output_size == H * (2 if bidirectional else 1)
    chex.assert_shape(ys, (B, T, net.output_size))
    assert_close(ys, out)
    # finals[layer][direction] against h_n[layer * num_directions + direction] (and c_n).
    assert_close(finals, torch_finals)
    # The loss sums ~200 float32 terms: its rounding error grows with |loss|.
    np.testing.assert_allclose(value, torch_value, rtol=1e-5, atol=ATOL)
    if with_lengths:
        valid = np.arange(T)[None, :] < LENGTHS[:, None]
        assert not np.asarray(ys)[~valid].any()  # padding outputs are zeros, as pad_packed_sequence's


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("num_layers,bidirectional", GRADIENT_STRUCTURES, ids=["1x1", "2x2"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_torch(kind, num_layers, bidirectional, with_lengths):
    _, _, _, grads = torch_case(kind, num_layers, bidirectional, with_lengths)["ours"]
    _, _, _, torch_grads = torch_case(kind, num_layers, bidirectional, with_lengths)["torch"]
    # Gradients reach ~20 here (sums over time and batch of O(1) terms), where float32's spacing is
    # ~2e-6 and the two libraries sum in different orders: 1e-5 absolute plus 1e-5 relative.
    chex.assert_trees_all_close(grads, torch_grads, atol=ATOL, rtol=1e-5)
    assert max(float(np.abs(g).max()) for g in jax.tree.leaves(grads)) > 1.0  # not vacuous


@pytest.mark.parametrize("kind", KINDS)
def test_length_zero_keeps_the_initial_carry(kind):
    """A row of length 0 gives zeros and keeps its carry; the other rows equal PyTorch given that carry."""
    module = torch_module(kind, 2, True)
    net, params = rj.interop.from_torch(module)
    xs, carry = normal(1, (B, T, I)), random_carry(net, params, 10)
    lengths = np.array([T, 0, 3])
    ys, finals = net.apply(params, xs, lengths, carry)
    chex.assert_trees_all_equal(np.asarray(ys[1]), np.zeros((T, 2 * H), np.float32))
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[1], finals), jax.tree.map(lambda x: x[1], carry))
    # PyTorch refuses a zero length; the other rows still equal it.
    rows = np.array([0, 2])
    out, state = run_torch(module, xs[rows], lengths[rows], jax.tree.map(lambda x: x[rows], carry))
    assert_close(ys[rows], out.detach().numpy())
    assert_close(jax.tree.map(lambda x: x[rows], finals), from_torch_state(state, 2, 2))


@pytest.mark.parametrize("kind", KINDS)
def test_initial_carry_matches_torch_h0(kind):
    """A carry acts as PyTorch's h0 (and c0); with lengths, see the test above."""
    module = torch_module(kind, 2, True)
    net, params = rj.interop.from_torch(module)
    xs, carry = normal(1, (B, T, I)), random_carry(net, params, 20)
    ys, finals = jax.jit(net.apply)(params, xs, None, carry)
    out, state = run_torch(module, xs, None, carry)
    assert_close(ys, out.detach().numpy())
    assert_close(finals, from_torch_state(state, 2, 2))
    out_zero, _ = run_torch(module, xs)  # what the zero carry gives (see the tests above)
    assert max_abs_diff(ys, out_zero.detach().numpy()) > 1e-2


def test_jit_and_eager_agree():
    module = torch_module("lstm", 2, True)
    net, params = rj.interop.from_torch(module)
    xs, carry = normal(1, (B, T, I)), random_carry(net, params, 30)
    eager = net.apply(params, xs, LENGTHS, carry)
    jitted = jax.jit(net.apply)(params, xs, LENGTHS, carry)
    assert_close(jitted, eager, atol=1e-6)


# --- network behaviour ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lstm_setup():
    """A 2-layer bidirectional LSTM net with dropout, its params and an input batch."""
    net = rj.RNN("lstm", H, num_layers=2, bidirectional=True, dropout=0.25)
    return net, net.init(jax.random.key(0), I), normal(1, (B, T, I))


def test_dropout_only_when_training(lstm_setup):
    net, params, xs = lstm_setup
    apply = jax.jit(net.apply, static_argnames="train")
    no_dropout = jax.jit(rj.RNN("lstm", H, num_layers=2, bidirectional=True).apply, static_argnames="train")
    key = jax.random.key(1)
    deterministic = no_dropout(params, xs, LENGTHS)
    # train=False ignores the key, and needs none; without dropout, training needs no key either.
    chex.assert_trees_all_equal(apply(params, xs, LENGTHS), deterministic)
    chex.assert_trees_all_equal(apply(params, xs, LENGTHS, key=key), deterministic)
    chex.assert_trees_all_equal(apply(params, xs, LENGTHS, key=key, train=False), deterministic)
    chex.assert_trees_all_equal(no_dropout(params, xs, LENGTHS, train=True), deterministic)

    ys, finals = apply(params, xs, LENGTHS, key=key, train=True)
    assert max_abs_diff(ys, deterministic[0]) > 1e-3
    # Reproducible for one key, different for another.
    chex.assert_trees_all_equal(apply(params, xs, LENGTHS, key=key, train=True), (ys, finals))
    ys_other, _ = apply(params, xs, LENGTHS, key=jax.random.key(2), train=True)
    assert max_abs_diff(ys, ys_other) > 1e-3
    # Dropout sits between the layers: the first layer's input is never dropped, and the last layer's
    # outputs are never dropped (an LSTM's valid outputs are never exactly zero).
    assert_close(finals[0], deterministic[1][0], atol=1e-6)
    assert max_abs_diff(finals[1][0].h, deterministic[1][1][0].h) > 1e-3
    valid = np.arange(T)[None, :] < LENGTHS[:, None]
    assert np.all(np.asarray(ys)[valid] != 0)


def test_dropout_needs_a_key_in_training(lstm_setup):
    net, params, xs = lstm_setup
    with pytest.raises(ValueError, match="key: expected a PRNG key for dropout=0.25 in training, got None"):
        net.apply(params, xs, train=True)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_one_layer_never_drops(bidirectional):
    net = rj.RNN("gru", H, bidirectional=bidirectional, dropout=0.5)
    params, xs = net.init(jax.random.key(0), I), normal(1, (B, T, I))
    trained = net.apply(params, xs, key=jax.random.key(1), train=True)
    chex.assert_trees_all_equal(trained, net.apply(params, xs))


def test_dropout_is_inverted_dropout_between_layers():
    """Layer 2 is ``tanh(I x)``: its outputs show the dropped, rescaled outputs of layer 1."""
    rate = 0.25
    cell = rj.cells.rnn(H)
    net = rj.RNN(cell, num_layers=2, dropout=rate)
    first, _ = net.init(jax.random.key(0), I)
    identity = RNNParams(jnp.eye(H), jnp.zeros((H, H)), jnp.zeros(H))
    params = (first, (identity,))
    xs = normal(1, (B, T, I))
    ys1, _ = rj.RNN(cell).apply((first,), xs)
    assert np.all(np.asarray(ys1) != 0)
    chex.assert_trees_all_close(net.apply(params, xs)[0], jnp.tanh(ys1), atol=1e-6, rtol=0)

    ys, _ = net.apply(params, xs, key=jax.random.key(3), train=True)
    ys, ys1 = np.asarray(ys), np.asarray(ys1)
    dropped = ys == 0
    np.testing.assert_allclose(ys[~dropped], np.tanh(ys1 / (1 - rate))[~dropped], atol=1e-6)
    # 90 units, each dropped with probability 0.25: 22.5 +- 4.1 expected.
    assert 0.1 < dropped.mean() < 0.4, dropped.mean()


def test_bidirectional_output_size_and_layout():
    net = rj.RNN("gru", H, num_layers=2, bidirectional=True)
    params = net.init(jax.random.key(0), I)
    assert net.output_size == 2 * H
    chex.assert_shape([params[0][0].U, params[0][1].U, params[1][0].U], [(3 * H, I), (3 * H, I), (3 * H, 2 * H)])
    xs = normal(1, (B, T, I))
    ys, finals = net.apply(params, xs, LENGTHS)
    chex.assert_shape(ys, (B, T, 2 * H))
    assert len(finals) == 2 and all(len(f) == 2 for f in finals)
    # The last layer's forward half is a forward pass over layer 1's output; the backward half reads
    # each row from its last valid step, and its final state is that at t = 0.
    ys1, _ = rj.RNN("gru", H, bidirectional=True).apply(params[:1], xs, LENGTHS)
    cell = net.step_cell
    fwd_final, fwd = rj.unroll(cell, params[1][0], ys1, lengths=LENGTHS)
    bwd_final, bwd = rj.unroll(cell, params[1][1], ys1, lengths=LENGTHS, reverse=True)
    chex.assert_trees_all_close(ys, jnp.concatenate([fwd, bwd], axis=-1), atol=1e-6, rtol=0)
    chex.assert_trees_all_close(finals[1], (fwd_final, bwd_final), atol=1e-6, rtol=0)
    chex.assert_trees_all_close(finals[1][1], bwd[:, 0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_initial_carry_is_zeros_shaped_like_the_finals(name):
    net = rj.RNN(name, H, num_layers=2, bidirectional=True)
    params, xs = net.init(jax.random.key(0), I), normal(1, (B, T, I))
    carry = net.initial_carry(params, B)
    ys, finals = net.apply(params, xs)
    assert jax.tree.structure(carry) == jax.tree.structure(finals)
    for leaf in jax.tree.leaves(carry):
        chex.assert_shape(leaf, (B, H))
        assert leaf.dtype == jnp.float32 and not np.asarray(leaf).any()
    if name == "lstm":
        assert isinstance(carry[1][1], LSTMState)
    chex.assert_trees_all_equal(net.apply(params, xs, carry=carry), (ys, finals))


def test_hidden_size_comes_from_the_cell():
    cell = rj.cells.rnn(16, "relu")
    net = rj.RNN(cell=cell)
    assert net.hidden_size == 16 and net.output_size == 16 and net.step_cell is cell
    params, xs = net.init(jax.random.key(0), I), normal(1, (B, T, I))
    chex.assert_shape(params[0][0].W, (16, 16))
    ys, finals = net.apply(params, xs)
    carry, expected = rj.unroll(cell, params[0][0], xs)
    chex.assert_trees_all_close((ys, finals[0][0]), (expected, carry), atol=1e-6, rtol=0)
    assert (np.asarray(ys) == 0).any() and (np.asarray(ys) >= 0).all()  # ReLU, not tanh
    with pytest.raises(ValueError, match="hidden_size: expected None or the cell's 16, got 8"):
        rj.RNN(cell=cell, hidden_size=8)


@pytest.fixture(scope="module")
def jitted_gru():
    net = rj.RNN("gru", H, num_layers=2, bidirectional=True)
    return net, net.init(jax.random.key(0), I), jax.jit(net.apply)


@settings(max_examples=15, deadline=None)
@given(
    lengths=st.lists(st.integers(0, T), min_size=B, max_size=B),
    seed=st.integers(0, 2**16),
)
def test_padding_never_changes_valid_outputs(jitted_gru, lengths, seed):
    net, params, apply = jitted_gru
    lengths = np.array(lengths)
    xs = normal(1, (B, T, I))
    padding = np.arange(T)[None, :, None] >= lengths[:, None, None]
    noisy = np.where(padding, 100 * normal(seed, (B, T, I)), xs)
    chex.assert_trees_all_close(apply(params, noisy, lengths), apply(params, xs, lengths), atol=1e-6, rtol=0)


@settings(max_examples=10, deadline=None)
@given(row=st.integers(0, B - 1), seed=st.integers(0, 2**16))
def test_batch_rows_are_independent(jitted_gru, row, seed):
    net, params, apply = jitted_gru
    xs = normal(1, (B, T, I))
    other = xs.copy()
    others = np.arange(B) != row
    other[others] = normal(seed, (B, T, I))[others]
    ys, finals = apply(params, xs, LENGTHS)
    ys2, finals2 = apply(params, other, LENGTHS)
    chex.assert_trees_all_close(
        (ys2[row], jax.tree.map(lambda x: x[row], finals2)),
        (ys[row], jax.tree.map(lambda x: x[row], finals)),
        atol=1e-6,
        rtol=0,
    )


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: rj.RNN("transformer", H), "cell: expected one of"),
        (lambda: rj.RNN("lstm"), "hidden_size: expected a positive int"),
        (lambda: rj.RNN("lstm", H, dropout=1.0), r"dropout: expected a probability in \[0, 1\), got float 1.0"),
        (lambda: rj.RNN("lstm", H, dropout=-0.1), r"dropout: expected a probability in \[0, 1\)"),
        (lambda: rj.RNN("lstm", H, num_layers=0), "num_layers: expected a positive int"),
        (lambda: rj.RNN("lstm", 0).init(jax.random.key(0), I), "hidden_size: expected a positive int"),
    ],
    ids=["unknown_cell", "no_hidden_size", "dropout_1", "dropout_negative", "num_layers_0", "hidden_size_0"],
)
def test_bad_configuration_raises(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def _other_params(**net_kwargs):
    return rj.RNN(**net_kwargs).init(jax.random.key(5), I)


def _nan_at(xs, index):
    xs = np.array(xs)
    xs[index] = np.nan
    return xs


def _as_tuples(carry):
    return jax.tree.map(lambda s: (s.h, s.c), carry, is_leaf=lambda x: isinstance(x, LSTMState))


# Each case changes one argument of a valid call ``net.apply(params, xs, LENGTHS, carry)``.
BAD_APPLY = {
    "xs_rank_2": (
        lambda g: dict(xs=g["xs"][0]),
        r"xs: expected shape \(batch, time, features\), got \(6, 4\)",
    ),
    "xs_rank_4": (lambda g: dict(xs=g["xs"][None]), r"xs: expected shape \(batch, time, features\)"),
    "xs_features": (
        lambda g: dict(xs=normal(1, (B, T, I + 1))),
        r"params\[0\]\[0\]\.U: expected shape \(20, 5\) for xs with 5 features per step, got \(20, 4\)",
    ),
    "xs_int": (
        lambda g: dict(xs=np.ones((B, T, I), np.int32)),
        r"xs: expected a floating dtype \(cast it with .astype\(jnp.float32\)\), got int32",
    ),
    "xs_nan": (
        lambda g: dict(xs=_nan_at(g["xs"], (1, 1, 2))),
        r"xs: expected finite values at valid steps, got nan at index \(1, 1, 2\)",
    ),
    "xs_inf": (lambda g: dict(xs=np.full((B, T, I), np.inf, np.float32)), "xs: expected finite values at valid steps"),
    "lengths_long": (lambda g: dict(lengths=np.array([T, 2, 4, 1])), r"lengths: expected shape \(3,\)"),
    "lengths_2d": (lambda g: dict(lengths=LENGTHS[:, None]), r"lengths: expected shape \(3,\)"),
    "lengths_scalar": (lambda g: dict(lengths=np.array(T)), r"lengths: expected shape \(3,\)"),
    "lengths_float": (
        lambda g: dict(lengths=LENGTHS.astype(np.float32)),
        "lengths: expected an integer dtype",
    ),
    "lengths_negative": (
        lambda g: dict(lengths=np.array([T, -1, 2])),
        r"lengths: expected values in \[0, 6\]",
    ),
    "lengths_over_T": (
        lambda g: dict(lengths=np.array([T + 1, 1, 2])),
        r"lengths: expected values in \[0, 6\]",
    ),
    "params_1_layer": (
        lambda g: dict(params=_other_params(cell="lstm", hidden_size=H, bidirectional=True)),
        "params: expected a tuple of 2 layers, each a tuple of 2 direction",
    ),
    "params_1_direction": (
        lambda g: dict(params=_other_params(cell="lstm", hidden_size=H, num_layers=2)),
        "params: expected a tuple of 2 layers, each a tuple of 2 direction",
    ),
    "params_list": (
        lambda g: dict(params=[list(layer) for layer in g["params"]]),
        "params: expected a tuple",
    ),
    "params_gru": (
        lambda g: dict(params=_other_params(cell="gru", hidden_size=H, num_layers=2, bidirectional=True)),
        r"params\[0\]\[0\]: expected LSTMParams, got GRUParams",
    ),
    "params_hidden": (
        lambda g: dict(params=_other_params(cell="lstm", hidden_size=H + 1, num_layers=2, bidirectional=True)),
        r"params\[0\]\[0\].U: expected shape \(20, 4\) for lstm\(hidden_size=5\) and input_size=4, got \(24, 4\)",
    ),
    "carry_tuples": (lambda g: dict(carry=_as_tuples(g["carry"])), "carry: expected structure"),
    "carry_layers": (lambda g: dict(carry=g["carry"][:1]), "carry: expected structure"),
    "carry_batch": (
        lambda g: dict(carry=jax.tree.map(lambda x: x[:2], g["carry"])),
        r"carry\[0\]\[0\].h: expected shape \(3, 5\)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_APPLY))
def test_bad_inputs_raise(lstm_setup, case):
    net, params, xs = lstm_setup
    good = dict(params=params, xs=xs, lengths=LENGTHS, carry=net.initial_carry(params, B))
    change, match = BAD_APPLY[case]
    with pytest.raises(ValueError, match=match):
        net.apply(**{**good, **change(good)})
