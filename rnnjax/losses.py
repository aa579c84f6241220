"""Per-step losses and metrics that honour lengths and masks.

Every function takes an optional ``mask`` over the step axes (all but the last axis of the
outputs: ``(batch, time)``, or ``(batch,)`` for one output per sequence) of 0/1 weights;
masked steps contribute nothing to the value or its gradient. ``reduction="mean"`` averages
over the valid steps (not over the padded array), ``"sum"`` adds them, ``"none"`` returns the
per-step losses with zeros where masked.

Class labels must lie in ``[0, classes)`` at every valid step (masked steps may hold anything, e.g.
``-100`` as padding). Where the labels are known a label outside raises; under ``jit`` it cannot be
checked, and that step's loss (and the mean over it) is NaN, which ``rj.train.fit`` stops at,
instead of scoring a wrong class silently (``-1`` would index the last class).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks import check_nonnegative_int, is_concrete
from rnnjax.types import Array

__all__ = [
    "REDUCTIONS", "accuracy", "binary_cross_entropy", "bits_per_character", "cross_entropy", "mask_from_lengths",
    "mse", "perplexity",
    "softmax_squared_error",
]  # fmt: skip

REDUCTIONS = ("mean", "sum", "none")


def mask_from_lengths(lengths: Array, time: int, dtype=jnp.float32) -> Array:
    """The mask the losses take, from right-padded lengths.

    Args:
        lengths: ``(batch,)`` valid steps per row, as given to ``rj.unroll`` or ``RNN.apply``.
        time: the padded length, ``xs.shape[1]``.
        dtype: of the mask.

    Returns:
        ``(batch, time)`` with ones in each row's first ``lengths[b]`` steps, zeros after.

    Example:
        >>> mask_from_lengths(jnp.array([3, 1]), 4)   # [[1, 1, 1, 0], [1, 0, 0, 0]]
    """
    time = check_nonnegative_int(time, "time")
    lengths = jnp.asarray(lengths)
    if lengths.ndim != 1 or not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(f"lengths: expected integer lengths of shape (batch,), got {lengths.dtype}{lengths.shape}")
    return (jnp.arange(time, dtype=lengths.dtype)[None, :] < lengths[:, None]).astype(dtype)


def _check(outputs: Array, targets: Array, mask: Array | None, classes: bool) -> Array:
    """The mask as an array over the step axes, ``outputs.shape[:-1]``, after checking shapes."""
    steps = tuple(outputs.shape[:-1])
    expected = steps if classes else tuple(outputs.shape)
    name = "labels" if classes else "targets"  # the argument's name in the public functions
    if tuple(targets.shape) != expected:
        what = "integer labels of shape" if classes else "targets of shape"
        raise ValueError(f"{name}: expected {what} {expected}, got {tuple(targets.shape)}")
    if classes and not jnp.issubdtype(targets.dtype, jnp.integer):
        raise ValueError(f"{name}: expected integer class labels, got {targets.dtype}")
    if not classes and targets.dtype != outputs.dtype:
        raise ValueError(f"targets: expected the dtype of the predictions, {outputs.dtype}, got {targets.dtype}")
    if mask is None:
        if classes:
            _check_label_values(targets, None, outputs.shape[-1])
        return jnp.ones(steps, outputs.dtype)
    if tuple(mask.shape) != steps:
        raise ValueError(f"mask: expected shape {steps} (the step axes), got {tuple(mask.shape)}")
    mask = jnp.asarray(mask, outputs.dtype)
    if classes:
        _check_label_values(targets, mask, outputs.shape[-1])
    return mask


def _check_label_values(labels: Array, mask: Array | None, classes: int) -> None:
    """Labels in ``[0, classes)`` at the valid steps, where the values are known."""
    if not (is_concrete(labels) and (mask is None or is_concrete(mask))):
        return
    values = np.asarray(labels)
    bad = (values < 0) | (values >= classes)
    if mask is not None:
        bad &= np.asarray(mask) > 0
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"labels: expected classes in [0, {classes}) at valid steps, got {values[at]} at index {at} "
            "(mask padded steps with mask=, e.g. rj.losses.mask_from_lengths)"
        )


def _labels_in_range(labels: Array, classes: int) -> tuple[Array, Array]:
    """``(labels that index safely, ok)``: out-of-range labels (only traced ones get here) become 0 and
    ``ok`` False, so the caller can give those steps NaN instead of a wrong class's score."""
    ok = (labels >= 0) & (labels < classes)
    return jnp.where(ok, labels, 0), ok


def _sanitize(x: Array, mask: Array) -> Array:
    """Zeros at masked steps *before* the loss: a where() after it still lets NaN into the gradient."""
    return jnp.where((mask > 0).reshape(mask.shape + (1,) * (x.ndim - mask.ndim)), x, jnp.zeros_like(x))


def _reduce(per_step: Array, mask: Array, reduction: str) -> Array:
    # where(), not only a product: a NaN or Inf at a masked step must not leak into the sum.
    per_step = jnp.where(mask > 0, per_step, 0.0) * mask
    if reduction == "none":
        return per_step
    if reduction == "sum":
        return per_step.sum()
    if reduction == "mean":
        return per_step.sum() / jnp.maximum(mask.sum(), 1.0)
    raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(logits: Array, labels: Array, mask: Array | None = None, reduction: str = "mean") -> Array:
    """Softmax cross-entropy ``-log softmax(o_t)[y_t]`` in nats.

    Args:
        logits: ``(..., classes)``, e.g. ``(batch, time, vocab)``.
        labels: integer classes of shape ``logits.shape[:-1]``.
        mask: weights of shape ``logits.shape[:-1]``.
    """
    m = _check(logits, labels, mask, classes=True)
    logits = _sanitize(logits, m)
    labels, ok = _labels_in_range(labels, logits.shape[-1])
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    return _reduce(jnp.where(ok, nll, jnp.nan), m, reduction)


def softmax_squared_error(logits: Array, labels: Array, mask: Array | None = None, reduction: str = "mean") -> Array:
    """The textbook's squared error on the softmax output: ``sum_k (softmax(o_t)_k - [k == y_t])^2``."""
    m = _check(logits, labels, mask, classes=True)
    logits = _sanitize(logits, m)
    labels, ok = _labels_in_range(labels, logits.shape[-1])
    p = jax.nn.softmax(logits, axis=-1)
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=p.dtype)
    return _reduce(jnp.where(ok, ((p - onehot) ** 2).sum(-1), jnp.nan), m, reduction)


def mse(predictions: Array, targets: Array, mask: Array | None = None, reduction: str = "mean") -> Array:
    """Squared error averaged over the last (feature) axis, then reduced over valid steps.

    Args:
        predictions: ``(batch, time, features)`` or ``(batch, features)``.
        targets: the same shape as ``predictions``.
        mask: weights of shape ``predictions.shape[:-1]``.
    """
    m = _check(predictions, targets, mask, classes=False)
    predictions, targets = _sanitize(predictions, m), _sanitize(targets, m)
    return _reduce(((predictions - targets) ** 2).mean(-1), m, reduction)


def binary_cross_entropy(logits: Array, targets: Array, mask: Array | None = None, reduction: str = "mean") -> Array:
    """Independent Bernoullis, one per output (multi-label, e.g. the notes of a piano roll), in nats:
    ``-sum_j [y_j log sigma(o_j) + (1 - y_j) log(1 - sigma(o_j))] = sum_j softplus(o_j) - y_j o_j``, summed
    over the last axis, then reduced over valid steps (the negative log-likelihood of a frame).

    Args:
        logits: ``(batch, time, outputs)`` or ``(batch, outputs)``.
        targets: the same shape, values in [0, 1].
        mask: weights of shape ``logits.shape[:-1]``.
    """
    m = _check(logits, targets, mask, classes=False)
    logits, targets = _sanitize(logits, m), _sanitize(targets, m)
    return _reduce((jax.nn.softplus(logits) - targets * logits).sum(-1), m, reduction)


def accuracy(logits: Array, labels: Array, mask: Array | None = None) -> Array:
    """Share of valid steps whose arg-max class equals the label."""
    m = _check(logits, labels, mask, classes=True)
    labels, ok = _labels_in_range(labels, logits.shape[-1])
    hits = (jnp.argmax(logits, axis=-1) == labels).astype(logits.dtype)
    return _reduce(jnp.where(ok, hits, jnp.nan), m, "mean")


def perplexity(logits: Array, labels: Array, mask: Array | None = None) -> Array:
    """``exp`` of the mean cross-entropy over valid steps."""
    return jnp.exp(cross_entropy(logits, labels, mask))


def bits_per_character(logits: Array, labels: Array, mask: Array | None = None) -> Array:
    """Mean cross-entropy in bits: nats divided by ``ln 2``."""
    return cross_entropy(logits, labels, mask) / math.log(2.0)
