"""Backpropagation through time: the textbook's explicit sums, and truncation.

The Elman network of the textbook, for one sequence ``x_1 .. x_T``::

    a_t = f(z_t),  z_t = U x_t + W a_{t-1} + b        hidden state
    o_t = V a_t + c,  y^_t = g(o_t)                   output (g = softmax or identity)
    L = sum_t L_t(y^_t, y_t)                          (or L_T alone: one output per sequence)

Its gradients, derived by hand and computed here without autodiff, run backwards in time::

    dL/do_t  = y^_t - y_t                              (softmax + cross-entropy; identity + 1/2 squared error)
    dL/da_t  = V^T dL/do_t + W^T dL/dz_{t+1}           the recursion: the future reaches back through W
    dL/dz_t  = f'(z_t) * dL/da_t
    dL/dV = sum_t dL/do_t a_t^T        dL/dc = sum_t dL/do_t
    dL/dW = sum_t dL/dz_t a_{t-1}^T    dL/dU = sum_t dL/dz_t x_t^T    dL/db = sum_t dL/dz_t

:func:`explicit_grads` returns these sums (or each term of them, ``per_step=True``), which
equal ``jax.grad`` of :func:`elman_loss` to rounding. :func:`truncated_value_and_grad` runs
truncated BPTT over chunks of ``k`` steps for any model.

References: Werner 1990 (BPTT); Williams & Peng 1990 (truncated BPTT); Goodfellow, Bengio &
Courville 2016, section 10.2.2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax.checks import check_finite_tree, check_positive_int, describe, is_concrete
from rnnjax.scan import check_xs
from rnnjax.types import Array, Carry, Params

__all__ = [
    "LOSSES",
    "ElmanParams",
    "elman_forward",
    "elman_loss",
    "explicit_grads",
    "split_chunks",
    "truncated_value_and_grad",
]

LOSSES = ("cross_entropy", "mse")


class ElmanParams(NamedTuple):
    """The whole Elman network: ``U: (h, i)``, ``W: (h, h)``, ``b: (h,)``, ``V: (k, h)``, ``c: (k,)``."""

    U: Array
    W: Array
    b: Array
    V: Array
    c: Array


def _activation(name: str) -> tuple[Callable[[Array], Array], Callable[[Array, Array], Array]]:
    """``f`` and ``f'`` written from ``(z, a)`` with ``a = f(z)``."""
    if name == "tanh":
        return jnp.tanh, lambda z, a: 1.0 - a**2
    if name == "relu":
        return jax.nn.relu, lambda z, a: (z > 0).astype(a.dtype)
    raise ValueError(f"activation: expected 'tanh' or 'relu', got {name!r}")


def _check(params: ElmanParams, xs: Array, targets: Array, loss: str, every_step: bool, a0: Array | None) -> Array:
    """``xs`` as an array, after checking every argument against the params' shapes."""
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    if not isinstance(params, ElmanParams):
        raise ValueError(f"params: expected ElmanParams(U, W, b, V, c), got {describe(params)}")
    h, k = jnp.shape(params.W)[0], jnp.shape(params.V)[0]
    i = jnp.shape(params.U)[-1]
    expected = {"U": (h, i), "W": (h, h), "b": (h,), "V": (k, h), "c": (k,)}
    for name, shape in expected.items():
        if jnp.shape(getattr(params, name)) != shape:
            raise ValueError(f"params.{name}: expected shape {shape}, got {jnp.shape(getattr(params, name))}")
    check_finite_tree(params, "params")
    xs = check_xs(xs)
    if xs.shape[-1] != i:
        raise ValueError(f"xs: expected (batch, time, {i}) (params.U is {(h, i)}), got {xs.shape}")
    if a0 is not None and jnp.shape(a0) != (xs.shape[0], h):
        raise ValueError(f"a0: expected shape {(xs.shape[0], h)} (batch, hidden), got {jnp.shape(a0)}")
    steps = xs.shape[:2] if every_step else xs.shape[:1]
    expected_targets = steps if loss == "cross_entropy" else (*steps, k)
    if tuple(targets.shape) != tuple(expected_targets):
        raise ValueError(f"targets: expected shape {tuple(expected_targets)} for loss={loss!r}, got {targets.shape}")
    if loss == "cross_entropy":
        if not jnp.issubdtype(targets.dtype, jnp.integer):
            raise ValueError(f"targets: expected integer class labels for loss='cross_entropy', got {targets.dtype}")
        if is_concrete(targets) and targets.size and (targets.min() < 0 or targets.max() >= k):
            raise ValueError(f"targets: expected classes in [0, {k}), got min {targets.min()} and max {targets.max()}")
    return xs


def elman_forward(params: ElmanParams, xs: Array, a0: Array, activation: str = "tanh") -> tuple[Array, ...]:
    """Pre-activations ``z``, states ``a`` and outputs ``o`` of every step, batch-major.

    Args:
        xs: ``(batch, time, i)``; a0: ``(batch, h)``.

    Returns:
        ``z, a: (batch, time, h)`` and ``o: (batch, time, k)``.
    """
    f, _ = _activation(activation)

    def step(a, x):
        z = x @ params.U.T + a @ params.W.T + params.b
        a = f(z)
        return a, (z, a)

    _, (z, a) = jax.lax.scan(step, a0, jnp.swapaxes(xs, 0, 1))
    z, a = jnp.swapaxes(z, 0, 1), jnp.swapaxes(a, 0, 1)
    return z, a, a @ params.V.T + params.c


def _dL_do(o: Array, targets: Array, loss: str, batch: int) -> Array:
    """``dL/do`` of the batch-mean loss at the given outputs."""
    if loss == "cross_entropy":
        return (jax.nn.softmax(o, axis=-1) - jax.nn.one_hot(targets, o.shape[-1], dtype=o.dtype)) / batch
    return (o - targets) / batch


def elman_loss(
    params: ElmanParams,
    xs: Array,
    targets: Array,
    a0: Array | None = None,
    *,
    activation: str = "tanh",
    loss: str = "cross_entropy",
    every_step: bool = True,
) -> Array:
    """``L``: summed over the steps that have an output, averaged over the batch.

    Args:
        targets: class labels ``(batch, time)`` (``(batch,)`` without ``every_step``) for
            ``"cross_entropy"`` on ``softmax(o_t)``; values ``(batch, time, k)`` (``(batch, k)``)
            for ``"mse"``, ``1/2 ||o_t - y_t||^2`` with ``g`` the identity.
        every_step: an output and a loss at every step, or only at the last.
    """
    xs = _check(params, xs, targets, loss, every_step, a0)
    a0 = jnp.zeros((xs.shape[0], params.W.shape[0]), xs.dtype) if a0 is None else a0
    _, _, o = elman_forward(params, xs, a0, activation)
    if not every_step:
        o = o[:, -1]
    if loss == "cross_entropy":
        logp = jax.nn.log_softmax(o, axis=-1)
        per = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    else:
        per = 0.5 * ((o - targets) ** 2).sum(-1)
    return per.sum() / xs.shape[0]


def explicit_grads(
    params: ElmanParams,
    xs: Array,
    targets: Array,
    a0: Array | None = None,
    *,
    activation: str = "tanh",
    loss: str = "cross_entropy",
    every_step: bool = True,
    per_step: bool = False,
) -> ElmanParams:
    """The gradient of :func:`elman_loss` by the textbook's sums over time, without autodiff.

    Args:
        per_step: return each step's term of every sum, stacked on a leading time axis
            (``grads.W[t]`` is ``dL/dz_t a_{t-1}^T``), instead of their sums.

    Returns:
        ``ElmanParams`` of gradients (or of per-step terms).
    """
    xs = _check(params, xs, targets, loss, every_step, a0)
    _, df = _activation(activation)
    batch, time, _ = xs.shape
    a0 = jnp.zeros((batch, params.W.shape[0]), xs.dtype) if a0 is None else a0
    z, a, o = elman_forward(params, xs, a0, activation)
    if every_step:
        d_o = _dL_do(o, targets, loss, batch)
    else:  # only the last step has an output: dL/do_t = 0 before it
        last = _dL_do(o[:, -1], targets, loss, batch)[:, None]
        d_o = jnp.concatenate([jnp.zeros((batch, time - 1, o.shape[-1]), o.dtype), last], axis=1)
    a_prev = jnp.concatenate([a0[:, None], a[:, :-1]], axis=1)

    def back(d_z_next, inputs):
        d_o_t, z_t, a_t = inputs
        d_a = d_o_t @ params.V + d_z_next @ params.W  # dL/da_t
        d_z = df(z_t, a_t) * d_a  # dL/dz_t
        return d_z, d_z

    time_major = [jnp.swapaxes(v, 0, 1) for v in (d_o, z, a)]
    _, d_z = jax.lax.scan(back, jnp.zeros_like(a0), time_major, reverse=True)  # (time, batch, h)
    d_o_tm, a_tm, a_prev_tm, x_tm = (jnp.swapaxes(v, 0, 1) for v in (d_o, a, a_prev, xs))
    terms = ElmanParams(
        U=jnp.einsum("tbh,tbi->thi", d_z, x_tm),
        W=jnp.einsum("tbh,tbj->thj", d_z, a_prev_tm),
        b=d_z.sum(1),
        V=jnp.einsum("tbk,tbh->tkh", d_o_tm, a_tm),
        c=d_o_tm.sum(1),
    )
    return terms if per_step else jax.tree.map(lambda g: g.sum(0), terms)


def split_chunks(tree: Any, k: int) -> tuple[Any, Any]:
    """Splits every array's time axis (axis 1) into chunks of ``k`` steps.

    Returns:
        ``(chunks, rest)``: ``chunks`` with a leading chunk axis, ``(n, batch, k, ...)``, and the
        remaining ``time % k`` steps ``(batch, time % k, ...)``, or None when k divides time.
    """
    check_positive_int(k, "k")
    leaves = jax.tree.leaves(tree)
    if not leaves or any(jnp.ndim(x) < 2 for x in leaves):
        raise ValueError("batch: expected a pytree of arrays (batch, time, ...), got one without a time axis")
    time = leaves[0].shape[1]
    if any(x.shape[:2] != leaves[0].shape[:2] for x in leaves):
        raise ValueError(f"batch: expected every array to share (batch, time), got {[x.shape for x in leaves]}")
    n = time // k
    if n == 0:
        raise ValueError(f"k: expected at most the {time} steps of the sequence, got {k}")

    def chunk(x: Array) -> Array:
        x = x[:, : n * k].reshape(x.shape[0], n, k, *x.shape[2:])
        return jnp.swapaxes(x, 0, 1)

    rest = None if time % k == 0 else jax.tree.map(lambda x: x[:, n * k :], tree)
    return jax.tree.map(chunk, tree), rest


def truncated_value_and_grad(
    chunk_loss: Callable[[Params, Carry, Any], tuple[Array, Carry]],
    params: Params,
    carry: Carry,
    batch: Any,
    k: int,
    *,
    resets: Array | None = None,
    initial_carry: Carry | None = None,
) -> tuple[Array, Params, Carry]:
    """Truncated BPTT: the loss over a long sequence, its gradient cut every ``k`` steps.

    The sequence is processed in chunks of ``k`` steps (the last one may be shorter). Each
    chunk starts from the previous chunk's final carry behind ``jax.lax.stop_gradient``, so
    no gradient flows across a chunk boundary; the gradients of all chunks are summed. With
    ``k`` equal to the sequence length this is full BPTT.

    Args:
        chunk_loss: ``chunk_loss(params, carry, chunk) -> (loss, carry)``, where ``chunk`` is
            ``batch`` cut to the chunk's steps (every array's axis 1 is time).
        params: differentiated.
        carry: the state entering the first chunk, ``(batch, ...)`` leaves.
        batch: a pytree of batch-major arrays ``(batch, time, ...)``.
        k: the truncation length, steps per chunk.
        resets: ``(batch, num_chunks)`` booleans: where True, that row starts the chunk from
            ``initial_carry`` instead of the carried state (a new sequence begins there).
        initial_carry: the state a reset row starts from (zeros of ``carry``'s shape if None).

    Returns:
        ``(loss, grads, carry)``: the summed chunk losses, the summed gradients and the
        final carry.
    """
    if not callable(chunk_loss):
        raise ValueError(
            f"chunk_loss: expected a function (params, carry, chunk) -> (loss, carry), got {describe(chunk_loss)}"
        )
    chunks, rest = split_chunks(batch, k)
    num_chunks = jax.tree.leaves(chunks)[0].shape[0] + (rest is not None)
    if initial_carry is None:
        initial_carry = jax.tree.map(jnp.zeros_like, carry)
    if resets is None:
        resets = jnp.zeros((jax.tree.leaves(batch)[0].shape[0], num_chunks), bool)
    elif tuple(resets.shape) != (jax.tree.leaves(batch)[0].shape[0], num_chunks):
        raise ValueError(f"resets: expected shape (batch, {num_chunks}) (one per chunk), got {resets.shape}")
    grad_fn = jax.value_and_grad(chunk_loss, has_aux=True)

    def run(carry, chunk, reset):
        def pick(init, c):
            return jnp.where(reset.reshape(-1, *([1] * (c.ndim - 1))), init, c)

        carry = jax.tree.map(pick, initial_carry, jax.lax.stop_gradient(carry))
        (loss, carry), grads = grad_fn(params, carry, chunk)
        return loss, grads, carry

    def body(state, inputs):
        total, grads, carry = state
        loss, g, carry = run(carry, *inputs)
        return (total + loss, jax.tree.map(jnp.add, grads, g), carry), None

    zeros = jax.tree.map(jnp.zeros_like, params)
    n = jax.tree.leaves(chunks)[0].shape[0]
    first = jax.tree.map(lambda x: x[0], chunks)
    loss_dtype = jax.eval_shape(chunk_loss, params, carry, first)[0].dtype  # sum in the loss's own dtype
    state = (jnp.zeros((), loss_dtype), zeros, carry)
    state, _ = jax.lax.scan(body, state, (chunks, jnp.swapaxes(resets[:, :n], 0, 1)))
    if rest is not None:
        state, _ = body(state, (rest, resets[:, n]))
    return state
