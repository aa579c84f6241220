"""Checkpoints: round trips, keep-last-N, saves killed midway, and clear errors instead of silent fresh starts."""

from __future__ import annotations

import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import Killed

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


@pytest.mark.parametrize("keep", [0, -1, True, 2.0, "3"])
def test_keep_must_be_a_positive_int(tmp_path, keep):
    with pytest.raises(ValueError, match="keep: expected a positive int"):
        Checkpoints(tmp_path, keep=keep)


def test_steps_must_be_non_negative_ints(tmp_path):
    with Checkpoints(tmp_path) as ckpt:
        for step in (-1, 1.5, True, jnp.zeros(2, jnp.int32), jnp.float32(1)):
            with pytest.raises(ValueError, match="step: expected an int >= 0"):
                ckpt.save(step, state())
        with pytest.raises(ValueError, match="step: expected an int >= 0"):
            ckpt.restore(state(), step="1")
        s = state()._replace(step=jnp.array(3, jnp.int32))
        ckpt.save(s.step, s)  # a 0-d integer array, as TrainState.step, is a step
        ckpt.save(np.int64(4), s)
        assert ckpt.steps == [3, 4]


def test_a_non_finite_state_is_never_saved(tmp_path):
    s = state()
    bad = s._replace(params=jax.tree.map(lambda x: x.at[0].set(jnp.inf), s.params))
    with Checkpoints(tmp_path) as ckpt:
        with pytest.raises(ValueError, match=r"state.*expected finite values, got inf"):
            ckpt.save(1, bad)
        assert ckpt.steps == []


def test_a_save_killed_midway_is_never_restored_and_can_be_removed(tmp_path, kill_saves):
    with Checkpoints(tmp_path) as ckpt:
        ckpt.save(1, state(1))
        kill_saves()
        with pytest.raises(Killed):
            ckpt.save(2, state(2))
        kill_saves(False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2.orbax-checkpoint-tmp"]  # orbax 0.12's name
    with Checkpoints(tmp_path) as ckpt:
        assert ckpt.steps == [1] and ckpt.unfinished() == [tmp_path / "2.orbax-checkpoint-tmp"]
        restored, _ = ckpt.restore(state())
        chex.assert_trees_all_equal(restored, state(1))
        assert ckpt.remove_unfinished() == [tmp_path / "2.orbax-checkpoint-tmp"]
        assert ckpt.unfinished() == []
        ckpt.save(2, state(2))
        assert ckpt.steps == [1, 2]
        ckpt.clear()
        assert ckpt.steps == [] and ckpt.latest_step is None
