"""Weights to and from PyTorch and Flax: round trips, equal outputs, the Flax wrapper, and clear errors."""

from __future__ import annotations

import copy
import re

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


# Cells that neither PyTorch nor Flax has, and how the error names them.
UNCONVERTIBLE = [
    (rj.cells.gru(H, reset_after=False), r"gru\(5, reset_after=False\)"),
    (rj.cells.rnn(H, "linear"), r"rnn\(5, activation='linear'\)"),
    (rj.cells.mingru(H), r"mingru\(5\)"),
    (rj.cells.lru(H), r"lru\(5\)"),
]
UNCONVERTIBLE_IDS = ["gru_reset_before", "rnn_linear", "mingru", "lru"]
SUPPORTED = "it converts rnn with activation 'tanh' or 'relu' (irnn included), lstm, gru with reset_after=True"


@pytest.mark.parametrize("cell,shown", UNCONVERTIBLE, ids=UNCONVERTIBLE_IDS)
def test_to_torch_refuses_what_torch_has_not(cell, shown):
    net = rj.RNN(cell)
    params = net.init(jax.random.key(0), I)
    with pytest.raises(ValueError, match=f"^net: PyTorch has no counterpart of {shown}; {re.escape(SUPPORTED)}"):
        rj.interop.to_torch(net, params)


def test_to_torch_refuses_other_things():
    with pytest.raises(ValueError, match="^net: expected an rj.RNN, got Cell"):
        rj.interop.to_torch(rj.cells.lstm(H), None)
    net = rj.RNN("lstm", H)
    params = net.init(jax.random.key(0), I)
    mixed = ((params[0][0]._replace(b=params[0][0].b.astype(jnp.float16)),),)
    with pytest.raises(ValueError, match=r"^params: expected arrays of one dtype.*got \['float16', 'float32'\]"):
        rj.interop.to_torch(net, mixed)


def test_irnn_converts_as_the_relu_rnn():
    net = rj.RNN(rj.cells.irnn(H))
    params = perturbed(net.init(jax.random.key(0), I), seed=80)
    module = rj.interop.to_torch(net, params)
    assert module.mode == "RNN_RELU"
    xs = normal(1, (B, T, I))
    assert_close(net.apply(params, xs, LENGTHS)[0], run_torch(module, xs, LENGTHS))
    variables = rj.interop.to_flax(rj.cells.irnn(H), params[0][0])
    chex.assert_trees_all_equal(
        rj.interop.from_flax(nn.SimpleCell(H, activation_fn=nn.relu), variables)[1], params[0][0]
    )


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
        (lambda: torch.nn.GRUCell(I, H), "module: expected torch.nn.RNN, LSTM or GRU, got GRUCell"),
        (lambda: "lstm", "module: expected torch.nn.RNN, LSTM or GRU, got str"),
        (lambda: _mixed_dtypes(torch.nn.GRU(I, H)), r"module: expected weights of one dtype .*'float32', 'float64'"),
        (lambda: torch.nn.LSTM(I, H).to(torch.complex64), r"module: expected weights of one dtype .*\['complex64'\]"),
    ],
    ids=["linear", "lstm_cell", "gru_cell", "str", "mixed_dtypes", "complex"],
)
@pytest.mark.filterwarnings("ignore:Complex modules are a new feature")
def test_from_torch_rejects(make, match):
    with pytest.raises(ValueError, match=f"^{match}"):
        rj.interop.from_torch(make())


def _mixed_dtypes(module):
    module.weight_hh_l0.data = module.weight_hh_l0.data.double()
    return module


def test_from_torch_batch_first_false_is_the_same_network():
    """The weights do not depend on batch_first: time-major inputs there are batch-major here."""
    torch.manual_seed(0)
    module = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)  # batch_first=False
    net, params = rj.interop.from_torch(module)
    xs = normal(1, (B, T, I))
    with torch.no_grad():
        out, _ = module(torch.from_numpy(xs.transpose(1, 0, 2).copy()))
    assert_close(net.apply(params, xs)[0], out.numpy().transpose(1, 0, 2))


# --- half precision -------------------------------------------------------------------------------------

# Unit roundoff u = 2^-p of each dtype (p significand bits: bfloat16 8, float16 11). Outputs of a 2-layer
# bidirectional network of T = 6 steps, ours and PyTorch's in the dtype, each against PyTorch in float32 on
# the same (cast) weights: an output carries ~100 roundings of at most u each (L * T steps of 4-8 each, see
# tests/test_dtypes.py), ~10u when independent; NET = 32u of the largest output (measured: 1-4u). Ours and
# PyTorch's differ by at most the sum of their errors.
HALF = {"bfloat16": (jnp.bfloat16, torch.bfloat16, 2.0**-8), "float16": (jnp.float16, torch.float16, 2.0**-11)}
NET = 32


def torch_half_module(kind: str, torch_dtype):
    """A 2-layer bidirectional PyTorch module in ``torch_dtype`` with random weights and biases."""
    torch.manual_seed(1)
    cls = OUR_CELLS[kind][1]
    extra = {"nonlinearity": OUR_CELLS[kind][2][4:].lower()} if cls is torch.nn.RNN else {}
    module = cls(I, H, num_layers=2, bidirectional=True, batch_first=True, **extra)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.5)
    return module.to(torch_dtype).eval()


def run_torch_state(module, xs, lengths):
    """PyTorch's padded outputs and final state (``h_n`` or ``(h_n, c_n)``), as float64 numpy arrays."""
    x = torch.from_numpy(np.array(xs, np.float32)).to(module.weight_ih_l0.dtype)
    x = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, state = module(x)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    as64 = lambda t: t.double().numpy()  # noqa: E731
    return as64(out), jax.tree.map(as64, state)


def assert_within(got, want, tol: float) -> None:
    """Each leaf within ``tol`` times the largest entry of ``want``."""
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        w = np.asarray(w, np.float64)
        np.testing.assert_allclose(np.asarray(g, np.float64), w, rtol=0, atol=tol * np.abs(w).max())


@pytest.mark.parametrize("dtype", list(HALF))
@pytest.mark.parametrize("kind", list(OUR_CELLS))
def test_torch_half_precision(kind, dtype):
    dt, torch_dt, u = HALF[dtype]
    module = torch_half_module(kind, torch_dt)
    net, params = rj.interop.from_torch(module)
    assert dict(net.step_cell.options)["dtype"] == dt and net.init(jax.random.key(0), I)[1][1].W.dtype == dt
    for leaf in jax.tree.leaves(params):
        assert leaf.dtype == dt
    # Weights bit for bit (the LSTM's gates reordered, the two biases summed in float32 and rounded once).
    blocks = np.split(module.weight_hh_l1_reverse.float().detach().numpy(), {"lstm": 4, "gru": 3}.get(kind, 1))
    order = [1, 0, 2, 3] if kind == "lstm" else range(len(blocks))  # PyTorch's i, f, g, o; our f, i, C, o
    np.testing.assert_array_equal(np.asarray(params[1][1].W, np.float32), np.concatenate([blocks[k] for k in order]))
    # The round trip keeps the dtype and every bit.
    back = rj.interop.to_torch(net, params)
    assert all(p.dtype == torch_dt for p in back.parameters())
    chex.assert_trees_all_equal(rj.interop.from_torch(back)[1], params)

    xs = jnp.asarray(normal(1, (B, T, I))).astype(dt)
    reference = run_torch_state(copy.deepcopy(module).float(), xs, LENGTHS)  # float32, on the same weights
    theirs = run_torch_state(module, xs, LENGTHS)
    ys, finals = net.apply(params, xs, LENGTHS)
    assert ys.dtype == dt
    ours = (ys, rj.interop.torch_state(finals))
    assert_within(ours, reference, NET * u)
    assert_within(theirs, reference, NET * u)
    assert_within(ours, theirs, 2 * NET * u)


@pytest.mark.parametrize("dtype", list(HALF))
@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_tanh"])
def test_flax_half_precision(kind, dtype):
    """Flax's cell with params and computation in the dtype: our step equals it within STEP = 4u (one
    step rounds 4-8 times; see tests/test_dtypes.py), both against Flax in float32 on the same weights."""
    dt, _, u = HALF[dtype]
    make = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "simple_tanh": nn.SimpleCell}[kind]
    module, module32 = make(H, param_dtype=dt, dtype=dt), make(H)
    x = jnp.asarray(normal(1, (B, I))).astype(dt)
    zeros = module.initialize_carry(jax.random.key(0), x.shape)
    # Flax's own orthogonal initialiser has no half-precision QR: its float32 variables' shapes, random values.
    shapes = module32.init(jax.random.key(1), *jax.tree.map(lambda a: a.astype(jnp.float32), (zeros, x)))
    variables = jax.tree.map(lambda v: jnp.asarray(v).astype(dt), perturbed(shapes, 20))
    flax_carry = jax.tree.map(lambda c: jnp.asarray(c).astype(dt), perturbed(zeros, seed=30))
    cell, params = rj.interop.from_flax(module, variables)
    assert dict(cell.options)["dtype"] == dt and cell.init(jax.random.key(0), I).W.dtype == dt
    for leaf in jax.tree.leaves(params):
        assert leaf.dtype == dt
    chex.assert_trees_all_equal(rj.interop.to_flax(cell, params), variables)

    name = FLAX_CELLS[kind][1]
    cast32 = lambda t: jax.tree.map(lambda a: a.astype(jnp.float32), t)  # noqa: E731
    reference = module32.apply(cast32(variables), cast32(flax_carry), x.astype(jnp.float32))
    theirs = module.apply(variables, flax_carry, x)
    carry, y = cell.step(params, to_ours(name, flax_carry), x)
    assert y.dtype == dt
    ours = (to_ours(name, reference[0]), reference[1])
    assert_within((carry, y), ours, 4 * u)
    assert_within((to_ours(name, theirs[0]), theirs[1]), ours, 4 * u)


# --- final states in PyTorch's layout -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_torch_state_is_h_n(kind):
    """``finals[layer][direction]`` is row ``layer * 2 + direction`` of PyTorch's h_n (and c_n), from a run
    of a 2-layer bidirectional network with lengths (a packed sequence)."""
    torch.manual_seed(0)
    module = OUR_CELLS[kind][1](I, H, num_layers=2, bidirectional=True, batch_first=True).eval()
    net, params = rj.interop.from_torch(module)
    xs = normal(1, (B, T, I))
    _, state = run_torch_state(module, xs, LENGTHS)
    ys, finals = net.apply(params, xs, LENGTHS)
    h_n, c_n = state if kind == "lstm" else (state, None)

    ours = rj.interop.torch_state(finals)
    chex.assert_shape(jax.tree.leaves(ours), (2 * 2, B, H))
    assert_close(ours, state)
    assert_close(rj.interop.from_torch_state(h_n, c_n, net), finals)
    for layer in range(2):  # written out: row layer * num_directions + direction
        for d in range(2):
            h = finals[layer][d].h if kind == "lstm" else finals[layer][d]
            assert_close(h, h_n[layer * 2 + d])
    # The backward direction's final state is its state after reading each row's first step.
    assert_close(finals[1][1].h if kind == "lstm" else finals[1][1], ys[:, 0, H:])
    # Torch tensors convert as they are, and an inverse pair round trips.
    tensors = jax.tree.map(torch.from_numpy, state)
    h_t, c_t = tensors if kind == "lstm" else (tensors, None)
    chex.assert_trees_all_equal(rj.interop.from_torch_state(h_t, c_t, net), rj.interop.from_torch_state(h_n, c_n, net))
    round_trip = rj.interop.torch_state(rj.interop.from_torch_state(h_n, c_n, net))
    chex.assert_trees_all_equal(round_trip, jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), state))

    # As h_0 (c_0): PyTorch's initial state becomes our initial carry.
    h_0, c_0 = normal(5, (4, B, H)), normal(6, (4, B, H))
    carry = rj.interop.from_torch_state(h_0, c_0 if kind == "lstm" else None, net)
    with torch.no_grad():
        initial = (torch.from_numpy(h_0), torch.from_numpy(c_0)) if kind == "lstm" else torch.from_numpy(h_0)
        out, _ = module(torch.from_numpy(xs), initial)
    assert_close(net.apply(params, xs, None, carry)[0], out.numpy())


def test_torch_state_of_one_direction():
    net = rj.RNN("rnn", H, num_layers=3)
    finals = net.apply(net.init(jax.random.key(0), I), normal(1, (B, T, I)))[1]
    h_n = rj.interop.torch_state(finals)
    chex.assert_shape(h_n, (3, B, H))
    chex.assert_trees_all_equal(rj.interop.from_torch_state(h_n, None, net), finals)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda n: rj.interop.from_torch_state(np.zeros((4, B, H)), None, n["lstm"]), "^c_n: expected PyTorch's c_n"),
        (
            lambda n: rj.interop.from_torch_state(np.zeros((4, B, H)), np.zeros((4, B, H)), n["gru"]),
            "^c_n: expected None",
        ),
        (
            lambda n: rj.interop.from_torch_state(np.zeros((2, B, H)), None, n["gru"]),
            r"^h_n: expected shape \(4, batch, 5\) \(num_layers \* num_directions, batch, hidden\), got \(2, 3, 5\)",
        ),
        (lambda n: rj.interop.from_torch_state(np.zeros((4, H)), None, n["gru"]), "^h_n: expected shape"),
        (
            lambda n: rj.interop.from_torch_state(np.zeros((4, B, H)), np.zeros((4, 2, H)), n["lstm"]),
            r"^c_n: expected the shape of h_n \(4, 3, 5\), got \(4, 2, 5\)",
        ),
        (lambda n: rj.interop.from_torch_state(np.zeros((4, B, H)), None, "gru"), "^net: expected an rj.RNN"),
        (lambda n: rj.interop.torch_state(np.zeros((4, B, H))), "^finals: expected a tuple of layers"),
        (lambda n: rj.interop.torch_state(((np.zeros((B, H)),), ())), "^finals: expected a tuple of layers"),
        (lambda n: rj.interop.torch_state(()), "^finals: expected a tuple of layers"),
    ],
    ids=["lstm_no_c_n", "gru_c_n", "rows", "rank", "c_n_shape", "net", "finals_array", "ragged", "empty"],
)
def test_torch_state_errors(call, match):
    nets = {k: rj.RNN(k, H, num_layers=2, bidirectional=True) for k in ("lstm", "gru")}
    with pytest.raises(ValueError, match=match):
        call(nets)


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
    final, ys = rj.unroll(cell, params, xs, carry=carry)
    assert_close(ys, ys_flax)
    assert_close(final, to_ours(name, final_flax))

    # Backwards within each row's length: the output at t belongs to x_t, the final carry is that at t = 0.
    flax_rnn = nn.RNN(module, return_carry=True, reverse=True, keep_order=True)
    final_flax, ys_flax = flax_rnn.apply(rnn_variables, xs, initial_carry=flax_carry, seq_lengths=LENGTHS)
    final, ys = rj.unroll(cell, params, xs, carry=carry, lengths=LENGTHS, reverse=True)
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


@pytest.mark.parametrize("cell,shown", UNCONVERTIBLE, ids=UNCONVERTIBLE_IDS)
def test_to_flax_refuses_what_flax_has_not(cell, shown):
    """No silent fall back to SimpleCell's layout for a cell Flax does not have."""
    with pytest.raises(ValueError, match=f"^cell: Flax has no counterpart of {shown}; {re.escape(SUPPORTED)}"):
        rj.interop.to_flax(cell, cell.init(jax.random.key(0), I))


def test_to_flax_checks_params():
    with pytest.raises(ValueError, match="^cell: expected a Cell"):
        rj.interop.to_flax("lstm", None)
    with pytest.raises(ValueError, match="params: expected LSTMParams, got GRUParams"):
        rj.interop.to_flax(rj.cells.lstm(H), rj.cells.gru(H).init(jax.random.key(0), I))


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
    final, ys = rj.unroll(cell, params, xs, carry=carry, lengths=LENGTHS)
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
