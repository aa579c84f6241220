"""The hand-written backward pass of the scan (``rnnjax.fused``) against JAX's own differentiation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj

pytestmark = pytest.mark.usefixtures("strict_dtypes")

I, H, B, T = 3, 5, 4, 7
NAMES = ["rnn", "relu", "linear", "lstm", "gru"]


def make(name):
    if name in ("relu", "linear"):
        return rj.cells.rnn(H, name, dtype=jnp.float64)
    return rj.cells.make(name, H, dtype=jnp.float64)


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
def test_rnn_slope_is_the_derivative_written_in_the_output(activation, x64):
    """The RNN's backward pass reads a_t, not pre_t: slope(f(z)) must be f'(z) as JAX differentiates f,
    also at ReLU's kink."""
    cell = rj.cells.rnn(H, activation, dtype=jnp.float64)
    z = jnp.concatenate([jnp.linspace(-3.0, 3.0, 61), jnp.zeros(1)])
    f = lambda z: cell.spec.parts.pointwise(jnp.zeros_like(z), z)  # noqa: E731
    np.testing.assert_allclose(cell.spec.parts.slope(f(z)), jax.vmap(jax.grad(f))(z), rtol=1e-14, atol=1e-14)


def weights(shape):
    """Fixed, unequal weights for the outputs of a test loss."""
    return jnp.cos(jnp.arange(int(np.prod(shape)), dtype=jnp.float64).reshape(shape))


def grads(cell, params, xs, carry, backward, lengths, reverse, loss_on):
    """Gradients with respect to params, xs and the initial carry of a loss on some of the outputs."""

    def loss(params, xs, carry):
        final, ys, carries = rj.unroll(
            cell, params, xs, carry=carry, lengths=lengths, reverse=reverse, return_carries=True, impl=backward
        )
        total = 0.0
        if "ys" in loss_on:
            total += jnp.sum(jnp.sin(ys) * weights(ys.shape))
        if "final" in loss_on:  # every part of the final carry (h and C for the LSTM)
            total += sum(jnp.sum(jnp.tanh(c) * weights(c.shape)) for c in jax.tree.leaves(final))
        if "carries" in loss_on:
            total += sum(jnp.sum(c**2) for c in jax.tree.leaves(carries))
        return total

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, xs, carry)


@pytest.mark.parametrize("name", NAMES)
def test_fused_equals_autodiff(name, x64, getkey):
    """float64: with and without lengths and reversal, whatever the loss reads, agrees to 1e-12."""
    cell = make(name)
    params = cell.init(getkey(), I)
    xs = jax.random.normal(getkey(), (B, T, I), jnp.float64)
    carry = jax.tree.map(lambda c: c + 0.3, cell.initial_carry(params, (B,)))
    lengths = jnp.array([7, 0, 3, 5])
    everything = ("ys", "final", "carries")
    # Each of lengths, reversal and a loss that leaves some cotangents zero (symbolic in the pass), at
    # least once with each of the others.
    options = [
        (None, False, ("ys",)),
        (None, True, everything),
        (lengths, False, ("final",)),
        (lengths, True, ("ys",)),
        (lengths, False, everything),
    ]
    for lengths, reverse, loss_on in options:
        fused = grads(cell, params, xs, carry, "fused", lengths, reverse, loss_on)
        auto = grads(cell, params, xs, carry, "scan", lengths, reverse, loss_on)
        for got, want in zip(jax.tree.leaves(fused), jax.tree.leaves(auto), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{lengths=} {reverse=} {loss_on=}")


def test_fused_is_what_runs_and_autodiff_allows_forward_mode(getkey):
    """The default backward pass is the hand-written one (forward mode cannot pass it); the
    autodiff one supports jvp, and gives the same reverse-mode gradients."""
    cell = rj.cells.lstm(H)
    params = cell.init(getkey(), I)
    xs = jax.random.normal(getkey(), (B, T, I))

    def ys(xs, backward):
        return rj.unroll(cell, params, xs, impl=backward)[1]

    with pytest.raises(TypeError, match=r"forward-mode.*use rj.unroll\(..., impl='scan'\)"):
        jax.jvp(lambda x: ys(x, "fused"), (xs,), (xs,))
    with pytest.raises(TypeError, match="impl='scan'"):
        jax.jacfwd(lambda x: ys(x, "fused"))(xs)
    with pytest.raises(TypeError, match="impl='scan'"):  # through a network too
        net = rj.RNN(cell, num_layers=2)
        jax.jacfwd(lambda x: net.apply(net.init(getkey(), I), x)[0])(xs)
    jax.jvp(lambda x: ys(x, "scan"), (xs,), (xs,))
    vjp_fused = jax.vjp(lambda x: ys(x, "fused"), xs)[1](jnp.ones((B, T, H)))
    vjp_auto = jax.vjp(lambda x: ys(x, "scan"), xs)[1](jnp.ones((B, T, H)))
    np.testing.assert_allclose(vjp_fused[0], vjp_auto[0], rtol=1e-5, atol=1e-6)


def test_cells_without_parts_and_remat_fall_back_to_autodiff(getkey):
    """The Cho GRU (reset before its second matmul) runs the loop JAX differentiates, and so does ``remat=True``
    with ``impl="scan"``: forward mode works through them (``remat`` with the default impl keeps the fused pass,
    which forward mode cannot pass)."""
    cho = rj.cells.gru(H, reset_after=False)
    assert cho.spec.parts is None
    lstm = rj.cells.lstm(H)
    xs = jax.random.normal(getkey(), (B, T, I))
    for cell, remat, impl in [(cho, False, "auto"), (lstm, True, "scan")]:
        params = cell.init(getkey(), I)
        jax.jvp(lambda x: rj.unroll(cell, params, x, remat=remat, impl=impl)[1], (xs,), (xs,))  # noqa: B023
    with pytest.raises(TypeError, match="forward-mode differentiation"):
        jax.jvp(lambda x: rj.unroll(lstm, params, x, remat=True)[1], (xs,), (xs,))


def test_network_gradients_through_fused_layers_match_autodiff(getkey):
    """Two bidirectional LSTM layers with lengths: the gradients reach the inputs of the lower layer
    through the hand-written pass (dX = dPre U) and agree with JAX's."""
    key = getkey()
    xs = jax.random.normal(getkey(), (B, T, I))
    lengths = jnp.array([7, 1, 4, 6])
    out = {}
    for backward in ["fused", "scan"]:
        net = rj.RNN(cell="lstm", hidden_size=H, num_layers=2, bidirectional=True, impl=backward)
        params = net.init(key, I)
        out[backward] = jax.grad(lambda p, x: jnp.sum(jnp.sin(net.apply(p, x, lengths)[0])), argnums=(0, 1))(  # noqa: B023
            params, xs
        )
    for got, want in zip(jax.tree.leaves(out["fused"]), jax.tree.leaves(out["scan"]), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_unknown_impl_is_rejected(getkey):
    cell = rj.cells.rnn(H)
    params = cell.init(getkey(), I)
    with pytest.raises(ValueError, match="impl: expected one of"):
        rj.unroll(cell, params, jnp.zeros((B, T, I)), impl="manual")
    with pytest.raises(ValueError, match="impl: expected one of"):
        rj.RNN(cell="rnn", hidden_size=H, impl="manual")


def test_vmap_of_grad_matches_autodiff(getkey):
    """Per-sequence gradients by ``vmap(grad)``: the custom VJP batches like JAX's own."""
    cell = rj.cells.gru(H)
    params = cell.init(getkey(), I)
    xs = jax.random.normal(getkey(), (B, T, I))

    def per_sequence(backward):
        def loss(params, x):
            return jnp.sum(jnp.sin(rj.unroll(cell, params, x[None], impl=backward)[1]))

        return jax.vmap(jax.grad(loss), in_axes=(None, 0))(params, xs)

    for got, want in zip(jax.tree.leaves(per_sequence("fused")), jax.tree.leaves(per_sequence("scan")), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
