"""The independently recurrent neural network, IndRNN (Li, Li, Cook, Zhu & Gao 2018, "Independently Recurrent
Neural Network (IndRNN): Building A Longer and Deeper RNN").

Each unit reads only its own past, through one recurrent weight: ``u`` is a vector, ``*`` is element-wise::

    h_t = sigma(U x_t + u * h_{t-1} + b)          sigma = ReLU (the paper's choice) or tanh

Unit ``n`` sends its gradient back over ``T - t`` steps as one product of scalars,
``dh_{n,T} / dh_{n,t} = u_n^(T-t) * prod_{k=t+1}^{T} sigma'(pre_{n,k})``, so its recurrent weight alone decides
whether the gradient explodes or vanishes (the paper's section 3.1). With ``|sigma'| <= 1`` (ReLU, tanh), the
constraint ``|u_n| <= gamma^(1/T)`` keeps the factor over ``T`` steps below ``gamma``; while a ReLU unit is
active (``sigma' = 1``), ``|u_n| >= epsilon^(1/T)`` keeps it above ``epsilon``, a memory over ``T`` steps.

The regulation in the authors' code (``Sunnydreamrain/IndRNN_Theano_Lasagne``, ``IndRNN_pytorch``) comes in two parts:

- the initialisation (:func:`indrnn`'s ``t_max``): ``u ~ U(0, 1)`` for ReLU, "so that units keep memories of
  different lengths"; with ``T_max``, ``u ~ U(0, gamma^(1/T_max))``; ``long_memory=True`` draws
  ``u ~ U(gamma^(-1/T_max), gamma^(1/T_max))``, every unit a memory over ``T_max`` steps, as the authors do
  for the last layer of a network read at its last step only (``gamma = 1``: ``u = 1``). For tanh the ranges
  are symmetric, ``U(-1, 1)`` and ``U(-gamma^(1/T_max), gamma^(1/T_max))``.
- the constraint during training, :func:`constrain_indrnn`: ``u`` clipped to ``[-gamma^(1/T), gamma^(1/T)]`` after
  each optimiser step (projected gradient descent)::

      params = optax.apply_updates(params, updates)
      params = rj.cells.constrain_indrnn(params, t_max=784)    # any pytree holding IndRNNParams

``U`` starts as ``N(0, 0.001^2)`` and ``b`` at 0, as in the paper's adding problem. Without a dense recurrent
matmul the step has no :class:`~rnnjax.cells.base.Parts` (the fused backward pass is for cells built around one)
and is not linear in ``h`` (no parallel scan): it runs as the sequential scan, which JAX differentiates.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as inits
from rnnjax.cells.base import Cell, make_cell
from rnnjax.cells.rnn import dense_project
from rnnjax.checks import check_float
from rnnjax.types import Array, PRNGKey

__all__ = ["IndRNNParams", "constrain_indrnn", "indrnn", "recurrent_bound"]


class IndRNNParams(NamedTuple):
    """IndRNN parameters: input weights ``U: (h, i)``, the element-wise recurrent weights ``u: (h,)`` and the
    bias ``b: (h,)`` (the paper's ``W``, ``u`` and ``b``)."""

    U: Array
    u: Array
    b: Array


class _Loop(NamedTuple):
    """The params laid out for the loop: ``U^T: (i, h)``, ``b`` and ``u``."""

    U_T: Array
    b: Array
    u: Array


_ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}
_INPUT = jax.nn.initializers.normal(1e-3)  # N(0, 0.001^2), the paper's adding problem


def _check_t_max(t_max: Any, name: str = "t_max") -> float:
    return check_float(t_max, name, low=0.0, low_open=True)


def _check_gamma(gamma: Any) -> float:
    try:
        return check_float(gamma, "gamma", low=1.0)
    except ValueError as e:
        raise ValueError(f"{e}; gamma is the largest factor a gradient may grow by over t_max steps") from None


def recurrent_bound(t_max: float, gamma: float = 2.0) -> float:
    """``gamma^(1/T_max)``: the largest ``|u_n|`` under which the factor ``|u_n|^T_max`` of a gradient sent
    back over ``T_max`` steps stays below ``gamma`` (the authors use ``gamma`` = 2 or 10)."""
    return _check_gamma(gamma) ** (1.0 / _check_t_max(t_max))


def constrain_indrnn(params: Any, t_max: float, *, gamma: float = 2.0) -> Any:
    """``params`` with the recurrent weights of every :class:`IndRNNParams` in them clipped to
    ``|u_n| <= gamma^(1/T_max)`` (:func:`recurrent_bound`), the paper's regulation against exploding gradients.

    A pure function, to apply after each optimiser step: ``params`` may be one cell's params, a network's
    ``params[layer][direction]`` or a model's params holding them; other leaves pass through unchanged.

    Args:
        params: a pytree holding :class:`IndRNNParams`.
        t_max: the longest dependency, ``T``, over which a gradient may not grow by more than ``gamma``.
        gamma: that largest factor, a number >= 1 (1: ``|u| <= 1``, which the authors advise for very long
            sequences).
    """
    bound = recurrent_bound(t_max, gamma)
    found = False

    def clip(p: Any) -> Any:
        nonlocal found
        if not isinstance(p, IndRNNParams):
            return p
        found = True
        return p._replace(u=jnp.clip(p.u, -bound, bound).astype(jnp.result_type(p.u)))

    out = jax.tree.map(clip, params, is_leaf=lambda p: isinstance(p, IndRNNParams))
    if not found:
        raise ValueError(f"params: expected a pytree holding IndRNNParams (from an indrnn cell), got {type(params)}")
    return out


@functools.cache
def indrnn(
    hidden_size: int,
    activation: str = "relu",
    *,
    t_max: float | None = None,
    gamma: float = 2.0,
    long_memory: bool = False,
    input_init: str | inits.Initializer = _INPUT,
    dtype: Any = jnp.float32,
) -> Cell:
    """The IndRNN, ``h_t = sigma(U x_t + u * h_{t-1} + b)`` (module docstring).

    Args:
        hidden_size: size of ``h_t``.
        activation: ``"relu"`` (the paper's) or ``"tanh"``.
        t_max: the longest dependency expected, ``T_max``; then ``|u|`` is drawn below ``gamma^(1/T_max)``
            (module docstring). None: ``u ~ U(0, 1)`` (ReLU) or ``U(-1, 1)`` (tanh). Training keeps the bound
            only with :func:`constrain_indrnn` after each step.
        gamma: the largest factor a gradient may grow by over ``T_max`` steps at initialisation, >= 1 (the
            authors' ``MAG``, 2 by default).
        long_memory: draw ``u ~ U(gamma^(-1/T_max), gamma^(1/T_max))``, every unit a memory over ``T_max``
            steps (the authors' initialisation of the last layer); needs ``t_max``.
        input_init: initialiser of ``U`` (a name in ``rnnjax.init.INPUT_INITS`` or a ``jax.nn.initializers``
            callable); by default ``N(0, 0.001^2)``.
        dtype: dtype of the params.

    Example:
        >>> cell = indrnn(128, t_max=784)
        >>> params = cell.init(jax.random.key(0), 1)      # IndRNNParams(U=(128, 1), u=(128,), b=(128,))
        >>> carry, ys = rj.unroll(cell, params, xs)       # xs: (batch, 784, 1)
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {tuple(_ACTIVATIONS)}, got {activation!r}")
    if t_max is not None:
        _check_t_max(t_max)
    _check_gamma(gamma)
    if not isinstance(long_memory, bool):
        raise ValueError(f"long_memory: expected True or False, got {long_memory!r}")
    if long_memory and t_max is None:
        raise ValueError("long_memory: needs t_max, the length of the memory (got t_max=None)")
    inits.check_input_init(input_init)
    inits.check_dtype(dtype)
    h, f = hidden_size, _ACTIVATIONS[activation]
    high = 1.0 if t_max is None else recurrent_bound(t_max, gamma)
    low = 1.0 / high if long_memory else (0.0 if activation == "relu" else -high)

    def init(key: PRNGKey, input_size: int) -> IndRNNParams:
        k_u, k_r = jax.random.split(key)
        u = jax.random.uniform(k_r, (h,), inits.draw_dtype(dtype), low, high)
        return IndRNNParams(
            U=inits.input_weights(k_u, input_init, 1, h, input_size, dtype),
            u=u.astype(inits.check_dtype(dtype)),
            b=jnp.zeros((h,), dtype),
        )

    def recur(loop: _Loop, state: Array, xp: Array) -> tuple[Array, Array]:
        new = f(xp + loop.u * state)  # h_t = sigma(U x_t + b + u * h_{t-1}); xp = U x_t + b
        return new, new

    return make_cell(
        "indrnn", h, init, lambda shape, dt: jnp.zeros((*shape, h), dt),
        prepare=lambda p: _Loop(p.U.T, p.b, p.u), project=dense_project, recur=recur,
        options=dict(activation=activation, t_max=t_max, gamma=gamma, long_memory=long_memory,
                     input_init=input_init, dtype=dtype),
    )  # fmt: skip
