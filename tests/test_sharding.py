"""rj.sharding and fit(mesh=): data parallelism on jax.sharding. The multi-device checks run in a child process
with four host devices (XLA_FLAGS=--xla_force_host_platform_device_count=4, which must be set before jax starts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import rnnjax as rj

FOUR_DEVICES = r"""
import tempfile
from pathlib import Path

import jax
import numpy as np

import rnnjax as rj
from rnnjax.data import adding_problem

assert len(jax.devices()) == 4, jax.devices()
model = rj.models.ManyToOne(rj.RNN(cell="gru", hidden_size=8), output_size=1)
tx = rj.train.optimizer("adam", 1e-2, clip_norm=1.0)
state = rj.train.TrainState.create(model.init(jax.random.key(0), 2), tx)


def data(step):
    return adding_problem(np.random.default_rng([0, step]), 8, 12)


def loss_fn(params, batch, key):
    xs, ys = batch
    return rj.losses.mse(model.apply(params, xs), ys), {}


def close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=2e-6)


kw = dict(key=jax.random.key(1), progress=False)
one, one_log = rj.train.fit(state, rj.train.make_train_step(loss_fn, tx), data, 9, **kw)
four = rj.sharding.data_mesh()
root = Path(tempfile.mkdtemp())
sharded, log = rj.train.fit(state, rj.train.make_train_step(loss_fn, tx, mesh=four), data, 6, mesh=four,
                            run_dir=root / "four", checkpoint_every=3, **kw)
for x in jax.tree.leaves(sharded.params):  # every param a whole copy on all four devices
    assert x.sharding.is_fully_replicated and len(x.sharding.device_set) == 4, x.sharding
six, _ = rj.train.fit(state, rj.train.make_train_step(loss_fn, tx), data, 6, **kw)
close(sharded.params, six.params)
np.testing.assert_allclose([r["loss"] for r in log], [r["loss"] for r in one_log[:6]], rtol=2e-5)

# The checkpoint written on four devices restores on one, and a run resumed on two reaches the one-device run.
with rj.checkpoint.Checkpoints(root / "four" / "checkpoints") as ckpt:
    restored, _ = ckpt.restore(state)
close(restored.params, sharded.params)
assert len(jax.tree.leaves(restored.params)[0].sharding.device_set) == 1
two = rj.sharding.data_mesh(jax.devices()[:2])
resumed, _ = rj.train.fit(state, rj.train.make_train_step(loss_fn, tx, mesh=two), data, 9, mesh=two,
                          run_dir=root / "four", resume=True, **kw)
assert len(jax.tree.leaves(resumed.params)[0].sharding.device_set) == 2
close(resumed.params, one.params)

try:
    rj.sharding.shard_batch((np.zeros((6, 3)), np.zeros((8,))), four)
except ValueError as e:
    assert "batch[0]: expected a leading (batch) axis divisible by the 4 devices" in str(e), e
else:
    raise AssertionError("a batch of 6 rows was split over 4 devices")
mesh = rj.sharding.data_mesh(model=2)
assert dict(mesh.shape) == {"data": 2, "model": 2}

# data 2 x model 2: the gate dimension of U, W, b (and Adam's moments) split two ways, the same params after 6 steps;
# its checkpoint restores whole on one device.
split, _ = rj.train.fit(state, rj.train.make_train_step(loss_fn, tx, mesh=mesh), data, 6, mesh=mesh,
                        run_dir=root / "model", checkpoint_every=6, **kw)
halves = 0
for x in jax.tree.leaves((split.params, split.opt_state)):
    if x.ndim and x.shape[0] % 2 == 0:  # U (24, 2), W (24, 8), b (24,), b_hn (8,) and their Adam moments
        assert x.sharding.spec == jax.sharding.PartitionSpec("model"), (x.shape, x.sharding)
        assert x.addressable_shards[0].data.shape[0] == x.shape[0] // 2, (x.shape, x.sharding)
        halves += 1
    else:  # the head (1, 8) and (1,), the step counts
        assert x.sharding.is_fully_replicated, (x.shape, x.sharding)
assert halves == 3 * 4, halves  # params, mu, nu
close(split.params, six.params)
with rj.checkpoint.Checkpoints(root / "model" / "checkpoints") as ckpt:
    restored, _ = ckpt.restore(state)
close(restored.params, six.params)
print("ok")
"""


def test_four_devices_train_as_one_and_their_checkpoint_restores_on_one_and_two():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", FOUR_DEVICES], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


PROCESS = r"""
import sys

import rnnjax as rj

assert rj.sharding.initialize() == (sys.argv[1] == "many")  # before anything touches JAX
import jax
import numpy as np

from rnnjax.data import adding_problem

model = rj.models.ManyToOne(rj.RNN(cell="gru", hidden_size=8), output_size=1)
tx = rj.train.optimizer("adam", 1e-2, clip_norm=1.0)
state = rj.train.TrainState.create(model.init(jax.random.key(0), 2), tx)
i, n = jax.process_index(), jax.process_count()


def data(step):  # each process its own rows of the global batch of 8
    xs, ys = adding_problem(np.random.default_rng([0, step]), 8, 12)
    return xs[i * 8 // n : (i + 1) * 8 // n], ys[i * 8 // n : (i + 1) * 8 // n]


def loss_fn(params, batch, key):
    return rj.losses.mse(model.apply(params, batch[0]), batch[1]), {}


mesh = rj.sharding.data_mesh()
_, log = rj.train.fit(state, rj.train.make_train_step(loss_fn, tx, mesh=mesh), data, 4, key=jax.random.key(1),
                      progress=False, mesh=mesh)
print(n, len(jax.devices()), [r["loss"] for r in log])
"""


def test_two_processes_on_jax_distributed_train_as_one():
    """rj.sharding.initialize from JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID: two processes of one
    device each, a mesh over both, each feeding its half of the batch, log the losses of one process."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAX_") and k != "XLA_FLAGS"}
    one = subprocess.run([sys.executable, "-c", PROCESS, "one"], capture_output=True, text=True, env=base, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    env = {**base, "JAX_COORDINATOR_ADDRESS": f"localhost:{port}", "JAX_NUM_PROCESSES": "2", "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS, "many"], env={**env, "JAX_PROCESS_ID": str(i)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    single = one.stdout.strip().splitlines()[-1]
    assert single.startswith("1 1 [")
    for out, _ in outs:
        many = out.strip().splitlines()[-1]
        assert many.startswith("2 2 [")
        np.testing.assert_allclose(eval(many[4:]), eval(single[4:]), rtol=2e-5)  # noqa: S307


@pytest.mark.parametrize(
    "env, match",
    [
        ({"JAX_COORDINATOR_ADDRESS": "localhost:1"}, "expected JAX_NUM_PROCESSES=n and JAX_PROCESS_ID=i"),
        ({"JAX_COORDINATOR_ADDRESS": "localhost:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "0 <= i < n"),
    ],
)
def test_initialize_names_what_the_environment_lacks(env, match, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match=match):
        rj.sharding.initialize()


def test_initialize_does_nothing_on_one_host(monkeypatch):
    for k in ("JAX_COORDINATOR_ADDRESS", "RNNJAX_DISTRIBUTED"):
        monkeypatch.delenv(k, raising=False)
    assert rj.sharding.initialize() is False


def test_a_mesh_of_one_device_changes_nothing():
    from rnnjax.data import adding_problem

    model = rj.models.ManyToOne(rj.RNN(cell="rnn", hidden_size=4), output_size=1)
    tx = rj.train.optimizer("sgd", 0.1)
    state = rj.train.TrainState.create(model.init(jax.random.key(0), 2), tx)

    def loss_fn(params, batch, key):
        return rj.losses.mse(model.apply(params, batch[0]), batch[1]), {}

    def data(step):
        return adding_problem(np.random.default_rng([1, step]), 4, 6)

    mesh = rj.sharding.data_mesh(jax.devices()[:1])
    plain, _ = rj.train.fit(
        state, rj.train.make_train_step(loss_fn, tx), data, 3, key=jax.random.key(0), progress=False
    )
    meshed, _ = rj.train.fit(state, rj.train.make_train_step(loss_fn, tx, mesh=mesh), data, 3, key=jax.random.key(0),
                             progress=False, mesh=mesh)  # fmt: skip
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(meshed.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: rj.sharding.data_mesh([]), "devices: expected at least one device, got none"),
        (lambda: rj.sharding.data_mesh(model=len(jax.devices()) + 1), "model: expected a divisor of the"),
        (lambda: rj.sharding.check_mesh("data"), r"mesh: expected a jax.sharding.Mesh \(rj.sharding.data_mesh\(\)\)"),
        (
            lambda: rj.sharding.check_mesh(jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("batch",))),
            r"mesh: expected an axis named 'data' to split the batch over, got \('batch',\)",
        ),
        (lambda: rj.train.make_train_step(lambda p, b, k: (0.0, {}), rj.train.optimizer("sgd", 0.1), mesh=3), "mesh:"),
    ],
)
def test_sharding_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
