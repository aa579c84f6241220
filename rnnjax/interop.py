"""Weights to and from PyTorch and Flax, and a Flax linen wrapper of our cells.

PyTorch (imported lazily, only inside these functions)::

    net, params = rj.interop.from_torch(torch.nn.LSTM(8, 32, num_layers=2, bidirectional=True))
    module = rj.interop.to_torch(net, params)          # batch_first=True

Flax::

    cell, params = rj.interop.from_flax(flax.linen.GRUCell(32), variables)
    variables = rj.interop.to_flax(cell, params)        # for flax.linen.GRUCell(32)
    flax.linen.RNN(rj.interop.FlaxCell(rj.cells.lstm(32)))   # our cell inside a Flax model

Layouts. PyTorch stores ``weight_ih: (g*h, i)`` like our ``U`` but orders the LSTM gates
i, f, g, o (ours: f, i, C, o) and keeps two biases, ``b_ih`` and ``b_hh``, whose sum is our
``b`` (the GRU candidate's ``b_hh`` is our ``b_hn``). Flax keeps one ``(in, out)`` kernel
per gate, named ``ii, if, ig, io, hi, ...``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import cells
from rnnjax.cells import Cell, GRUParams, LSTMParams, RNNParams
from rnnjax.network import RNN, NetParams
from rnnjax.types import Array, Carry, Params, PRNGKey

# Block order of PyTorch's stacked gates, as indices into ours (the map is its own inverse).
_TORCH_ORDER = {"rnn": [0], "lstm": [1, 0, 2, 3], "gru": [0, 1, 2]}


def _reorder(x: Array, name: str) -> Array:
    blocks = jnp.split(jnp.asarray(x), len(_TORCH_ORDER[name]), axis=0)
    return jnp.concatenate([blocks[k] for k in _TORCH_ORDER[name]], axis=0)


def _torch_cell(module: Any) -> Cell:
    mode, h = module.mode, module.hidden_size
    like_torch = {"input_init": "torch", "recurrent_init": "torch"}
    if mode in ("RNN_TANH", "RNN_RELU"):
        return cells.rnn(h, "tanh" if mode == "RNN_TANH" else "relu", **like_torch)
    if mode == "LSTM":
        if getattr(module, "proj_size", 0):
            raise ValueError(f"module: LSTM with proj_size={module.proj_size} is not supported, expected 0")
        return cells.lstm(h, 0.0, **like_torch)
    if mode == "GRU":
        return cells.gru(h, True, **like_torch)
    raise ValueError(f"module: expected torch.nn.RNN, LSTM or GRU, got mode {mode!r}")


def from_torch(module: Any) -> tuple[RNN, NetParams]:
    """An ``RNN`` and its params equal to a ``torch.nn.RNN``, ``LSTM`` or ``GRU``.

    Any ``num_layers``, ``bidirectional``, ``nonlinearity``, ``dropout`` and ``bias``.
    Our arrays are batch-major, as ``batch_first=True``. The returned network's cell is
    configured with PyTorch's initialisers, so ``net.init`` draws like PyTorch would.
    """
    if not hasattr(module, "mode") or not hasattr(module, "all_weights"):
        raise ValueError(f"module: expected torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
    cell = _torch_cell(module)
    net = RNN(cell=cell, num_layers=module.num_layers, bidirectional=module.bidirectional, dropout=module.dropout)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    h = module.hidden_size

    def direction(layer: int, d: int) -> Params:
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        U, W = _reorder(state["weight_ih" + sfx], cell.name), _reorder(state["weight_hh" + sfx], cell.name)
        gh = cell.num_gates * h
        b_ih = state.get("bias_ih" + sfx, np.zeros(gh, U.dtype))
        b_hh = state.get("bias_hh" + sfx, np.zeros(gh, U.dtype))
        if cell.name == "gru":
            b = _reorder(b_ih, "gru").at[: 2 * h].add(b_hh[: 2 * h])
            return GRUParams(U, W, b, jnp.asarray(b_hh[2 * h :]))
        b = _reorder(b_ih + b_hh, cell.name)
        return (RNNParams if cell.name == "rnn" else LSTMParams)(U, W, b)

    params = tuple(tuple(direction(layer, d) for d in range(net.num_directions)) for layer in range(net.num_layers))
    return net, params


def to_torch(net: RNN, params: NetParams) -> Any:
    """A ``torch.nn.RNN``, ``LSTM`` or ``GRU`` (``batch_first=True``) with our weights.

    ``b`` goes to ``bias_ih`` and ``bias_hh`` holds zeros (but the GRU's ``b_hn``).
    """
    import torch

    net._check_params(params)
    cell = net.step_cell
    options = dict(cell.options)
    input_size = params[0][0].U.shape[1]
    common = dict(
        input_size=input_size, hidden_size=cell.hidden_size, num_layers=net.num_layers,
        bidirectional=net.bidirectional, dropout=net.dropout, batch_first=True,
    )  # fmt: skip
    if cell.name == "rnn":
        if options["activation"] not in ("tanh", "relu"):
            raise ValueError(f"net: torch.nn.RNN has tanh and relu only, got activation={options['activation']!r}")
        module = torch.nn.RNN(nonlinearity=options["activation"], **common)
    elif cell.name == "lstm":
        module = torch.nn.LSTM(**common)
    elif not options["reset_after"]:
        raise ValueError("net: torch.nn.GRU has only the reset_after=True form, got gru(reset_after=False)")
    else:
        module = torch.nn.GRU(**common)
    dtypes = {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}
    module = module.to(dtypes[np.dtype(params[0][0].W.dtype)])

    def tensor(x: Array) -> Any:
        return torch.from_numpy(np.array(x))

    state = {}
    h = cell.hidden_size
    for layer, layer_params in enumerate(params):
        for d, p in enumerate(layer_params):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            state["weight_ih" + sfx] = tensor(_reorder(p.U, cell.name))
            state["weight_hh" + sfx] = tensor(_reorder(p.W, cell.name))
            state["bias_ih" + sfx] = tensor(_reorder(p.b, cell.name))
            b_hh = jnp.zeros_like(p.b)
            if cell.name == "gru":
                b_hh = b_hh.at[2 * h :].set(p.b_hn)
            state["bias_hh" + sfx] = tensor(b_hh)
    module.load_state_dict(state)
    return module


# Flax per-gate names in our block order, with where each bias lives.
_FLAX_GATES = {
    "LSTMCell": ("lstm", ["if", "ii", "ig", "io"], ["hf", "hi", "hg", "ho"]),
    "OptimizedLSTMCell": ("lstm", ["if", "ii", "ig", "io"], ["hf", "hi", "hg", "ho"]),
    "GRUCell": ("gru", ["ir", "iz", "in"], ["hr", "hz", "hn"]),
    "SimpleCell": ("rnn", ["i"], ["h"]),
}


def _flax_kind(module: Any) -> tuple[str, list[str], list[str]]:
    kind = type(module).__name__
    if kind not in _FLAX_GATES:
        raise ValueError(f"module: expected one of flax.linen.{tuple(_FLAX_GATES)}, got {kind}")
    if kind == "SimpleCell" and module.residual:
        raise ValueError("module: SimpleCell(residual=True) has no counterpart, expected residual=False")
    return _FLAX_GATES[kind]


def _flax_cell(module: Any) -> Cell:
    name = _flax_kind(module)[0]
    if name == "rnn":
        acts = {jnp.tanh: "tanh", nn.tanh: "tanh", jax.nn.relu: "relu", nn.relu: "relu"}
        if module.activation_fn not in acts:
            raise ValueError(f"module: expected activation_fn tanh or relu, got {module.activation_fn}")
        return cells.rnn(module.features, acts[module.activation_fn])
    if (module.gate_fn, module.activation_fn) not in ((nn.sigmoid, nn.tanh), (jax.nn.sigmoid, jnp.tanh)):
        raise ValueError("module: expected the default gate_fn=sigmoid and activation_fn=tanh")
    return cells.lstm(module.features, 0.0) if name == "lstm" else cells.gru(module.features)


def from_flax(module: Any, variables: Any) -> tuple[Cell, Params]:
    """Our cell and params equal to a Flax ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``
    or ``SimpleCell`` with its ``variables`` (``{"params": ...}`` or the params alone)."""
    cell = _flax_cell(module)
    _, in_names, h_names = _flax_kind(module)
    p = variables.get("params", variables)

    def stack(names: list[str], part: str) -> Array:
        return jnp.concatenate([jnp.asarray(p[n][part]).T for n in names], axis=0)

    try:
        U, W = stack(in_names, "kernel"), stack(h_names, "kernel")
        if cell.name == "lstm":
            return cell, LSTMParams(U, W, stack(h_names, "bias"))
        if cell.name == "gru":
            return cell, GRUParams(U, W, stack(in_names, "bias"), jnp.asarray(p["hn"]["bias"]))
        return cell, RNNParams(U, W, jnp.asarray(p["i"]["bias"]))
    except KeyError as e:
        kind = type(module).__name__
        raise ValueError(f"variables: expected the params of flax.linen.{kind}, missing {e}") from e


def to_flax(cell: Cell, params: Params) -> dict[str, Any]:
    """``{"params": ...}`` for the Flax cell that matches ``cell`` (see :func:`from_flax`)."""
    h = cell.hidden_size
    if cell.name == "gru" and params.b_hn is None:
        raise ValueError("cell: Flax's GRUCell has only the reset_after=True form, got reset_after=False")
    _, in_names, h_names = {"lstm": _FLAX_GATES["LSTMCell"], "gru": _FLAX_GATES["GRUCell"]}.get(
        cell.name, _FLAX_GATES["SimpleCell"]
    )

    def block(x: Array, k: int) -> Array:
        return x[k * h : (k + 1) * h]

    out: dict[str, Any] = {}
    for k, (ni, nh) in enumerate(zip(in_names, h_names, strict=True)):
        out[ni] = {"kernel": block(params.U, k).T}
        out[nh] = {"kernel": block(params.W, k).T}
        if cell.name == "lstm":
            out[nh]["bias"] = block(params.b, k)
        else:
            out[ni]["bias"] = block(params.b, k)
    if cell.name == "gru":
        out["hn"]["bias"] = params.b_hn
    return {"params": out}


class FlaxCell(nn.RNNCellBase):
    """One of our cells as a ``flax.linen`` RNN cell, e.g. inside ``flax.linen.RNN``.

    Its params sit under the name ``"cell"`` as our NamedTuple (``LSTMParams`` etc.).
    """

    cell: Cell

    @nn.compact
    def __call__(self, carry: Carry, inputs: Array) -> tuple[Carry, Array]:
        params = self.param("cell", lambda key: self.cell.init(key, inputs.shape[-1]))
        return self.cell.step(params, carry, inputs)

    @nn.nowrap
    def initialize_carry(self, rng: PRNGKey, input_shape: tuple[int, ...]) -> Carry:
        shapes = jax.eval_shape(lambda: self.cell.initial_carry(self.cell.init(rng, input_shape[-1]), input_shape[:-1]))
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    @property
    def num_feature_axes(self) -> int:
        return 1
