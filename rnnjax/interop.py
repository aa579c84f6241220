"""Weights and states to and from PyTorch and Flax, and a Flax linen wrapper of our cells.

PyTorch (imported lazily, only inside these functions)::

    net, params = rj.interop.from_torch(torch.nn.LSTM(8, 32, num_layers=2, bidirectional=True))
    module = rj.interop.to_torch(net, params)          # batch_first=True
    ys, finals = net.apply(params, xs, lengths)
    h_n, c_n = rj.interop.torch_state(finals)          # PyTorch's (num_layers * 2, batch, 32)
    finals = rj.interop.from_torch_state(h_n, c_n, net)

Flax::

    cell, params = rj.interop.from_flax(flax.linen.GRUCell(32), variables)
    variables = rj.interop.to_flax(cell, params)        # for flax.linen.GRUCell(32)
    flax.linen.RNN(rj.interop.FlaxCell(rj.cells.lstm(32)))   # our cell inside a Flax model

What converts (:data:`CONVERTS`): the RNN with tanh or ReLU (the IRNN is a ReLU RNN), the LSTM
and the GRU with ``reset_after=True``; the linear RNN and the GRU of Cho et al.
(``reset_after=False``) have no counterpart in either library and raise a ValueError. The LSTM with a
projection (``rj.cells.lstm(h, proj_size=p)``) is ``torch.nn.LSTM(proj_size=p)``; Flax has none.

Layouts. PyTorch stores ``weight_ih: (g*h, i)`` like our ``U`` but orders the LSTM gates
i, f, g, o (ours: f, i, C, o) and keeps two biases, ``b_ih`` and ``b_hh``, whose sum is our
``b`` (the GRU candidate's ``b_hh`` is our ``b_hn``). Flax keeps one ``(in, out)`` kernel
per gate, named ``ii, if, ig, io, hi, ...``. A network's ``params[layer][direction]`` and
``finals[layer][direction]`` are PyTorch's ``*_l{layer}`` (direction 0) and
``*_l{layer}_reverse`` (direction 1) weights, and row ``layer * num_directions + direction``
of its ``h_n`` and ``c_n``, both ``(num_layers * num_directions, batch, hidden)``. With a projection,
``weight_hr: (p, h)`` is our ``W_hr`` and ``h_n`` has ``p`` features (``net.hidden_size``), ``c_n`` ``h``.

Precision: float16, bfloat16, float32 and float64 (with ``jax_enable_x64``) convert in their own
dtype, bit for bit (numpy has no bfloat16, so those tensors pass through float32, exactly).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import cells
from rnnjax.cells import GRUParams, LSTMParams, LSTMState, RNNParams
from rnnjax.cells.lstm import ProjectedLSTMParams
from rnnjax.checks import describe
from rnnjax.init import draw_dtype
from rnnjax.network import RNN, NetCarry, NetParams
from rnnjax.types import Array, Carry, Params, PRNGKey

__all__ = [
    "CONVERTS",
    "FlaxCell",
    "from_flax",
    "from_tensor",
    "from_torch",
    "from_torch_state",
    "to_flax",
    "to_tensor",
    "to_torch",
    "torch_state",
]

CONVERTS = "rnn with activation 'tanh' or 'relu' (irnn included), lstm, gru with reset_after=True"
"""The cells that PyTorch and Flax have, in words (for the errors)."""

# Block order of PyTorch's stacked gates, as indices into ours (the map is its own inverse).
_TORCH_ORDER = {"rnn": [0], "lstm": [1, 0, 2, 3], "gru": [0, 1, 2]}
_DTYPES = {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32, "float64": jnp.float64}


def _cell_kind(cell: Any, name: str, target: str) -> str:
    """``cell.name`` if PyTorch and Flax have that cell, else a ValueError naming it and what converts."""
    if not isinstance(cell, cells.Cell):
        raise ValueError(f"{name}: expected a Cell such as rj.cells.lstm(64), got {_what(cell)}")
    options = dict(cell.options)
    ok = {
        "rnn": options.get("activation") in ("tanh", "relu"),
        "lstm": target == "PyTorch" or not options.get("proj_size"),
        "gru": options.get("reset_after"),
    }
    if not ok.get(cell.name, False):
        shown = {k: options[k] for k in ("activation", "reset_after") if k in options}
        if options.get("proj_size"):
            shown["proj_size"] = options["proj_size"]
        size = _torch_hidden_size(cell) if "proj_size" in shown else cell.hidden_size  # the factory's hidden_size
        args = ", ".join([str(size), *(f"{k}={v!r}" for k, v in shown.items())])
        but = " (the lstm without proj_size: Flax has no projection)" if "proj_size" in shown else ""
        raise ValueError(f"{name}: {target} has no counterpart of {cell.name}({args}); it converts {CONVERTS}{but}")
    return cell.name


def _what(x: Any) -> str:
    """What ``x`` is, short: its type (and value, for a string or a number)."""
    return describe(x) if isinstance(x, str | int | float) else type(x).__name__


def _reorder(x: Array, name: str) -> Array:
    blocks = jnp.split(jnp.asarray(x), len(_TORCH_ORDER[name]), axis=0)
    return jnp.concatenate([blocks[k] for k in _TORCH_ORDER[name]], axis=0)


def from_tensor(tensor: Any) -> Array:
    """A ``torch.Tensor`` as a jnp array of the same dtype and values (bfloat16 through float32, exactly)."""
    import torch

    t = tensor.detach().cpu()
    if t.dtype == torch.bfloat16:
        return jnp.asarray(t.float().numpy()).astype(jnp.bfloat16)
    return jnp.asarray(t.numpy())


def to_tensor(x: Any) -> Any:
    """An array as a CPU ``torch.Tensor`` of the same dtype and values (bfloat16 through float32, exactly)."""
    import torch

    x = np.asarray(x)
    if x.dtype == jnp.bfloat16:
        return torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(x))  # a copy: torch wants a writable array


def _as_array(x: Any) -> Array:
    return from_tensor(x) if type(x).__module__.split(".")[0] == "torch" else jnp.asarray(x)


def _torch_cell(module: Any, dtype: Any) -> cells.Cell:
    mode, h = module.mode, module.hidden_size
    like_torch = {"input_init": "torch", "recurrent_init": "torch", "dtype": dtype}
    if mode in ("RNN_TANH", "RNN_RELU"):
        return cells.rnn(h, "tanh" if mode == "RNN_TANH" else "relu", **like_torch)
    if mode == "LSTM":
        return cells.lstm(h, 0.0, proj_size=getattr(module, "proj_size", 0), **like_torch)
    if mode == "GRU":
        return cells.gru(h, True, **like_torch)
    raise ValueError(f"module: expected torch.nn.RNN, LSTM or GRU, got mode {mode!r}")


def from_torch(module: Any) -> tuple[RNN, NetParams]:
    """An ``RNN`` and its params equal to a ``torch.nn.RNN``, ``LSTM`` or ``GRU``.

    Any ``num_layers``, ``bidirectional``, ``nonlinearity``, ``dropout``, ``bias`` and
    ``batch_first`` (the weights do not depend on it; our arrays are batch-major, so time-major
    inputs of a ``batch_first=False`` module are ``xs.transpose(1, 0, 2)`` here). The params keep
    the module's dtype (float16, bfloat16, float32; float64 with x64), and the network's cell is
    configured with PyTorch's initialisers and that dtype, so ``net.init`` draws like PyTorch would.
    An LSTM with ``proj_size = p > 0`` becomes ``rj.cells.lstm(hidden_size, proj_size=p)`` (params
    :class:`~rnnjax.cells.lstm.ProjectedLSTMParams`, ``net.hidden_size == p``). Other modules
    (``torch.nn.LSTMCell``, ``Linear``, ...) raise a ValueError.
    """
    import torch

    if not isinstance(module, torch.nn.RNNBase):
        raise ValueError(f"module: expected torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
    tensors = module.state_dict()
    dtypes = {str(v.dtype).removeprefix("torch.") for v in tensors.values()}
    if len(dtypes) != 1 or not dtypes <= set(_DTYPES):
        raise ValueError(f"module: expected weights of one dtype of {tuple(_DTYPES)}, got {sorted(dtypes)}")
    dtype = _DTYPES[dtypes.pop()]
    state = {k: from_tensor(v) for k, v in tensors.items()}
    cell = _torch_cell(module, dtype)
    net = RNN(cell=cell, num_layers=module.num_layers, bidirectional=module.bidirectional, dropout=module.dropout)
    h, acc = module.hidden_size, draw_dtype(dtype)

    def direction(layer: int, d: int) -> Params:
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        U, W = _reorder(state["weight_ih" + sfx], cell.name), _reorder(state["weight_hh" + sfx], cell.name)
        zeros = jnp.zeros(len(_TORCH_ORDER[cell.name]) * h, acc)
        # The two biases add in float32 (float64), rounded once to the params' dtype.
        b_ih = state.get("bias_ih" + sfx, zeros).astype(acc)
        b_hh = state.get("bias_hh" + sfx, zeros).astype(acc)
        if cell.name == "gru":
            b = _reorder(b_ih, "gru").at[: 2 * h].add(b_hh[: 2 * h])
            return GRUParams(U, W, b.astype(U.dtype), b_hh[2 * h :].astype(U.dtype))
        b = _reorder(b_ih + b_hh, cell.name).astype(U.dtype)
        if "weight_hr" + sfx in state:  # proj_size > 0: h_t = W_hr (o_t * tanh(C_t))
            return ProjectedLSTMParams(U, W, b, state["weight_hr" + sfx])
        return (RNNParams if cell.name == "rnn" else LSTMParams)(U, W, b)

    params = tuple(tuple(direction(layer, d) for d in range(net.num_directions)) for layer in range(net.num_layers))
    return net, params


def to_torch(net: RNN, params: NetParams) -> Any:
    """A ``torch.nn.RNN``, ``LSTM`` or ``GRU`` (``batch_first=True``) with our weights, in their dtype.

    ``b`` goes to ``bias_ih`` and ``bias_hh`` holds zeros (but the GRU's ``b_hn``); an LSTM with
    ``proj_size = p`` becomes ``torch.nn.LSTM(hidden_size=h, proj_size=p)`` with ``weight_hr = W_hr``. A cell
    that PyTorch does not have (see :data:`CONVERTS`) raises a ValueError naming it.
    """
    if not isinstance(net, RNN):
        raise ValueError(f"net: expected an rj.RNN, got {_what(net)}")
    kind = _cell_kind(net.step_cell, "net", "PyTorch")
    net.check_plain("PyTorch")
    net._check_params(params)
    import torch  # after the checks: a cell torch lacks is refused without torch installed

    cell = net.step_cell
    dtypes = {str(jnp.result_type(p)) for p in jax.tree.leaves(params)}
    if len(dtypes) != 1 or not dtypes <= set(_DTYPES):
        raise ValueError(f"params: expected arrays of one dtype of {tuple(_DTYPES)}, got {sorted(dtypes)}")
    proj_size = dict(cell.options).get("proj_size", 0) if kind == "lstm" else 0
    common = dict(
        input_size=params[0][0].U.shape[1], hidden_size=_torch_hidden_size(cell), num_layers=net.num_layers,
        bidirectional=net.bidirectional, dropout=net.dropout, batch_first=True,
    )  # fmt: skip
    if kind == "rnn":
        module = torch.nn.RNN(nonlinearity=dict(cell.options)["activation"], **common)
    elif kind == "lstm":
        module = torch.nn.LSTM(proj_size=proj_size, **common)
    else:
        module = torch.nn.GRU(**common)
    module = module.to(getattr(torch, dtypes.pop()))

    state = {}
    h = cell.hidden_size
    for layer, layer_params in enumerate(params):
        for d, p in enumerate(layer_params):
            cells.check_params(cell, p, f"params[{layer}][{d}]")
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            state["weight_ih" + sfx] = to_tensor(_reorder(p.U, kind))
            state["weight_hh" + sfx] = to_tensor(_reorder(p.W, kind))
            state["bias_ih" + sfx] = to_tensor(_reorder(p.b, kind))
            b_hh = jnp.zeros_like(p.b)
            if kind == "gru":
                b_hh = b_hh.at[2 * h :].set(p.b_hn)
            state["bias_hh" + sfx] = to_tensor(b_hh)
            if proj_size:
                state["weight_hr" + sfx] = to_tensor(p.W_hr)
    module.load_state_dict(state)
    return module


def _carry_sizes(cell: cells.Cell) -> list[int]:
    """The features of each leaf of ``cell``'s carry (the LSTM: ``[h, c]``; with a projection ``[p, h]``)."""
    shapes = jax.eval_shape(lambda key: cell.initial_carry(cell.init(key, 1), (1,)), jax.random.key(0))
    return [s.shape[-1] for s in jax.tree.leaves(shapes)]


def _torch_hidden_size(cell: cells.Cell) -> int:
    """PyTorch's ``hidden_size`` of ``cell``: the size of its state (of ``c`` for the LSTM, projected or not)."""
    return _carry_sizes(cell)[-1]


def torch_state(finals: NetCarry) -> Array | tuple[Array, Array]:
    """PyTorch's final state from ours: ``h_n`` (and ``(h_n, c_n)`` for the LSTM), as jnp arrays.

    Args:
        finals: ``finals[layer][direction]``, the final carries of :meth:`rnnjax.RNN.apply`, each
            ``(batch, hidden)`` (an ``LSTMState(h, c)`` for the LSTM); or a network's initial carry.

    Returns:
        ``h_n: (num_layers * num_directions, batch, hidden)`` with ``finals[l][d]`` at row
        ``l * num_directions + d``, PyTorch's layout of ``h_n`` and ``c_n`` (and of ``h_0``, ``c_0``:
        ``module(x, rj.interop.to_tensor(h_0))``). With lengths, PyTorch's ``h_n`` of a packed
        sequence is, like ours, each row's state after its last valid step (the backward
        direction's: after reading the row's first step).
    """
    ok = isinstance(finals, tuple) and len(finals) > 0 and all(isinstance(layer, tuple) for layer in finals)
    if not ok or len({len(layer) for layer in finals}) != 1 or len(finals[0]) not in (1, 2):
        raise ValueError(
            "finals: expected a tuple of layers, each a tuple of 1 or 2 directions (the finals of RNN.apply), "
            f"got {describe(finals)}"
        )
    flat = [c for layer in finals for c in layer]  # row layer * num_directions + direction
    if isinstance(flat[0], LSTMState):
        return jnp.stack([c.h for c in flat]), jnp.stack([c.c for c in flat])
    return jnp.stack(flat)


def from_torch_state(h_n: Any, c_n: Any, net: RNN) -> NetCarry:
    """Our ``carry[layer][direction]`` from PyTorch's ``h_n`` and ``c_n`` (``None`` but for the LSTM).

    ``h_n``, ``c_n``: ``(num_layers * num_directions, batch, hidden)`` tensors (any dtype
    :func:`from_tensor` reads) or arrays; row ``l * num_directions + d`` becomes ``carry[l][d]``. With a
    projection (``proj_size = p``), ``h_n`` has ``p`` features and ``c_n`` ``hidden_size``, as in PyTorch.
    The result is the finals of :meth:`rnnjax.RNN.apply`, or a carry to start it with (PyTorch's
    ``h_0``, ``c_0``). The inverse of :func:`torch_state`.
    """
    if not isinstance(net, RNN):
        raise ValueError(f"net: expected an rj.RNN, got {_what(net)}")
    rows, is_lstm = net.num_layers * net.num_directions, net.step_cell.name == "lstm"
    if is_lstm and c_n is None:
        raise ValueError("c_n: expected PyTorch's c_n for an LSTM, got None")
    if not is_lstm and c_n is not None:
        raise ValueError(f"c_n: expected None for a {net.step_cell.name} network (only the LSTM has c_n)")
    states = [_as_array(h_n)] + ([_as_array(c_n)] if is_lstm else [])
    sizes = _carry_sizes(net.step_cell) if is_lstm else [net.hidden_size]  # [h, c]: [p, h] with a projection
    for name, s, h in zip(("h_n", "c_n"), states, sizes):
        if s.ndim != 3 or s.shape[0] != rows or s.shape[2] != h:
            raise ValueError(
                f"{name}: expected shape ({rows}, batch, {h}) (num_layers * num_directions, batch, hidden), "
                f"got {s.shape}"
            )
    want = (*states[0].shape[:2], sizes[-1])
    if is_lstm and states[1].shape != want:
        like = f"the shape of h_n {want}" if want == states[0].shape else f"shape {want} (h_n's rows and batch)"
        raise ValueError(f"c_n: expected {like}, got {states[1].shape}")

    def at(k: int) -> Carry:
        return LSTMState(states[0][k], states[1][k]) if is_lstm else states[0][k]

    D = net.num_directions
    return tuple(tuple(at(layer * D + d) for d in range(D)) for layer in range(net.num_layers))


# Flax per-gate names in our block order, with where each bias lives.
_FLAX_GATES = {
    "LSTMCell": ("lstm", ["if", "ii", "ig", "io"], ["hf", "hi", "hg", "ho"]),
    "OptimizedLSTMCell": ("lstm", ["if", "ii", "ig", "io"], ["hf", "hi", "hg", "ho"]),
    "GRUCell": ("gru", ["ir", "iz", "in"], ["hr", "hz", "hn"]),
    "SimpleCell": ("rnn", ["i"], ["h"]),
}
_FLAX_FOR = {"lstm": "LSTMCell", "gru": "GRUCell", "rnn": "SimpleCell"}


def _flax_kind(module: Any) -> tuple[str, list[str], list[str]]:
    kind = type(module).__name__
    if kind not in _FLAX_GATES:
        raise ValueError(f"module: expected one of flax.linen.{tuple(_FLAX_GATES)}, got {kind}")
    if kind == "SimpleCell" and module.residual:
        raise ValueError("module: SimpleCell(residual=True) has no counterpart, expected residual=False")
    return _FLAX_GATES[kind]


def _flax_factory(module: Any) -> tuple[str, dict[str, Any]]:
    """Our cell's name and options for a Flax cell (checked), but its dtype."""
    name = _flax_kind(module)[0]
    if name == "rnn":
        acts = {jnp.tanh: "tanh", nn.tanh: "tanh", jax.nn.relu: "relu", nn.relu: "relu"}
        if module.activation_fn not in acts:
            raise ValueError(f"module: expected activation_fn tanh or relu, got {module.activation_fn}")
        return name, {"activation": acts[module.activation_fn]}
    if (module.gate_fn, module.activation_fn) not in ((nn.sigmoid, nn.tanh), (jax.nn.sigmoid, jnp.tanh)):
        raise ValueError("module: expected the default gate_fn=sigmoid and activation_fn=tanh")
    return name, {"forget_bias": 0.0} if name == "lstm" else {}


def from_flax(module: Any, variables: Any) -> tuple[cells.Cell, Params]:
    """Our cell and params equal to a Flax ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``
    or ``SimpleCell`` with its ``variables`` (``{"params": ...}`` or the params alone).

    The params keep the variables' dtype, and the cell is configured with it. Our cells compute in
    the params' dtype; a Flax cell whose ``dtype`` (of computation) differs from its ``param_dtype``
    computes otherwise.
    """
    name, options = _flax_factory(module)
    _, in_names, h_names = _flax_kind(module)
    kind = type(module).__name__
    try:
        p = variables.get("params", variables)
        dtype = _DTYPES.get(str(jnp.result_type(p[h_names[0]]["kernel"])), jnp.float32)
        cell = cells.make(name, module.features, **options, dtype=dtype)

        def stack(names: list[str], part: str) -> Array:
            return jnp.concatenate([jnp.asarray(p[n][part]).T for n in names], axis=0)

        U, W = stack(in_names, "kernel"), stack(h_names, "kernel")
        if cell.name == "lstm":
            return cell, LSTMParams(U, W, stack(h_names, "bias"))
        if cell.name == "gru":
            return cell, GRUParams(U, W, stack(in_names, "bias"), jnp.asarray(p["hn"]["bias"]))
        return cell, RNNParams(U, W, jnp.asarray(p["i"]["bias"]))
    except (KeyError, TypeError, AttributeError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else f"got {describe(variables)}"
        raise ValueError(f"variables: expected the params of flax.linen.{kind}, {what}") from e


def to_flax(cell: cells.Cell, params: Params) -> dict[str, Any]:
    """``{"params": ...}`` for the Flax cell that matches ``cell``, in the params' dtype (see :func:`from_flax`).

    ``rnn`` goes to ``SimpleCell`` (with ``activation_fn=nn.relu`` for ReLU), ``lstm`` to ``LSTMCell``
    (or ``OptimizedLSTMCell``), ``gru`` to ``GRUCell``; any other cell raises a ValueError naming it.
    """
    kind = _cell_kind(cell, "cell", "Flax")
    cells.check_params(cell, params)
    h = cell.hidden_size
    _, in_names, h_names = _FLAX_GATES[_FLAX_FOR[kind]]

    def block(x: Array, k: int) -> Array:
        return x[k * h : (k + 1) * h]

    out: dict[str, Any] = {}
    for k, (ni, nh) in enumerate(zip(in_names, h_names, strict=True)):
        out[ni] = {"kernel": block(params.U, k).T}
        out[nh] = {"kernel": block(params.W, k).T}
        if kind == "lstm":
            out[nh]["bias"] = block(params.b, k)
        else:
            out[ni]["bias"] = block(params.b, k)
    if kind == "gru":
        out["hn"]["bias"] = params.b_hn
    return {"params": out}


class FlaxCell(nn.RNNCellBase):
    """One of our cells as a ``flax.linen`` RNN cell, e.g. inside ``flax.linen.RNN``.

    Its params sit under the name ``"cell"`` as our NamedTuple (``LSTMParams`` etc.).
    """

    cell: cells.Cell

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
