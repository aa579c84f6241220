"""Checks at the boundary of the analysis: every public analysis function validates what it is given here.

Each check raises a ``ValueError`` that names the argument, says what was expected and what came. Checks
of values (NaN, ranges) run only where the values are known, outside ``jit``; built on
:mod:`rnnjax.checks`.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax.numpy as jnp
import numpy as np

from rnnjax import cells, scan
from rnnjax.cells import Cell
from rnnjax.cells.base import check_input_size
from rnnjax.checks import check_finite_tree, check_like, describe, is_concrete
from rnnjax.network import RNN
from rnnjax.types import Array, Carry

__all__ = [
    "check_carry",
    "check_choice",
    "check_int",
    "check_jacobians",
    "check_lengths",
    "check_model",
    "check_params",
    "check_time",
    "check_xs",
]


def check_model(model: Any, name: str = "cell") -> Cell | RNN:
    """``model`` if it is a :class:`~rnnjax.cells.Cell` or an :class:`~rnnjax.RNN`; a name is refused with
    the fix."""
    if isinstance(model, Cell | RNN):
        return model
    fix = ""
    if isinstance(model, str):
        fix = f" (build it with rj.cells.make({model!r}, hidden_size), or rj.RNN(cell={model!r}, hidden_size=...))"
    raise ValueError(f"{name}: expected a Cell (e.g. rj.cells.lstm(64)) or an rj.RNN, got {describe(model)}{fix}")


def check_choice(value: Any, choices: tuple[Any, ...], name: str) -> Any:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str | int) or isinstance(value, bool) or value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {describe(value)}")
    return value


def check_int(value: Any, name: str, low: int, high: int, why: str = "") -> int:
    """``value`` as an int in ``[low, high]`` (a Python or numpy integer; never a bool or a float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{name}: expected an int in [{low}, {high}]{why}, got {describe(value)}")
    return int(value)


def check_time(t: Any, time: int, name: str = "t") -> int:
    """``t`` as a time in ``[0, time]``; None means ``time``."""
    return time if t is None else check_int(t, name, 0, time, " (the steps of the jacobians)")


def check_jacobians(jacobians: Any, name: str = "jacobians", rank: int = 3) -> Array:
    """``jacobians`` as a floating array ``(..., time, n, n)`` of at least ``rank`` axes."""
    if not hasattr(jacobians, "shape") or not hasattr(jacobians, "dtype"):
        raise ValueError(f"{name}: expected an array (..., time, n, n) from step_jacobians, got {describe(jacobians)}")
    jacobians = jnp.asarray(jacobians)
    if jacobians.ndim < rank or jacobians.shape[-1] != jacobians.shape[-2]:
        raise ValueError(
            f"{name}: expected square matrices stacked as (..., time, n, n) (at least {rank} axes), "
            f"got shape {jacobians.shape}"
        )
    if not jnp.issubdtype(jacobians.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a floating dtype, got {jacobians.dtype}")
    return jacobians


def check_lengths(lengths: Any, lead: tuple[int, ...], time: int, name: str = "lengths") -> Array | None:
    """``lengths`` as an int32 array of shape ``lead`` with values in ``[0, time]``, or None.

    Traced values cannot be checked; they are clipped to ``[0, time]`` by the callers' masks.
    """
    if lengths is None:
        return None
    values = lengths if not is_concrete(lengths) else np.asarray(lengths)
    if not hasattr(values, "dtype") or values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name}: expected integers (valid steps per sequence), got {describe(lengths)}")
    if tuple(values.shape) != tuple(lead):
        raise ValueError(f"{name}: expected shape {tuple(lead)} (one per sequence), got {tuple(values.shape)}")
    if is_concrete(lengths) and values.size and (values.min() < 0 or values.max() > time):
        raise ValueError(
            f"{name}: expected values in [0, {time}] (the steps), got min {values.min()} and max {values.max()}"
        )
    return jnp.clip(jnp.asarray(lengths), 0, time).astype(jnp.int32)


def check_xs(xs: Any, dtype: Any, input_size: int, lengths: Any = None, name: str = "xs") -> Array:
    """``xs`` as ``(batch, time, input_size)`` in the params' ``dtype``, finite at its valid steps where the
    values can be seen (padding is never read)."""
    if not hasattr(xs, "shape"):
        xs = np.asarray(xs)
    if len(xs.shape) != 3:
        raise ValueError(f"{name}: expected shape (batch, time, features), got {describe(xs)}")
    if xs.dtype != dtype:
        raise ValueError(
            f"{name}: expected the params' dtype {jnp.dtype(dtype)}, got {xs.dtype} (cast it with .astype({dtype}))"
        )
    if xs.shape[-1] != input_size:
        raise ValueError(
            f"{name}: expected {input_size} features per step (the params' input size), got shape {tuple(xs.shape)}"
        )
    return scan.check_xs(xs, name, lengths)


def check_carry(carry: Carry, expected: Carry, name: str = "carry") -> Carry:
    """``carry`` if it has the structure, shapes and dtypes of ``expected`` and finite values where seen."""
    check_like(carry, expected, name, "from initial_carry")
    return carry


def check_params(cell: Cell, params: Any, input_size: int | None, name: str = "params") -> None:
    """Raises a ValueError unless ``params`` fit ``cell`` (type and shapes), read ``input_size`` features
    (None: any) and hold finite values where seen."""
    cells.check_params(cell, params, name)
    if input_size is not None:
        check_input_size(cell, params, input_size, name, f"to read {input_size} features")
    check_finite_tree(params, name)
