"""Checks at the public boundary: every public function validates what it is given with these.

Each check raises a ``ValueError`` that names the argument, says what was expected and what came,
and, where the fix is clear, how to fix it. Checks of *values* (NaN, ranges) run only where the
values are known, outside ``jit``; under ``jit`` the library is written so that values it cannot
check still cannot produce a wrong result silently (see :func:`rnnjax.unroll` on lengths and padding).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_finite_tree",
    "check_float",
    "check_key",
    "check_like",
    "check_nonnegative_int",
    "check_positive_int",
    "check_probability",
    "describe",
    "is_concrete",
]


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values (not a tracer under jit, grad or vmap)."""
    return not isinstance(x, jax.core.Tracer)


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message: its type, and shape and dtype for arrays."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1 (a Python or numpy integer; never a bool or a float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {describe(value)}")
    return int(value)


def check_nonnegative_int(value: Any, name: str) -> int:
    """``value`` as an int >= 0 (a Python or numpy integer; never a bool or a float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}: expected an int >= 0, got {describe(value)}")
    return int(value)


def check_float(
    value: Any, name: str, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    """``value`` as a finite Python float in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {describe(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        left = "(" if low_open else "["
        bounds = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name}: expected a number in {bounds}, got {value!r}")
    return value


def check_probability(value: Any, name: str) -> float:
    """``value`` as a float in ``[0, 1)``: a dropout rate."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {describe(value)}")
    return float(value)


def check_key(key: Any, name: str = "key") -> Any:
    """``key`` if it is a PRNG key: a typed key from ``jax.random.key(seed)`` or a raw ``uint32`` key of
    shape ``(2,)`` from ``jax.random.PRNGKey(seed)``."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if jnp.ndim(key) != 0:
            raise ValueError(f"{name}: expected a single PRNG key, got an array of keys of shape {jnp.shape(key)}")
        return key
    if dtype == jnp.uint32 and jnp.shape(key) == (2,):
        return key
    raise ValueError(f"{name}: expected a PRNG key (make one with jax.random.key(seed)), got {describe(key)}")


def check_finite_tree(tree: Any, name: str) -> None:
    """Raises a ValueError naming the first leaf of ``tree`` (by its path) that holds NaN or Inf.

    Leaves that are tracers (under ``jit``) or not floating are skipped.
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not is_concrete(leaf) or not hasattr(leaf, "dtype") or not jnp.issubdtype(leaf.dtype, jnp.inexact):
            continue
        values = np.asarray(leaf)
        if not np.isfinite(values).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
            where = jax.tree_util.keystr(path)
            raise ValueError(f"{name}{where}: expected finite values, got {values[bad]} at index {bad}")


def check_like(tree: Any, expected: Any, name: str, what: str = "from cell.initial_carry") -> None:
    """Raises a ValueError unless ``tree`` has the structure, shapes and dtypes of ``expected`` (e.g. a carry
    against ``cell.initial_carry(params, batch_shape)``), naming the first leaf that differs by its path,
    and finite values where they can be seen."""
    got, want = jax.tree.structure(tree), jax.tree.structure(expected)
    if got != want:
        raise ValueError(f"{name}: expected structure {want} ({what}), got {got}")
    paths = jax.tree_util.tree_leaves_with_path(expected)
    for (path, w), g in zip(paths, jax.tree.leaves(tree), strict=True):
        where = name + jax.tree_util.keystr(path)
        if jnp.shape(g) != jnp.shape(w):
            raise ValueError(f"{where}: expected shape {jnp.shape(w)} (batch, hidden), got {jnp.shape(g)}")
        if jnp.result_type(g) != jnp.result_type(w):
            raise ValueError(
                f"{where}: expected the params' dtype {jnp.result_type(w)}, got {jnp.result_type(g)} "
                f"(cast it with .astype({jnp.result_type(w)}))"
            )
    check_finite_tree(tree, name)
