"""A model's definition as JSON and back: what ``fit(model=...)`` saves so that a run can be analysed later.

::

    config = rj.models.to_config(model)          # {"type": "ManyToOne", "rnn": {"type": "RNN", "cell": ...}, ...}
    model = rj.models.from_config(config)        # the same model: to_config(model) is config
    args = rj.models.init_args(model, params)    # (2,): what model.init(key, *args) needs to build params' shapes

Every model of :mod:`rnnjax.models` and :class:`~rnnjax.RNN` round-trips. A cell built with options
(``rj.cells.lstm(64, forget_bias=1.0)``) is saved by its name in ``rj.cells.CELLS`` and its options, so a
cell written outside the registry cannot be saved: :func:`to_config` says so.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import cells
from rnnjax.cells.base import input_size
from rnnjax.checks import describe
from rnnjax.models.conditional import OneToMany, Seq2Seq
from rnnjax.models.sequence import FeedForward, LanguageModel, ManyToMany, ManyToOne
from rnnjax.network import RNN, WithInitial

__all__ = ["MODELS", "from_config", "init_args", "to_config"]

MODELS: dict[str, type] = {
    cls.__name__: cls for cls in (RNN, FeedForward, ManyToOne, ManyToMany, LanguageModel, OneToMany, Seq2Seq)
}
"""The classes a definition can name, by class name."""


def _cell_config(cell: cells.Cell) -> dict[str, Any]:
    """The cell as the registry factory and the options (those off its defaults) that rebuild its spec: the
    factory of its name first, then any other (``irnn`` is an ``rnn`` with a callable init)."""
    options = dict(cell.options)
    names = sorted(cells.CELLS, key=lambda name: name != cell.name)
    for name in names:
        signature = inspect.signature(cells.CELLS[name]).parameters
        given = {k: v for k, v in options.items() if k in signature and v != signature[k].default}
        try:
            encoded = {k: _encode(v, f"cell option {k}") for k, v in given.items()}
            rebuilt = _rebuilt(name, cell.hidden_size, encoded)
        except (ValueError, TypeError):
            continue
        if rebuilt.name == cell.name and rebuilt.options == cell.options:
            return {"type": "Cell", "factory": name, "hidden_size": cell.hidden_size, "options": encoded}
    raise ValueError(
        f"cell: {cell.name!r} with options {options} is not rebuilt by any factory of rj.cells.CELLS from options "
        f"JSON can hold, so its definition cannot be saved; register the cell (docs/adding_a_cell.md)"
    )


def _rebuilt(factory: str, hidden_size: int, options: dict[str, Any]) -> cells.Cell:
    return cells.make(factory, hidden_size, **{k: _decode(v) for k, v in options.items()})


def _is_dtype(value: Any) -> bool:
    """A dtype or a scalar type (``jnp.float32`` is not a subclass of ``np.generic``, but has a dtype)."""
    return isinstance(value, np.dtype) or (isinstance(value, type) and hasattr(value, "dtype"))


def _encode(value: Any, where: str) -> Any:
    if _is_dtype(value):
        return {"type": "dtype", "name": np.dtype(value).name}
    if isinstance(value, cells.Cell):
        return _cell_config(value)
    if dataclasses.is_dataclass(value) and type(value).__name__ in MODELS:
        return to_config(value)
    if isinstance(value, tuple | list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"{where}: a model field must be a number, string, tuple, cell or model, got {describe(value)}")


def to_config(model: Any) -> dict[str, Any]:
    """The definition of ``model`` (a model of :mod:`rnnjax.models` or an ``rj.RNN``) as a JSON-ready dict.

    Raises:
        ValueError: ``model`` is no such model, or holds a cell outside ``rj.cells.CELLS``.
    """
    if not dataclasses.is_dataclass(model) or isinstance(model, type) or type(model).__name__ not in MODELS:
        raise ValueError(f"model: expected one of {tuple(MODELS)}, got {describe(model)}")
    fields = {f.name: _encode(getattr(model, f.name), f.name) for f in dataclasses.fields(model) if f.name != "_"}
    return {"type": type(model).__name__, **fields}


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("type") == "Cell":
            return _rebuilt(value["factory"], value["hidden_size"], value["options"])
        if value.get("type") == "dtype":
            return getattr(jnp, value["name"])
        if "type" in value:
            return from_config(value)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def from_config(config: dict[str, Any]) -> Any:
    """The model that :func:`to_config` described (JSON's lists read back as tuples)."""
    if not isinstance(config, dict) or config.get("type") not in MODELS:
        raise ValueError(f"config: expected a model definition with 'type' among {tuple(MODELS)}, got {config!r}")
    fields = {k: _decode(v) for k, v in config.items() if k != "type"}
    return MODELS[config["type"]](**fields)


def _net_input_size(net: RNN, params: Any) -> int:
    first = params.cells[0][0] if isinstance(params, WithInitial) else params[0][0]
    return input_size(net.step_cell, first)


def init_args(model: Any, params: Any) -> tuple[int, ...]:
    """The arguments after the key of ``model.init`` that build params of the shapes of ``params``.

    Raises:
        ValueError: ``model.init(key, *args)`` would build params of another structure or shape.
    """
    if isinstance(model, RNN):
        args: tuple[int, ...] = (_net_input_size(model, params),)
    elif isinstance(model, FeedForward):
        args = (int(params[0].V.shape[1]),)
    elif isinstance(model, ManyToOne | ManyToMany | LanguageModel):
        args = () if model.vocab_size is not None else (_net_input_size(model.rnn, params.rnn),)
    elif isinstance(model, OneToMany):
        by_state = params.condition is not None
        args = (
            int(params.condition.V.shape[1]) if by_state else _net_input_size(model.rnn, params.rnn) - model.embed_dim,
        )
    elif isinstance(model, Seq2Seq):
        args = ()
    else:
        raise ValueError(f"model: expected one of {tuple(MODELS)}, got {describe(model)}")
    built = jax.eval_shape(lambda: model.init(jax.random.key(0), *args))
    shapes = jax.tree.map(lambda x: (tuple(x.shape), np.dtype(x.dtype).name), (built, params))
    if jax.tree.structure(built) != jax.tree.structure(params) or shapes[0] != shapes[1]:
        raise ValueError(
            f"params: expected the params of {type(model).__name__}.init(key, *{args}), got others (another model's "
            f"or input size's); {json.dumps(to_config(model))[:200]}"
        )
    return args
