"""rj.baselines.ngram: the unigram and interpolated Kneser-Ney character models."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pytest

import rnnjax as rj

ngram = rj.baselines.ngram


def reference_kn(ids: list[int], V: int, order: int):
    """Interpolated Kneser-Ney from Python dictionaries, written from the definition: ``prob(context, w)``."""
    raw = Counter(tuple(ids[i : i + order]) for i in range(len(ids) - order + 1))
    counts = {order: raw}
    for n in range(order - 1, 0, -1):  # continuation counts from the distinct (n+1)-grams
        counts[n] = Counter(g[1:] for g in counts[n + 1])
    discounts, totals, types = {}, {}, {}
    for n, c in counts.items():
        n1, n2 = sum(v == 1 for v in c.values()), sum(v == 2 for v in c.values())
        discounts[n] = n1 / (n1 + 2 * n2) if n1 else 0.5
        totals[n], types[n] = defaultdict(float), defaultdict(int)
        for g, v in c.items():
            totals[n][g[:-1]] += v
            types[n][g[:-1]] += 1

    def prob(context: tuple[int, ...], w: int) -> float:
        p = 1.0 / V
        for n in range(1, order + 1):
            if len(context) < n - 1:
                break
            h = tuple(context[len(context) - (n - 1) :]) if n > 1 else ()
            total = totals[n].get(h, 0.0)
            if total > 0:
                d = discounts[n]
                p = max(counts[n].get((*h, w), 0) - d, 0) / total + d * types[n][h] / total * p
        return p

    return prob


def test_unigram_bits_per_character_is_the_entropy():
    ids = np.array([0, 0, 1, 2, 0, 1])  # frequencies 1/2, 1/3, 1/6
    model = ngram.fit_unigram(ids, 4, alpha=0.0)
    entropy = -(0.5 * math.log2(0.5) + 1 / 3 * math.log2(1 / 3) + 1 / 6 * math.log2(1 / 6))
    assert ngram.bits_per_character(model, ids) == pytest.approx(entropy)
    smoothed = ngram.fit_unigram(ids, 4, alpha=1.0)
    np.testing.assert_allclose(smoothed.p, [4 / 10, 3 / 10, 2 / 10, 1 / 10])
    assert ngram.bits(smoothed, np.array([3]))[0] == pytest.approx(math.log2(10))


@pytest.mark.parametrize("order", [1, 3, 5])
def test_kneser_ney_distributions_sum_to_one(order):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, 400) % np.array([6, 3])[rng.integers(0, 2, 400)]  # skewed towards 0..2
    model = ngram.fit_kneser_ney(ids, 7, order)  # id 6 never occurs
    for context in ([], [0], [1, 2], [0, 1, 2, 3], [6, 6, 6, 6], list(ids[:20])):
        p = ngram.next_char_probs(model, np.array(context, np.int64))
        assert p.shape == (7,) and np.all(p > 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kneser_ney_matches_a_dictionary_reference(order):
    rng = np.random.default_rng(order)
    train = list(rng.choice(5, 300, p=[0.4, 0.3, 0.15, 0.1, 0.05]))
    prob = reference_kn(train, 6, order)
    model = ngram.fit_kneser_ney(np.array(train), 6, order)
    text = np.array(list(rng.integers(0, 6, 30)))
    expected = [-math.log2(prob(tuple(text[max(0, t - order + 1) : t]), text[t])) for t in range(len(text))]
    np.testing.assert_allclose(ngram.bits(model, text), expected, rtol=1e-10)
    for t in (0, 1, 7):  # bits and next_char_probs agree
        p = ngram.next_char_probs(model, text[:t])
        assert -math.log2(p[text[t]]) == pytest.approx(ngram.bits(model, text)[t])


def test_higher_orders_predict_a_repetitive_text_better():
    text = np.array([0, 1, 2, 1, 0, 3] * 200)  # after two characters the next one is certain
    scores = [ngram.bits_per_character(ngram.fit_kneser_ney(text, 4, n), text, skip=4) for n in (1, 2, 3)]
    assert scores[0] == pytest.approx(ngram.bits_per_character(ngram.fit_unigram(text, 4), text, skip=4), abs=0.05)
    assert scores[0] > scores[1] > scores[2] and scores[2] < 0.05


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="order"):
        ngram.fit_kneser_ney(np.arange(5), 79, 10)
    with pytest.raises(ValueError, match="ids"):
        ngram.fit_kneser_ney(np.array([0, 5]), 3, 1)
    with pytest.raises(ValueError, match="alpha"):
        ngram.fit_unigram(np.array([0]), 3, alpha=-1)
