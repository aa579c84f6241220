"""The copy (memory) task of Arjovsky, Shah & Bengio 2016, "Unitary Evolution Recurrent Neural Networks"
(section 4.1, "Copying memory problem"; after Hochreiter & Schmidhuber 1997), generated with numpy from a seed.

The alphabet has ``symbols + 2`` tokens: ``0`` the blank, ``1 .. symbols`` the symbols to remember (8 in the
paper), ``symbols + 1`` the delimiter (9 in the paper). With ``c = copy_length`` (10 in the paper) and the
delay ``T``, each sequence has ``T + 2c`` steps::

    input:   s_1 .. s_c | 0 ... 0 (T - 1 blanks) | delimiter | 0 ... 0 (c blanks)
    target:  0 ... 0 (T + c blanks)                          | s_1 .. s_c

so the network must output blanks until the delimiter, then the ``c`` symbols it read ``T + c`` steps earlier.
The paper's memoryless strategy predicts a blank with certainty wherever the target is a blank and a uniform
guess over the symbols at the last ``c`` steps; its cross-entropy, averaged over all ``T + 2c`` steps, is
``c log(symbols) / (T + 2c)`` (``10 log 8 / (T + 20)`` in the paper): :func:`copy_baseline`.
"""

from __future__ import annotations

import math

import numpy as np

from rnnjax.checks import check_positive_int

__all__ = ["BLANK", "copy_baseline", "copy_task", "delimiter", "num_classes", "vocab_size"]

BLANK = 0
"""The blank token: the input between the symbols and the delimiter and after it, the target until the recall."""


def _check_alphabet(symbols: int, copy_length: int) -> None:
    if check_positive_int(symbols, "symbols") < 2:
        raise ValueError(f"symbols: expected at least 2 symbols to remember, got {symbols}")
    check_positive_int(copy_length, "copy_length")


def delimiter(symbols: int = 8) -> int:
    """The delimiter's token, ``symbols + 1`` (9 in the paper): the signal to start the recall."""
    _check_alphabet(symbols, 1)
    return symbols + 1


def vocab_size(symbols: int = 8) -> int:
    """The number of input tokens, ``symbols + 2``: the blank, the symbols and the delimiter."""
    return delimiter(symbols) + 1


def num_classes(symbols: int = 8) -> int:
    """The number of target classes, ``symbols + 1``: the blank and the symbols (a target is never the
    delimiter; the authors' code has 9 outputs)."""
    return delimiter(symbols)


def copy_baseline(length: int, *, symbols: int = 8, copy_length: int = 10) -> float:
    """The memoryless cross-entropy of the copy task, in nats per step (Arjovsky et al. 2016, eq. in 4.1).

    ``copy_length * log(symbols) / (length + 2 * copy_length)``: certainty of a blank at the ``length +
    copy_length`` blank targets (cost 0) and ``1 / symbols`` on each of the ``copy_length`` recalled symbols
    (cost ``log symbols`` each), averaged over all steps; ``10 log 8 / (T + 20)`` with the paper's sizes.

    Args:
        length: the delay ``T`` (>= 1).
        symbols: the number of distinct symbols to remember.
        copy_length: the number of symbols to remember.
    """
    check_positive_int(length, "length")
    _check_alphabet(symbols, copy_length)
    return copy_length * math.log(symbols) / (length + 2 * copy_length)


def copy_task(
    rng: np.random.Generator,
    batch: int,
    length: int,
    *,
    symbols: int = 8,
    copy_length: int = 10,
    one_hot: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of the copy task (Arjovsky, Shah & Bengio 2016, section 4.1; module docstring for the layout).

    The ``copy_length`` symbols are drawn uniformly, with replacement, from ``1 .. symbols``, independently in
    every row.

    Args:
        rng: the source of randomness, e.g. ``np.random.default_rng([seed, step])``.
        batch: sequences.
        length: the delay ``T`` (>= 1): the delimiter comes ``T`` steps after the last symbol, and the first
            symbol is recalled ``T + copy_length`` steps after it was read.
        symbols: the number of distinct symbols (8 in the paper); the tokens are ``0`` blank, ``1 .. symbols``,
            and ``symbols + 1`` the delimiter.
        copy_length: the number of symbols to remember (10 in the paper).
        one_hot: give the inputs as one-hot float32 vectors instead of token ids.

    Returns:
        ``xs``: token ids ``(batch, length + 2 copy_length)`` int32, or with ``one_hot`` float32
        ``(batch, length + 2 copy_length, symbols + 2)``; ``ys``: target classes ``(batch, length + 2
        copy_length)`` int32 in ``[0, symbols]``, blank except the last ``copy_length`` steps.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    check_positive_int(batch, "batch")
    check_positive_int(length, "length")
    _check_alphabet(symbols, copy_length)
    if not isinstance(one_hot, bool):
        raise ValueError(f"one_hot: expected True or False, got {one_hot!r}")
    c = copy_length
    steps = length + 2 * c
    seq = rng.integers(1, symbols + 1, size=(batch, c), dtype=np.int32)
    xs = np.full((batch, steps), BLANK, np.int32)
    xs[:, :c] = seq
    xs[:, c + length - 1] = symbols + 1
    ys = np.full((batch, steps), BLANK, np.int32)
    ys[:, length + c :] = seq
    if one_hot:
        return np.eye(symbols + 2, dtype=np.float32)[xs], ys
    return xs, ys
