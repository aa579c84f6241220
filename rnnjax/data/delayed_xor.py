"""The delayed (temporal) XOR task of Engelken 2023, "Gradient Flossing" (NeurIPS), generated with numpy from a seed.

A stream of random bits ``b_t in {0, 1}`` enters one step at a time (input ``amplitude * b_t``); at every step
``t >= 2d`` the network must output the XOR of the bits it read ``d`` and ``2d`` steps before::

    y_t = b_{t-d} XOR b_{t-2d} = |b_{t-d} - b_{t-2d}|,     t = 2d .. T-1 (0-based; no target before 2d)

so it has to hold every bit for ``2d`` steps and combine two of them nonlinearly: no linear readout of a
memory does it, and neither bit alone says anything about the target (each is independent of ``y_t``).
Without memory the best prediction is 1/2 at every step: binary cross-entropy ``log 2 = 0.693`` nats and
accuracy 1/2 (:data:`CHANCE_BCE`). The task is that of the paper's code (``GradientFlossing_XOR.jl``: the
hierarchical XOR of order 1, the loss from step ``2d`` on), indexed from the first input shown.
"""

from __future__ import annotations

import math

import numpy as np

from rnnjax.checks import check_float, check_positive_int, describe

__all__ = ["CHANCE_BCE", "delayed_xor"]

CHANCE_BCE = math.log(2.0)
"""The memoryless binary cross-entropy, in nats per target step: predicting 1/2 everywhere."""


def delayed_xor(
    rng: np.random.Generator, batch: int, length: int, delay: int, *, amplitude: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of the delayed XOR task (see the module docstring).

    Args:
        rng: the numpy generator the bits come from.
        batch: sequences.
        length: ``T``, steps per sequence; more than ``2 * delay``.
        delay: ``d``; the target at ``t`` is ``b_{t-d} XOR b_{t-2d}``.
        amplitude: the input is ``amplitude * b_t``.

    Returns:
        ``xs: (batch, T, 1)`` float32 inputs, ``ys: (batch, T, 1)`` float32 targets in {0, 1} (0 before
        ``2d``), ``mask: (batch, T)`` float32, 1 at the steps with a target (``t >= 2d``).
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy Generator (np.random.default_rng(seed)), got {describe(rng)}")
    check_positive_int(batch, "batch")
    check_positive_int(delay, "delay")
    if check_positive_int(length, "length") <= 2 * delay:
        raise ValueError(f"length: expected more than 2 * delay = {2 * delay} steps (the first target), got {length}")
    amplitude = check_float(amplitude, "amplitude", low=0.0, low_open=True)
    bits = rng.integers(0, 2, size=(batch, length), dtype=np.int8)
    ys = np.zeros((batch, length), np.float32)
    ys[:, 2 * delay :] = bits[:, delay:-delay] ^ bits[:, : -2 * delay]
    mask = np.zeros((batch, length), np.float32)
    mask[:, 2 * delay :] = 1.0
    return (amplitude * bits[..., None]).astype(np.float32), ys[..., None], mask
