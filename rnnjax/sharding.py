"""Data-parallel training on ``jax.sharding``: the batch split over a mesh's ``data`` axis, params replicated.

Nothing here is an engine of its own. A :class:`jax.sharding.Mesh` names the devices; ``NamedSharding`` says
where each array lives; ``jax.jit`` compiles the same pure train step for those placements (XLA inserts the
all-reduce of the gradients over ``data``). ``fit(..., mesh=mesh)`` places the state and every batch with
the functions below, and ``make_train_step(..., mesh=mesh)`` pins the same placements inside the step, so a
step jitted by hand shards the same way::

    mesh = rj.sharding.data_mesh()                         # every device on the "data" axis
    train_step = rj.train.make_train_step(loss_fn, tx, mesh=mesh)
    state, history = rj.train.fit(state, train_step, data, 1000, key=key, mesh=mesh)

On one CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before jax is imported) makes four
devices to try it with; the tests run that way in a subprocess.

What scales: the batch (each device runs its rows' whole time loop; only the gradients cross devices, once a
step), and independent sequences. What does not: the time loop itself, which is sequential within a sequence
(the associative scan of the linear-recurrence cells, ``impl="associative"``, parallelises over time on one
device; splitting time across devices is not built).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rnnjax.checks import check_positive_int, describe

__all__ = [
    "DATA",
    "MODEL",
    "batch_sharding",
    "check_mesh",
    "constrain",
    "data_mesh",
    "replicate",
    "replicated",
    "shard_batch",
]

DATA, MODEL = "data", "model"
"""The mesh's axis names: the batch is split over ``data``; ``model`` is for sharding params (size 1 here)."""


def data_mesh(devices: Sequence[jax.Device] | None = None, *, model: int = 1) -> Mesh:
    """A mesh of ``devices`` (default: ``jax.devices()``) with axes ``("data", "model")``, of shape
    ``(len(devices) // model, model)``.

    Raises:
        ValueError: no devices, or ``model`` that does not divide their number.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices: expected at least one device, got none")
    check_positive_int(model, "model")
    if len(devices) % model:
        raise ValueError(f"model: expected a divisor of the {len(devices)} devices, got {model}")
    return Mesh(np.asarray(devices).reshape(len(devices) // model, model), (DATA, MODEL))


def check_mesh(mesh: Any) -> Mesh:
    """``mesh`` if it is a :class:`jax.sharding.Mesh` with a ``data`` axis; else a ValueError that says so."""
    if not isinstance(mesh, Mesh):
        raise ValueError(f"mesh: expected a jax.sharding.Mesh (rj.sharding.data_mesh()), got {describe(mesh)}")
    if DATA not in mesh.axis_names:
        raise ValueError(f"mesh: expected an axis named {DATA!r} to split the batch over, got {mesh.axis_names}")
    return mesh


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The leading (batch) axis split over ``data``, the rest whole on each device."""
    return NamedSharding(mesh, PartitionSpec(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    """A whole copy on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Every array of ``batch`` (a pytree) with its leading axis split over the mesh's ``data`` axis;
    scalars (0-d) are replicated, ``None`` stays ``None``.

    Raises:
        ValueError: an array whose leading axis does not divide evenly over ``data``, named by its path.
    """
    size = check_mesh(mesh).shape[DATA]

    def place(path, x):
        if not _is_array(x):
            return x
        if np.ndim(x) == 0:
            return jax.device_put(x, replicated(mesh))
        if np.shape(x)[0] % size:
            raise ValueError(
                f"batch{jax.tree_util.keystr(path)}: expected a leading (batch) axis divisible by the {size} "
                f"devices of the mesh's {DATA!r} axis, got shape {tuple(np.shape(x))}"
            )
        return jax.device_put(x, batch_sharding(mesh))

    return jax.tree_util.tree_map_with_path(place, batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array of ``tree`` (the params, the optimiser state, a ``TrainState``) copied whole to every device."""
    sharding = replicated(check_mesh(mesh))
    return jax.tree.map(lambda x: jax.device_put(x, sharding) if _is_array(x) else x, tree)


def constrain(tree: Any, sharding: NamedSharding) -> Any:
    """Inside ``jit``: every array of ``tree`` placed by ``sharding`` (``jax.lax.with_sharding_constraint``);
    0-d arrays are replicated."""
    whole = NamedSharding(sharding.mesh, PartitionSpec())

    def pin(x):
        if not hasattr(x, "ndim"):
            return x
        return jax.lax.with_sharding_constraint(x, sharding if x.ndim else whole)

    return jax.tree.map(pin, tree)
