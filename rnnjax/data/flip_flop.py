"""The N-bit flip-flop task (Sussillo & Barak 2013, "Opening the Black Box: Low-Dimensional Dynamics in
High-Dimensional Recurrent Neural Networks", section on the 3-bit flip-flop), generated with numpy from a seed.

Each of ``bits`` input channels is silent (0) at most steps and carries a brief pulse, +1 or -1, at random
steps: at each step and channel independently a pulse with probability ``p`` (Bernoulli), its sign a fair
coin. Output channel j must hold the sign of the last pulse channel j received::

    x_t[j] in {-1, 0, +1},  P(x_t[j] != 0) = p          y_t[j] = x_s[j],  s = max{s <= t : x_s[j] != 0}

A pulse of the sign already held changes nothing; one of the other sign flips the bit. A network that solves
it is a memory of ``2^bits`` states, and with no input (x = 0) it has to hold each of them: Sussillo & Barak
found one stable fixed point per memory state in their trained network (8 for 3 bits).

With ``first_pulse=True`` (as in Golub & Sussillo's FixedPointFinder example) every channel pulses at step 0,
so every target is defined; otherwise a channel's target is 0 until its first pulse.
"""

from __future__ import annotations

import numpy as np

from rnnjax.checks import check_float, check_positive_int

__all__ = ["flip_flop"]


def flip_flop(
    rng: np.random.Generator, batch: int, length: int, *, bits: int = 3, p: float = 0.05, first_pulse: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of the ``bits``-bit flip-flop task (see the module docstring).

    Args:
        rng: the source of randomness, e.g. ``np.random.default_rng([seed, step])``.
        batch: sequences.
        length: steps per sequence.
        bits: input and output channels (3 in Sussillo & Barak 2013).
        p: probability of a pulse per step and channel, in (0, 1].
        first_pulse: every channel pulses at step 0 (every target defined).

    Returns:
        ``xs: (batch, length, bits)`` float32 in {-1, 0, 1}, the pulses, and ``ys: (batch, length, bits)``
        float32, the sign of each channel's last pulse so far (0 before its first).
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    check_positive_int(batch, "batch")
    check_positive_int(length, "length")
    check_positive_int(bits, "bits")
    p = check_float(p, "p", low=0.0, high=1.0, low_open=True)
    if not isinstance(first_pulse, bool):
        raise ValueError(f"first_pulse: expected a bool, got {first_pulse!r}")
    pulses = rng.random((batch, length, bits)) < p
    if first_pulse:
        pulses[:, 0] = True
    signs = np.where(rng.random((batch, length, bits)) < 0.5, -1.0, 1.0)
    xs = np.where(pulses, signs, 0.0).astype(np.float32)
    # The index of the last pulse at or before each step (-1 before the first), carried forward by a running max.
    steps = np.arange(length)[None, :, None]
    last = np.maximum.accumulate(np.where(pulses, steps, -1), axis=1)
    held = np.take_along_axis(xs, np.maximum(last, 0), axis=1)
    ys = np.where(last >= 0, held, 0.0).astype(np.float32)
    return xs, ys
