"""Synthetic data: the adding problem's layout, targets, randomness and baseline."""

from __future__ import annotations

import numpy as np
import pytest

from rnnjax.data import adding_problem
from rnnjax.data.synthetic import ADDING_BASELINE_MSE


@pytest.mark.parametrize("batch, length", [(1, 2), (5, 7), (64, 50)])
def test_adding_problem_layout(batch, length):
    xs, ys = adding_problem(np.random.default_rng(0), batch, length)
    assert xs.shape == (batch, length, 2) and xs.dtype == np.float32
    assert ys.shape == (batch, 1) and ys.dtype == np.float32
    values, markers = xs[..., 0], xs[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = length // 2
    for b in range(batch):
        marked = np.flatnonzero(markers[b])
        assert len(marked) == 2, f"row {b}: markers at {marked}"
        assert marked[0] < half <= marked[1], f"row {b}: markers at {marked}, halves split at {half}"
        assert ys[b, 0] == np.float32(values[b, marked[0]] + values[b, marked[1]])


def test_adding_problem_is_reproducible():
    a = adding_problem(np.random.default_rng([3, 1]), 8, 20)
    b = adding_problem(np.random.default_rng([3, 1]), 8, 20)
    c = adding_problem(np.random.default_rng([3, 2]), 8, 20)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_markers_reach_every_step_of_each_half():
    """Both markers are drawn over the whole of their half, not a fixed position."""
    length = 10
    xs, _ = adding_problem(np.random.default_rng(1), 2000, length)
    counts = xs[..., 1].sum(0)  # how often each step is marked
    assert np.all(counts > 0)
    np.testing.assert_allclose(counts[: length // 2].sum(), 2000)
    np.testing.assert_allclose(counts[length // 2 :].sum(), 2000)


def test_predicting_one_scores_the_baseline_mse():
    """``(y - 1)^2`` with y = U1 + U2: y - 1 is triangular on [-1, 1], so E = 1/6 and
    Var = E[(y - 1)^4] - 1/36 = 1/15 - 1/36 = 7/180. Over n = 200 000 rows the mean's standard
    error is sqrt(7/180 / n) = 4.4e-4; the tolerance 2.5e-3 is over 5 standard errors, yet far
    from any other simple constant (1/12 for one U(0, 1), 1/3 for the sum's second moment)."""
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6, abs=1e-15)
    n = 200_000
    _, ys = adding_problem(np.random.default_rng(2), n, 4)
    mse = float(np.mean((ys.astype(np.float64) - 1.0) ** 2))
    assert abs(mse - ADDING_BASELINE_MSE) < 2.5e-3
    # The targets' mean is 1, the value the baseline predicts.
    assert abs(float(ys.mean()) - 1.0) < 5 * np.sqrt(1 / 6 / n)


@pytest.mark.parametrize("length", [1, 0, -3])
def test_adding_problem_rejects_short_length(length):
    with pytest.raises(ValueError, match="^length:"):
        adding_problem(np.random.default_rng(0), 4, length)


@pytest.mark.parametrize("batch", [0, -1])
def test_adding_problem_rejects_empty_batch(batch):
    with pytest.raises(ValueError, match="^batch:"):
        adding_problem(np.random.default_rng(0), batch, 10)
