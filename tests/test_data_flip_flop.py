"""rnnjax.data.flip_flop against a plain loop over the steps, and its rates and checks."""

from __future__ import annotations

import numpy as np
import pytest

from rnnjax.data.flip_flop import flip_flop


def _held(xs: np.ndarray) -> np.ndarray:
    """The targets by a loop: each channel holds the sign of its last pulse (0 before any)."""
    ys = np.zeros_like(xs)
    for b in range(xs.shape[0]):
        for j in range(xs.shape[2]):
            state = 0.0
            for t in range(xs.shape[1]):
                state = xs[b, t, j] if xs[b, t, j] != 0 else state
                ys[b, t, j] = state
    return ys


@pytest.mark.parametrize("first_pulse", [True, False])
def test_targets_hold_the_last_pulse(first_pulse):
    xs, ys = flip_flop(np.random.default_rng(0), 16, 40, p=0.1, first_pulse=first_pulse)
    assert xs.shape == ys.shape == (16, 40, 3) and xs.dtype == ys.dtype == np.float32
    assert set(np.unique(xs)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(ys, _held(xs))
    if first_pulse:
        assert np.all(xs[:, 0] != 0) and np.all(ys != 0)
    else:
        assert np.any(ys == 0)


def test_pulse_rate_signs_and_seed():
    xs, _ = flip_flop(np.random.default_rng(1), 400, 100, bits=2, p=0.05, first_pulse=False)
    assert xs.shape[-1] == 2
    rate = np.mean(xs != 0)
    assert rate == pytest.approx(0.05, abs=0.005)  # 80,000 Bernoulli(0.05): sd 0.0008
    assert np.mean(xs[xs != 0] > 0) == pytest.approx(0.5, abs=0.03)
    a = flip_flop(np.random.default_rng(7), 4, 10)
    b = flip_flop(np.random.default_rng(7), 4, 10)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], flip_flop(np.random.default_rng(8), 4, 10)[0])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(rng=0), "rng"),
        (dict(batch=0), "batch"),
        (dict(length=2.5), "length"),
        (dict(bits=0), "bits"),
        (dict(p=0.0), "p"),
        (dict(p=1.5), "p"),
        (dict(p=float("nan")), "p"),
        (dict(first_pulse=1), "first_pulse"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    args = dict(rng=np.random.default_rng(0), batch=2, length=5) | kwargs
    with pytest.raises(ValueError, match=name):
        flip_flop(args.pop("rng"), args.pop("batch"), args.pop("length"), **args)
