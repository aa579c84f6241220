"""The temporal order problem: which of two symbols came first, read across a long stream of distractors.

Hochreiter & Schmidhuber 1997 ("Long Short-Term Memory", experiment 6a) hide two relevant symbols, each ``X``
or ``Y``, in a sequence of random distractors; the class, read after the last step, is their order::

    X, X -> 0 (Q)    X, Y -> 1 (R)    Y, X -> 2 (S)    Y, Y -> 3 (U)        class = 2 * first + second

Two placements are generated (one-hot inputs, positions counted from 0):

- ``"pascanu"`` (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent neural networks",
  section 4.1.1, and their code ``tempOrder.py``): six symbols, the relevant pair ``A, B`` (here ``X, Y``) and four
  distractors; for any length T the first relevant symbol falls in ``[T1, 2 T1)`` and the second in
  ``[T5, T5 + T1)``, with ``T1 = floor(T / 10)`` and ``T5 = floor(T / 2)``: at T = 100, steps 10-19 and 50-59.
- ``"hochreiter"`` (the 1997 paper): eight symbols, the distractors ``a, b, c, d``, ``X, Y``, a start symbol ``E``
  at the first step and the trigger ``B`` at the last; ``t1`` in ``[round(T/10), round(T/5)]`` and ``t2`` in
  ``[round(T/2), round(3T/5)]``, both inclusive (10-20 and 50-60 at T = 100, as in the paper). The paper draws T
  from [100, 110] per sequence; here T is the caller's (draw it per batch for that).

Every class has probability 1/4 whatever the inputs before the relevant steps, so a model that has not found
them scores the chance level: accuracy 1/4, cross-entropy ``log 4`` (``CHANCE_ACCURACY``, ``CHANCE_CROSS_ENTROPY``).
"""

from __future__ import annotations

import math

import numpy as np

from rnnjax.checks import check_positive_int, describe

__all__ = [
    "CHANCE_ACCURACY",
    "CHANCE_CROSS_ENTROPY",
    "CLASS_NAMES",
    "SYMBOLS",
    "VARIANTS",
    "temporal_order",
    "windows",
]

VARIANTS = ("pascanu", "hochreiter")
SYMBOLS = {"pascanu": ("X", "Y", "c", "d", "e", "f"), "hochreiter": ("X", "Y", "a", "b", "c", "d", "E", "B")}
"""The input alphabet of each variant, in the order of the one-hot channels: ``X`` is channel 0, ``Y`` channel 1."""
CLASS_NAMES = ("XX", "XY", "YX", "YY")
"""Class ``k``'s order of the two relevant symbols (Hochreiter & Schmidhuber's Q, R, S, U)."""
CHANCE_ACCURACY = 0.25
"""Accuracy of any guess that ignores the relevant symbols: the four classes are equally likely."""
CHANCE_CROSS_ENTROPY = math.log(4.0)
"""Cross-entropy (nats) of predicting 1/4 for every class, the best a model blind to the relevant symbols can do."""


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    return variant


def _min_length(variant: str) -> int:
    return 10 if variant == "pascanu" else 5


def windows(length: int, variant: str = "pascanu") -> tuple[tuple[int, int], tuple[int, int]]:
    """The steps where the two relevant symbols can fall, ``((lo1, hi1), (lo2, hi2))``, both ends inclusive.

    Pascanu et al. 2013: ``[T1, 2 T1 - 1]`` and ``[T5, T5 + T1 - 1]`` with ``T1 = floor(T/10)``,
    ``T5 = floor(T/2)``; Hochreiter & Schmidhuber 1997: ``[round(T/10), round(T/5)]`` and
    ``[round(T/2), round(3T/5)]``.

    Args:
        length: T, steps per sequence: at least 10 (``"pascanu"``, so that each window holds a step) or 5
            (``"hochreiter"``, room for the start and trigger symbols).
        variant: ``"pascanu"`` or ``"hochreiter"``.
    """
    _check_variant(variant)
    if check_positive_int(length, "length") < _min_length(variant):
        raise ValueError(
            f"length: expected at least {_min_length(variant)} steps for variant {variant!r}, got {length}"
        )
    if variant == "pascanu":
        t1, t5 = length // 10, length // 2
        return (t1, 2 * t1 - 1), (t5, t5 + t1 - 1)
    # Python's round() is to even: 12.5 -> 12; the paper's T = 100 gives its 10-20 and 50-60 either way.
    first = (max(1, round(length / 10)), max(1, round(length / 5)))
    second = (max(first[1] + 1, round(length / 2)), min(length - 2, max(first[1] + 1, round(3 * length / 5))))
    return first, second


def temporal_order(
    rng: np.random.Generator, batch: int, length: int, variant: str = "pascanu"
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of the temporal order problem (Hochreiter & Schmidhuber 1997, experiment 6a).

    Each sequence is T one-hot symbols: distractors drawn uniformly at every step, except at two steps
    ``t1`` (drawn uniformly in the first of :func:`windows`) and ``t2`` (in the second), which hold ``X`` or
    ``Y`` with probability 1/2 each, independently. The label is ``2 [s(t1) = Y] + [s(t2) = Y]``
    (``CLASS_NAMES``: XX, XY, YX, YY). In the ``"hochreiter"`` variant the first step is ``E`` and the last
    the trigger ``B``.

    Args:
        rng: the source of randomness, e.g. ``np.random.default_rng([seed, step])``.
        batch: sequences.
        length: T, steps per sequence (see :func:`windows` for the least).
        variant: ``"pascanu"`` (6 symbols, Pascanu et al. 2013) or ``"hochreiter"`` (8 symbols, the 1997 paper).

    Returns:
        ``xs: (batch, length, symbols)`` float32 one-hot (channels in the order of ``SYMBOLS[variant]``) and
        ``labels: (batch,)`` int32 in ``{0, 1, 2, 3}``.

    Raises:
        ValueError: ``rng`` is no numpy Generator, ``batch`` or ``length`` is no positive int, ``length`` is too
            short for the windows, or ``variant`` is unknown.
    """
    (lo1, hi1), (lo2, hi2) = windows(length, variant)
    check_positive_int(batch, "batch")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy Generator (np.random.default_rng(seed)), got {describe(rng)}")
    symbols = len(SYMBOLS[variant])
    ids = rng.integers(2, 6, size=(batch, length))  # the distractors: channels 2-5 (c-f, or a-d) in both variants
    if variant == "hochreiter":
        ids[:, 0] = SYMBOLS[variant].index("E")
        ids[:, -1] = SYMBOLS[variant].index("B")
    rows = np.arange(batch)
    t1 = rng.integers(lo1, hi1 + 1, size=batch)
    t2 = rng.integers(lo2, hi2 + 1, size=batch)
    first = rng.integers(0, 2, size=batch)  # 0: X, 1: Y (their channels)
    second = rng.integers(0, 2, size=batch)
    ids[rows, t1] = first
    ids[rows, t2] = second
    xs = np.eye(symbols, dtype=np.float32)[ids]
    return xs, (2 * first + second).astype(np.int32)
