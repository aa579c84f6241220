"""Character n-gram language models, the baselines of the character RNNs: a unigram and interpolated Kneser-Ney.

Both are fitted on training ids only and score a text in bits per character, the unit of
:func:`rnnjax.losses.bits_per_character`, so a network and its baselines are compared on the same characters::

    uni = fit_unigram(train_ids, vocab.size)
    kn = fit_kneser_ney(train_ids, vocab.size, order=5)
    bits_per_character(kn, valid_ids)              # mean of -log2 P(x_t | x_{t-4..t-1})

The n-gram counts are numpy arrays: an n-gram of ids ``(x_1, ..., x_n)`` is the integer
``sum_k x_k V^(n-k)`` (``V`` the vocabulary size), counted with ``np.unique`` and looked up with
``np.searchsorted``, so fitting on 5 million characters and scoring a text take about a second each.

Interpolated Kneser-Ney (Kneser & Ney 1995; in the interpolated form of Chen & Goodman 1998), with ``h`` a
context of ``n - 1`` characters and ``h'`` the same context without its first character::

    P_n(w | h) = max(c_n(h w) - D_n, 0) / c_n(h .)  +  D_n N_n(h .) / c_n(h .) * P_{n-1}(w | h')
    P_0(w)     = 1 / V

where ``c_n(h .) = sum_w c_n(h w)`` and ``N_n(h .)`` counts the ``w`` with ``c_n(h w) > 0``; a context that
never occurred (``c_n(h .) = 0``) falls back to ``P_{n-1}`` whole. The highest order counts occurrences;
every lower order ``n`` counts *continuations*, ``c_n(g) = |{x : x g occurred}|``, the number of distinct
characters seen before ``g`` (the Kneser-Ney idea: a lower order matters only where the higher one knows
little). The discount of each order is ``D_n = n_1 / (n_1 + 2 n_2)`` from the numbers ``n_1``, ``n_2`` of
its n-grams counted once and twice (Ney, Essen & Kneser 1994), or 0.5 where no n-gram of the order is
counted once (the estimate would be 0, and a character never seen impossible). Each ``P_n(. | h)`` sums to 1 over the
vocabulary.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "KneserNey",
    "Unigram",
    "bits",
    "bits_per_character",
    "fit_kneser_ney",
    "fit_unigram",
    "next_char_probs",
]


class Unigram(NamedTuple):
    """``p[w]``: the smoothed frequency of each character."""

    p: np.ndarray


class _Order(NamedTuple):
    """The counts of one order: n-gram keys with their counts, context keys with totals and type counts."""

    keys: np.ndarray
    counts: np.ndarray
    context_keys: np.ndarray
    context_totals: np.ndarray
    context_types: np.ndarray
    discount: float


class KneserNey(NamedTuple):
    """An interpolated Kneser-Ney model; ``orders[n - 1]`` holds the counts of order ``n``."""

    vocab_size: int
    orders: tuple[_Order, ...]

    @property
    def order(self) -> int:
        return len(self.orders)


def _check_ids(ids: np.ndarray, vocab_size: int, name: str = "ids") -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name}: expected integer ids of shape (n,), got {ids.dtype}{ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{name}: expected ids in [0, {vocab_size}), got min {ids.min()} and max {ids.max()}")
    return ids.astype(np.int64)


def fit_unigram(ids: np.ndarray, vocab_size: int, alpha: float = 1.0) -> Unigram:
    """Character frequencies with add-``alpha`` smoothing: ``p[w] = (count(w) + alpha) / (n + alpha V)``.

    ``alpha=0`` gives the maximum-likelihood frequencies, whose bits per character on the text itself
    are its empirical entropy; ``alpha > 0`` keeps an unseen character from costing infinitely many bits.
    """
    ids = _check_ids(ids, vocab_size)
    if alpha < 0 or (alpha == 0 and ids.size == 0):
        raise ValueError(f"alpha: expected alpha >= 0 (and > 0 for an empty text), got {alpha}")
    counts = np.bincount(ids, minlength=vocab_size).astype(np.float64) + alpha
    return Unigram(counts / counts.sum())


def _grams(ids: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """The keys of every n-gram of ``ids``: ``(len(ids) - n + 1,)``, the one ending at ``t`` at ``t - n + 1``."""
    keys = np.zeros(max(len(ids) - n + 1, 0), np.int64)
    for k in range(n):
        keys = keys * vocab_size + ids[k : len(ids) - n + 1 + k]
    return keys


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query`` in the sorted ``keys``, 0 where a query is missing."""
    if keys.size == 0:
        return np.zeros(query.shape, values.dtype)
    index = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return np.where(keys[index] == query, values[index], 0)


def _discount(counts: np.ndarray) -> float:
    n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
    return float(n1 / (n1 + 2 * n2)) if n1 > 0 else 0.5


def fit_kneser_ney(ids: np.ndarray, vocab_size: int, order: int = 5) -> KneserNey:
    """Counts the n-grams of ``ids`` up to ``order`` (see the module docstring).

    Args:
        ids: ``(n,)`` the training text's ids.
        vocab_size: ``V``, the number of characters.
        order: the longest n-gram, 1 (a smoothed unigram) or more; ``order * log2(V)`` must stay under 62
            (the keys are int64): up to 9 for 79 characters.
    """
    ids = _check_ids(ids, vocab_size)
    if isinstance(order, bool) or not isinstance(order, int) or order < 1 or order * math.log2(vocab_size) >= 62:
        raise ValueError(f"order: expected an int >= 1 with order * log2({vocab_size}) < 62, got {order!r}")
    if ids.size < order:
        raise ValueError(f"ids: expected at least order = {order} ids, got {ids.size}")
    orders = []
    top_keys = None
    for n in range(order, 0, -1):
        if n == order:
            keys, counts = np.unique(_grams(ids, n, vocab_size), return_counts=True)
            top_keys = keys
        else:  # continuation counts: distinct (n+1)-grams x g, grouped by their last n characters g
            keys, counts = np.unique(top_keys % vocab_size**n, return_counts=True)
            top_keys = keys
        contexts, inverse = np.unique(keys // vocab_size, return_inverse=True)
        totals = np.bincount(inverse, weights=counts, minlength=contexts.size)
        types = np.bincount(inverse, minlength=contexts.size).astype(np.float64)
        orders.append(_Order(keys, counts.astype(np.float64), contexts, totals, types, _discount(counts)))
    return KneserNey(vocab_size, tuple(reversed(orders)))


def _kn_probs(model: KneserNey, contexts: np.ndarray, targets: np.ndarray, available: np.ndarray) -> np.ndarray:
    """``P(targets[i] | contexts[i])``; ``contexts: (m, order - 1)`` ids, of which the last ``available[i]``
    are real (the rest are ignored)."""
    V = model.vocab_size
    p = np.full(targets.shape, 1.0 / V)
    for n, table in enumerate(model.orders, start=1):
        h = np.zeros(targets.shape, np.int64)
        for k in range(n - 1):  # the last n - 1 context characters, oldest first
            h = h * V + contexts[:, contexts.shape[1] - (n - 1) + k]
        use = available >= n - 1
        total = _lookup(table.context_keys, table.context_totals, h)
        types = _lookup(table.context_keys, table.context_types, h)
        count = _lookup(table.keys, table.counts, h * V + targets)
        seen = use & (total > 0)
        safe = np.where(seen, total, 1.0)
        mixed = np.maximum(count - table.discount, 0.0) / safe + table.discount * types / safe * p
        p = np.where(seen, mixed, p)
    return p


def bits(model: Unigram | KneserNey, ids: np.ndarray) -> np.ndarray:
    """``(n,)`` the bits ``-log2 P(ids[t] | ids[t - order + 1 : t])`` of every character, the context cut
    at the start of ``ids`` (character 0 has none)."""
    if isinstance(model, Unigram):
        ids = _check_ids(ids, model.p.size)
        return -np.log2(model.p[ids])
    ids = _check_ids(ids, model.vocab_size)
    width = model.order - 1
    padded = np.concatenate([np.zeros(width, np.int64), ids])
    contexts = np.stack([padded[k : k + ids.size] for k in range(width)], axis=1) if width else None
    if contexts is None:
        contexts = np.zeros((ids.size, 0), np.int64)
    available = np.minimum(np.arange(ids.size), width)
    return -np.log2(_kn_probs(model, contexts, ids, available))


def bits_per_character(model: Unigram | KneserNey, ids: np.ndarray, skip: int = 0) -> float:
    """The mean of :func:`bits` over ``ids[skip:]`` (``skip=1``: the characters a network that reads
    ``ids[:-1]`` predicts as ``ids[1:]``)."""
    per_char = bits(model, ids)[skip:]
    if per_char.size == 0:
        raise ValueError(f"ids: expected more than skip = {skip} ids, got {len(ids)}")
    return float(per_char.mean())


def next_char_probs(model: Unigram | KneserNey, context: np.ndarray) -> np.ndarray:
    """``(V,)`` the distribution of the character after ``context`` (ids; only its last ``order - 1``
    count, fewer if it is shorter)."""
    if isinstance(model, Unigram):
        return model.p.copy()
    V = model.vocab_size
    context = _check_ids(context, V, "context")
    width = model.order - 1
    tail = context[len(context) - min(width, len(context)) :]
    row = np.concatenate([np.zeros(width - tail.size, np.int64), tail])
    contexts = np.tile(row, (V, 1))
    return _kn_probs(model, contexts, np.arange(V), np.full(V, tail.size))
