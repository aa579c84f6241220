"""Models that generate a sequence from a condition: one-to-many and the encoder-decoder.

Both are trained with teacher forcing (the decoder reads the true previous token,
``shift_right(targets)``) and generate by feeding back their own tokens.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import decoding
from rnnjax.cells import with_output
from rnnjax.checks import check_key, check_positive_int
from rnnjax.models.layers import Dense, check_fields, check_tokens, dense, dense_init, token_step
from rnnjax.network import RNN, NetCarry, NetParams
from rnnjax.types import Array, PRNGKey

__all__ = ["CONDITIONS", "OneToMany", "OneToManyParams", "Seq2Seq", "Seq2SeqParams", "shift_right"]

CONDITIONS = ("state", "input", "both")


def shift_right(tokens: Array, bos_id: int) -> Array:
    """Decoder inputs for teacher forcing: ``[bos, y_1, ..., y_{T-1}]`` for targets ``y_1..y_T``."""
    bos = jnp.full((tokens.shape[0], 1), bos_id, tokens.dtype)
    return jnp.concatenate([bos, tokens[:, :-1]], axis=1)


def _check_ids(model: Any, names: tuple[str, ...], vocab: int) -> None:
    for name in names:
        if not getattr(model, name) < vocab:
            raise ValueError(f"{name}: expected a token id in [0, {vocab}), got {getattr(model, name)}")


def _carry_kind(cell: Any) -> Any:
    """The structure of a cell's carry and the dtypes of its leaves (what a decoder's state must match)."""
    like = jax.eval_shape(lambda: cell.initial_carry(cell.init(jax.random.key(0), 1)))
    return jax.tree.structure(like), tuple(leaf.dtype for leaf in jax.tree.leaves(like))


def _check_decoder(rnn: RNN, name: str) -> None:
    if rnn.bidirectional:
        raise ValueError(f"{name}: a decoder reads left to right, expected bidirectional=False")


class OneToManyParams(NamedTuple):
    """``condition``: the map from the input vector to the initial state (None for ``"input"``);
    ``E``: token embedding; ``rnn``: the decoder network; ``head``: the output layer."""

    condition: Dense | None
    E: Array
    rnn: NetParams
    head: Dense


@dataclasses.dataclass(frozen=True)
class OneToMany:
    """One-to-many: one input vector ``v`` (an image, a class, a code) generates a token sequence.

    Attributes:
        rnn: the decoder network (one direction).
        vocab_size: output tokens, including ``bos_id``.
        embed_dim: size of the token embedding.
        condition: how ``v`` enters: ``"state"`` sets every layer's initial ``h`` to
            ``tanh(A v + a)``; ``"input"`` appends ``v`` to every step's input; ``"both"``.
        bos_id: the token that starts every sequence.
    """

    rnn: RNN
    vocab_size: int
    embed_dim: int = 32
    condition: str = "state"
    bos_id: int = 0

    def __post_init__(self) -> None:
        check_fields(self, ("vocab_size", "embed_dim"), ("bos_id",), nets=("rnn",))
        _check_ids(self, ("bos_id",), self.vocab_size)
        _check_decoder(self.rnn, "rnn")
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition: expected one of {CONDITIONS}, got {self.condition!r}")

    def init(self, key: PRNGKey, condition_size: int) -> OneToManyParams:
        check_key(key)
        check_positive_int(condition_size, "condition_size")
        k_c, k_e, k_r, k_h = jax.random.split(key, 4)
        states = self.condition in ("state", "both")
        by_input = self.condition in ("input", "both")
        cond = dense_init(k_c, condition_size, self.rnn.num_layers * self.rnn.hidden_size) if states else None
        return OneToManyParams(
            cond,
            jax.random.normal(k_e, (self.vocab_size, self.embed_dim)),
            self.rnn.init(k_r, self.embed_dim + (condition_size if by_input else 0)),
            dense_init(k_h, self.rnn.hidden_size, self.vocab_size),
        )

    def initial_carry(self, params: OneToManyParams, v: Array) -> NetCarry:
        """The decoder's starting state for inputs ``v: (batch, condition_size)``."""
        zeros = self.rnn.initial_carry(params.rnn, v.shape[0])
        if params.condition is None:
            return zeros
        hs = jnp.split(jnp.tanh(dense(params.condition, v)), self.rnn.num_layers, axis=-1)
        return tuple(
            tuple(with_output(self.rnn.step_cell, c, h) for c in layer) for layer, h in zip(zeros, hs, strict=True)
        )

    def _extra(self, v: Array) -> Array | None:
        return v if self.condition in ("input", "both") else None

    def apply(
        self,
        params: OneToManyParams,
        v: Array,
        tokens: Array,
        lengths: Array | None = None,
        *,
        key=None,
        train=False,
    ) -> Array:
        """Teacher-forced logits ``(batch, time, vocab)``.

        Args:
            v: ``(batch, condition_size)``.
            tokens: decoder inputs ``(batch, time)``, i.e. ``shift_right(targets, bos_id)``.
        """
        xs = params.E[check_tokens(tokens, self.vocab_size)]
        extra = self._extra(v)
        if extra is not None:
            xs = jnp.concatenate([xs, jnp.broadcast_to(extra[:, None], (*xs.shape[:2], v.shape[-1]))], -1)
        ys, _ = self.rnn.apply(params.rnn, xs, lengths, self.initial_carry(params, v), key=key, train=train)
        return dense(params.head, ys)

    def generate(
        self,
        params: OneToManyParams,
        v: Array,
        num_steps: int,
        key: PRNGKey,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> Array:
        """``(batch, num_steps)`` tokens sampled after ``bos_id``; ``temperature=0`` is greedy."""
        step = token_step(self.rnn, params.rnn, params.E, params.head, self._extra(v))
        bos = jnp.full((v.shape[0],), self.bos_id)
        logits, carry = step(self.initial_carry(params, v), bos)
        return decoding.sample(step, carry, logits, num_steps, key, temperature, top_k)


class Seq2SeqParams(NamedTuple):
    """Source and target embeddings, both networks, the bridge between them (one ``Dense`` per
    layer, None when the sizes already match) and the output layer."""

    E_src: Array
    encoder: NetParams
    bridge: tuple[Dense, ...] | None
    E_tgt: Array
    decoder: NetParams
    head: Dense


@dataclasses.dataclass(frozen=True)
class Seq2Seq:
    """Encoder-decoder (Sutskever et al. 2014; Cho et al. 2014): the encoder's final states start
    the decoder, which emits a target of its own length.

    The encoder may be bidirectional: its directions' final states are concatenated and a
    bridge ``tanh(B s + d)`` per layer maps them to the decoder's size (also whenever the
    sizes differ). Both networks need the same cell kind and number of layers.

    Attributes:
        encoder, decoder: the networks (the decoder has one direction).
        src_vocab, tgt_vocab: vocabulary sizes.
        embed_dim: size of both embeddings.
        bos_id, eos_id, pad_id: start, end and padding tokens of the target side.
    """

    encoder: RNN
    decoder: RNN
    src_vocab: int
    tgt_vocab: int
    embed_dim: int = 32
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = 0

    def __post_init__(self) -> None:
        check_fields(
            self, ("src_vocab", "tgt_vocab", "embed_dim"), ("bos_id", "eos_id", "pad_id"), ("encoder", "decoder")
        )
        _check_ids(self, ("bos_id", "eos_id", "pad_id"), self.tgt_vocab)
        _check_decoder(self.decoder, "decoder")
        if self.encoder.num_layers != self.decoder.num_layers:
            raise ValueError(
                f"decoder: expected the encoder's {self.encoder.num_layers} layers, got {self.decoder.num_layers}"
            )
        if _carry_kind(self.encoder.step_cell) != _carry_kind(self.decoder.step_cell):
            raise ValueError(
                f"decoder: expected a cell whose carry has the structure of the encoder's "
                f"{self.encoder.step_cell.name} (its states start the decoder), got {self.decoder.step_cell.name}"
            )

    @property
    def _needs_bridge(self) -> bool:
        return self.encoder.output_size != self.decoder.hidden_size

    def init(self, key: PRNGKey) -> Seq2SeqParams:
        check_key(key)
        keys = jax.random.split(key, 6)
        bridge = None
        if self._needs_bridge:
            layer_keys = jax.random.split(keys[2], self.decoder.num_layers)
            bridge = tuple(dense_init(k, self.encoder.output_size, self.decoder.hidden_size) for k in layer_keys)
        return Seq2SeqParams(
            jax.random.normal(keys[0], (self.src_vocab, self.embed_dim)),
            self.encoder.init(keys[1], self.embed_dim),
            bridge,
            jax.random.normal(keys[3], (self.tgt_vocab, self.embed_dim)),
            self.decoder.init(keys[4], self.embed_dim),
            dense_init(keys[5], self.decoder.hidden_size, self.tgt_vocab),
        )

    def encode(
        self, params: Seq2SeqParams, src: Array, src_lengths: Array | None = None, *, key=None, train=False
    ) -> NetCarry:
        """The decoder's initial carries from source ids ``src: (batch, time)``."""
        xs = params.E_src[check_tokens(src, self.src_vocab, "src")]
        _, finals = self.encoder.apply(params.encoder, xs, src_lengths, key=key, train=train)
        carries = []
        for layer, directions in enumerate(finals):
            state = jax.tree.map(lambda *d: jnp.concatenate(d, axis=-1), *directions)
            if params.bridge is not None:
                state = jax.tree.map(lambda s, b=params.bridge[layer]: jnp.tanh(dense(b, s)), state)
            carries.append((state,))
        return tuple(carries)

    def apply(
        self,
        params: Seq2SeqParams,
        src: Array,
        src_lengths: Array | None,
        tgt_in: Array,
        tgt_lengths: Array | None = None,
        *,
        key: PRNGKey | None = None,
        train: bool = False,
    ) -> Array:
        """Teacher-forced logits ``(batch, tgt_time, tgt_vocab)``; ``tgt_in = shift_right(tgt, bos_id)``."""
        k_enc, k_dec = (None, None) if key is None else jax.random.split(key)
        carry = self.encode(params, src, src_lengths, key=k_enc, train=train)
        xs = params.E_tgt[check_tokens(tgt_in, self.tgt_vocab, "tgt_in")]
        ys, _ = self.decoder.apply(params.decoder, xs, tgt_lengths, carry, key=k_dec, train=train)
        return dense(params.head, ys)

    def _step(self, params: Seq2SeqParams) -> decoding.StepFn:
        return token_step(self.decoder, params.decoder, params.E_tgt, params.head)

    def greedy(self, params: Seq2SeqParams, src: Array, src_lengths: Array | None, max_len: int) -> tuple[Array, Array]:
        """Arg-max decoding: ``tokens: (batch, max_len)`` and their lengths (through ``eos_id``)."""
        carry = self.encode(params, src, src_lengths)
        bos = jnp.full((src.shape[0],), self.bos_id)
        return decoding.greedy(self._step(params), carry, bos, max_len, self.eos_id, self.pad_id)

    def beam_search(
        self,
        params: Seq2SeqParams,
        src: Array,
        src_lengths: Array | None,
        max_len: int,
        beam_size: int = 4,
        length_penalty: float = 0.6,
    ) -> decoding.Beams:
        """Beam-search decoding; ``Beams.tokens[:, 0]`` is each row's best translation."""
        carry = self.encode(params, src, src_lengths)
        bos = jnp.full((src.shape[0],), self.bos_id)
        return decoding.beam_search(
            self._step(params), carry, bos, batch=src.shape[0], beam_size=beam_size, max_len=max_len,
            eos_id=self.eos_id, pad_id=self.pad_id, length_penalty=length_penalty,
        )  # fmt: skip
