"""rnnjax: recurrent networks as pure JAX functions, and the tools to watch them learn.

::

    import rnnjax as rj

    cell = rj.cells.lstm(hidden_size=64)
    params = cell.init(key, input_size)
    carry, ys = rj.unroll(cell, params, xs, lengths=lengths)     # xs: (batch, time, features)

    net = rj.RNN(cell="gru", hidden_size=64, num_layers=2, bidirectional=True)
    ys, finals = net.apply(net.init(key, input_size), xs, lengths=lengths)
"""

from rnnjax import (
    analyse,
    analysis,
    baselines,
    bptt,
    cells,
    checkpoint,
    checks,
    classify,
    data,
    decoding,
    experiment,
    init,
    interop,
    losses,
    metrics,
    models,
    plots,
    precision,
    runlog,
    runs,
    sharding,
    train,
)
from rnnjax.cells import Cell
from rnnjax.network import RNN
from rnnjax.scan import unroll

__version__ = "0.1.0"
__all__ = [
    "RNN",
    "Cell",
    "analyse",
    "analysis",
    "baselines",
    "bptt",
    "cells",
    "checkpoint",
    "checks",
    "classify",
    "data",
    "decoding",
    "experiment",
    "init",
    "interop",
    "losses",
    "metrics",
    "models",
    "plots",
    "precision",
    "runlog",
    "runs",
    "sharding",
    "train",
    "unroll",
]
