"""Shared fixtures: a fresh PRNG key per call, strict dtype promotion and float64 on request."""

from __future__ import annotations

import itertools

import jax
import pytest


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


@pytest.fixture
def strict_dtypes():
    """Mixed dtypes must be explicit: float32 params never silently meet float64 inputs.

    Used by the tests of the core (cells, scan, network); Optax itself is not written for it.
    """
    with jax.numpy_dtype_promotion("strict"):
        yield
