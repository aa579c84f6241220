"""Models that read a sequence: one-to-one baseline, many-to-one, many-to-many, language model."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import decoding
from rnnjax.checks import check_key, check_nonnegative_int, check_positive_int
from rnnjax.data.text import CharVocab
from rnnjax.models.layers import Dense, check_fields, check_tokens, dense, dense_init, last_outputs, token_step
from rnnjax.network import RNN, NetCarry, NetParams
from rnnjax.types import Array, PRNGKey

__all__ = ["FeedForward", "LanguageModel", "ManyToMany", "ManyToOne", "SequenceParams"]


@dataclasses.dataclass(frozen=True)
class FeedForward:
    """One-to-one: an MLP ``x -> y``, the feed-forward baseline for the RNN-vs-FNN contrast.

    Attributes:
        hidden_sizes: widths of the hidden layers.
        output_size: width of the output (logits or regression values).
        activation: ``"tanh"`` or ``"relu"`` between layers.
    """

    hidden_sizes: tuple[int, ...]
    output_size: int
    activation: str = "tanh"

    def __post_init__(self) -> None:
        if not isinstance(self.hidden_sizes, tuple):
            raise ValueError(f"hidden_sizes: expected a tuple of widths, got {self.hidden_sizes!r}")
        for i, width in enumerate(self.hidden_sizes):
            check_positive_int(width, f"hidden_sizes[{i}]")
        check_positive_int(self.output_size, "output_size")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation: expected 'tanh' or 'relu', got {self.activation!r}")

    def init(self, key: PRNGKey, input_size: int) -> tuple[Dense, ...]:
        check_positive_int(input_size, "input_size")
        sizes = (input_size, *self.hidden_sizes, self.output_size)
        keys = jax.random.split(key, len(sizes) - 1)
        return tuple(dense_init(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:]))

    def apply(self, params: tuple[Dense, ...], x: Array) -> Array:
        """``x: (batch, features)`` (flatten a sequence first) to ``(batch, output_size)``."""
        f = jnp.tanh if self.activation == "tanh" else jax.nn.relu
        for layer in params[:-1]:
            x = f(dense(layer, x))
        return dense(params[-1], x)


class SequenceParams(NamedTuple):
    """Params of a sequence model: the embedding ``E`` (None for vector inputs), the network
    ``rnn[layer][direction]`` and the output layer ``head`` (``V``, ``c``)."""

    E: Array | None
    rnn: NetParams
    head: Dense


@dataclasses.dataclass(frozen=True)
class _SequenceModel:
    """Shared parts: an optional embedding, the network and the output layer."""

    rnn: RNN
    output_size: int
    vocab_size: int | None = None
    """Token inputs from a vocabulary of this size (embedded); None for vector inputs."""
    embed_dim: int = 32

    def __post_init__(self) -> None:
        if self.vocab_size is not None:
            check_positive_int(self.vocab_size, "vocab_size")
        check_fields(self, ("output_size", "embed_dim"), nets=("rnn",))

    def init(self, key: PRNGKey, input_size: int | None = None) -> SequenceParams:
        """``input_size``: features per step for vector inputs (ignored with a vocabulary)."""
        check_key(key)
        if input_size is not None:
            check_positive_int(input_size, "input_size")
        k_e, k_r, k_h = jax.random.split(key, 3)
        if self.vocab_size is None:
            if input_size is None:
                raise ValueError("input_size: expected features per step for vector inputs, got None")
            E, size = None, input_size
        else:
            E, size = jax.random.normal(k_e, (self.vocab_size, self.embed_dim)), self.embed_dim
        return SequenceParams(E, self.rnn.init(k_r, size), dense_init(k_h, self.rnn.output_size, self.output_size))

    def _run(
        self,
        params: SequenceParams,
        xs: Array,
        lengths: Array | None,
        carry: NetCarry | None,
        key,
        train,
        name: str = "xs",
    ) -> tuple[Array, NetCarry]:
        if self.vocab_size is not None:
            xs = params.E[check_tokens(xs, self.vocab_size, name)]
        return self.rnn.apply(params.rnn, xs, lengths, carry, key=key, train=train)


@dataclasses.dataclass(frozen=True)
class ManyToOne(_SequenceModel):
    """Many-to-one: one output per sequence, from its last valid step or the mean of its steps.

    Attributes:
        pool: ``"last"`` reads each direction's output after the whole sequence (its last valid step
            forwards, its first backwards); ``"mean"`` averages the
            outputs over the valid steps.
    """

    pool: str = "last"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pool not in ("last", "mean"):
            raise ValueError(f"pool: expected 'last' or 'mean', got {self.pool!r}")

    def apply(self, params: SequenceParams, xs: Array, lengths: Array | None = None, *, key=None, train=False) -> Array:
        """``xs: (batch, time, features)`` or token ids ``(batch, time)`` to ``(batch, output_size)``."""
        ys, finals = self._run(params, xs, lengths, None, key, train)
        if self.pool == "last":
            pooled = last_outputs(ys, lengths, self.rnn.num_directions)
        else:
            n = jnp.full(ys.shape[0], ys.shape[1]) if lengths is None else jnp.asarray(lengths)
            pooled = ys.sum(1) / jnp.maximum(n, 1)[:, None].astype(ys.dtype)  # padded outputs are zeros
        return dense(params.head, pooled)


@dataclasses.dataclass(frozen=True)
class ManyToMany(_SequenceModel):
    """Many-to-many, aligned: an output at every step (tagging, next-step prediction)."""

    def apply(self, params: SequenceParams, xs: Array, lengths: Array | None = None, *, key=None, train=False) -> Array:
        """``(batch, time, features)`` or ids ``(batch, time)`` to ``(batch, time, output_size)``."""
        ys, _ = self._run(params, xs, lengths, None, key, train)
        return dense(params.head, ys)


@dataclasses.dataclass(frozen=True)
class LanguageModel(_SequenceModel):
    """Next-token prediction over a vocabulary: ``LanguageModel(rnn, vocab_size=65)``.

    The logits are over the same vocabulary as the inputs, so ``output_size`` follows
    ``vocab_size`` (give either; both only if they are equal).
    """

    output_size: int | None = None

    def __post_init__(self) -> None:
        if self.vocab_size is None and self.output_size is None:
            raise ValueError("vocab_size: expected the number of tokens, got None")
        if self.vocab_size is not None and self.output_size is not None and self.output_size != self.vocab_size:
            raise ValueError(
                f"output_size: expected the vocab_size {self.vocab_size} (next-token logits), got {self.output_size}"
            )
        size = self.vocab_size if self.vocab_size is not None else self.output_size
        object.__setattr__(self, "vocab_size", size)
        object.__setattr__(self, "output_size", size)
        super().__post_init__()
        if self.rnn.bidirectional:
            raise ValueError("rnn: a language model reads left to right, expected bidirectional=False")

    def apply(
        self,
        params: SequenceParams,
        tokens: Array,
        lengths: Array | None = None,
        carry: NetCarry | None = None,
        *,
        key=None,
        train=False,
    ) -> tuple[Array, NetCarry]:
        """Logits ``(batch, time, vocab)`` for the token after each of ``tokens: (batch, time)``,
        and the carries after the last valid step (pass them back to continue the text)."""
        ys, finals = self._run(params, tokens, lengths, carry, key, train, "tokens")
        return dense(params.head, ys), finals

    def step_fn(self, params: SequenceParams) -> decoding.StepFn:
        """One token in, next-token logits out: the function the decoders drive."""

        return token_step(self.rnn, params.rnn, params.E, params.head)

    def generate(
        self,
        params: SequenceParams,
        prompt: Array,
        num_tokens: int,
        key: PRNGKey,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> Array:
        """Continues each row of ``prompt: (batch, p)`` (p >= 1) by ``num_tokens`` sampled tokens."""
        check_nonnegative_int(num_tokens, "num_tokens")
        check_key(key)
        prompt = check_tokens(prompt, self.vocab_size, "prompt")
        if prompt.shape[1] < 1:
            raise ValueError("prompt: expected at least one token per row, got 0")
        logits, carry = self.apply(params, prompt)
        return decoding.sample(self.step_fn(params), carry, logits[:, -1], num_tokens, key, temperature, top_k)

    def generate_text(
        self,
        params: SequenceParams,
        vocab: CharVocab,
        seed: str,
        num_chars: int,
        key: PRNGKey,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> str:
        """``seed`` followed by ``num_chars`` sampled characters (``temperature=0``: greedy).

        Args:
            vocab: the :class:`rnnjax.data.CharVocab` the model was trained with (its ``size`` is
                the model's ``vocab_size``); every character of ``seed`` must be in it.
            seed: the text to continue, at least one character.
            num_chars: characters to sample after it.
            temperature, top_k: as in :func:`rnnjax.decoding.sample_logits`.

        Example, once a character model is trained::

            model.generate_text(params, vocab, "The color of an apple is", 10, key, temperature=0)
        """
        if vocab.size != self.vocab_size:
            raise ValueError(f"vocab: expected {self.vocab_size} characters (the model's vocab_size), got {vocab.size}")
        if not isinstance(seed, str) or not seed:
            raise ValueError(f"seed: expected a non-empty string to continue, got {seed!r}")
        prompt = jnp.asarray(vocab.encode(seed))[None]
        return seed + vocab.decode(self.generate(params, prompt, num_chars, key, temperature, top_k)[0])
