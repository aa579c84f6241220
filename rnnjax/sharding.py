"""Data-parallel training on ``jax.sharding``: the batch split over a mesh's ``data`` axis, params replicated, or
split over its ``model`` axis on the gate dimension.

Nothing here is an engine of its own. A :class:`jax.sharding.Mesh` names the devices; ``NamedSharding`` says
where each array lives; ``jax.jit`` compiles the same pure train step for those placements (XLA inserts the
all-reduce of the gradients over ``data``). ``fit(..., mesh=mesh)`` places the state and every batch with
the functions below, and ``make_train_step(..., mesh=mesh)`` pins the same placements inside the step, so a
step jitted by hand shards the same way::

    mesh = rj.sharding.data_mesh()                         # every device on the "data" axis
    train_step = rj.train.make_train_step(loss_fn, tx, mesh=mesh)
    state, history = rj.train.fit(state, train_step, data, 1000, key=key, mesh=mesh)

With ``data_mesh(model=m)`` for ``m > 1`` the state is not replicated but split ``m`` ways over the ``model`` axis
on its leading axis, where that divides: the gate dimension of ``U: (g*h, i)``, ``W: (g*h, h)`` and ``b: (g*h,)``
(and Adam's moments with them), so each device holds ``1/m`` of every cell's weights, for hidden sizes whose
weights and optimiser state do not fit on one device. XLA (GSPMD) gathers what each step needs; it is the same
computation, with more communication (every step's ``h`` is gathered), so it pays only when memory forces it.

On one CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before jax is imported) makes four
devices to try it with; the tests run that way in a subprocess.

What scales: the batch (each device runs its rows' whole time loop; only the gradients cross devices, once a
step), and independent sequences. What does not: the time loop itself, which is sequential within a sequence
(the associative scan of the linear-recurrence cells, ``impl="associative"``, parallelises over time on one
device; splitting time across devices is not built).
"""

from __future__ import annotations

import os
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
    "constrain_state",
    "data_mesh",
    "initialize",
    "place_state",
    "replicate",
    "replicated",
    "shard_batch",
    "state_shardings",
]

DATA, MODEL = "data", "model"
"""The mesh's axis names: the batch is split over ``data``; the params over ``model`` (module docstring)."""


def initialize() -> bool:
    """Starts multi-host JAX, ``jax.distributed.initialize``, when the environment asks for it; returns whether it
    runs. Call it first in a script, before anything else touches JAX; every process of the job runs the same
    script, and ``data_mesh()`` then spans the devices of all of them.

    The environment asks in one of two ways:

    - ``JAX_COORDINATOR_ADDRESS=host:port``, ``JAX_NUM_PROCESSES=n`` and ``JAX_PROCESS_ID=i`` (0 to n - 1): the
      coordinator (process 0's host) and this process's place, set by hand or by a launcher;
    - ``RNNJAX_DISTRIBUTED=1``: JAX finds them itself, on the clusters it knows (Slurm, Open MPI, Kubernetes,
      Cloud TPU pod slices).

    With neither (one host, however many devices it has, a multi-GPU node included) it does nothing and returns
    False. A second call returns True and does nothing.

    Raises:
        ValueError: ``JAX_COORDINATOR_ADDRESS`` without a valid ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``.
    """
    if jax.distributed.is_initialized():
        return True
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address:
        count, index = os.environ.get("JAX_NUM_PROCESSES", ""), os.environ.get("JAX_PROCESS_ID", "")
        if not (count.isdigit() and index.isdigit() and int(index) < int(count)):
            raise ValueError(
                f"JAX_COORDINATOR_ADDRESS={address!r}: expected JAX_NUM_PROCESSES=n and JAX_PROCESS_ID=i with "
                f"0 <= i < n beside it, got JAX_NUM_PROCESSES={count!r}, JAX_PROCESS_ID={index!r}"
            )
        jax.distributed.initialize(address, int(count), int(index))
        return True
    if os.environ.get("RNNJAX_DISTRIBUTED") == "1":
        jax.distributed.initialize()
        return True
    return False


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

    Under multi-host JAX (:func:`initialize`, ``jax.process_count() > 1``) each process passes its own rows, the
    part of the global batch that its devices hold (``jax.make_array_from_process_local_data``): the global batch
    is their concatenation in process order, and ``data(step)`` of each process gives its share.

    Raises:
        ValueError: an array whose (global) leading axis does not divide evenly over ``data``, named by its path.
    """
    size = check_mesh(mesh).shape[DATA]
    processes = jax.process_count()

    def place(path, x):
        if not _is_array(x):
            return x
        if np.ndim(x) == 0:
            return jax.device_put(x, replicated(mesh))
        if (np.shape(x)[0] * processes) % size:
            rows = "" if processes == 1 else f" ({processes} processes, each with its own rows)"
            raise ValueError(
                f"batch{jax.tree_util.keystr(path)}: expected a leading (batch) axis divisible by the {size} "
                f"devices of the mesh's {DATA!r} axis{rows}, got shape {tuple(np.shape(x))}"
            )
        if processes > 1:
            return jax.make_array_from_process_local_data(batch_sharding(mesh), np.asarray(x))
        return jax.device_put(x, batch_sharding(mesh))

    return jax.tree_util.tree_map_with_path(place, batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array of ``tree`` (the params, the optimiser state, a ``TrainState``) copied whole to every device."""
    sharding = replicated(check_mesh(mesh))
    return jax.tree.map(lambda x: jax.device_put(x, sharding) if _is_array(x) else x, tree)


def state_shardings(tree: Any, mesh: Mesh) -> Any:
    """Where each array of ``tree`` (the params, the optimiser state, a ``TrainState``) lives: replicated, but
    where the mesh's ``model`` axis has more than one device, an array whose leading axis it divides is split
    over it (the gate dimension of ``U``, ``W`` and ``b``; module docstring). Non-arrays stay as they are."""
    size = check_mesh(mesh).shape.get(MODEL, 1)
    whole, split = replicated(mesh), NamedSharding(mesh, PartitionSpec(MODEL))

    def where(x: Any) -> Any:
        if not (_is_array(x) or isinstance(x, jax.ShapeDtypeStruct)):
            return x
        return split if size > 1 and np.ndim(x) and np.shape(x)[0] % size == 0 else whole

    return jax.tree.map(where, tree)


def place_state(tree: Any, mesh: Mesh) -> Any:
    """Every array of ``tree`` placed by :func:`state_shardings`: replicated, or split over ``model``."""
    return jax.tree.map(lambda x, s: jax.device_put(x, s) if _is_array(x) else x, tree, state_shardings(tree, mesh))


def constrain_state(tree: Any, mesh: Mesh) -> Any:
    """Inside ``jit``: every array of ``tree`` pinned where :func:`state_shardings` places it."""
    return jax.tree.map(
        lambda x, s: jax.lax.with_sharding_constraint(x, s) if hasattr(x, "ndim") else x,
        tree, state_shardings(jax.tree.map(_abstract, tree), mesh),
    )  # fmt: skip


def _abstract(x: Any) -> Any:
    return jax.ShapeDtypeStruct(x.shape, x.dtype) if hasattr(x, "ndim") else x


def constrain(tree: Any, sharding: NamedSharding) -> Any:
    """Inside ``jit``: every array of ``tree`` placed by ``sharding`` (``jax.lax.with_sharding_constraint``);
    0-d arrays are replicated."""
    whole = NamedSharding(sharding.mesh, PartitionSpec())

    def pin(x):
        if not hasattr(x, "ndim"):
            return x
        return jax.lax.with_sharding_constraint(x, sharding if x.ndim else whole)

    return jax.tree.map(pin, tree)
