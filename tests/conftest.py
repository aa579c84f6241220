"""Shared fixtures: a fresh PRNG key per call, strict dtype promotion, float64 on request."""

from __future__ import annotations

import itertools

import jax
import pytest

# Mixed dtypes must be explicit in the library: float32 params never silently meet float64 inputs.
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def getkey():
    """``getkey()`` returns a new key each call, deterministic per test (as in Equinox's tests)."""
    counter = itertools.count()
    base = jax.random.key(0)
    return lambda: jax.random.fold_in(base, next(counter))


@pytest.fixture
def x64():
    """Runs the test with 64-bit floats enabled."""
    with jax.enable_x64(True):
        yield
