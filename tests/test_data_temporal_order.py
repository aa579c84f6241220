"""rnnjax.data.temporal_order: shapes, the symbols' windows (against Pascanu et al.'s formula and the 1997 paper's
numbers), labels read back from the inputs, class and distractor balance, determinism, errors, the chance level."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data.temporal_order import (
    CHANCE_ACCURACY,
    CHANCE_CROSS_ENTROPY,
    CLASS_NAMES,
    SYMBOLS,
    VARIANTS,
    temporal_order,
    windows,
)


def _relevant(xs: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """The steps and symbols (0: X, 1: Y) of the relevant symbols, read from the one-hot inputs."""
    ids = xs.argmax(-1)
    rows, steps = np.nonzero(ids < 2)  # X and Y are channels 0 and 1 in both variants
    assert SYMBOLS[variant][:2] == ("X", "Y")
    counts = np.bincount(rows, minlength=len(xs))
    assert (counts == 2).all(), "every sequence holds exactly two relevant symbols"
    steps = steps.reshape(-1, 2)  # np.nonzero is row-major: each row's two steps in order
    return steps, ids[np.arange(len(xs))[:, None], steps]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("length", [20, 50, 100, 137])
def test_shapes_one_hot_windows_and_labels(variant, length):
    xs, labels = temporal_order(np.random.default_rng(0), 4000, length, variant)
    assert xs.shape == (4000, length, len(SYMBOLS[variant])) and xs.dtype == np.float32
    assert labels.shape == (4000,) and labels.dtype == np.int32
    assert set(np.unique(xs)) == {0.0, 1.0} and (xs.sum(-1) == 1).all()
    steps, symbols = _relevant(xs, variant)
    (lo1, hi1), (lo2, hi2) = windows(length, variant)
    # every step of each window is drawn, and none outside it
    assert set(steps[:, 0]) == set(range(lo1, hi1 + 1)) and set(steps[:, 1]) == set(range(lo2, hi2 + 1))
    np.testing.assert_array_equal(labels, 2 * symbols[:, 0] + symbols[:, 1])  # XX, XY, YX, YY
    assert [CLASS_NAMES[k] for k in labels[:8]] == ["".join("XY"[s] for s in pair) for pair in symbols[:8]]


def test_windows_follow_the_sources():
    # Pascanu et al.'s tempOrder.py: p0 = randint(int(.1 l)) + int(.1 l), p1 = randint(int(.1 l)) + int(.5 l)
    for length in range(10, 400):
        t1, t5 = int(length * 0.1), int(length * 0.5)
        assert windows(length) == ((t1, 2 * t1 - 1), (t5, t5 + t1 - 1))
    assert windows(100) == ((10, 19), (50, 59))
    assert windows(100, "hochreiter") == ((10, 20), (50, 60))  # the 1997 paper's t1 in [10, 20], t2 in [50, 60]
    for length in range(5, 300):  # the windows stay ordered, apart, and clear of the start and trigger steps
        (lo1, hi1), (lo2, hi2) = windows(length, "hochreiter")
        assert 1 <= lo1 <= hi1 < lo2 <= hi2 <= length - 2


def test_hochreiter_start_and_trigger_symbols():
    xs, _ = temporal_order(np.random.default_rng(1), 500, 104, "hochreiter")
    ids = xs.argmax(-1)
    E, B = SYMBOLS["hochreiter"].index("E"), SYMBOLS["hochreiter"].index("B")
    assert (ids[:, 0] == E).all() and (ids[:, -1] == B).all()
    assert not np.isin(ids[:, 1:-1], [E, B]).any()


@pytest.mark.parametrize("variant", VARIANTS)
def test_classes_and_distractors_are_balanced(variant):
    n = 20000
    xs, labels = temporal_order(np.random.default_rng(2), n, 60, variant)
    # each class 1/4: 5 standard errors of a binomial share
    np.testing.assert_allclose(np.bincount(labels, minlength=4) / n, 0.25, atol=5 * math.sqrt(0.25 * 0.75 / n))
    ids = xs.argmax(-1)
    distractors = ids[(ids >= 2) & (ids < 6)]
    np.testing.assert_allclose(np.bincount(distractors - 2, minlength=4) / distractors.size, 0.25, atol=0.005)


def test_deterministic_in_the_generator():
    a = temporal_order(np.random.default_rng([3, 7]), 16, 50)
    b = temporal_order(np.random.default_rng([3, 7]), 16, 50)
    c = temporal_order(np.random.default_rng([3, 8]), 16, 50)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_chance_level():
    # cross-entropy of uniform logits, computed by the library's loss; accuracy of one constant guess
    labels = temporal_order(np.random.default_rng(4), 20000, 30)[1]
    ce = rj.losses.cross_entropy(jnp.zeros((labels.size, 4)), jnp.asarray(labels))
    assert float(ce) == pytest.approx(CHANCE_CROSS_ENTROPY, rel=1e-6) and CHANCE_CROSS_ENTROPY == math.log(4)
    assert np.mean(labels == 0) == pytest.approx(CHANCE_ACCURACY, abs=0.02)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.random.default_rng(0), 4, 9), "length: expected at least 10"),
        ((np.random.default_rng(0), 4, 4, "hochreiter"), "length: expected at least 5"),
        ((np.random.default_rng(0), 4, 50.0), "length"),
        ((np.random.default_rng(0), 0, 50), "batch"),
        ((np.random.default_rng(0), 4, 50, "mozer"), "variant: expected one of"),
        ((0, 4, 50), "rng: expected a numpy Generator"),
    ],
)
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        temporal_order(*args)
