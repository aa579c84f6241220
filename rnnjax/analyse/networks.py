"""What the recurrent networks of a model see: each network with its params, inputs, lengths and initial carry.

The analysis (:mod:`rnnjax.analysis`) studies an :class:`~rnnjax.RNN` driven by vectors ``xs: (batch, time,
features)`` from an initial carry. A model hides that behind its embedding, its condition or its encoder;
:func:`recurrent_networks` undoes it for every model of :mod:`rnnjax.models`, from the keyword inputs of
``model.apply`` (a run's ``probe.npz``), computing exactly what ``apply`` computes before its networks run:

==================================  ==========================================================================
model                               networks and what drives them
==================================  ==========================================================================
``rj.RNN``                          itself: ``xs``, ``lengths``
``ManyToOne``, ``ManyToMany``       ``rnn``: ``xs`` (token ids embedded, ``E[xs]``, with a ``vocab_size``)
``LanguageModel``                   ``rnn``: ``E[tokens]``
``OneToMany``                       ``rnn`` (the decoder): ``E[tokens]`` (and ``v`` beside each step's token for
                                    ``condition="input"``/``"both"``) from the condition's initial carry
``Seq2Seq``                         ``encoder``: ``E_src[src]``; ``decoder``: ``E_tgt[tgt_in]`` from the carry
                                    that :meth:`~rnnjax.models.Seq2Seq.encode` makes of the whole source
``FeedForward``                     none (nothing recurrent)
==================================  ==========================================================================
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.cells.base import params_dtype
from rnnjax.checks import describe
from rnnjax.models.conditional import OneToMany, Seq2Seq
from rnnjax.models.layers import check_tokens
from rnnjax.models.sequence import FeedForward, LanguageModel, ManyToMany, ManyToOne
from rnnjax.network import RNN, NetCarry, NetParams
from rnnjax.types import Array

__all__ = ["Network", "recurrent_networks", "limit"]


class Network(NamedTuple):
    """One recurrent network of a model, as the analysis takes it.

    Attributes:
        name: its part of the model (``"rnn"``, ``"encoder"``, ``"decoder"``; ``"network"`` for a bare RNN).
        net: the :class:`~rnnjax.RNN`.
        params: its params ``[layer][direction]`` (or a ``WithInitial``).
        xs: ``(batch, time, features)`` in the params' dtype: what its first layer reads.
        lengths: ``(batch,)`` int32 valid steps, or None (all ``time``).
        carry: its initial carry ``[layer][direction]``, or None (the net's own: zeros or the learned one).
    """

    name: str
    net: RNN
    params: NetParams
    xs: Array
    lengths: Array | None
    carry: NetCarry | None


def _need(probe: dict[str, Any], key: str, model: Any) -> Any:
    if key not in probe:
        raise ValueError(
            f"probe: expected the input {key!r} of {type(model).__name__}.apply, got the keys {sorted(probe)}"
        )
    return probe[key]


def _lengths(value: Any) -> Array | None:
    return None if value is None else jnp.asarray(np.asarray(value), jnp.int32)


def _vectors(net: RNN, params: NetParams, xs: Any) -> Array:
    """``xs`` as floats in the dtype of the net's params (numpy's float64 probe meets float32 params)."""
    cell_params = net.cell_params(params)
    return jnp.asarray(xs).astype(params_dtype(cell_params[0][0]))


def recurrent_networks(model: Any, params: Any, probe: dict[str, Any]) -> list[Network]:
    """The recurrent networks of ``model`` and what each reads when ``model.apply(params, **probe)`` runs.

    Args:
        model: an ``rj.RNN`` or a model of :mod:`rnnjax.models` (see the module docstring).
        params: its params.
        probe: keyword inputs of ``model.apply`` (``{"xs": xs, "lengths": lengths}`` for a ``ManyToOne``).

    Returns:
        one :class:`Network` per recurrent network, in the order ``apply`` runs them; ``[]`` for a
        ``FeedForward``.

    Raises:
        ValueError: ``probe`` lacks an input that ``model.apply`` needs, or ``model`` is none of these.
    """
    if not isinstance(probe, dict):
        raise ValueError(f"probe: expected a dict of model.apply's inputs by name, got {describe(probe)}")
    get = probe.get
    if isinstance(model, RNN):
        xs = _vectors(model, params, _need(probe, "xs", model))
        return [Network("network", model, params, xs, _lengths(get("lengths")), None)]
    if isinstance(model, FeedForward):
        return []
    if isinstance(model, ManyToOne | ManyToMany | LanguageModel):
        key = "tokens" if isinstance(model, LanguageModel) else "xs"
        xs = _need(probe, key, model)
        if model.vocab_size is not None:
            xs = params.E[check_tokens(jnp.asarray(xs), model.vocab_size, key)]
        xs = _vectors(model.rnn, params.rnn, xs)
        return [Network("rnn", model.rnn, params.rnn, xs, _lengths(get("lengths")), None)]
    if isinstance(model, OneToMany):
        v = jnp.asarray(_need(probe, "v", model))
        xs = params.E[check_tokens(jnp.asarray(_need(probe, "tokens", model)), model.vocab_size)]
        if model.condition in ("input", "both"):  # as OneToMany.apply: v beside every step's token
            v_steps = jnp.broadcast_to(v[:, None].astype(xs.dtype), (*xs.shape[:2], v.shape[-1]))
            xs = jnp.concatenate([xs, v_steps], -1)
        carry = model.initial_carry(params, v.astype(params.E.dtype))
        xs = _vectors(model.rnn, params.rnn, xs)
        return [Network("rnn", model.rnn, params.rnn, xs, _lengths(get("lengths")), carry)]
    if isinstance(model, Seq2Seq):
        src = jnp.asarray(_need(probe, "src", model))
        src_lengths = _lengths(get("src_lengths"))
        encoder_xs = _vectors(model.encoder, params.encoder, params.E_src[check_tokens(src, model.src_vocab, "src")])
        tgt_in = jnp.asarray(_need(probe, "tgt_in", model))
        decoder_xs = params.E_tgt[check_tokens(tgt_in, model.tgt_vocab, "tgt_in")]
        return [
            Network("encoder", model.encoder, params.encoder, encoder_xs, src_lengths, None),
            Network("decoder", model.decoder, params.decoder, _vectors(model.decoder, params.decoder, decoder_xs),
                    _lengths(get("tgt_lengths")), model.encode(params, src, src_lengths)),
        ]  # fmt: skip
    raise ValueError(f"model: expected an rj.RNN or a model of rj.models, got {describe(model)}")


def limit(network: Network, max_sequences: int, max_steps: int) -> tuple[Network, str]:
    """The first ``max_sequences`` sequences of ``network``'s inputs that have a step, each cut to its first
    ``max_steps`` steps (their initial carries with them); and a sentence that says what was cut ("" if nothing).

    Raises:
        ValueError: no sequence has a step (every length is 0).
    """
    xs, lengths, carry = network.xs, network.lengths, network.carry
    batch, time = xs.shape[:2]
    full = np.full(batch, time) if lengths is None else np.asarray(lengths)
    rows = np.flatnonzero(full > 0)[:max_sequences]
    if rows.size == 0:
        raise ValueError(f"{network.name}: expected a probe sequence with at least one step, got lengths {full}")
    steps = min(time, max_steps, int(full[rows].max()))
    cut = np.minimum(full[rows], steps)
    xs = xs[rows, :steps]
    lengths = None if (cut == steps).all() else jnp.asarray(cut, jnp.int32)
    carry = None if carry is None else jax.tree.map(lambda c: c[rows], carry)
    said = []
    if rows.size < batch:
        said.append(f"{rows.size} of the probe's {batch} sequences")
    if (cut < full[rows]).any():
        said.append(f"each cut to its first {steps} steps (of up to {int(full[rows].max())})")
    return network._replace(xs=xs, lengths=lengths, carry=carry), ", ".join(said)
