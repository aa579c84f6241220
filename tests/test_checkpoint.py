"""Checkpoints: round trips, keep-last-N, and clear errors instead of silent fresh starts."""

from __future__ import annotations

import shutil

import chex
import jax
import jax.numpy as jnp
import pytest

import rnnjax as rj
from rnnjax.checkpoint import CheckpointError, Checkpoints
from rnnjax.train import TrainState


def state(seed: int = 0) -> TrainState:
    params = rj.models.ManyToOne(rj.RNN(cell="lstm", hidden_size=4), 2).init(jax.random.key(seed), 3)
    return TrainState.create(params, rj.train.optimizer("adam", 1e-3))


def test_round_trip_keeps_structure_values_and_config(tmp_path):
    s = state()._replace(step=jnp.array(7, jnp.int32))
    with Checkpoints(tmp_path) as ckpt:
        ckpt.save(7, s, {"cell": "lstm", "sizes": [1, 2]})
    with Checkpoints(tmp_path) as ckpt:
        restored, config = ckpt.restore(state(seed=1))
    chex.assert_trees_all_equal(restored, s)
    assert type(restored.params.rnn[0][0]).__name__ == "LSTMParams"
    assert config == {"cell": "lstm", "sizes": [1, 2]}


def test_keeps_the_last_n(tmp_path):
    with Checkpoints(tmp_path, keep=2) as ckpt:
        for step in (1, 2, 3, 4):
            ckpt.save(step, state(step))
        assert ckpt.steps == [3, 4] and ckpt.latest_step == 4
        restored, _ = ckpt.restore(state(), step=3)
    chex.assert_trees_all_equal(restored.params, state(3).params)


def test_missing_and_corrupt_checkpoints_raise(tmp_path):
    with Checkpoints(tmp_path / "empty") as ckpt, pytest.raises(CheckpointError, match="no checkpoint in"):
        ckpt.restore(state())
    with Checkpoints(tmp_path / "a") as ckpt:
        ckpt.save(1, state())
        with pytest.raises(CheckpointError, match=r"no checkpoint for step 5 .* saved steps: \[1\]"):
            ckpt.restore(state(), step=5)
        other = TrainState.create(rj.models.ManyToOne(rj.RNN(cell="gru", hidden_size=4), 2).init(jax.random.key(0), 3),
                                  rj.train.optimizer("adam", 1e-3))  # fmt: skip
        with pytest.raises(CheckpointError, match="could not be restored"):
            ckpt.restore(other)
    shutil.rmtree(tmp_path / "a" / "1" / "state")
    with Checkpoints(tmp_path / "a") as ckpt, pytest.raises(CheckpointError, match="could not be restored"):
        ckpt.restore(state())


def test_keep_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="keep: expected at least 1"):
        Checkpoints(tmp_path, keep=0)
