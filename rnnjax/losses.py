"""Per-step losses and metrics that honour lengths and masks.

Every function takes an optional ``mask`` over the step axes (all but the last axis of the
outputs: ``(batch, time)``, or ``(batch,)`` for one output per sequence) of 0/1 weights;
masked steps contribute nothing to the value or its gradient. ``reduction="mean"`` averages
over the valid steps (not over the padded array), ``"sum"`` adds them, ``"none"`` returns the
per-step losses with zeros where masked.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from rnnjax.types import Array

REDUCTIONS = ("mean", "sum", "none")


def mask_from_lengths(lengths: Array, time: int, dtype=jnp.float32) -> Array:
    """``(batch, time)`` with ones in each row's first ``lengths[b]`` steps."""
    return (jnp.arange(time)[None, :] < jnp.asarray(lengths)[:, None]).astype(dtype)


def _check(outputs: Array, targets: Array, mask: Array | None, classes: bool) -> Array:
    """The mask as an array over the step axes, ``outputs.shape[:-1]``, after checking shapes."""
    steps = tuple(outputs.shape[:-1])
    expected = steps if classes else tuple(outputs.shape)
    if tuple(targets.shape) != expected:
        what = "integer labels of shape" if classes else "targets of shape"
        raise ValueError(f"targets: expected {what} {expected}, got {tuple(targets.shape)}")
    if classes and not jnp.issubdtype(targets.dtype, jnp.integer):
        raise ValueError(f"targets: expected integer class labels, got {targets.dtype}")
    if not classes and targets.dtype != outputs.dtype:
        raise ValueError(f"targets: expected the dtype of the predictions, {outputs.dtype}, got {targets.dtype}")
    if mask is None:
        return jnp.ones(steps, outputs.dtype)
    if tuple(mask.shape) != steps:
        raise ValueError(f"mask: expected shape {steps} (the step axes), got {tuple(mask.shape)}")
    return jnp.asarray(mask, outputs.dtype)


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
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    return _reduce(nll, m, reduction)


def softmax_squared_error(logits: Array, labels: Array, mask: Array | None = None, reduction: str = "mean") -> Array:
    """The textbook's squared error on the softmax output: ``sum_k (softmax(o_t)_k - [k == y_t])^2``."""
    m = _check(logits, labels, mask, classes=True)
    logits = _sanitize(logits, m)
    p = jax.nn.softmax(logits, axis=-1)
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=p.dtype)
    return _reduce(((p - onehot) ** 2).sum(-1), m, reduction)


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


def accuracy(logits: Array, labels: Array, mask: Array | None = None) -> Array:
    """Share of valid steps whose arg-max class equals the label."""
    m = _check(logits, labels, mask, classes=True)
    hits = (jnp.argmax(logits, axis=-1) == labels).astype(logits.dtype)
    return _reduce(hits, m, "mean")


def perplexity(logits: Array, labels: Array, mask: Array | None = None) -> Array:
    """``exp`` of the mean cross-entropy over valid steps."""
    return jnp.exp(cross_entropy(logits, labels, mask))


def bits_per_character(logits: Array, labels: Array, mask: Array | None = None) -> Array:
    """Mean cross-entropy in bits: nats divided by ``ln 2``."""
    return cross_entropy(logits, labels, mask) / math.log(2.0)
