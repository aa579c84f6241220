"""Weights to and from PyTorch and Flax: round trips, equal outputs, the Flax wrapper, and clear errors."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnjax as rj
from rnnjax.cells import LSTMParams, LSTMState

B, T, I, H = 3, 6, 4, 5
LENGTHS = np.array([T, 2, 4])  # the full length and a short one (Flax's RNN cannot take 0)
ATOL = 1e-5


def normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return (scale * np.random.default_rng(seed).normal(size=shape)).astype(np.float32)


def perturbed(tree, seed: int, scale: float = 0.5):
    """``tree`` with random normal leaves of the same shapes: zero-initialised biases would hide a bias
    put in the wrong place."""
    leaves, structure = jax.tree.flatten(tree)
    return jax.tree.unflatten(structure, [normal(seed + k, jnp.shape(x), scale) for k, x in enumerate(leaves)])


def assert_close(got, want, atol: float = ATOL) -> None:
    chex.assert_trees_all_close(got, want, atol=atol, rtol=0)


# --- PyTorch --------------------------------------------------------------------------------------------

OUR_CELLS = {
    "rnn_tanh": (rj.cells.rnn(H), torch.nn.RNN, "RNN_TANH"),
    "rnn_relu": (rj.cells.rnn(H, "relu"), torch.nn.RNN, "RNN_RELU"),
    "lstm": (rj.cells.lstm(H), torch.nn.LSTM, "LSTM"),
    "gru": (rj.cells.gru(H), torch.nn.GRU, "GRU"),
}


def run_torch(module, xs, lengths=None):
    x = torch.from_numpy(np.array(xs))
    if lengths is not None:
        x = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, _ = module(x)
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    return out.numpy()


@pytest.mark.parametrize("kind", list(OUR_CELLS))
def test_to_torch_round_trip(kind):
    cell, torch_class, mode = OUR_CELLS[kind]
    net = rj.RNN(cell, num_layers=2, bidirectional=True, dropout=0.1)
    params = perturbed(net.init(jax.random.key(0), I), seed=10)
    module = rj.interop.to_torch(net, params)
    assert type(module) is torch_class and module.mode == mode and module.batch_first
    assert (module.input_size, module.hidden_size, module.num_layers) == (I, H, 2)
    assert module.bidirectional and module.dropout == 0.1
    assert all(p.dtype == torch.float32 for p in module.parameters())

    net_back, params_back = rj.interop.from_torch(module)
    chex.assert_trees_all_equal(params_back, params)
    assert net_back.num_layers == 2 and net_back.bidirectional and net_back.dropout == 0.1
    assert net_back.hidden_size == H
    assert net_back.step_cell.name == cell.name
    assert dict(net_back.step_cell.options).get("activation") == dict(cell.options).get("activation")

    module.eval()  # no dropout in PyTorch's forward pass
    xs = normal(1, (B, T, I))
    ys, finals = jax.jit(net.apply)(params, xs, LENGTHS)
    assert_close(ys, run_torch(module, xs, LENGTHS))
    chex.assert_trees_all_close(jax.jit(net_back.apply)(params_back, xs, LENGTHS), (ys, finals), atol=1e-6)


def test_to_torch_refuses_gru_reset_before():
    net = rj.RNN(rj.cells.gru(H, reset_after=False))
    params = net.init(jax.random.key(0), I)
    with pytest.raises(ValueError, match="net: torch.nn.GRU has only the reset_after=True form"):
        rj.interop.to_torch(net, params)


def test_to_torch_checks_params():
    net = rj.RNN("lstm", H, num_layers=2)
    params = rj.RNN("lstm", H).init(jax.random.key(0), I)
    with pytest.raises(ValueError, match="params: expected a tuple of 2 layers"):
        rj.interop.to_torch(net, params)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_from_torch_without_bias_and_with_dropout(kind):
    torch.manual_seed(0)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        I, H, num_layers=2, bias=False, dropout=0.3, batch_first=True
    ).eval()
    net, params = rj.interop.from_torch(module)
    assert net.dropout == 0.3 and net.num_layers == 2 and not net.bidirectional
    for p in jax.tree.leaves(params):
        assert p.dtype == jnp.float32
    assert not any(np.asarray(layer[0].b).any() for layer in params)
    xs = normal(1, (B, T, I))
    assert_close(jax.jit(net.apply)(params, xs)[0], run_torch(module, xs))


def test_from_torch_cell_draws_like_torch():
    net, _ = rj.interop.from_torch(torch.nn.GRU(I, H))
    params = net.init(jax.random.key(0), I)
    bound = 1 / np.sqrt(H)
    for w in (params[0][0].U, params[0][0].W):
        assert np.abs(np.asarray(w)).max() <= bound and np.abs(np.asarray(w)).max() > 0.8 * bound


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: torch.nn.Linear(I, H), "module: expected torch.nn.RNN, LSTM or GRU, got Linear"),
        (lambda: torch.nn.LSTMCell(I, H), "module: expected torch.nn.RNN, LSTM or GRU, got LSTMCell"),
        (lambda: torch.nn.LSTM(I, H, proj_size=2), "module: LSTM with proj_size=2 is not supported"),
    ],
    ids=["linear", "lstm_cell", "proj_size"],
)
def test_from_torch_rejects(make, match):
    with pytest.raises(ValueError, match=match):
        rj.interop.from_torch(make())


# --- Flax -----------------------------------------------------------------------------------------------

FLAX_CELLS = {
    "lstm": (lambda: nn.LSTMCell(H), "lstm", None),
    "optimized_lstm": (lambda: nn.OptimizedLSTMCell(H), "lstm", None),
    "gru": (lambda: nn.GRUCell(H), "gru", None),
    "simple_tanh": (lambda: nn.SimpleCell(H), "rnn", "tanh"),
    "simple_relu": (lambda: nn.SimpleCell(H, activation_fn=nn.relu), "rnn", "relu"),
}


def flax_setup(kind: str):
    """A Flax cell, random variables for it (biases included) and a random carry in Flax's layout."""
    module = FLAX_CELLS[kind][0]()
    x = normal(1, (B, I))
    zeros = module.initialize_carry(jax.random.key(0), x.shape)
    variables = perturbed(module.init(jax.random.key(1), zeros, x), seed=20)
    return module, variables, perturbed(zeros, seed=30, scale=1.0)


def to_ours(name: str, flax_carry):
    """Flax's LSTM carry is ``(c, h)``, ours ``LSTMState(h, c)``; the others are one array."""
    return LSTMState(h=flax_carry[1], c=flax_carry[0]) if name == "lstm" else flax_carry


@pytest.mark.parametrize("kind", list(FLAX_CELLS))
def test_from_flax_step(kind):
    module, variables, flax_carry = flax_setup(kind)
    _, name, activation = FLAX_CELLS[kind]
    cell, params = rj.interop.from_flax(module, variables)
    assert cell.name == name and cell.hidden_size == H
    if activation:
        assert dict(cell.options)["activation"] == activation
    # The params alone work too.
    chex.assert_trees_all_equal(rj.interop.from_flax(module, variables["params"])[1], params)

    x = normal(2, (B, I))
    new_flax_carry, y_flax = module.apply(variables, flax_carry, x)
    carry, y = cell.step(params, to_ours(name, flax_carry), x)
    assert_close(y, y_flax)
    assert_close(carry, to_ours(name, new_flax_carry))


@pytest.mark.parametrize("kind", list(FLAX_CELLS))
def test_from_flax_unroll(kind):
    module, variables, flax_carry = flax_setup(kind)
    name = FLAX_CELLS[kind][1]
    cell, params = rj.interop.from_flax(module, variables)
    rnn_variables = {"params": {"cell": variables["params"]}}  # flax.linen.RNN names its cell "cell"
    xs, carry = normal(3, (B, T, I)), to_ours(name, flax_carry)
    final_flax, ys_flax = nn.RNN(module, return_carry=True).apply(rnn_variables, xs, initial_carry=flax_carry)
    final, ys = rj.unroll(cell, params, xs, carry)
    assert_close(ys, ys_flax)
    assert_close(final, to_ours(name, final_flax))

    # Backwards within each row's length: the output at t belongs to x_t, the final carry is that at t = 0.
    flax_rnn = nn.RNN(module, return_carry=True, reverse=True, keep_order=True)
    final_flax, ys_flax = flax_rnn.apply(rnn_variables, xs, initial_carry=flax_carry, seq_lengths=LENGTHS)
    final, ys = rj.unroll(cell, params, xs, carry, lengths=LENGTHS, reverse=True)
    valid = np.arange(T)[None, :] < LENGTHS[:, None]
    assert_close(np.asarray(ys)[valid], np.asarray(ys_flax)[valid])  # Flax leaves padded steps as they come
    assert not np.asarray(ys)[~valid].any()
    assert_close(final, to_ours(name, final_flax))


@pytest.mark.parametrize("kind", list(FLAX_CELLS))
def test_to_flax_round_trip(kind):
    module, variables, _ = flax_setup(kind)
    cell, params = rj.interop.from_flax(module, variables)
    chex.assert_trees_all_equal(rj.interop.to_flax(cell, params), variables)


@pytest.mark.parametrize(
    "cell,flax_cell",
    [
        (rj.cells.rnn(H), nn.SimpleCell(H)),
        (rj.cells.rnn(H, "relu"), nn.SimpleCell(H, activation_fn=nn.relu)),
        (rj.cells.lstm(H), nn.LSTMCell(H)),
        (rj.cells.gru(H), nn.GRUCell(H)),
    ],
    ids=["rnn_tanh", "rnn_relu", "lstm", "gru"],
)
def test_to_flax_gives_the_same_step(cell, flax_cell):
    params = perturbed(cell.init(jax.random.key(0), I), seed=40)
    variables = rj.interop.to_flax(cell, params)
    _, params_back = rj.interop.from_flax(flax_cell, variables)
    chex.assert_trees_all_equal(params_back, params)
    x = normal(2, (B, I))
    carry = perturbed(cell.initial_carry(params, (B,)), seed=50, scale=1.0)
    flax_carry = (carry.c, carry.h) if cell.name == "lstm" else carry
    new_flax_carry, y_flax = flax_cell.apply(variables, flax_carry, x)
    new_carry, y = cell.step(params, carry, x)
    assert_close(y, y_flax)
    assert_close(new_carry, to_ours(cell.name, new_flax_carry))


def test_to_flax_refuses_gru_reset_before():
    cell = rj.cells.gru(H, reset_after=False)
    with pytest.raises(ValueError, match="cell: Flax's GRUCell has only the reset_after=True form"):
        rj.interop.to_flax(cell, cell.init(jax.random.key(0), I))


def _without(variables, *path):
    """A deep copy of ``variables`` without the entry at ``path``."""
    copy = jax.tree.map(lambda x: x, variables)
    node = copy
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    return copy


@pytest.mark.parametrize(
    "kind,change,match",
    [
        (
            "gru",
            lambda v: _without(v, "params", "hn"),
            "variables: expected the params of flax.linen.GRUCell, missing 'hn'",
        ),
        (
            "lstm",
            lambda v: _without(v, "params", "hi", "bias"),
            "variables: expected the params of flax.linen.LSTMCell",
        ),
        ("simple_tanh", lambda v: _without(v, "params", "i", "bias"), "variables: expected the params of"),
        (
            "optimized_lstm",
            lambda v: {"params": {}},
            "variables: expected the params of flax.linen.OptimizedLSTM",
        ),
        ("gru", lambda v: {}, "variables: expected the params of flax.linen.GRUCell"),
    ],
    ids=["gru_hn", "lstm_bias", "simple_bias", "empty_params", "empty"],
)
def test_from_flax_missing_params_raise(kind, change, match):
    module, variables, _ = flax_setup(kind)
    with pytest.raises(ValueError, match=match):
        rj.interop.from_flax(module, change(variables))


@pytest.mark.parametrize(
    "module,match",
    [
        (nn.Dense(H), "module: expected one of flax.linen."),
        (nn.SimpleCell(H, residual=True), r"module: SimpleCell\(residual=True\) has no counterpart"),
        (nn.SimpleCell(H, activation_fn=nn.sigmoid), "module: expected activation_fn tanh or relu"),
        (nn.LSTMCell(H, gate_fn=nn.hard_sigmoid), "module: expected the default gate_fn=sigmoid"),
    ],
    ids=["dense", "residual", "sigmoid", "hard_sigmoid"],
)
def test_from_flax_rejects_other_modules(module, match):
    with pytest.raises(ValueError, match=match):
        rj.interop.from_flax(module, {"params": {}})


# --- our cells inside Flax ------------------------------------------------------------------------------


def test_flax_cell_inside_flax_rnn():
    cell = rj.cells.lstm(8)
    flax_rnn = nn.RNN(rj.interop.FlaxCell(cell), return_carry=True)
    xs = normal(3, (B, T, I))
    variables = flax_rnn.init(jax.random.key(0), xs)
    # flax.linen.RNN names its cell "cell", and FlaxCell names its param "cell".
    assert list(variables) == ["params"] and list(variables["params"]) == ["cell"]
    assert list(variables["params"]["cell"]) == ["cell"]
    params = variables["params"]["cell"]["cell"]
    assert type(params) is LSTMParams
    chex.assert_shape([params.U, params.W], [(32, I), (32, 8)])

    final_flax, ys_flax = flax_rnn.apply(variables, xs)
    final, ys = rj.unroll(cell, params, xs)
    assert_close(ys, ys_flax)
    assert_close(final, final_flax)

    # With other params and a carry, through Flax's lengths.
    params = perturbed(params, seed=60)
    carry = perturbed(cell.initial_carry(params, (B,)), seed=70, scale=1.0)
    final_flax, ys_flax = flax_rnn.apply(
        {"params": {"cell": {"cell": params}}}, xs, initial_carry=carry, seq_lengths=LENGTHS
    )
    final, ys = rj.unroll(cell, params, xs, carry, lengths=LENGTHS)
    valid = np.arange(T)[None, :] < LENGTHS[:, None]
    assert_close(np.asarray(ys)[valid], np.asarray(ys_flax)[valid])
    assert_close(final, final_flax)


def test_flax_cell_initialize_carry():
    carry = rj.interop.FlaxCell(rj.cells.lstm(8)).initialize_carry(jax.random.key(0), (B, I))
    assert isinstance(carry, LSTMState)
    for leaf in carry:
        chex.assert_shape(leaf, (B, 8))
        assert leaf.dtype == jnp.float32 and not np.asarray(leaf).any()
    assert rj.interop.FlaxCell(rj.cells.rnn(8)).num_feature_axes == 1
    chex.assert_shape(rj.interop.FlaxCell(rj.cells.rnn(8)).initialize_carry(jax.random.key(0), (2, B, I)), (2, B, 8))
