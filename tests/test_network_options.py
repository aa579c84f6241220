"""rj.RNN's keyword options: variational dropout (Gal & Ghahramani 2016), zoneout (Krueger et al. 2017) and
learned initial states, against references written from the papers; and the defaults, bit-identical to the
network without them."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.cells import GRUParams, RNNParams

B, T, I, H = 3, 6, 4, 5
LENGTHS = np.array([T, 2, 4])
NAMES = list(rj.cells.CELLS)
WITH_PARTS = [n for n in NAMES if rj.cells.make(n, H).spec.parts is not None]
WITHOUT_PARTS = [n for n in NAMES if rj.cells.make(n, H).spec.parts is None]


def normal(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def positive(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape).astype(np.float32)


def carry_leaves(cell) -> int:
    return len(jax.tree.leaves(jax.eval_shape(lambda k: cell.initial_carry(cell.init(k, 1)), jax.random.key(0))))


def random_like(tree, seed: int):
    """Standard normal leaves with the structure, shapes and dtypes of ``tree``."""
    leaves, structure = jax.tree.flatten(tree)
    return jax.tree.unflatten(structure, [normal(seed + k, x.shape).astype(x.dtype) for k, x in enumerate(leaves)])


def linear_net(**options) -> rj.RNN:
    return rj.RNN(rj.cells.rnn(H, "linear"), **options)


def linear_params(U, W, directions: int = 1):
    return ((RNNParams(jnp.asarray(U), jnp.asarray(W), jnp.zeros(H)),) * directions,)


def samples(net, params, xs, n: int, **kwargs) -> np.ndarray:
    """``ys`` of ``n`` training runs, one key each: ``(n, batch, time, output_size)``."""
    keys = jax.random.split(jax.random.key(7), n)
    return np.asarray(jax.jit(jax.vmap(lambda k: net.apply(params, xs, key=k, train=True, **kwargs)[0]))(keys))


def assert_mean(draws: np.ndarray, expected, sigmas: float = 5.0) -> None:
    """The Monte Carlo mean of ``draws`` (over axis 0) is ``expected`` within ``sigmas`` standard errors."""
    draws = np.asarray(draws, np.float64)  # float32 sums of 4000 draws are off by 1e-4
    mean, se = draws.mean(0), draws.std(0) / np.sqrt(len(draws))
    np.testing.assert_array_less(np.abs(mean - np.asarray(expected)), sigmas * se + 1e-5)


# --- the defaults ---------------------------------------------------------------------------------------


def by_hand(net: rj.RNN, params, xs, lengths, key=None, train=False):
    """What rj.RNN computed before its options: each direction an rj.unroll, inverted dropout between layers
    from ``fold_in(key, layer)``."""
    finals = []
    for layer, layer_params in enumerate(params):
        if layer > 0 and train and net.dropout > 0:
            keep = jax.random.bernoulli(jax.random.fold_in(key, layer), 1.0 - net.dropout, xs.shape)
            xs = jnp.where(keep, xs / (1.0 - net.dropout), 0.0)
        runs = [rj.unroll(net.step_cell, p, xs, lengths=lengths, reverse=d == 1) for d, p in enumerate(layer_params)]
        xs = jnp.concatenate([ys for _, ys in runs], axis=-1)
        finals.append(tuple(c for c, _ in runs))
    return xs, tuple(finals)


def program(f, *args) -> str:
    """The jaxpr of ``f(*args)``: equal programs give bit-identical results on every input and backend."""
    # Traced twice, each time anew (make_jaxpr keeps the trace of a function it has seen): the second trace
    # finds the caches that the first one filled, whose misses leave unused ops in a jaxpr.
    jax.make_jaxpr(lambda *a: f(*a))(*args)
    return str(jax.make_jaxpr(lambda *a: f(*a))(*args))


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_the_plain_network_op_for_op(name):
    net = rj.RNN(name, H, num_layers=2, bidirectional=True, dropout=0.3)
    off = rj.RNN(
        name, H, num_layers=2, bidirectional=True, dropout=0.3, input_dropout=0.0, recurrent_dropout=0.0,
        zoneout=(0.0,) * carry_leaves(net.step_cell), learn_initial=False,
    )  # fmt: skip
    params, xs, key = net.init(jax.random.key(0), I), normal(1, (B, T, I)), jax.random.key(2)
    assert type(params) is tuple
    for kwargs in (dict(), dict(key=key, train=True)):
        expected = program(lambda p: by_hand(net, p, xs, LENGTHS, **kwargs), params)
        assert program(lambda p: net.apply(p, xs, LENGTHS, **kwargs), params) == expected
        assert program(lambda p: off.apply(p, xs, LENGTHS, **kwargs), params) == expected


def test_defaults_are_bit_identical():
    net = rj.RNN("lstm", H, num_layers=2, bidirectional=True, dropout=0.3)
    params, xs, key = net.init(jax.random.key(0), I), normal(1, (B, T, I)), jax.random.key(2)
    trained = net.apply(params, xs, LENGTHS, key=key, train=True)
    chex.assert_trees_all_equal(trained, by_hand(net, params, xs, LENGTHS, key, train=True))

    def loss(apply):
        return jax.grad(lambda p: jnp.sum(jnp.sin(apply(p)[0])))

    ours = loss(lambda p: net.apply(p, xs, LENGTHS, key=key, train=True))
    assert program(ours, params) == program(loss(lambda p: by_hand(net, p, xs, LENGTHS, key, True)), params)


# --- variational dropout --------------------------------------------------------------------------------


def test_input_mask_is_one_per_sequence_on_every_layer():
    """A linear layer ``h_t = m * x_t`` (U = I, W = 0) shows its input mask at every step."""
    rate = 0.4
    one = linear_params(np.eye(H), np.zeros((H, H)))
    xs = positive(1, (16, T, H))
    ys = np.asarray(linear_net(input_dropout=rate).apply(one, xs, key=jax.random.key(3), train=True)[0])
    mask = ys / xs  # (batch, time, h)
    np.testing.assert_allclose(mask, np.broadcast_to(mask[:, :1], mask.shape), rtol=1e-6)  # the same every step
    np.testing.assert_allclose(np.unique(np.round(mask, 4)), [0.0, 1 / (1 - rate)], atol=1e-4)
    assert len({tuple(row) for row in mask[:, 0] > 0}) > 1  # one per sequence
    # The second layer reads the first one's outputs through a mask of its own.
    two = linear_net(input_dropout=rate, num_layers=2)
    ys2 = np.asarray(two.apply(one * 2, xs, key=jax.random.key(3), train=True)[0])
    second = np.divide(ys2, ys, out=np.zeros_like(ys), where=ys != 0)
    np.testing.assert_allclose(second, np.broadcast_to(second[:, :1], second.shape), rtol=1e-6)
    assert (second[mask > 0] == 0).any() and not np.allclose(second[mask > 0], 1 / (1 - rate))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_mask_is_one_per_sequence_in_the_matmul(bidirectional):
    """``h_t = U x_t + m * h_{t-1}`` (W = I) shows the recurrent mask: ``m = (h_t - U x_t) / h_{t-1}``."""
    rate, D = 0.4, 2 if bidirectional else 1
    U = np.abs(normal(0, (H, I)))
    params = linear_params(U, np.eye(H), D)
    xs = positive(1, (16, T, I))
    net = linear_net(recurrent_dropout=rate, bidirectional=bidirectional)
    ys = np.asarray(net.apply(params, xs, key=jax.random.key(3), train=True)[0])
    ux = xs @ U.T
    masks = []
    for d in range(D):
        h = ys[..., d * H : (d + 1) * H]
        previous = h[:, :-1] if d == 0 else h[:, 1:]  # the backward direction reads from the end
        now = h[:, 1:] if d == 0 else h[:, :-1]
        u = ux[:, 1:] if d == 0 else ux[:, :-1]
        mask = (now - u) / previous
        np.testing.assert_allclose(mask, np.broadcast_to(mask[:, :1], mask.shape), atol=1e-5)
        np.testing.assert_allclose(np.unique(np.round(mask, 4)), [0.0, 1 / (1 - rate)], atol=1e-4)
        masks.append(mask[:, 0] > 0.5)
    assert len({tuple(row) for row in masks[0]}) > 1  # one per sequence
    if bidirectional:
        assert (masks[0] != masks[1]).any()  # and per direction
    np.testing.assert_allclose(ys[:, :1, :H], ux[:, :1], rtol=1e-6)  # h_0 = 0: the first step has no mask


def _gru_reference(params: GRUParams, xs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The GRU (PyTorch's form, Cho et al. 2014) with Gal's mask on ``h_{t-1}`` in ``W h_{t-1}`` only."""
    U, W, b, b_hn = (np.asarray(a, np.float64) for a in params)
    U_r, U_z, U_n = np.split(U, 3)
    W_r, W_z, W_n = np.split(W, 3)
    b_r, b_z, b_n = np.split(b, 3)
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h, ys = np.zeros((xs.shape[0], H)), []
    for t in range(xs.shape[1]):
        x, hm = xs[:, t], mask * h
        r = sigmoid(x @ U_r.T + b_r + hm @ W_r.T)
        z = sigmoid(x @ U_z.T + b_z + hm @ W_z.T)
        n = np.tanh(x @ U_n.T + b_n + r * (hm @ W_n.T + b_hn))
        h = (1 - z) * n + z * h  # the state carried on is h_{t-1} itself
        ys.append(h)
    return np.stack(ys, 1)


def test_recurrent_dropout_equals_gals_gru():
    """Against the equations, with the mask that a linear cell of the same size shows for the same key (masks
    are drawn from the key, the layer and the direction)."""
    rate, key, xs = 0.5, jax.random.key(4), normal(1, (8, T, I))
    lin = linear_params(np.abs(normal(0, (H, I))), np.eye(H))
    xp = positive(2, (8, T, I))
    ys = np.asarray(linear_net(recurrent_dropout=rate).apply(lin, xp, key=key, train=True)[0])
    mask = (ys[:, 1] - xp[:, 1] @ np.asarray(lin[0][0].U).T) / ys[:, 0]
    net = rj.RNN("gru", H, recurrent_dropout=rate)
    params = net.init(jax.random.key(0), I)
    got = net.apply(params, xs, key=key, train=True)[0]
    np.testing.assert_allclose(got, _gru_reference(params[0][0], xs, mask), atol=2e-5)
    assert np.abs(_gru_reference(params[0][0], xs, np.ones_like(mask)) - np.asarray(got)).max() > 1e-2


@pytest.mark.parametrize("name", WITH_PARTS)
def test_recurrent_dropout_leaves_the_carried_state_alone(name):
    """With W = 0 the recurrent matmul reads nothing, so its mask changes nothing: the state that the step
    carries on (the GRU's ``z * h``, the LSTM's ``c``) is unmasked."""
    net = rj.RNN(name, H, recurrent_dropout=0.5)
    params = net.init(jax.random.key(0), I)
    if not hasattr(params[0][0], "W"):
        pytest.skip("no recurrent matrix W to zero")
    xs, carry = normal(1, (B, T, I)), random_like(net.initial_carry(params, B), 10)
    trained = net.apply(params, xs, LENGTHS, carry, key=jax.random.key(1), train=True)[0]
    assert np.abs(np.asarray(trained) - np.asarray(net.apply(params, xs, LENGTHS, carry)[0])).max() > 1e-3
    still = ((params[0][0]._replace(W=jnp.zeros_like(params[0][0].W)),),)
    trained = net.apply(still, xs, LENGTHS, carry, key=jax.random.key(1), train=True)
    chex.assert_trees_all_close(trained, net.apply(still, xs, LENGTHS, carry), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_evaluation_is_the_network_without_dropout(name):
    options = dict(input_dropout=0.3, recurrent_dropout=0.3 if name in WITH_PARTS else 0.0)
    net = rj.RNN(name, H, num_layers=2, dropout=0.2, **options)
    plain = rj.RNN(name, H, num_layers=2)
    params, xs, key = net.init(jax.random.key(0), I), normal(1, (B, T, I)), jax.random.key(2)
    expected = plain.apply(params, xs, LENGTHS)
    chex.assert_trees_all_equal(net.apply(params, xs, LENGTHS, key=key), expected)
    chex.assert_trees_all_equal(net.apply(params, xs, LENGTHS), expected)  # no key needed
    trained = net.apply(params, xs, LENGTHS, key=key, train=True)
    assert (np.asarray(trained[0]) != np.asarray(expected[0])).any()
    chex.assert_trees_all_equal(net.apply(params, xs, LENGTHS, key=key, train=True), trained)  # one key, one mask


def test_expectation_over_masks():
    """A linear network is linear in its input mask: E[ys] = ys of evaluation at every step. The recurrent mask
    enters h_t once per step, so at t = 1 (0-based) E[m * h_0(no mask)] = h_0: the first two steps agree."""
    U, W = normal(0, (H, I)), 0.5 * np.linalg.qr(normal(1, (H, H)))[0]
    params, xs = linear_params(U, W), normal(2, (B, T, I))
    for net, steps in ((linear_net(input_dropout=0.3), T), (linear_net(recurrent_dropout=0.3), 2)):
        draws = samples(net, params, xs, 4000)
        assert_mean(draws[:, :, :steps], net.apply(params, xs)[0][:, :steps])
        assert draws.std(0)[:, 1:steps].min() > 1e-3  # not vacuous


# --- zoneout --------------------------------------------------------------------------------------------


def test_zoneout_keeps_a_unit_with_probability_p_fresh_every_step():
    rate = 0.3
    net = rj.RNN("rnn", H, zoneout=rate)
    params = net.init(jax.random.key(0), I)
    xs = normal(1, (64, T, I))
    ys = np.asarray(net.apply(params, xs, key=jax.random.key(3), train=True)[0])
    cell = net.step_cell
    h = np.zeros((64, H), np.float32)
    kept = np.zeros((64, T, H), bool)
    for t in range(T):
        new = np.asarray(cell.step(params[0][0], h, xs[:, t])[1])
        kept[:, t] = np.isclose(ys[:, t], h, atol=1e-6, rtol=0)
        changed = np.isclose(ys[:, t], new, atol=1e-5, rtol=0)
        assert np.all(kept[:, t] | changed), t  # each unit is its last value or the step's
        h = ys[:, t]
    assert abs(kept.mean() - rate) < 0.05, kept.mean()  # 1920 units: 0.3 +- 0.01
    assert (kept[:, 1:] != kept[:, :-1]).mean() > 0.3  # a fresh mask every step
    assert (kept[1:] != kept[:-1]).mean() > 0.3  # and row


@pytest.mark.parametrize("name", NAMES)
def test_zoneout_per_leaf_rates(name):
    """One step from a random carry: the leaf with rate 0.9 holds its value or takes the step's, unit by unit;
    the others take the step's (the LSTM's h reads the new c, as in the paper)."""
    cell = rj.cells.make(name, H)
    n = carry_leaves(cell)
    xs = normal(1, (16, 1, I))
    for k in range(n):
        rates = tuple(0.9 if j == k else 0.0 for j in range(n))
        net = rj.RNN(cell, zoneout=rates)
        params = net.init(jax.random.key(0), I)
        carry = random_like(net.initial_carry(params, 16), 20)
        _, finals = net.apply(params, xs, carry=carry, key=jax.random.key(5), train=True)
        new, _ = cell.step(params[0][0], carry[0][0], xs[:, 0])
        for j, (got, old, step) in enumerate(zip(*map(jax.tree.leaves, (finals[0][0], carry[0][0], new)))):
            got, old, step = map(np.asarray, (got, old, step))
            is_step = np.isclose(got, step, atol=1e-5, rtol=1e-5)
            if j != k:
                assert is_step.all(), (k, j)
                continue
            is_old = np.isclose(got, old, atol=1e-6, rtol=0)
            assert (is_old | is_step).all() and 0.75 < is_old.mean() < 1.0, is_old.mean()


@pytest.mark.parametrize("name", NAMES)
def test_zoneout_evaluation_is_the_expectation(name, x64):
    """In evaluation, ``s_t = p s_{t-1} + (1 - p) step(s_{t-1}, x_t)`` for every leaf, against a Python loop
    of the cell's step (float64), with lengths and backwards."""
    cell = rj.cells.make(name, H, dtype=jnp.float64)
    rates = tuple(0.1 + 0.3 * k for k in range(carry_leaves(cell)))
    net = rj.RNN(cell, bidirectional=True, zoneout=rates)
    params = net.init(jax.random.key(0), I)
    xs, carry = normal(1, (B, T, I)).astype(np.float64), random_like(net.initial_carry(params, B), 30)
    ys, finals = net.apply(params, xs, LENGTHS, carry)
    for d in range(2):
        for b in range(B):
            s = jax.tree.map(lambda c: c[b : b + 1], carry[0][d])
            steps = range(LENGTHS[b]) if d == 0 else reversed(range(LENGTHS[b]))
            for t in steps:
                new, _ = cell.step(params[0][d], s, xs[b : b + 1, t])
                s = jax.tree.unflatten(
                    jax.tree.structure(s),
                    [p * c + (1 - p) * n for p, c, n in zip(rates, jax.tree.leaves(s), jax.tree.leaves(new))],
                )
                if cell.spec.output is not None:
                    y = rj.cells.output_of(cell, s)[0]
                    np.testing.assert_allclose(ys[b, t, d * H : (d + 1) * H], y, atol=1e-12)
            chex.assert_trees_all_close(jax.tree.map(lambda c: c[b : b + 1], finals[0][d]), s, atol=1e-12)


def test_zoneout_expectation_over_masks():
    """A linear cell: ``d_t`` is independent of ``s_{t-1}``, so E[ys] of training is evaluation at every step."""
    U, W = normal(0, (H, I)), 0.9 * np.linalg.qr(normal(1, (H, H)))[0]
    params, xs = linear_params(U, W), normal(2, (B, T, I))
    net = linear_net(zoneout=0.4)
    draws = samples(net, params, xs, 4000)
    assert_mean(draws, net.apply(params, xs)[0])
    assert draws.std(0)[:, 1:].min() > 1e-3
    plain = rj.RNN(net.cell).apply(params, xs)[0]
    assert np.abs(np.asarray(net.apply(params, xs)[0]) - np.asarray(plain)).max() > 1e-2  # not the plain net


# --- all of them together -------------------------------------------------------------------------------


def _everything(name: str, num_layers: int = 1) -> rj.RNN:
    drop_h = 0.3 if name in WITH_PARTS else 0.0
    return rj.RNN(
        name, H, num_layers=num_layers, bidirectional=True, dropout=0.2, input_dropout=0.2, recurrent_dropout=drop_h,
        zoneout=0.2, learn_initial=True,
    )  # fmt: skip


def _padding_case(net: rj.RNN):
    params = net.init(jax.random.key(0), I)
    params = params._replace(initial=random_like(params.initial, 40))
    xs = normal(1, (B, T, I))
    noisy = np.where(np.arange(T)[None, :, None] >= LENGTHS[:, None, None], 100 * normal(2, (B, T, I)), xs)
    apply = jax.jit(lambda p, x, k: net.apply(p, x, LENGTHS, key=k, train=True))
    key = jax.random.key(3)
    chex.assert_trees_all_close(apply(params, noisy, key), apply(params, xs, key), atol=1e-6, rtol=0)
    return params, xs, key, apply


@pytest.mark.parametrize("name", NAMES)
def test_padding_never_changes_valid_outputs_in_training(name):
    _padding_case(_everything(name))


def test_everything_at_once_trains():
    """Two bidirectional layers with every option: padding changes nothing, and every param gets a gradient."""
    params, xs, key, apply = _padding_case(_everything("lstm", num_layers=2))
    grads = jax.grad(lambda p: jnp.sum(apply(p, xs, key)[0] ** 2))(params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    assert all(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(grads))


# --- learned initial states -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_learned_initial_carry(name):
    net = rj.RNN(name, H, bidirectional=True, learn_initial=True)
    plain = dataclasses.replace(net, learn_initial=False)
    params = net.init(jax.random.key(0), I)
    assert isinstance(params, rj.network.WithInitial)
    chex.assert_trees_all_equal(params.cells, plain.init(jax.random.key(0), I))  # the same cells
    cell = net.step_cell
    zeros = tuple(tuple(cell.initial_carry(p, ()) for p in layer) for layer in params.cells)
    chex.assert_trees_all_equal(params.initial, zeros)
    chex.assert_trees_all_equal(net.cell_params(params), params.cells)

    params = params._replace(initial=random_like(params.initial, 50))
    carry = net.initial_carry(params, B)
    chex.assert_trees_all_equal(carry, jax.tree.map(lambda c: jnp.broadcast_to(c, (B, *c.shape)), params.initial))
    xs = normal(1, (B, T, I))
    expected = plain.apply(params.cells, xs, LENGTHS, carry)
    chex.assert_trees_all_equal(net.apply(params, xs, LENGTHS), expected)
    other = random_like(carry, 60)  # a carry given is used instead
    chex.assert_trees_all_equal(net.apply(params, xs, LENGTHS, other), plain.apply(params.cells, xs, LENGTHS, other))


def test_gradients_reach_the_initial_carry():
    """d loss / d initial is the batch sum of d loss / d carry (the carry is the initial one broadcast)."""
    net = rj.RNN("lstm", H, bidirectional=True, learn_initial=True)
    plain = dataclasses.replace(net, learn_initial=False)
    params, xs, R = net.init(jax.random.key(0), I), normal(1, (B, T, I)), normal(2, (B, T, 2 * H))

    def loss(ys_finals):
        ys, finals = ys_finals
        return jnp.sum(ys * R) + sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree.leaves(finals))

    grads = jax.jit(jax.grad(lambda p: loss(net.apply(p, xs, LENGTHS))))(params)
    by_carry = jax.grad(lambda c: loss(plain.apply(params.cells, xs, LENGTHS, c)))(net.initial_carry(params, B))
    chex.assert_trees_all_close(grads.initial, jax.tree.map(lambda g: g.sum(0), by_carry), atol=1e-5, rtol=1e-5)
    assert min(float(np.abs(g).max()) for g in jax.tree.leaves(grads.initial)) > 1e-3


def test_a_language_model_with_a_learned_initial_state_generates():
    model = rj.models.LanguageModel(rj.RNN("gru", H, learn_initial=True, zoneout=0.1), vocab_size=7)
    params = model.init(jax.random.key(0))
    chex.assert_shape(model.generate(params, jnp.array([[1], [4]]), 3, jax.random.key(2)), (2, 3))


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: rj.RNN("lstm", H, input_dropout=1.0), r"input_dropout: expected a probability in \[0, 1\)"),
        (lambda: rj.RNN("lstm", H, recurrent_dropout=-0.1), r"recurrent_dropout: expected a probability in \[0, 1"),
        (lambda: rj.RNN("lstm", H, zoneout=1.0), r"zoneout: expected a probability in \[0, 1\), got float 1.0"),
        (lambda: rj.RNN("lstm", H, zoneout="0.1"), r"zoneout: expected a probability"),
        (lambda: rj.RNN("lstm", H, zoneout=(0.1,)), r"zoneout: expected a rate or a tuple of 2 \(one per leaf"),
        (lambda: rj.RNN("lstm", H, zoneout=(0.1, 1.5)), r"zoneout\[1\]: expected a probability in \[0, 1\)"),
        (lambda: rj.RNN("lstm", H, learn_initial=1), "learn_initial: expected True or False, got int 1"),
        (lambda: rj.RNN("lstm", H, impl="fused", zoneout=0.1), "impl: expected 'auto' or 'scan' with recurrent"),
        (lambda: rj.RNN("gru", H, impl="fused", recurrent_dropout=0.1), "impl: expected 'auto' or 'scan'"),
    ],
    ids=["input_1", "recurrent_negative", "zoneout_1", "zoneout_str", "zoneout_leaves", "zoneout_leaf", "initial",
         "fused_zoneout", "fused_recurrent"],
)  # fmt: skip
def test_bad_options_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        rj.RNN("lstm", H, 1, False, 0.0, "auto", 0.1)


@pytest.mark.skipif(not WITHOUT_PARTS, reason="every registered cell splits its step around its matmul")
@pytest.mark.parametrize("name", WITHOUT_PARTS)
def test_recurrent_dropout_needs_the_recurrent_matmul(name):
    with pytest.raises(ValueError, match=rf"recurrent_dropout: {name}'s step does not declare its recurrent matmul"):
        rj.RNN(name, H, recurrent_dropout=0.1)
    rj.RNN(name, H, zoneout=0.1, input_dropout=0.1)  # these act on any cell


def test_training_needs_a_key():
    net = rj.RNN("lstm", H, zoneout=0.1, input_dropout=0.2)
    params, xs = net.init(jax.random.key(0), I), normal(1, (B, T, I))
    with pytest.raises(ValueError, match="key: expected a PRNG key for input_dropout=0.2, zoneout=0.1 in training"):
        net.apply(params, xs, train=True)


def test_params_of_the_other_kind_raise():
    net = rj.RNN("lstm", H, num_layers=2, learn_initial=True)
    plain = dataclasses.replace(net, learn_initial=False)
    params, xs = net.init(jax.random.key(0), I), normal(1, (B, T, I))
    with pytest.raises(ValueError, match=r"params: expected a WithInitial\(cells, initial\) .* got tuple"):
        net.apply(params.cells, xs)
    with pytest.raises(ValueError, match="params: expected a tuple of 2 layers .* got a WithInitial"):
        plain.apply(params, xs)
    with pytest.raises(ValueError, match="params: expected a tuple of 2 layers .* got a WithInitial"):
        plain.initial_carry(params, B)
    wrong = params._replace(initial=jax.tree.map(lambda c: c[None], params.initial))
    with pytest.raises(ValueError, match=r"params.initial\[0\]\[0\].h: expected float32\(5,\) \(one sequence's carry"):
        net.apply(wrong, xs)
    with pytest.raises(ValueError, match=r"params.cells: expected a tuple of 2 layers"):
        net.apply(params._replace(cells=params.cells[:1]), xs)
    nan = params._replace(initial=jax.tree.map(lambda c: c.at[0].set(jnp.nan), params.initial))
    with pytest.raises(ValueError, match="params"):
        net.apply(nan, xs)


@pytest.mark.parametrize(
    "options",
    [dict(learn_initial=True), dict(zoneout=0.1), dict(recurrent_dropout=0.1), dict(input_dropout=0.1)],
    ids=["learn_initial", "zoneout", "recurrent_dropout", "input_dropout"],
)
def test_check_plain_names_what_has_no_counterpart(options):
    net = rj.RNN("lstm", H, **options)
    (name, value), = options.items()  # fmt: skip
    with pytest.raises(ValueError, match=rf"net: PyTorch has no counterpart of {name}={value!r}"):
        net.check_plain("PyTorch")
    rj.RNN("lstm", H, dropout=0.5).check_plain("PyTorch")


@pytest.mark.parametrize("options", [dict(learn_initial=True), dict(zoneout=0.1)], ids=["learn_initial", "zoneout"])
def test_to_torch_refuses_what_torch_lacks(options):
    net = rj.RNN("lstm", H, **options)
    with pytest.raises(ValueError, match="net: PyTorch has no counterpart of"):
        rj.interop.to_torch(net, net.init(jax.random.key(0), I))
