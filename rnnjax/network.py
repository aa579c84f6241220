"""Stacked and bidirectional recurrent networks: ``torch.nn.LSTM(batch_first=True)`` in one call.

::

    net = rj.RNN(cell="lstm", hidden_size=64, num_layers=2, bidirectional=True, dropout=0.1)
    params = net.init(key, input_size)        # params[layer][direction]: the cell's params
    ys, finals = net.apply(params, xs, lengths=lengths, key=key, train=True)
    # ys: (batch, time, 2 * 64); finals[layer][direction]: that direction's last carry

Layer ``l + 1`` reads the concatenated outputs ``[forward, backward]`` of layer ``l``;
dropout acts between layers (never after the last) and only when training.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax import cells
from rnnjax.checks import check_finite_tree, check_key, check_positive_int, check_probability, describe
from rnnjax.scan import BACKWARDS, check_carry, check_input_size, check_inputs, unroll_unchecked
from rnnjax.types import Array, Carry, Lengths, Params, PRNGKey, Xs, Ys

__all__ = ["RNN", "NetCarry", "NetParams"]

NetParams = tuple[tuple[Params, ...], ...]
"""``params[layer][direction]``: one cell's params per layer and direction."""
NetCarry = tuple[tuple[Carry, ...], ...]
"""``carry[layer][direction]``: one cell's carry ``(batch, ...)`` per layer and direction."""


@dataclasses.dataclass(frozen=True)
class RNN:
    """A stack of recurrent layers, each forward or forward and backward.

    Attributes:
        cell: a cell name (``"rnn"``, ``"irnn"``, ``"lstm"``, ``"gru"``) with its defaults,
            or a ``Cell`` built with options, e.g. ``rj.cells.rnn(64, "relu")``.
        hidden_size: size of each direction's state; taken from ``cell`` when it is a Cell.
        num_layers: stacked layers.
        bidirectional: add a direction that reads each sequence backwards within its length.
        dropout: probability of zeroing a unit of the outputs between layers when training.
        backward: how each layer's loop is differentiated, as in :func:`rnnjax.unroll`:
            ``"fused"`` (the hand-written backward pass) or ``"autodiff"`` (needed for forward mode).
    """

    cell: str | cells.Cell = "lstm"
    hidden_size: int | None = None
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    backward: str = "fused"

    def __post_init__(self) -> None:
        if isinstance(self.cell, cells.Cell):
            if self.hidden_size not in (None, self.cell.hidden_size):
                raise ValueError(
                    f"hidden_size: expected None or the cell's {self.cell.hidden_size}, got {self.hidden_size}"
                )
            object.__setattr__(self, "hidden_size", self.cell.hidden_size)
        elif self.cell not in cells.CELLS:
            raise ValueError(f"cell: expected one of {tuple(cells.CELLS)} or a Cell, got {self.cell!r}")
        elif self.hidden_size is None:
            raise ValueError("hidden_size: expected a positive int with a cell given by name, got None")
        else:
            check_positive_int(self.hidden_size, "hidden_size")
        check_positive_int(self.num_layers, "num_layers")
        check_probability(self.dropout, "dropout")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"bidirectional: expected True or False, got {describe(self.bidirectional)}")
        if self.backward not in BACKWARDS:
            raise ValueError(f"backward: expected one of {BACKWARDS}, got {self.backward!r}")

    @property
    def step_cell(self) -> cells.Cell:
        """The Cell that every layer and direction runs."""
        if isinstance(self.cell, cells.Cell):
            return self.cell
        return cells.make(self.cell, self.hidden_size)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features of ``ys``: ``hidden_size * num_directions``."""
        return self.hidden_size * self.num_directions

    def init(self, key: PRNGKey, input_size: int) -> NetParams:
        """Params ``[layer][direction]``, each direction drawn from its own key.

        ``params[l][0]`` is layer l's forward direction and ``params[l][1]`` its backward one; in
        torch's ``h_n`` (``(num_layers * num_directions, batch, hidden)``) they are rows
        ``l * num_directions + d``: :func:`rnnjax.interop.torch_state` stacks final carries that way
        and :func:`rnnjax.interop.from_torch_state` takes them back.
        """
        check_key(key)
        check_positive_int(input_size, "input_size")
        keys = jax.random.split(key, (self.num_layers, self.num_directions))
        cell = self.step_cell
        return tuple(
            tuple(
                cell.init(keys[layer, d], input_size if layer == 0 else self.output_size)
                for d in range(self.num_directions)
            )
            for layer in range(self.num_layers)
        )

    def initial_carry(self, params: NetParams, batch_size: int) -> NetCarry:
        """Zeros ``[layer][direction]`` for a batch."""
        return tuple(tuple(self.step_cell.initial_carry(p, (batch_size,)) for p in layer) for layer in params)

    def apply(
        self,
        params: NetParams,
        xs: Xs,
        lengths: Lengths | None = None,
        carry: NetCarry | None = None,
        *,
        key: PRNGKey | None = None,
        train: bool = False,
    ) -> tuple[Ys, NetCarry]:
        """Runs the network over a batch of sequences.

        Args:
            params: from :meth:`init`.
            xs: ``(batch, time, input_size)``.
            lengths: ``(batch,)`` valid steps per row (right padding); padded outputs are zeros,
                the backward direction reads each row from its own last valid step.
            carry: initial carries ``[layer][direction]`` (zeros if None).
            key: randomness for dropout; needed when ``train`` and ``dropout > 0``.
            train: apply dropout between layers.

        Returns:
            ``ys: (batch, time, output_size)``, the last layer's outputs, and the final
            carries ``[layer][direction]``.
        """
        self._check_params(params)
        xs, lengths = check_inputs(xs, lengths)
        self._check_layers(params, xs)
        if carry is not None:
            check_carry(carry, self.initial_carry(params, xs.shape[0]))
        if not isinstance(train, bool):
            raise ValueError(f"train: expected True or False, got {describe(train)}")
        use_dropout = train and self.dropout > 0.0
        if use_dropout and key is None:
            raise ValueError(f"key: expected a PRNG key for dropout={self.dropout} in training, got None")
        if key is not None:
            check_key(key)
        cell = self.step_cell
        finals = []
        for layer, layer_params in enumerate(params):
            if layer > 0 and use_dropout:
                xs = _dropout(jax.random.fold_in(key, layer), xs, self.dropout)
            outs, layer_finals = [], []
            for d, p in enumerate(layer_params):
                c0 = None if carry is None else carry[layer][d]
                c, ys = unroll_unchecked(cell, p, xs, c0, lengths, reverse=d == 1, backward=self.backward)
                outs.append(ys)
                layer_finals.append(c)
            xs = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=-1)
            finals.append(tuple(layer_finals))
        return xs, tuple(finals)

    def _check_layers(self, params: NetParams, xs: Array) -> None:
        """Each layer's params fit the cell, the features that layer reads, and the dtype of xs."""
        cell = self.step_cell
        for layer, layer_params in enumerate(params):
            for d, p in enumerate(layer_params):
                name = f"params[{layer}][{d}]"
                try:
                    cell.prepare(p)
                except ValueError as e:
                    raise ValueError(f"{name}: {e}") from None
                if layer == 0:
                    check_input_size(p, xs, name)
                elif p.U.shape[1] != self.output_size:
                    raise ValueError(
                        f"{name}.U: expected shape ({p.U.shape[0]}, {self.output_size}) to read layer {layer - 1}'s "
                        f"outputs (hidden_size * num_directions = {self.output_size}), got {p.U.shape}"
                    )
                if p.U.dtype != xs.dtype:
                    raise ValueError(
                        f"xs: expected the params' dtype {p.U.dtype}, got {xs.dtype} (cast xs with "
                        f".astype({p.U.dtype}) or build the cell with dtype={xs.dtype})"
                    )
        check_finite_tree(params, "params")

    def _check_params(self, params: Any) -> None:
        shape = (self.num_layers, self.num_directions)
        ok = isinstance(params, tuple) and len(params) == shape[0]
        ok = ok and all(isinstance(p, tuple) and len(p) == shape[1] for p in params)
        if not ok:
            got = type(params).__name__
            if isinstance(params, tuple):
                inner = [len(p) if isinstance(p, tuple) else type(p).__name__ for p in params]
                got = f"{len(params)} layers of {inner}"
            raise ValueError(
                f"params: expected a tuple of {shape[0]} layers, each a tuple of {shape[1]} "
                f"direction(s) (from RNN.init), got {got}"
            )


def _dropout(key: PRNGKey, xs: Array, rate: float) -> Array:
    keep = jax.random.bernoulli(key, 1.0 - rate, xs.shape)
    return jnp.where(keep, xs / (1.0 - rate), 0.0)
