"""Initialisers for recurrent cells, chosen by name and applied gate by gate.

Every initialiser here writes its choice into the params, so nothing is hidden in a
forward pass: the forget-gate bias of an LSTM is a value in ``params.b``, the
identity of an IRNN is ``params.W``, and a recurrent ``gain`` is visible as the
singular values of each gate's block of ``W``.

References:
    Glorot & Bengio 2010 (``glorot_*``); LeCun et al. 1998 (``lecun_*``);
    Saxe et al. 2014 (``orthogonal``); Le, Jaitly & Hinton 2015 (``identity``, IRNN);
    Tallec & Ollivier 2018, "Can recurrent neural networks warp time?" (chrono).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rnnjax.types import Array, PRNGKey

Initializer = Callable[[PRNGKey, tuple[int, ...], jnp.dtype], Array]

_INPUT = {
    "glorot_uniform": jax.nn.initializers.glorot_uniform,
    "glorot_normal": jax.nn.initializers.glorot_normal,
    "lecun_uniform": jax.nn.initializers.lecun_uniform,
    "lecun_normal": jax.nn.initializers.lecun_normal,
    "he_normal": jax.nn.initializers.he_normal,
}
INPUT_INITS = (*_INPUT, "torch")
RECURRENT_INITS = ("orthogonal", "gaussian", "identity", "torch")


def _torch_uniform(hidden_size: int) -> Initializer:
    """PyTorch's default for every RNN weight: U(-1/sqrt(h), 1/sqrt(h))."""
    bound = 1.0 / hidden_size**0.5
    return lambda key, shape, dtype: jax.random.uniform(key, shape, dtype, -bound, bound)


def check_input_init(init: str | Initializer) -> None:
    """Raises a ValueError unless ``init`` names an input initialiser or is callable."""
    if not callable(init) and init not in INPUT_INITS:
        raise ValueError(f"input_init: expected one of {INPUT_INITS} or a callable, got {init!r}")


def check_recurrent_init(init: str) -> None:
    """Raises a ValueError unless ``init`` names a recurrent initialiser."""
    if init not in RECURRENT_INITS:
        raise ValueError(f"recurrent_init: expected one of {RECURRENT_INITS}, got {init!r}")


def input_weights(
    key: PRNGKey, init: str | Initializer, num_gates: int, hidden_size: int, input_size: int, dtype
) -> Array:
    """Input-to-hidden weights ``U: (g*h, i)``, each gate's ``(h, i)`` block drawn on its own.

    Fans are per gate (fan_in = i, fan_out = h), as if every gate were its own layer.
    """
    check_input_init(init)
    if init == "torch":
        fn = _torch_uniform(hidden_size)
    elif callable(init):
        fn = init
    else:
        # jax initialisers read (fan_in, fan_out) from a (in, out) shape; we store (out, in).
        base = _INPUT[init]()
        fn = lambda k, shape, dt: base(k, shape[::-1], dt).T  # noqa: E731
    keys = jax.random.split(key, num_gates)
    return jnp.concatenate([fn(k, (hidden_size, input_size), dtype) for k in keys], axis=0)


def recurrent_weights(key: PRNGKey, init: str, num_gates: int, hidden_size: int, gain: float, dtype) -> Array:
    """Recurrent weights ``W: (g*h, h)``, each gate's ``(h, h)`` block drawn on its own.

    Args:
        init: ``"orthogonal"`` (``gain * Q`` with Q Haar-orthogonal, per gate),
            ``"gaussian"`` (entries N(0, gain^2 / h): the random-matrix ensemble whose
            spectral radius tends to ``gain``), ``"identity"`` (``gain * I``, the IRNN) or
            ``"torch"`` (PyTorch's U(-1/sqrt(h), 1/sqrt(h)), scaled by ``gain``).
        gain: scales every block; the analysis sweeps it through the edge of chaos.
    """
    check_recurrent_init(init)
    shape = (hidden_size, hidden_size)

    def block(k: PRNGKey) -> Array:
        if init == "orthogonal":
            return jax.nn.initializers.orthogonal()(k, shape, dtype)
        if init == "gaussian":
            return jax.random.normal(k, shape, dtype) / hidden_size**0.5
        if init == "identity":
            return jnp.eye(hidden_size, dtype=dtype)
        return _torch_uniform(hidden_size)(k, shape, dtype)

    keys = jax.random.split(key, num_gates)
    return gain * jnp.concatenate([block(k) for k in keys], axis=0)


def chrono_bias(key: PRNGKey, hidden_size: int, t_max: float, dtype) -> Array:
    """Chrono initialisation: ``log(u)`` with ``u ~ U(1, t_max - 1)`` (Tallec & Ollivier 2018).

    Used as the forget-gate bias of an LSTM (its input gate gets the negative) and the
    update-gate bias of a GRU, so that characteristic memory times spread over
    ``[1, t_max]``.
    """
    if not t_max > 2:
        raise ValueError(f"chrono: expected the longest expected dependency t_max > 2, got {t_max}")
    return jnp.log(jax.random.uniform(key, (hidden_size,), dtype, 1.0, t_max - 1.0))
