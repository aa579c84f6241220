"""Synthetic sequence tasks, generated with numpy from a seed."""

from __future__ import annotations

import numpy as np

from rnnjax.checks import check_positive_int

__all__ = ["ADDING_BASELINE_MSE", "adding_problem"]

ADDING_BASELINE_MSE = 1.0 / 6.0
"""MSE of always predicting 1 on the adding problem: the variance of a sum of two U(0, 1)."""


def adding_problem(rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015).

    Each step carries two inputs: a value drawn from U(0, 1) and a marker that is 1 at exactly
    two steps, one in each half of the sequence, and 0 elsewhere. The target is the sum of the
    two marked values. Predicting the mean, 1, scores an MSE of 1/6 (``ADDING_BASELINE_MSE``).

    Args:
        rng: the source of randomness, e.g. ``np.random.default_rng([seed, step])``.
        batch: sequences.
        length: steps per sequence, T >= 2.

    Returns:
        ``xs: (batch, length, 2)`` float32 and ``ys: (batch, 1)`` float32.
    """
    if check_positive_int(length, "length") < 2:
        raise ValueError(f"length: expected at least 2 steps, got {length}")
    check_positive_int(batch, "batch")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    values = rng.uniform(size=(batch, length)).astype(np.float32)
    half = length // 2
    first = rng.integers(0, half, size=batch)
    second = rng.integers(half, length, size=batch)
    markers = np.zeros((batch, length), np.float32)
    rows = np.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    xs = np.stack([values, markers], axis=-1)
    ys = (values[rows, first] + values[rows, second])[:, None]
    return xs, ys.astype(np.float32)
