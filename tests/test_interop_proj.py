"""The LSTM with a projection (``proj_size``): its equations in numpy (float64), ``torch.nn.LSTM(proj_size=...)``
to and from our networks with equal outputs, ``h_n`` and ``c_n``, its initialisation, and clear errors."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnjax as rj
from rnnjax.cells import LSTMParams, LSTMState
from rnnjax.cells.lstm import ProjectedLSTMParams

B, T, I, H, P = 3, 6, 4, 7, 3
LENGTHS = np.array([T, 2, 4])
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def random_params(seed: int, input_size: int = I) -> ProjectedLSTMParams:
    rng = np.random.default_rng(seed)
    return ProjectedLSTMParams(
        U=jnp.asarray(rng.normal(size=(4 * H, input_size)) * 0.6),
        W=jnp.asarray(rng.normal(size=(4 * H, P)) * 0.6),
        b=jnp.asarray(rng.normal(size=4 * H) * 0.5),
        W_hr=jnp.asarray(rng.normal(size=(P, H))),
    )


def reference(p: ProjectedLSTMParams, xs, h0, c0, lengths=None):
    """``h_t = W_hr (o_t * tanh(C_t))`` with ``W`` reading the projected ``h_{t-1}``; blocks f, i, C, o."""
    U, W, b, W_hr = (np.asarray(a, np.float64) for a in p)
    lengths = np.full(xs.shape[0], xs.shape[1]) if lengths is None else lengths
    hs, cs, ys = np.array(h0, np.float64), np.array(c0, np.float64), np.zeros((*xs.shape[:2], P))
    for n in range(xs.shape[0]):
        h, c = hs[n], cs[n]
        for t in range(lengths[n]):
            pre = U @ xs[n, t] + W @ h + b
            f, i, g, o = sigmoid(pre[:H]), sigmoid(pre[H : 2 * H]), np.tanh(pre[2 * H : 3 * H]), sigmoid(pre[3 * H :])
            c = f * c + i * g
            h = W_hr @ (o * np.tanh(c))
            ys[n, t] = h
        hs[n], cs[n] = h, c
    return (hs, cs), ys


# --- the cell -----------------------------------------------------------------------------------------------


def test_unroll_is_the_projected_lstm(x64):
    cell = rj.cells.lstm(H, proj_size=P, dtype=jnp.float64)
    assert cell.hidden_size == P and dict(cell.options)["proj_size"] == P
    params = random_params(1)
    rng = np.random.default_rng(2)
    xs, h0, c0 = rng.normal(size=(B, T, I)), rng.normal(size=(B, P)), rng.normal(size=(B, H))
    lengths = np.array([T, 3, 0])
    carry = LSTMState(jnp.asarray(h0), jnp.asarray(c0))
    final, ys = rj.unroll(cell, params, jnp.asarray(xs), carry=carry, lengths=jnp.asarray(lengths))
    (h, c), want = reference(params, xs, h0, c0, lengths)
    np.testing.assert_allclose(ys, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(final.h, h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(final.c, c, rtol=1e-12, atol=1e-12)
    _, reversed_ys = rj.unroll(cell, params, jnp.asarray(xs[:1, ::-1]), carry=LSTMState(*(a[:1] for a in carry)))
    _, want_reversed = reference(params, xs[:1, ::-1], h0[:1], c0[:1])
    np.testing.assert_allclose(reversed_ys, want_reversed, rtol=1e-12, atol=1e-12)

    new, y = cell.step(params, carry, jnp.asarray(xs[:, 0]))
    (h1, c1), _ = reference(params, xs[:, :1], h0, c0)
    np.testing.assert_allclose(y, h1, rtol=1e-12)
    np.testing.assert_allclose(new.c, c1, rtol=1e-12)
    loop = cell.spec.prepare(params)
    gates = cell.spec.gates(loop, carry, cell.spec.project(loop, jnp.asarray(xs[:, 0])))
    pre = np.asarray(params.U) @ xs[0, 0] + np.asarray(params.W) @ h0[0] + np.asarray(params.b)
    np.testing.assert_allclose(gates["o"][0], sigmoid(pre[3 * H :]), rtol=1e-12)


def test_projection_runs_as_the_sequential_scan_and_without_it_nothing_changes():
    cell = rj.cells.lstm(H, proj_size=P)
    assert cell.spec.parts is None and rj.scan.resolve_impl(cell) == "scan"
    with pytest.raises(ValueError, match="impl: lstm has no hand-written backward pass"):
        rj.unroll(cell, cell.init(jax.random.key(0), I), jnp.ones((B, T, I)), impl="fused")
    plain = rj.cells.lstm(H, proj_size=0)
    params = plain.init(jax.random.key(0), I)
    assert type(params) is LSTMParams and LSTMParams._fields == ("U", "W", "b")
    assert plain.spec.parts is not None and rj.scan.resolve_impl(plain) == "fused" and plain.hidden_size == H
    chex.assert_trees_all_equal(params, rj.cells.lstm(H).init(jax.random.key(0), I))


def test_projected_params_and_carry_shapes():
    cell = rj.cells.lstm(H, proj_size=P)
    params = cell.init(jax.random.key(0), I)
    assert type(params) is ProjectedLSTMParams
    assert jax.tree.map(jnp.shape, tuple(params)) == ((4 * H, I), (4 * H, P), (4 * H,), (P, H))
    assert params.W_f.shape == (H, P + I) and params.b_o.shape == (H,)
    np.testing.assert_array_equal(params.W_C, jnp.concatenate([params.W[2 * H : 3 * H], params.U[2 * H : 3 * H]], 1))
    carry = cell.initial_carry(params, (B,))
    assert carry.h.shape == (B, P) and carry.c.shape == (B, H)
    net = rj.RNN(cell, num_layers=2, bidirectional=True)
    assert net.hidden_size == P and net.output_size == 2 * P
    net_params = net.init(jax.random.key(1), I)
    assert net_params[1][0].U.shape == (4 * H, 2 * P)
    ys, finals = net.apply(net_params, jnp.ones((B, T, I)))
    assert ys.shape == (B, T, 2 * P) and finals[1][1].c.shape == (B, H)


@pytest.mark.parametrize("init", ["orthogonal", "gaussian", "torch"])
def test_init_of_the_projected_weights(init):
    h, p = 256, 64
    params = rj.cells.lstm(h, proj_size=p, recurrent_init=init, input_init="torch").init(jax.random.key(0), 8)
    W = np.asarray(params.W, np.float64)
    for k in range(4):  # per gate, an (h, p) block
        block = W[k * h : (k + 1) * h]
        if init == "orthogonal":
            np.testing.assert_allclose(block.T @ block, np.eye(p), atol=1e-5)  # orthonormal columns
        elif init == "gaussian":
            np.testing.assert_allclose(block.std(), 1 / np.sqrt(p), rtol=0.05)
        else:
            assert np.abs(block).max() <= 1 / np.sqrt(h) and np.abs(block).max() > 0.95 / np.sqrt(h)
    bound = 1 / np.sqrt(h)  # PyTorch draws weight_hr from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))
    assert np.abs(params.W_hr).max() <= bound and np.abs(params.W_hr).max() > 0.95 * bound
    assert np.abs(params.U).max() <= bound and np.abs(params.U).max() > 0.95 * bound
    np.testing.assert_array_equal(params.b[:h], 1.0)  # forget_bias


def test_init_of_the_projection_by_input_init():
    h, p = 300, 100
    W_hr = np.asarray(rj.cells.lstm(h, proj_size=p).init(jax.random.key(0), 2).W_hr)
    limit = np.sqrt(6 / (h + p))  # glorot_uniform from h features to p
    assert np.abs(W_hr).max() <= limit and np.abs(W_hr).max() > 0.95 * limit


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(proj_size=H), r"proj_size: expected 0 or less than hidden_size=7 \(as in PyTorch\), got 7"),
        (dict(proj_size=-1), "proj_size: expected an int >= 0, got int -1"),
        (dict(proj_size=2.0), "proj_size: expected an int >= 0, got float 2.0"),
        (dict(proj_size=True), "proj_size: expected an int >= 0, got bool True"),
        (dict(proj_size=P, recurrent_init="identity"), r"recurrent_init: 'identity' has no .* \(7, 3\) block"),
    ],
)
def test_bad_proj_size_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rj.cells.lstm(H, **kwargs)


def test_params_of_the_other_layout_raise(getkey):
    projected, plain = rj.cells.lstm(H, proj_size=P), rj.cells.lstm(H)
    with pytest.raises(ValueError, match="params: expected ProjectedLSTMParams, got LSTMParams"):
        rj.unroll(projected, plain.init(getkey(), I), jnp.ones((B, T, I)))
    with pytest.raises(ValueError, match="params: expected LSTMParams, got ProjectedLSTMParams"):
        rj.unroll(plain, projected.init(getkey(), I), jnp.ones((B, T, I)))
    params = projected.init(getkey(), I)
    with pytest.raises(ValueError, match=r"params.W_hr: expected shape \(3, 7\)"):
        rj.unroll(projected, params._replace(W_hr=params.W_hr.T), jnp.ones((B, T, I)))


# --- PyTorch ------------------------------------------------------------------------------------------------


def run_torch(module, xs, lengths=None):
    x = torch.from_numpy(np.array(xs))
    if lengths is not None:
        x = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, (h_n, c_n) = module(x)
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    return out.numpy(), h_n.numpy(), c_n.numpy()


def torch_lstm(seed: int, dtype=torch.float64, **kwargs):
    torch.manual_seed(seed)
    module = torch.nn.LSTM(I, H, proj_size=P, batch_first=True, **kwargs).to(dtype)
    with torch.no_grad():
        for w in module.parameters():  # beyond torch's small uniform init, so that every weight matters
            w.mul_(3.0)
    return module


@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_from_torch_equals_torch(lengths, x64):
    module = torch_lstm(0, num_layers=2, bidirectional=True)
    net, params = rj.interop.from_torch(module)
    assert net.hidden_size == P and net.num_layers == 2 and net.bidirectional
    assert dict(net.step_cell.options)["proj_size"] == P and type(params[1][1]) is ProjectedLSTMParams
    np.testing.assert_array_equal(params[1][1].W_hr, module.weight_hr_l1_reverse.detach().numpy())
    xs = np.random.default_rng(1).normal(size=(B, T, I))
    ys, finals = net.apply(params, jnp.asarray(xs), lengths=None if lengths is None else jnp.asarray(lengths))
    out, h_n, c_n = run_torch(module, xs, lengths)
    assert out.shape == (B, T, 2 * P) and h_n.shape == (4, B, P) and c_n.shape == (4, B, H)
    np.testing.assert_allclose(ys, out, rtol=1e-10, atol=1e-12)
    h, c = rj.interop.torch_state(finals)
    np.testing.assert_allclose(h, h_n, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, c_n, rtol=1e-10, atol=1e-12)


def test_to_torch_round_trip():
    net = rj.RNN(rj.cells.lstm(H, proj_size=P), num_layers=2, bidirectional=True, dropout=0.25)
    params = tuple(
        tuple(random_params(10 * layer + d, I if layer == 0 else 2 * P) for d in range(2)) for layer in range(2)
    )
    params = jax.tree.map(lambda a: a.astype(jnp.float32), params)
    module = rj.interop.to_torch(net, params)
    assert type(module) is torch.nn.LSTM and module.batch_first and module.bidirectional and module.dropout == 0.25
    assert (module.input_size, module.hidden_size, module.proj_size, module.num_layers) == (I, H, P, 2)
    assert all(w.dtype == torch.float32 for w in module.parameters())
    np.testing.assert_array_equal(module.weight_hr_l0.detach().numpy(), params[0][0].W_hr)

    net_back, params_back = rj.interop.from_torch(module)
    chex.assert_trees_all_equal(params_back, params)
    assert net_back.step_cell.hidden_size == P and dict(net_back.step_cell.options)["proj_size"] == P

    module.eval()
    xs = np.random.default_rng(3).normal(size=(B, T, I)).astype(np.float32)
    ys, finals = net.apply(params, jnp.asarray(xs), lengths=jnp.asarray(LENGTHS))
    out, h_n, c_n = run_torch(module, xs, LENGTHS)
    np.testing.assert_allclose(ys, out, atol=2e-5)
    h, c = rj.interop.torch_state(finals)
    np.testing.assert_allclose(h, h_n, atol=2e-5)
    np.testing.assert_allclose(c, c_n, atol=2e-5)

    # PyTorch's h_0, c_0 from ours, and its final state back as our carry
    carry = rj.interop.from_torch_state(h_n, c_n, net)
    assert carry[1][1].h.shape == (B, P) and carry[1][1].c.shape == (B, H)
    chex.assert_trees_all_close(rj.interop.torch_state(carry), (jnp.asarray(h_n), jnp.asarray(c_n)))
    ys_0, _ = net.apply(params, jnp.asarray(xs), carry=carry)
    with torch.no_grad():
        out_0, _ = module(torch.from_numpy(xs), (torch.from_numpy(h_n), torch.from_numpy(c_n)))
    np.testing.assert_allclose(ys_0, out_0.numpy(), atol=2e-5)


def test_from_torch_draws_like_torch():
    net, _ = rj.interop.from_torch(torch_lstm(0, torch.float32))
    params = net.init(jax.random.key(0), I)[0][0]
    bound = 1 / np.sqrt(H)
    for name in ("U", "W", "W_hr"):
        assert np.abs(getattr(params, name)).max() <= bound


def test_torch_state_errors_with_a_projection():
    net = rj.RNN(rj.cells.lstm(H, proj_size=P))
    h_n, c_n = np.zeros((1, B, P), np.float32), np.zeros((1, B, H), np.float32)
    with pytest.raises(ValueError, match=r"c_n: expected shape \(1, batch, 7\)"):
        rj.interop.from_torch_state(h_n, np.zeros((1, B, P), np.float32), net)
    with pytest.raises(ValueError, match=r"h_n: expected shape \(1, batch, 3\)"):
        rj.interop.from_torch_state(np.zeros((1, B, H), np.float32), c_n, net)
    with pytest.raises(ValueError, match=r"c_n: expected shape \(1, 3, 7\) \(h_n.s rows and batch\), got \(1, 4, 7\)"):
        rj.interop.from_torch_state(h_n, np.zeros((1, B + 1, H), np.float32), net)


def test_flax_has_no_projection():
    cell = rj.cells.lstm(H, proj_size=P)
    match = r"cell: Flax has no counterpart of lstm\(7, proj_size=3\); .*Flax has no projection"
    with pytest.raises(ValueError, match=match):
        rj.interop.to_flax(cell, cell.init(jax.random.key(0), I))
    module = rj.interop.to_torch(rj.RNN(cell), rj.RNN(cell).init(jax.random.key(0), I))
    assert module.proj_size == P  # PyTorch has it
