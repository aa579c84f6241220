"""The copy task of Arjovsky, Shah & Bengio 2016: layout, targets, randomness, and the memoryless baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnjax.data.copy_task import BLANK, copy_baseline, copy_task, delimiter, num_classes, vocab_size


@pytest.mark.parametrize("batch, length, symbols, copy_length", [(1, 1, 8, 10), (5, 7, 8, 10), (16, 100, 8, 10),
                                                                   (3, 4, 2, 1), (9, 30, 5, 6)])  # fmt: skip
def test_layout(batch, length, symbols, copy_length):
    xs, ys = copy_task(np.random.default_rng(0), batch, length, symbols=symbols, copy_length=copy_length)
    c, steps = copy_length, length + 2 * copy_length
    assert xs.shape == ys.shape == (batch, steps) and xs.dtype == ys.dtype == np.int32
    seq = xs[:, :c]
    assert seq.min() >= 1 and seq.max() <= symbols  # the symbols to remember: never blank, never the delimiter
    # Input: c symbols, T - 1 blanks, the delimiter (once, T steps after the last symbol), c blanks.
    np.testing.assert_array_equal(xs[:, c : c + length - 1], BLANK)
    np.testing.assert_array_equal(xs[:, c + length - 1], symbols + 1)
    np.testing.assert_array_equal(xs[:, c + length :], BLANK)
    assert ((xs == symbols + 1).sum(1) == 1).all()
    # Target: blank for T + c steps, then the symbols in the order they were read.
    np.testing.assert_array_equal(ys[:, : length + c], BLANK)
    np.testing.assert_array_equal(ys[:, length + c :], seq)
    assert ys.max() < num_classes(symbols) and xs.max() < vocab_size(symbols)


def test_the_papers_sizes():
    """Tokens 0 blank, 1..8 symbols, 9 delimiter; T + 20 steps; the first symbol recalled T + 10 steps later."""
    assert (BLANK, delimiter(), vocab_size(), num_classes()) == (0, 9, 10, 9)
    xs, ys = copy_task(np.random.default_rng(1), 4, 100)
    assert xs.shape == (4, 120)
    assert set(np.unique(xs[:, :10])) <= set(range(1, 9))
    assert np.flatnonzero(xs[0] == 9).tolist() == [109]
    assert np.flatnonzero(ys[0]).tolist() == list(range(110, 120))
    np.testing.assert_array_equal(ys[:, 110], xs[:, 0])  # delay T + 10 = 110


def test_one_hot_inputs_match_the_ids():
    rng = np.random.default_rng([2, 5])
    ids, ys = copy_task(rng, 6, 12)
    onehot, ys2 = copy_task(np.random.default_rng([2, 5]), 6, 12, one_hot=True)
    assert onehot.shape == (6, 32, 10) and onehot.dtype == np.float32
    np.testing.assert_array_equal(onehot.sum(-1), 1.0)
    np.testing.assert_array_equal(onehot.argmax(-1), ids)
    np.testing.assert_array_equal(ys, ys2)


def test_symbols_are_uniform_independent_and_seeded():
    xs, _ = copy_task(np.random.default_rng(3), 20_000, 1)
    seq = xs[:, :10]
    counts = np.bincount(seq.ravel(), minlength=9)[1:]
    n = seq.size
    # each count ~ Binomial(n, 1/8): 5 standard deviations
    assert np.all(np.abs(counts - n / 8) < 5 * math.sqrt(n * (1 / 8) * (7 / 8)))
    # positions are independent: a repeat of the previous symbol 1/8 of the time, not 0 or 1
    repeats = np.mean(seq[:, 1:] == seq[:, :-1])
    assert abs(repeats - 1 / 8) < 5 * math.sqrt((1 / 8) * (7 / 8) / seq[:, 1:].size)
    a = copy_task(np.random.default_rng([7, 1]), 8, 20)
    b = copy_task(np.random.default_rng([7, 1]), 8, 20)
    c = copy_task(np.random.default_rng([7, 2]), 8, 20)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("length, symbols, copy_length", [(100, 8, 10), (200, 8, 10), (7, 3, 4)])
def test_baseline_is_the_cost_of_the_memoryless_strategy(length, symbols, copy_length):
    """The paper's strategy, written out as probabilities per step: a blank with certainty until the recall,
    then 1/symbols on each symbol; its cross-entropy on generated data is the closed form exactly. And no
    memoryless predictor does better: the entropy of each step's target, estimated from the data, sums to it."""
    xs, ys = copy_task(np.random.default_rng(4), 4000, length, symbols=symbols, copy_length=copy_length)
    steps, classes = ys.shape[1], num_classes(symbols)
    probs = np.zeros((steps, classes))
    probs[: length + copy_length, BLANK] = 1.0
    probs[length + copy_length :, 1:] = 1.0 / symbols
    ce = -np.mean(np.log(probs[np.arange(steps), ys]))
    closed = copy_baseline(length, symbols=symbols, copy_length=copy_length)
    assert ce == pytest.approx(closed, rel=1e-12)
    assert closed == pytest.approx(copy_length * math.log(symbols) / (length + 2 * copy_length), rel=1e-15)

    freq = np.stack([np.bincount(ys[:, t], minlength=classes) for t in range(steps)]) / ys.shape[0]
    seen = freq[freq > 0]
    entropy = -np.sum(seen * np.log(seen)) / steps
    # the plug-in entropy is biased low by about (symbols - 1) / (2 n) per recalled step
    assert entropy == pytest.approx(closed, rel=2e-3)


def test_the_papers_baseline_values():
    assert copy_baseline(100) == pytest.approx(10 * math.log(8) / 120)
    assert copy_baseline(100) == pytest.approx(0.17329, abs=1e-5)
    assert copy_baseline(200) == pytest.approx(0.09452, abs=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch=0), "batch: expected a positive int, got int 0"),
        (dict(length=0), "length: expected a positive int, got int 0"),
        (dict(length=2.5), "length: expected a positive int, got float 2.5"),
        (dict(length=True), "length: expected a positive int, got bool True"),
        (dict(symbols=1), "symbols: expected at least 2 symbols to remember, got 1"),
        (dict(copy_length=0), "copy_length: expected a positive int, got int 0"),
        (dict(one_hot=1), "one_hot: expected True or False, got 1"),
        (dict(rng=0), "rng: expected a numpy Generator"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(rng=np.random.default_rng(0), batch=2, length=5) | kwargs
    with pytest.raises(ValueError, match=match):
        copy_task(args.pop("rng"), args.pop("batch"), args.pop("length"), **args)
    if set(kwargs) <= {"length", "symbols", "copy_length"}:
        with pytest.raises(ValueError, match=match):
            copy_baseline(**({"length": 5} | kwargs))
