"""Decoding from a step function: sampling with temperature and top-k, greedy, beam search.

Every decoder here drives a ``step_fn(carry, tokens) -> (logits, carry)`` that consumes one token
per row, ``tokens: (n,)``, and returns the next-token logits ``(n, vocab)``; the models build
it from their embedding, network and output layer. The loops are ``jax.lax.scan``s, so a
decoder can run under ``jit``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax.checks import check_float, check_key, check_nonnegative_int, check_positive_int
from rnnjax.types import Array, Carry, PRNGKey

__all__ = ["Beams", "StepFn", "beam_search", "greedy", "sample", "sample_bernoulli", "sample_logits"]

StepFn = Callable[[Carry, Array], tuple[Array, Carry]]


def sample_logits(key: PRNGKey, logits: Array, temperature: float = 1.0, top_k: int | None = None) -> Array:
    """Draws one class per row from ``softmax(logits / temperature)``, keeping only the top k.

    ``temperature=0`` is the arg-max (greedy). Lower temperatures sharpen the distribution,
    higher ones flatten it.
    """
    temperature = check_float(temperature, "temperature", low=0.0)
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or not 1 <= top_k <= logits.shape[-1]
    ):
        raise ValueError(f"top_k: expected None or an int in 1..{logits.shape[-1]} (the vocabulary), got {top_k!r}")
    if temperature == 0:
        return jnp.argmax(logits, axis=-1)
    logits = logits / temperature
    if top_k is not None:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1)


def sample(
    step_fn: StepFn,
    carry: Carry,
    logits: Array,
    num_steps: int,
    key: PRNGKey,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> Array:
    """Samples ``num_steps`` tokens, feeding each one back as the next input.

    Args:
        carry: the state after the context (prompt, conditioning input).
        logits: ``(n, vocab)``, the distribution of the first token to draw.

    Returns:
        ``(n, num_steps)`` integer tokens.
    """

    def body(state, step_key):
        carry, logits = state
        token = sample_logits(step_key, logits, temperature, top_k)
        logits, carry = step_fn(carry, token)
        return (carry, logits), token

    num_steps = check_nonnegative_int(num_steps, "num_steps")
    key = check_key(key)
    if num_steps == 0:
        return jnp.zeros((logits.shape[0], 0), jnp.int32)
    _, tokens = jax.lax.scan(body, (carry, logits), jax.random.split(key, num_steps))
    return tokens.T


def sample_bernoulli(step_fn: StepFn, carry: Carry, logits: Array, num_steps: int, key: PRNGKey) -> Array:
    """Samples ``num_steps`` multi-label frames (a piano roll's notes): output ``j`` of a frame is 1 with
    probability ``sigma(logits_j)``, independently, and the frame is fed back as the next input.

    Args:
        step_fn: ``step_fn(carry, frame) -> (logits, carry)`` with ``frame: (n, outputs)`` float32 of 0/1.
        carry: the state after the context (e.g. the start of a held-out piece).
        logits: ``(n, outputs)``, the first frame's.

    Returns:
        ``(n, num_steps, outputs)`` float32 of 0/1.
    """

    def body(state, step_key):
        carry, logits = state
        frame = jax.random.bernoulli(step_key, jax.nn.sigmoid(logits)).astype(jnp.float32)
        logits, carry = step_fn(carry, frame)
        return (carry, logits), frame

    num_steps = check_nonnegative_int(num_steps, "num_steps")
    key = check_key(key)
    if num_steps == 0:
        return jnp.zeros((logits.shape[0], 0, logits.shape[-1]), jnp.float32)
    _, frames = jax.lax.scan(body, (carry, logits), jax.random.split(key, num_steps))
    return jnp.swapaxes(frames, 0, 1)


class Beams(NamedTuple):
    """Beam-search results, best first along the beam axis.

    Attributes:
        tokens: ``(batch, beam, max_len)``; after a beam's end, ``pad_id``.
        lengths: ``(batch, beam)`` tokens up to and including ``eos_id`` (or ``max_len``).
        scores: ``(batch, beam)`` summed log-probabilities.
        ranking: ``(batch, beam)`` the scores that ordered the beams (length-penalised).
    """

    tokens: Array
    lengths: Array
    scores: Array
    ranking: Array


def beam_search(
    step_fn: StepFn,
    carry: Carry,
    bos: Array,
    *,
    batch: int,
    beam_size: int,
    max_len: int,
    eos_id: int,
    pad_id: int = 0,
    length_penalty: float = 0.0,
) -> Beams:
    """Keeps the ``beam_size`` most probable prefixes at every step (Sutskever et al. 2014).

    Args:
        step_fn: consumes ``(batch * beam_size,)`` tokens, row ``b * beam_size + j`` belonging to
            batch row b.
        carry: the state for each batch row, ``(batch, ...)`` leaves; it is repeated per beam.
        bos: ``(batch,)`` the first input token.
        eos_id: ends a beam; a finished beam keeps its score.
        length_penalty: alpha in the final ranking ``score / length**alpha`` (0: raw sum of
            log-probabilities, which favours short outputs; Wu et al. 2016 use about 0.6).

    Returns:
        ``Beams``, sorted best first.
    """
    beam_size = check_positive_int(beam_size, "beam_size")
    max_len = check_positive_int(max_len, "max_len")
    k = beam_size
    carry = jax.tree.map(lambda c: jnp.repeat(c, k, axis=0), carry)
    tokens = jnp.repeat(bos, k)
    scores = jnp.tile(jnp.array([0.0] + [-jnp.inf] * (k - 1), jnp.float32), (batch, 1))  # one live beam at first
    state = (carry, tokens, scores, jnp.zeros((batch, k), bool), jnp.zeros((batch, k), jnp.int32),
             jnp.full((batch, k, max_len), pad_id, jnp.int32))  # fmt: skip

    def body(state: Any, t: Array):
        carry, tokens, scores, finished, lengths, seqs = state
        logits, carry = step_fn(carry, tokens)
        vocab = logits.shape[-1]
        logp = jax.nn.log_softmax(logits.reshape(batch, k, vocab).astype(jnp.float32), axis=-1)
        # A finished beam continues with one zero-cost padding step and nothing else.
        pad_row = jnp.full((vocab,), -jnp.inf, jnp.float32).at[pad_id].set(0.0)
        logp = jnp.where(finished[..., None], pad_row, logp)
        total = (scores[..., None] + logp).reshape(batch, k * vocab)
        scores, index = jax.lax.top_k(total, k)
        parent, token = index // vocab, index % vocab
        rows = jnp.arange(batch, dtype=jnp.int32)[:, None]
        was_finished = finished[rows, parent]
        seqs = seqs[rows, parent].at[:, :, t].set(jnp.where(was_finished, pad_id, token))
        lengths = jnp.where(was_finished, lengths[rows, parent], t + 1)
        finished = was_finished | (token == eos_id)
        flat = (rows * k + parent).reshape(-1)
        carry = jax.tree.map(lambda c: c[flat], carry)
        return (carry, token.reshape(-1), scores, finished, lengths, seqs), None

    state, _ = jax.lax.scan(body, state, jnp.arange(max_len, dtype=jnp.int32))
    _, _, scores, _, lengths, seqs = state
    ranking = scores / jnp.maximum(lengths, 1).astype(scores.dtype) ** length_penalty
    order = jnp.argsort(-ranking, axis=1)
    rows = jnp.arange(batch, dtype=jnp.int32)[:, None]
    return Beams(seqs[rows, order], lengths[rows, order], scores[rows, order], ranking[rows, order])


def greedy(
    step_fn: StepFn, carry: Carry, bos: Array, max_len: int, eos_id: int, pad_id: int = 0
) -> tuple[Array, Array]:
    """Takes the arg-max token at every step until ``eos_id``.

    Returns:
        ``tokens: (batch, max_len)`` (``pad_id`` after the end) and ``lengths: (batch,)`` counting
        the tokens up to and including ``eos_id``.
    """

    def body(state, t):
        carry, token, done, length = state
        logits, carry = step_fn(carry, token)
        token = jnp.argmax(logits, axis=-1)
        out = jnp.where(done, pad_id, token)
        length = jnp.where(done, length, t + 1)
        return (carry, token, done | (token == eos_id), length), out

    max_len = check_positive_int(max_len, "max_len")
    batch = bos.shape[0]
    init = (carry, bos, jnp.zeros(batch, bool), jnp.zeros(batch, jnp.int32))
    (_, _, _, lengths), tokens = jax.lax.scan(body, init, jnp.arange(max_len, dtype=jnp.int32))
    return tokens.T, lengths
