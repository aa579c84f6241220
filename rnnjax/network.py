"""Stacked and bidirectional recurrent networks: ``torch.nn.LSTM(batch_first=True)`` in one call, and the
regularisers of recurrent networks that PyTorch's module leaves out.

::

    net = rj.RNN(cell="lstm", hidden_size=64, num_layers=2, bidirectional=True, dropout=0.1)
    params = net.init(key, input_size)        # params[layer][direction]: the cell's params
    ys, finals = net.apply(params, xs, lengths=lengths, key=key, train=True)
    # ys: (batch, time, 2 * 64); finals[layer][direction]: that direction's last carry

Layer ``l + 1`` reads the concatenated outputs ``[forward, backward]`` of layer ``l``; ``dropout`` acts
between layers (never after the last), a fresh mask at every step, and only when training.

Keyword options, off by default (and then nothing is computed differently):

- ``input_dropout``, ``recurrent_dropout``: variational dropout (Gal & Ghahramani 2016, "A Theoretically
  Grounded Application of Dropout in Recurrent Neural Networks"): one mask per sequence, layer and
  direction, the same at every step, on the layer's inputs and on the state that enters the recurrent
  matmul::

      pre_t = U (m_x * x_t) + W (m_h * h_{t-1}) + b,   m ~ Bernoulli(1 - p) / (1 - p)

  ``h_{t-1}`` itself is carried on unmasked (the GRU's ``z_t * h_{t-1}``, the LSTM's ``c``). In
  evaluation the masks are 1: the network without dropout.
- ``zoneout`` (Krueger et al. 2017, "Zoneout: Regularizing RNNs by Randomly Preserving Hidden
  Activations"): in training each unit of the carry keeps its previous value with probability ``p``, a
  fresh mask every step; in evaluation the expectation::

      s_t = d_t * s_{t-1} + (1 - d_t) * step(s_{t-1}, x_t),   d_t ~ Bernoulli(p)      (training)
      s_t = p * s_{t-1} + (1 - p) * step(s_{t-1}, x_t)                                 (evaluation)

  for every leaf ``s`` of the carry; a tuple gives one rate per leaf (the LSTM's ``(z_h, z_c)``).
- ``learn_initial``: each layer and direction starts from a learned carry (zeros at init) where
  ``apply`` is given none; the params are then a :class:`WithInitial`.

Recurrent dropout and zoneout act inside the time loop: those layers run the sequential scan.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import cells, checks
from rnnjax.cells.base import check_params, params_dtype, readout
from rnnjax.checks import check_finite_tree, check_key, check_positive_int, check_probability, describe
from rnnjax.precision import matmul
from rnnjax.scan import IMPLS, check_carry, check_input_size, check_inputs, resolve_impl, unroll_unchecked
from rnnjax.types import Array, Carry, Lengths, Params, PRNGKey, Xs, Ys

__all__ = ["RNN", "CellParams", "NetCarry", "NetParams", "WithInitial"]

CellParams = tuple[tuple[Params, ...], ...]
"""``params[layer][direction]``: one cell's params per layer and direction."""
NetCarry = tuple[tuple[Carry, ...], ...]
"""``carry[layer][direction]``: one cell's carry ``(batch, ...)`` per layer and direction."""


class WithInitial(NamedTuple):
    """The params of a network with ``learn_initial=True``.

    Attributes:
        cells: ``cells[layer][direction]``, the cells' params (what a network without it has).
        initial: ``initial[layer][direction]``, that direction's initial carry for one sequence (no batch
            axis; zeros at init), broadcast over the batch where :meth:`RNN.apply` gets no carry.
    """

    cells: CellParams
    initial: NetCarry


NetParams = CellParams | WithInitial
"""What :meth:`RNN.init` returns: ``params[layer][direction]``, or a :class:`WithInitial`."""

# Keys of the masks drawn per layer and direction, folded into apply's key: far above any layer index,
# which keys the between-layer dropout (``fold_in(key, layer)``) as it always has.
_INPUT, _RECURRENT, _ZONEOUT = 1 << 30, (1 << 30) + 1, (1 << 30) + 2
_OPTIONS = {"input_dropout": 0.0, "recurrent_dropout": 0.0, "zoneout": 0.0, "learn_initial": False}


def _option(default: Any) -> Any:
    return dataclasses.field(default=default, kw_only=True)


@dataclasses.dataclass(frozen=True)
class RNN:
    """A stack of recurrent layers, each forward or forward and backward.

    Attributes:
        cell: a cell name in ``rj.cells.CELLS`` (``"rnn"``, ``"lstm"``, ``"gru"``, ...) with its defaults,
            or a ``Cell`` built with options, e.g. ``rj.cells.rnn(64, "relu")``.
        hidden_size: size of each direction's state; taken from ``cell`` when it is a Cell.
        num_layers: stacked layers.
        bidirectional: add a direction that reads each sequence backwards within its length.
        dropout: probability of zeroing a unit of the outputs between layers when training.
        impl: how each layer runs, as in :func:`rnnjax.unroll`: ``"auto"``, ``"scan"`` (the reference,
            needed for forward-mode differentiation), ``"fused"`` or ``"associative"``; ``"auto"`` or
            ``"scan"`` with recurrent dropout or zoneout.
        input_dropout: variational dropout of each layer's inputs (module docstring), when training.
        recurrent_dropout: variational dropout of ``h_{t-1}`` in the recurrent matmul, when training; for
            cells whose step is split around that matmul (``cell.spec.parts``).
        zoneout: the probability that a unit of the carry keeps its value at a step (module docstring): one
            rate for every leaf of the carry, or a tuple with one per leaf in ``jax.tree.leaves`` order
            (the LSTM: ``(z_h, z_c)``).
        learn_initial: learn each layer and direction's initial carry (:class:`WithInitial`).
    """

    cell: str | cells.Cell = "lstm"
    hidden_size: int | None = None
    _: dataclasses.KW_ONLY  # the options by keyword: rj.RNN("gru", 64, num_layers=2)
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    impl: str = "auto"
    input_dropout: float = _option(0.0)
    recurrent_dropout: float = _option(0.0)
    zoneout: float | tuple[float, ...] = _option(0.0)
    learn_initial: bool = _option(False)

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
        if self.impl not in IMPLS:
            raise ValueError(f"impl: expected one of {IMPLS}, got {self.impl!r}")
        resolve_impl(self.step_cell, self.impl)
        self._check_options()

    def _check_options(self) -> None:
        cell = self.step_cell
        check_probability(self.input_dropout, "input_dropout")
        check_probability(self.recurrent_dropout, "recurrent_dropout")
        if self.recurrent_dropout > 0 and cell.spec.parts is None:
            raise ValueError(
                f"recurrent_dropout: {cell.name}'s step does not declare its recurrent matmul (spec.parts), which "
                f"the mask must act before (Gal & Ghahramani drop h_(t-1) in W h_(t-1) only); zoneout acts on any "
                f"cell's carry"
            )
        off = not isinstance(self.zoneout, tuple) and check_probability(self.zoneout, "zoneout") == 0
        object.__setattr__(self, "_rates", () if off else _zoneout_rates(cell, self.zoneout))
        if not isinstance(self.learn_initial, bool):
            raise ValueError(f"learn_initial: expected True or False, got {describe(self.learn_initial)}")
        if (self.recurrent_dropout > 0 or any(self._rates)) and self.impl not in ("auto", "scan"):
            raise ValueError(
                f"impl: expected 'auto' or 'scan' with recurrent_dropout or zoneout (they act inside the time loop, "
                f"which only the sequential scan runs), got {self.impl!r}"
            )

    @property
    def step_cell(self) -> cells.Cell:
        """The Cell that every layer and direction runs (without the network's dropout and zoneout)."""
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

    @property
    def zoneout_rates(self) -> tuple[float, ...]:
        """One zoneout rate per leaf of the cell's carry, in ``jax.tree.leaves`` order; ``()`` for ``zoneout=0``."""
        return self._rates

    def check_plain(self, target: str) -> None:
        """Raises a ValueError unless the network is a plain stack, one that ``target`` (e.g. ``"PyTorch"``,
        for :func:`rnnjax.interop.to_torch`) computes and trains alike: none of the keyword options set."""
        set_ = [f"{name}={getattr(self, name)!r}" for name, off in _OPTIONS.items() if getattr(self, name) != off]
        if set_:
            raise ValueError(
                f"net: {target} has no counterpart of {', '.join(set_)}; convert a net without them "
                f"(dataclasses.replace(net, ...)): input and recurrent dropout act only in training, zoneout in "
                f"evaluation too, and a learned initial carry is params.initial (an h_0 to pass, with params.cells)"
            )

    def init(self, key: PRNGKey, input_size: int) -> NetParams:
        """Params ``[layer][direction]``, each direction drawn from its own key.

        ``params[l][0]`` is layer l's forward direction and ``params[l][1]`` its backward one; in
        torch's ``h_n`` (``(num_layers * num_directions, batch, hidden)``) they are rows
        ``l * num_directions + d``: :func:`rnnjax.interop.torch_state` stacks final carries that way
        and :func:`rnnjax.interop.from_torch_state` takes them back. With ``learn_initial``, a
        :class:`WithInitial` of those params and zero initial carries.
        """
        check_key(key)
        check_positive_int(input_size, "input_size")
        keys = jax.random.split(key, (self.num_layers, self.num_directions))
        cell = self.step_cell
        params = tuple(
            tuple(
                cell.init(keys[layer, d], input_size if layer == 0 else self.output_size)
                for d in range(self.num_directions)
            )
            for layer in range(self.num_layers)
        )
        if not self.learn_initial:
            return params
        return WithInitial(params, tuple(tuple(cell.initial_carry(p, ()) for p in layer) for layer in params))

    def cell_params(self, params: NetParams) -> CellParams:
        """The cells' params ``[layer][direction]`` (``params`` itself, or ``params.cells``)."""
        self._check_params(params)
        return params.cells if self.learn_initial else params

    def initial_carry(self, params: NetParams, batch_size: int) -> NetCarry:
        """The carry ``[layer][direction]`` that :meth:`apply` starts from: zeros for a batch, or with
        ``learn_initial`` the learned ones, broadcast over it."""
        self._check_params(params)
        if not self.learn_initial:
            return tuple(tuple(self.step_cell.initial_carry(p, (batch_size,)) for p in layer) for layer in params)
        checks.check_nonnegative_int(batch_size, "batch_size")

        def broadcast(c: Array) -> Array:
            return jnp.broadcast_to(c, (batch_size, *jnp.shape(c)))

        return jax.tree.map(broadcast, params.initial)

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
            carry: initial carries ``[layer][direction]`` (:meth:`initial_carry` if None).
            key: randomness for dropout and zoneout; needed when ``train`` and any of them is on.
            train: apply dropout (and zoneout's random masks, instead of their expectation).

        Returns:
            ``ys: (batch, time, output_size)``, the last layer's outputs, and the final
            carries ``[layer][direction]``.
        """
        self._check_params(params)
        xs, lengths = check_inputs(xs, lengths)
        self._check_layers(params, xs)
        if carry is not None:
            check_carry(carry, self.initial_carry(params, xs.shape[0]))
        elif self.learn_initial:
            carry = self.initial_carry(params, xs.shape[0])
        if not isinstance(train, bool):
            raise ValueError(f"train: expected True or False, got {describe(train)}")
        random = dict(dropout=self.dropout > 0, input_dropout=self.input_dropout > 0)
        random.update(recurrent_dropout=self.recurrent_dropout > 0, zoneout=any(self._rates))
        needs = [f"{name}={getattr(self, name)}" for name, on in random.items() if on and train]
        masks = any(list(random.values())[1:])  # drawn per layer and direction
        if needs and key is None:
            raise ValueError(f"key: expected a PRNG key for {', '.join(needs)} in training, got None")
        if key is not None:
            check_key(key)
        use_dropout = train and self.dropout > 0.0
        finals = []
        for layer, layer_params in enumerate(self.cell_params(params)):
            if layer > 0 and use_dropout:
                xs = _dropout(jax.random.fold_in(key, layer), xs, self.dropout)
            outs, layer_finals = [], []
            for d, p in enumerate(layer_params):
                c0 = None if carry is None else carry[layer][d]
                keys = (
                    [_mask_key(key, k, layer, d) for k in (_INPUT, _RECURRENT, _ZONEOUT)] if train and masks else None
                )
                c, ys = self._direction(p, xs, c0, lengths, d == 1, keys)
                outs.append(ys)
                layer_finals.append(c)
            xs = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=-1)
            finals.append(tuple(layer_finals))
        return xs, tuple(finals)

    def _direction(
        self, p: Params, xs: Array, c0: Carry | None, lengths: Array | None, reverse: bool, keys: list | None
    ) -> tuple[Carry, Array]:
        """One layer's direction; ``keys`` (input, recurrent, zoneout) in training, None in evaluation."""
        cell = self.step_cell
        if keys is not None and self.input_dropout > 0:
            xs = _dropout(keys[0], xs, self.input_dropout, (xs.shape[0], 1, xs.shape[2]))
        drop_h = keys is not None and self.recurrent_dropout > 0
        if not drop_h and not any(self._rates):
            return unroll_unchecked(cell, p, xs, carry=c0, lengths=lengths, reverse=reverse, impl=self.impl)
        c0 = cell.initial_carry(p, (xs.shape[0],)) if c0 is None else c0
        mask = None
        if drop_h:
            h = cells.output_of(cell, c0)
            mask = _dropout(keys[1], jnp.ones(h.shape, h.dtype), self.recurrent_dropout)
        features, sampled = xs.shape[-1], keys is not None and any(self._rates)
        if sampled:  # d_t of every step beside x_t, so that the loop reads them in the order it runs
            xs = jnp.concatenate([xs, _zoneout_masks(keys[2], c0, self._rates, xs.shape[1], xs.dtype)], axis=-1)
        looped = _looped_cell(cell, features, drop_h, self._rates, sampled)
        return unroll_unchecked(looped, (p, mask), xs, carry=c0, lengths=lengths, reverse=reverse, impl="scan")

    def _check_layers(self, params: NetParams, xs: Array) -> None:
        """Each layer's params fit the cell, the features that layer reads, and the dtype of xs."""
        cell = self.step_cell
        for layer, layer_params in enumerate(self.cell_params(params)):
            for d, p in enumerate(layer_params):
                name = f"params[{layer}][{d}]" if not self.learn_initial else f"params.cells[{layer}][{d}]"
                check_params(cell, p, name)
                if layer == 0:
                    check_input_size(cell, p, xs, name)
                else:
                    reading = f"to read layer {layer - 1}'s outputs (hidden_size * num_directions = {self.output_size})"
                    cells.base.check_input_size(cell, p, self.output_size, name, reading)
                dtype = params_dtype(p)
                if dtype != xs.dtype:
                    raise ValueError(
                        f"xs: expected the params' dtype {dtype}, got {xs.dtype} (cast xs with .astype({dtype}) or "
                        f"build the cell with dtype={xs.dtype})"
                    )
                if self.learn_initial:
                    _check_initial(params.initial[layer][d], cell.initial_carry(p, ()), f"params.initial[{layer}][{d}]")
        check_finite_tree(params, "params")

    def _check_params(self, params: Any) -> None:
        shape = (self.num_layers, self.num_directions)
        if self.learn_initial and not isinstance(params, WithInitial):
            raise ValueError(
                f"params: expected a WithInitial(cells, initial) (from RNN.init with learn_initial=True), got "
                f"{type(params).__name__}"
            )
        if not self.learn_initial and isinstance(params, WithInitial):
            raise ValueError(
                f"params: expected a tuple of {shape[0]} layers (from RNN.init), got a WithInitial (the params of a "
                f"net with learn_initial=True; params.cells are its cells' params)"
            )
        named = {"params": params} if not self.learn_initial else dict(zip(("params.cells", "params.initial"), params))
        for name, tree in named.items():
            ok = isinstance(tree, tuple) and len(tree) == shape[0]
            ok = ok and all(isinstance(p, tuple) and len(p) == shape[1] for p in tree)
            if not ok:
                got = type(tree).__name__
                if isinstance(tree, tuple):
                    inner = [len(p) if isinstance(p, tuple) else type(p).__name__ for p in tree]
                    got = f"{len(tree)} layers of {inner}"
                raise ValueError(
                    f"{name}: expected a tuple of {shape[0]} layers, each a tuple of {shape[1]} "
                    f"direction(s) (from RNN.init), got {got}"
                )


def _check_initial(initial: Carry, expected: Carry, name: str) -> None:
    """A learned initial carry has the structure, shapes and dtypes of ``cell.initial_carry(params, ())``."""
    want, got = jax.tree.structure(expected), jax.tree.structure(initial)
    if got != want:
        raise ValueError(f"{name}: expected structure {want} (from RNN.init), got {got}")
    for (path, want), got in zip(jax.tree_util.tree_leaves_with_path(expected), jax.tree.leaves(initial), strict=True):
        if jnp.shape(got) != want.shape or jnp.result_type(got) != want.dtype:
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)}: expected {want.dtype}{want.shape} (one sequence's carry, no "
                f"batch axis), got {jnp.result_type(got)}{jnp.shape(got)}"
            )


def _zoneout_rates(cell: cells.Cell, zoneout: Any) -> tuple[float, ...]:
    """One zoneout rate per leaf of ``cell``'s carry, from one rate or a tuple of them."""
    carry = jax.eval_shape(lambda key: cell.initial_carry(cell.init(key, 1)), jax.random.key(0))
    leaves = len(jax.tree.leaves(carry))
    if not isinstance(zoneout, tuple):
        return (check_probability(zoneout, "zoneout"),) * leaves
    if len(zoneout) != leaves:
        raise ValueError(
            f"zoneout: expected a rate or a tuple of {leaves} (one per leaf of {cell.name}'s carry "
            f"{jax.tree.structure(carry)}), got a tuple of {len(zoneout)}"
        )
    return tuple(check_probability(p, f"zoneout[{k}]") for k, p in enumerate(zoneout))


def _dropout(key: PRNGKey, xs: Array, rate: float, shape: tuple[int, ...] | None = None) -> Array:
    """Inverted dropout of ``xs``; ``shape`` (broadcast to that of xs) shares a mask, e.g. over time."""
    keep = jax.random.bernoulli(key, 1.0 - rate, xs.shape if shape is None else shape)
    return jnp.where(keep, xs / (1.0 - rate), 0.0)


def _mask_key(key: PRNGKey, kind: int, layer: int, d: int) -> PRNGKey:
    return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, kind), layer), d)


def _zoneout_masks(key: PRNGKey, carry: Carry, rates: tuple[float, ...], time: int, dtype: Any) -> Array:
    """``d_t`` for every step ``t`` (key folded per step) and leaf of ``carry (batch, ...)``, flattened and
    concatenated: ``(batch, time, units)`` of 0 and 1 in ``dtype``."""

    def at(t: Array) -> Array:
        k = jax.random.fold_in(key, t)
        leaves = jax.tree.leaves(carry)
        masks = [
            jax.random.bernoulli(jax.random.fold_in(k, i), p, c.shape) for i, (p, c) in enumerate(zip(rates, leaves))
        ]
        return jnp.concatenate([m.reshape(m.shape[0], -1) for m in masks], axis=-1).astype(dtype)

    return jnp.swapaxes(jax.vmap(at)(jnp.arange(time)), 0, 1)


def _looped_cell(cell: cells.Cell, features: int, drop_h: bool, rates: tuple[float, ...], sampled: bool) -> Any:
    """``cell`` with recurrent dropout and zoneout inside its step, for :func:`unroll_unchecked` only.

    Its params are ``(params, m_h)``, ``m_h: (batch, h)`` the recurrent mask (``drop_h``). Its inputs are
    ``x_t`` (``features``), followed where ``sampled`` by the flattened zoneout masks ``d_t``; else the
    carry mixes by the expectation of ``d_t`` (``rates``, all zero: no zoneout).
    """
    spec = cell.spec

    def prepare(params: tuple[Params, Array | None]) -> tuple[Any, Array | None]:
        return spec.prepare(params[0]), params[1]

    def project(loop: tuple[Any, Array | None], xs: Array) -> tuple[Array, Array]:
        return spec.project(loop[0], xs[..., :features]), xs[..., features:]

    def recur(loop: tuple[Any, Array | None], carry: Carry, inputs: tuple[Array, Array]) -> tuple[Carry, Array]:
        (inner, m_h), (xp, d) = loop, inputs
        if drop_h:  # as spec.parts states the step, with m_h * h_(t-1) in the matmul alone
            h = jax.tree.leaves(carry)[spec.output]
            new = spec.parts.pointwise(carry, spec.parts.pre(inner.extra, xp, matmul(m_h * h, inner.W_T)))
        else:
            new = spec.recur(inner, carry, xp)[0]
        old, tree = jax.tree.flatten(carry)
        if sampled:  # s_t = d_t * s_(t-1) + (1 - d_t) * step(s_(t-1), x_t)
            sizes = [int(np.prod(c.shape[d.ndim - 1 :])) for c in old]
            ds = jnp.split(d, np.cumsum(sizes)[:-1].tolist(), axis=-1)
            zoned = [jnp.where(dk.reshape(c.shape) > 0, c, n) for dk, c, n in zip(ds, old, jax.tree.leaves(new))]
            new = jax.tree.unflatten(tree, zoned)
        elif any(rates):  # its expectation
            mixed = [n if p == 0 else p * c + (1 - p) * n for p, c, n in zip(rates, old, jax.tree.leaves(new))]
            new = jax.tree.unflatten(tree, mixed)
        return new, readout(cell, inner, new, xp)

    looped = spec._replace(name=f"{spec.name} (dropout, zoneout)", prepare=prepare, project=project, recur=recur)
    return cells.Cell(cell.init, cell.initial_carry, cell.step, looped._replace(gates=None, parts=None, linear=None))
