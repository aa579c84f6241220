"""Losses and metrics: against numpy references, masks (value and gradient), reductions, errors."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnjax import losses

pytestmark = pytest.mark.usefixtures("strict_dtypes")  # mixed dtypes must be explicit in the library

B, T, K = 3, 5, 4  # batch, time, classes (or features for mse)
LENGTHS = np.array([5, 2, 3])
CLASS_LOSSES = [losses.cross_entropy, losses.softmax_squared_error]
ALL_LOSSES = [losses.cross_entropy, losses.softmax_squared_error, losses.mse]
IDS = ["cross_entropy", "softmax_squared_error", "mse"]


def np_log_softmax(o: np.ndarray) -> np.ndarray:
    o = o.astype(np.float64)
    shifted = o - o.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def np_mask(lengths: np.ndarray, time: int) -> np.ndarray:
    return np.array([[1.0 if t < n else 0.0 for t in range(time)] for n in lengths])


def np_reduce(per_step: np.ndarray, mask: np.ndarray, reduction: str) -> np.ndarray:
    """The reference reduction, written with explicit loops over the valid steps."""
    if reduction == "none":
        return per_step * mask
    valid = [per_step[idx] for idx in np.ndindex(*mask.shape) if mask[idx] > 0]
    total = float(np.sum(valid)) if valid else 0.0
    return total if reduction == "sum" else total / len(valid)


def np_per_step(fn, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    if fn is losses.cross_entropy:
        return -np.take_along_axis(np_log_softmax(outputs), targets[..., None], -1)[..., 0]
    if fn is losses.softmax_squared_error:
        p = np.exp(np_log_softmax(outputs))
        return ((p - np.eye(outputs.shape[-1])[targets]) ** 2).sum(-1)
    return ((outputs.astype(np.float64) - targets) ** 2).mean(-1)


def make(fn, seed=0, shape=(B, T)):
    """Float32 outputs and targets (integer labels for the class losses), drawn with numpy."""
    rng = np.random.default_rng(seed)
    outputs = jnp.asarray(2.0 * rng.normal(size=(*shape, K)), jnp.float32)
    if fn is losses.mse:
        return outputs, jnp.asarray(rng.normal(size=(*shape, K)), jnp.float32)
    return outputs, jnp.asarray(rng.integers(0, K, shape), jnp.int32)


# ---------------------------------------------------------------- values against numpy


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("fn", ALL_LOSSES, ids=IDS)
def test_loss_equals_numpy_reference(fn, reduction):
    outputs, targets = make(fn)
    mask = np_mask(LENGTHS, T)
    got = fn(outputs, targets, jnp.asarray(mask, jnp.float32), reduction=reduction)
    want = np_reduce(np_per_step(fn, np.asarray(outputs), np.asarray(targets)), mask, reduction)
    chex.assert_shape(got, (B, T) if reduction == "none" else ())
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", ALL_LOSSES, ids=IDS)
def test_no_mask_means_over_every_step(fn):
    outputs, targets = make(fn)
    want = np_per_step(fn, np.asarray(outputs), np.asarray(targets)).mean()
    np.testing.assert_allclose(np.asarray(fn(outputs, targets)), want, rtol=1e-5)


@pytest.mark.parametrize("fn", ALL_LOSSES, ids=IDS)
def test_one_output_per_sequence(fn):
    """Outputs ``(batch, classes)`` with a ``(batch,)`` mask: the step axes are the batch alone."""
    outputs, targets = make(fn, 1, shape=(B,))
    mask = np.array([1.0, 0.0, 1.0])
    got = fn(outputs, targets, jnp.asarray(mask, jnp.float32))
    want = np_reduce(np_per_step(fn, np.asarray(outputs), np.asarray(targets)), mask, "mean")
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


def test_mean_is_over_valid_steps_only():
    outputs, targets = make(losses.cross_entropy)
    mask = jnp.asarray(np_mask(LENGTHS, T), jnp.float32)
    total = losses.cross_entropy(outputs, targets, mask, reduction="sum")
    mean = losses.cross_entropy(outputs, targets, mask)
    np.testing.assert_allclose(float(mean), float(total) / LENGTHS.sum(), rtol=1e-6)
    # Not the mean over the padded array.
    assert not np.isclose(float(mean), float(total) / (B * T), rtol=1e-3)


def test_bool_mask_equals_float_mask():
    outputs, targets = make(losses.cross_entropy)
    mask = np_mask(LENGTHS, T)
    np.testing.assert_allclose(
        float(losses.cross_entropy(outputs, targets, jnp.asarray(mask > 0))),
        float(losses.cross_entropy(outputs, targets, jnp.asarray(mask, jnp.float32))),
        rtol=1e-6,
    )


def test_all_masked_mean_is_zero_not_nan():
    outputs, targets = make(losses.cross_entropy)
    assert float(losses.cross_entropy(outputs, targets, jnp.zeros((B, T)))) == 0.0


def test_unknown_reduction_raises():
    outputs, targets = make(losses.cross_entropy)
    with pytest.raises(ValueError, match="^reduction:"):
        losses.cross_entropy(outputs, targets, reduction="max")


def test_mask_from_lengths():
    lengths = np.array([0, 3, 5, 1])
    mask = losses.mask_from_lengths(jnp.asarray(lengths), 5)
    chex.assert_shape(mask, (4, 5))
    assert mask.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(mask), np_mask(lengths, 5))
    assert losses.mask_from_lengths(jnp.asarray(lengths), 5, dtype=jnp.bool_).dtype == jnp.bool_


# ---------------------------------------------------------------- metrics


def test_accuracy_equals_numpy_reference():
    outputs, labels = make(losses.cross_entropy)
    mask = np_mask(LENGTHS, T)
    hits = (np.asarray(outputs).argmax(-1) == np.asarray(labels)).astype(np.float64)
    want = np_reduce(hits, mask, "mean")
    got = losses.accuracy(outputs, labels, jnp.asarray(mask, jnp.float32))
    np.testing.assert_allclose(float(got), want, rtol=1e-6)
    # Labels set to the arg-max: every valid step is a hit, whatever the padded steps hold.
    perfect = jnp.where(jnp.asarray(mask) > 0, jnp.argmax(outputs, -1), (jnp.argmax(outputs, -1) + 1) % K)
    assert float(losses.accuracy(outputs, perfect, jnp.asarray(mask, jnp.float32))) == 1.0
    assert float(losses.accuracy(outputs, perfect)) < 1.0


def test_perplexity_and_bits_per_character():
    outputs, labels = make(losses.cross_entropy)
    mask = np_mask(LENGTHS, T)
    nats = np_reduce(np_per_step(losses.cross_entropy, np.asarray(outputs), np.asarray(labels)), mask, "mean")
    m = jnp.asarray(mask, jnp.float32)
    np.testing.assert_allclose(float(losses.perplexity(outputs, labels, m)), np.exp(nats), rtol=1e-5)
    # Bits: -log2 p, averaged over the valid steps.
    bits = [
        -np.log2(np.exp(np_log_softmax(np.asarray(outputs)[b, t]))[int(labels[b, t])])
        for b in range(B)
        for t in range(T)
        if mask[b, t]
    ]
    bpc = losses.bits_per_character(outputs, labels, m)
    np.testing.assert_allclose(float(bpc), np.mean(bits), rtol=1e-5)
    np.testing.assert_allclose(float(bpc), float(losses.cross_entropy(outputs, labels, m)) / math.log(2), rtol=1e-6)


@pytest.mark.parametrize("vocab", [2, 7, 50])
def test_perplexity_of_uniform_logits_is_vocab_size(vocab):
    logits = jnp.full((B, T, vocab), 0.3)
    labels = jnp.asarray(np.random.default_rng(vocab).integers(0, vocab, (B, T)), jnp.int32)
    mask = jnp.asarray(np_mask(LENGTHS, T), jnp.float32)
    np.testing.assert_allclose(float(losses.perplexity(logits, labels, mask)), vocab, rtol=1e-5)
    np.testing.assert_allclose(float(losses.bits_per_character(logits, labels)), math.log2(vocab), rtol=1e-5)


# ---------------------------------------------------------------- masked steps: value and gradient


@pytest.mark.parametrize("fill", [0.0, 1e30, np.nan], ids=["finite", "huge", "nan"])
@pytest.mark.parametrize("fn", ALL_LOSSES, ids=IDS)
def test_masked_steps_contribute_nothing(fn, fill):
    """Padded steps change neither the value nor the gradient, and get an exactly zero gradient."""
    outputs, targets = make(fn)
    mask = jnp.asarray(np_mask(LENGTHS, T), jnp.float32)
    pad = (mask == 0)[..., None]
    garbage = jnp.where(pad, outputs + fill, outputs)  # fill 0: the padded steps keep finite values
    clean_value, clean_grad = jax.value_and_grad(fn)(outputs, targets, mask)
    value, grad = jax.value_and_grad(fn)(garbage, targets, mask)
    assert np.isfinite(float(value))
    np.testing.assert_allclose(float(value), float(clean_value), rtol=1e-6)
    g = np.asarray(grad)
    assert np.all(g[np.asarray(pad[..., 0])] == 0.0), "a padded step got a nonzero or NaN gradient"
    valid = np.asarray(~pad[..., 0])
    np.testing.assert_allclose(g[valid], np.asarray(clean_grad)[valid], rtol=1e-5, atol=1e-7)
    assert np.any(g[valid] != 0.0)


JITTED = [jax.jit(fn) for fn in ALL_LOSSES]  # one compile per shape, instead of one per op and shape
VALID = 3  # steps before padding; shapes are fixed so that JAX compiles each loss only a few times


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.sampled_from([0, 1, 2]),
    pad=st.sampled_from([1, 4]),
    lengths=st.lists(st.integers(1, VALID), min_size=2, max_size=2),
    fill=st.sampled_from(["normal", "huge", "inf", "nan"]),
    seed=st.integers(0, 2**16),
)
def test_padding_never_changes_the_mean_loss(which, pad, lengths, fill, seed):
    """Appending padded steps (mask 0) with any values leaves the mean loss unchanged."""
    fn = ALL_LOSSES[which]
    loss = JITTED[which]
    rng = np.random.default_rng(seed)
    outputs = rng.normal(size=(2, VALID, 3))
    mask = np_mask(np.array(lengths), VALID)
    extra = {
        "normal": 100 * rng.normal(size=(2, pad, 3)),
        "huge": 3e38 * rng.choice([-1.0, 1.0], (2, pad, 3)),
        "inf": np.inf * rng.choice([-1.0, 1.0], (2, pad, 3)),
        "nan": np.full((2, pad, 3), np.nan),
    }[fill]
    if fn is losses.mse:
        targets = rng.normal(size=(2, VALID, 3)).astype(np.float32)
        padded_targets = np.concatenate([targets, extra[:, :, ::-1]], axis=1).astype(np.float32)
    else:
        targets = rng.integers(0, 3, (2, VALID))
        padded_targets = np.concatenate([targets, rng.integers(0, 3, (2, pad))], axis=1)
    padded_outputs = np.concatenate([outputs, extra], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((2, pad))], axis=1)
    before = loss(jnp.asarray(outputs, jnp.float32), jnp.asarray(targets), jnp.asarray(mask, jnp.float32))
    after = loss(
        jnp.asarray(padded_outputs, jnp.float32),
        jnp.asarray(padded_targets),
        jnp.asarray(padded_mask, jnp.float32),
    )
    assert np.isfinite(float(after))
    np.testing.assert_allclose(float(after), float(before), rtol=1e-6)


# ---------------------------------------------------------------- errors at the boundary


@pytest.mark.parametrize("fn", CLASS_LOSSES + [losses.accuracy, losses.perplexity, losses.bits_per_character])
def test_labels_of_wrong_shape_or_dtype_raise(fn):
    logits, labels = make(losses.cross_entropy)
    with pytest.raises(ValueError, match="^labels:"):
        fn(logits, labels[:, :-1])
    with pytest.raises(ValueError, match="^labels:"):
        fn(logits, labels[..., None])
    with pytest.raises(ValueError, match="^labels: expected integer class labels"):
        fn(logits, labels.astype(jnp.float32))


@pytest.mark.parametrize("fn", ALL_LOSSES + [losses.accuracy], ids=IDS + ["accuracy"])
def test_mask_of_wrong_shape_raises(fn):
    outputs, targets = make(fn)
    for bad in (jnp.ones((B, T + 1)), jnp.ones((B, T, K)), jnp.ones((T,))):
        with pytest.raises(ValueError, match="^mask:"):
            fn(outputs, targets, bad)


def test_mse_targets_of_wrong_shape_raise():
    predictions, targets = make(losses.mse)
    with pytest.raises(ValueError, match="^targets:"):
        losses.mse(predictions, targets[..., :-1])
    with pytest.raises(ValueError, match="^targets:"):
        losses.mse(predictions, targets[..., 0])


def test_mse_targets_of_another_dtype_raise(x64):
    """Mixed dtypes are an error at the boundary that names ``targets`` (STYLE 9)."""
    predictions, targets = jnp.zeros((B, T, K), jnp.float32), jnp.zeros((B, T, K), jnp.float64)
    with pytest.raises(ValueError, match="^targets:"):
        losses.mse(predictions, targets)


def test_binary_cross_entropy_is_torchs_summed_over_outputs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 4)).astype(np.float32) * 3
    targets = (rng.random((3, 5, 4)) < 0.3).astype(np.float32)
    mask = losses.mask_from_lengths(jnp.array([5, 2, 0]), 5)
    ref = (
        torch.nn.functional.binary_cross_entropy_with_logits(
            torch.tensor(logits), torch.tensor(targets), reduction="none"
        )
        .sum(-1)
        .numpy()
    )
    want = (ref * np.asarray(mask)).sum() / np.asarray(mask).sum()
    got = losses.binary_cross_entropy(jnp.asarray(logits), jnp.asarray(targets), mask)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    per_step = losses.binary_cross_entropy(jnp.asarray(logits), jnp.asarray(targets), mask, reduction="none")
    np.testing.assert_allclose(per_step, ref * np.asarray(mask), rtol=1e-5, atol=1e-6)


def test_binary_cross_entropy_is_stable_and_masks_nan():
    big = jnp.full((1, 1, 2), 40.0)
    assert float(losses.binary_cross_entropy(big, jnp.ones((1, 1, 2)))) < 1e-6
    assert float(losses.binary_cross_entropy(big, jnp.zeros((1, 1, 2)))) == pytest.approx(80.0, rel=1e-5)
    logits = jnp.array([[[0.0], [jnp.nan]]])
    mask = jnp.array([[1.0, 0.0]])
    grad = jax.grad(lambda o: losses.binary_cross_entropy(o, jnp.zeros_like(o), mask))(logits)
    assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_allclose(
        losses.binary_cross_entropy(logits, jnp.zeros_like(logits), mask), math.log(2), rtol=1e-6
    )
    with pytest.raises(ValueError, match="targets"):
        losses.binary_cross_entropy(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3, 5)))
