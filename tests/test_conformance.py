"""The cell contract, checked on every cell in the registry: a cell added to ``rj.cells.CELLS`` joins every
check here with no test edited.

For each cell: shapes and dtypes; ``step`` against a plain Python loop; lengths (0 included) and reversal
within lengths against each sequence cut to its length; every implementation the cell declares against the
reference (``impl="scan"``) in float64, values and gradients w.r.t. params, inputs and the initial carry;
``jit``, ``vmap`` and ``grad`` composed; clear ``ValueError`` on bad inputs; the analysis on it; interop
converting or refusing clearly.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax import analysis
from rnnjax.analysis import systems

NAMES = sorted(rj.cells.CELLS)
I, H, B, T = 3, 4, 3, 6
LENGTHS = np.array([6, 0, 4])


def make(name: str, dtype=jnp.float32) -> rj.Cell:
    return rj.cells.make(name, H, dtype=dtype)


def implementations(cell: rj.Cell) -> list[str]:
    """What the cell declares it can run: the reference, and the faster forms of the same function."""
    spec = cell.spec
    return ["scan"] + ["fused"] * (spec.parts is not None) + ["associative"] * (spec.linear is not None)


def random_like(tree, key, scale=0.5):
    """Random values in the structure, shapes and dtypes of ``tree`` (complex leaves: both parts)."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = []
    for k, leaf in zip(keys, leaves, strict=False):
        if jnp.iscomplexobj(leaf):
            real = jnp.finfo(leaf.dtype).dtype
            re, im = jax.random.normal(k, (2, *leaf.shape), real) * scale
            out.append((re + 1j * im).astype(leaf.dtype))
        else:
            out.append((jax.random.normal(k, leaf.shape, leaf.dtype) * scale).astype(leaf.dtype))
    return jax.tree.unflatten(treedef, out)


def setup(name, key, dtype=jnp.float32):
    cell = make(name, dtype)
    k_p, k_x, k_c = jax.random.split(key, 3)
    params = cell.init(k_p, I)
    xs = jax.random.normal(k_x, (B, T, I), dtype)
    carry = random_like(cell.initial_carry(params, (B,)), k_c)
    return cell, params, xs, carry


def python_loop(cell, params, xs, carry):
    ys, carries = [], []
    for t in range(xs.shape[1]):
        carry, y = cell.step(params, carry, xs[:, t])
        ys.append(y)
        carries.append(carry)
    stack = lambda *a: jnp.stack(a, axis=1)  # noqa: E731
    return carry, jnp.stack(ys, axis=1), jax.tree.map(stack, *carries)


def real_sum(tree):
    return sum(jnp.sum(jnp.real(leaf)) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name, getkey):
    cell = make(name)
    params = cell.init(getkey(), I)
    assert isinstance(params, tuple) and params._fields, "params are a NamedTuple with named fields"
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    assert cell.hidden_size == H
    for batch in [(), (B,), (2, 3)]:
        carry = cell.initial_carry(params, batch)
        for leaf in jax.tree.leaves(carry):
            assert leaf.shape[: len(batch)] == batch and not leaf.any()
        new, y = cell.step(params, carry, jnp.ones((*batch, I)))
        chex.assert_shape(y, (*batch, H))
        assert y.dtype == jnp.float32
        chex.assert_trees_all_equal_shapes_and_dtypes(new, carry)
    if cell.spec.output is not None:
        new, y = cell.step(params, cell.initial_carry(params, (B,)), jnp.ones((B, I)))
        np.testing.assert_array_equal(rj.cells.output_of(cell, new), y)


def test_the_registry_is_cached_and_hashable():
    for name in NAMES:
        assert make(name) is make(name) and hash(make(name)) == hash(make(name))


@pytest.mark.parametrize("name", NAMES)
def test_step_is_recur_of_project(name, getkey):
    cell, params, xs, carry = setup(name, getkey())
    spec = cell.spec
    loop = spec.prepare(params)
    split = spec.recur(loop, carry, spec.project(loop, xs[:, 0]))
    chex.assert_trees_all_close(cell.step(params, carry, xs[:, 0]), split)


@pytest.mark.parametrize("name", NAMES)
def test_every_implementation_equals_a_python_loop(name, getkey):
    cell, params, xs, carry = setup(name, getkey())
    final, ys, carries = python_loop(cell, params, xs, carry)
    for impl in implementations(cell):
        for hoist in [False, True]:
            got = rj.unroll(cell, params, xs, carry=carry, impl=impl, hoist=hoist, return_carries=True)
            chex.assert_trees_all_close(got, (final, ys, carries), rtol=2e-5, atol=2e-5, custom_message=impl)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("name", NAMES)
def test_lengths_equal_each_sequence_cut_to_its_length(name, reverse, getkey):
    cell, params, xs, carry = setup(name, getkey())
    xs = xs.at[1, :].set(jnp.nan)  # padding is never read: the row of length 0 is all NaN
    for impl in implementations(cell):
        final, ys = rj.unroll(cell, params, xs, carry=carry, lengths=LENGTHS, reverse=reverse, impl=impl)
        for b, n in enumerate(LENGTHS):
            row = lambda tree: jax.tree.map(lambda a: a[b : b + 1], tree)  # noqa: B023, E731
            if n == 0:
                chex.assert_trees_all_close(row(final), row(carry), custom_message=f"{impl}: length 0")
                np.testing.assert_array_equal(ys[b], 0)
                continue
            seq = xs[b : b + 1, :n]
            f_b, ys_b = rj.unroll(cell, params, seq[:, ::-1] if reverse else seq, carry=row(carry), impl="scan")
            chex.assert_trees_all_close(row(final), f_b, rtol=2e-5, atol=2e-5, custom_message=impl)
            np.testing.assert_allclose(ys[b, :n], (ys_b[0, ::-1] if reverse else ys_b[0]), rtol=2e-5, atol=2e-5)
            np.testing.assert_array_equal(ys[b, n:], 0)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("name", NAMES)
def test_implementations_agree_in_float64_values_and_gradients(name, reverse, x64, getkey):
    """Every implementation against the reference, to float64 precision: the outputs, the final carry, and
    the gradients of a loss on both w.r.t. params, inputs and the initial carry, with lengths."""
    cell, params, xs, carry = setup(name, getkey(), jnp.float64)
    w = jax.random.normal(getkey(), (B, T, H), jnp.float64)

    def loss(params, xs, carry, impl):
        final, ys = rj.unroll(cell, params, xs, carry=carry, lengths=LENGTHS, reverse=reverse, impl=impl)
        return jnp.sum(jnp.sin(ys) * w) + real_sum(jax.tree.map(lambda a: a * a, final))

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)), static_argnums=3)
    reference = grad(params, xs, carry, "scan")
    for impl in implementations(cell)[1:]:
        got = grad(params, xs, carry, impl)
        chex.assert_trees_all_close(got, reference, rtol=1e-10, atol=1e-10, custom_message=impl)


@pytest.mark.parametrize("name", NAMES)
def test_jit_vmap_and_grad_compose(name, getkey):
    cell, params, xs, carry = setup(name, getkey())
    for impl in implementations(cell):
        run = lambda p, x, c: rj.unroll(cell, p, x, carry=c, impl=impl)  # noqa: B023, E731
        chex.assert_trees_all_close(jax.jit(run)(params, xs, carry), run(params, xs, carry), rtol=1e-5, atol=1e-6)
        # vmap over the batch: each sequence alone, as a batch of one
        one = lambda x, c: jax.tree.map(lambda a: a[0], run(params, x[None], jax.tree.map(lambda a: a[None], c)))  # noqa: B023, E731
        chex.assert_trees_all_close(jax.vmap(one)(xs, carry), run(params, xs, carry), rtol=1e-5, atol=1e-6)
        grads = jax.jit(jax.grad(lambda p: jnp.sum(run(p, xs, carry)[1] ** 2)))(params)  # noqa: B023
        chex.assert_trees_all_equal_structs(grads, params)
        assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))
    # step under vmap equals the batched step
    step = lambda x, c: cell.step(params, c, x)  # noqa: E731
    chex.assert_trees_all_close(jax.vmap(step)(xs[:, 0], carry), step(xs[:, 0], carry), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_forward_mode_passes_the_reference(name, getkey):
    cell, params, xs, carry = setup(name, getkey())
    jax.jvp(lambda x: rj.unroll(cell, params, x, carry=carry, impl="scan")[1], (xs,), (xs,))


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_clearly(name, getkey):
    cell, params, xs, carry = setup(name, getkey())
    other = next(n for n in NAMES if type(make(n).init(getkey(), I)) is not type(params))
    cases = [
        (dict(xs=xs[..., :2]), r"params\S*: expected shape .* for xs with 2 features"),
        (dict(xs=xs.astype(jnp.int32)), "xs: expected a floating dtype"),
        (dict(xs=xs.astype(jnp.float16)), "xs: expected the params' dtype float32"),
        (dict(xs=xs.at[0, 1, 2].set(jnp.nan)), "xs: expected finite values at valid steps"),
        (dict(xs=xs[0]), r"xs: expected shape \(batch, time, features\)"),
        (dict(lengths=np.array([1, 2, T + 1])), r"lengths: expected values in \[0, 6\]"),
        (dict(carry=jax.tree.map(lambda a: a[:2], carry)), "carry.*: expected shape"),
        (dict(params=make(other).init(getkey(), I)), "params: expected"),
        (dict(params=jax.tree.map(lambda a: a.at[(0,) * a.ndim].set(jnp.nan), params)), "params.*: expected finite"),
        (dict(impl="nope"), "impl: expected one of"),
    ]
    for impl, declared in [("fused", cell.spec.parts), ("associative", cell.spec.linear)]:
        if declared is None:
            cases.append((dict(impl=impl), f"impl: {cell.name} "))
    for change, match in cases:
        kwargs = dict(cell=cell, params=params, xs=xs, carry=carry) | change
        with pytest.raises(ValueError, match=match):
            rj.unroll(**kwargs)
    with pytest.raises(ValueError, match="x: expected 3 features"):
        cell.step(params, jax.tree.map(lambda a: a[0], carry), jnp.ones(I + 1))


@pytest.mark.parametrize("name", NAMES)
def test_the_analysis_runs_on_it(name, getkey):
    """Step Jacobians equal ``jacrev`` of the step on the state vector; products and exponents are finite."""
    cell, params, xs, carry = setup(name, getkey())
    J = analysis.step_jacobians(cell, params, xs, carry, lengths=LENGTHS)
    n = analysis.state_vector(carry).shape[-1]
    chex.assert_shape(J, (B, T, n, n))
    traj = analysis.trajectory(cell, params, xs, carry)
    step = systems.step_map(cell, params)
    np.testing.assert_allclose(J[0, 2], jax.jacrev(step)(traj[0, 2], xs[0, 2]), rtol=1e-5, atol=1e-6)
    assert np.isnan(J[1]).all() and np.isfinite(J[0]).all()
    products = analysis.jacobian_products(J, lengths=LENGTHS)
    assert np.isfinite(products[0]).all()
    exponents = analysis.lyapunov_spectrum(cell, params, xs, carry, k=2, warmup=1)
    chex.assert_shape(exponents, (B, 2))
    assert not np.isnan(exponents).any() and (exponents < np.inf).all()  # -inf: a dead ReLU unit (IRNN, IndRNN)
    blocks = analysis.blocks(J, cell)
    assert sum(b.shape[-1] * b.shape[-2] for b in blocks.values()) == n * n
    if cell.spec.gates is not None:
        traces = analysis.gate_traces(cell, params, xs, carry, lengths=LENGTHS)
        for trace in traces.values():
            chex.assert_shape(trace, (B, T, H))


@pytest.mark.parametrize("name", NAMES)
def test_a_network_of_it_runs_stacked_and_bidirectional(name, getkey):
    net = rj.RNN(cell=name, hidden_size=H, num_layers=2, bidirectional=True)
    params = net.init(getkey(), I)
    xs = jax.random.normal(getkey(), (B, T, I))
    ys, finals = net.apply(params, xs, LENGTHS)
    chex.assert_shape(ys, (B, T, 2 * H))
    np.testing.assert_array_equal(ys[1], 0)
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, xs, LENGTHS)[0] ** 2))(params)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))


@pytest.mark.parametrize("name", NAMES)
def test_interop_converts_or_refuses_clearly(name, getkey):
    """A cell PyTorch or Flax has converts there and back exactly; any other is refused with a ValueError that
    names it (never a KeyError, never a silent fallback to another layout)."""
    cell = make(name)
    params = cell.init(getkey(), I)
    net = rj.RNN(cell=cell)
    try:
        variables = rj.interop.to_flax(cell, params)
    except ValueError as e:
        assert name in str(e)
    else:
        back = rj.interop.from_flax(_flax_module(cell), variables)[1]
        chex.assert_trees_all_equal(back, params)
    pytest.importorskip("torch")
    try:
        module = rj.interop.to_torch(net, ((params,),))
    except ValueError as e:
        assert name in str(e)
    else:
        _, back = rj.interop.from_torch(module)
        chex.assert_trees_all_close(back[0][0], params)


def _flax_module(cell):
    import flax.linen as nn

    options = dict(cell.options)
    if "activation" in options:
        return nn.SimpleCell(H, activation_fn=nn.relu if options["activation"] == "relu" else nn.tanh)
    return {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[cell.name](H)
