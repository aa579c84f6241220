"""Training: the pure train step, fit with logs, resumption and the NaN guard."""

from __future__ import annotations

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import Killed

import rnnjax as rj
from rnnjax.checkpoint import CheckpointError
from rnnjax.data import adding_problem
from rnnjax.train import TrainingDiverged, TrainState

T, BATCH = 8, 16
MODEL = rj.models.ManyToOne(rj.RNN(cell="gru", hidden_size=8), output_size=1)


def data(step: int):
    return adding_problem(np.random.default_rng([0, step]), BATCH, T)


def loss_fn(params, batch, key):
    xs, ys = batch
    pred = MODEL.apply(params, xs)
    return rj.losses.mse(pred, ys), {"mean_prediction": pred.mean()}


def make(lr=1e-2, **kw):
    tx = rj.train.optimizer("adam", lr, clip_norm=1.0)
    params = MODEL.init(jax.random.key(0), 2)
    return TrainState.create(params, tx), rj.train.make_train_step(loss_fn, tx, **kw)


def test_one_step_changes_every_parameter():
    state, step = make()
    new, metrics = jax.jit(step)(state, data(0), jax.random.key(1))
    assert int(new.step) == 1
    for path, (a, b) in zip(
        jax.tree_util.tree_leaves_with_path(state.params),
        zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params)),
    ):
        assert not np.array_equal(a, b), f"{jax.tree_util.keystr(path[0])} did not change"
    assert set(metrics) == {"loss", "grad_norm", "mean_prediction"}


def test_train_step_is_optax_on_the_gradient():
    state, step = make()
    batch = data(0)
    grads = jax.grad(lambda p: loss_fn(p, batch, None)[0])(state.params)
    tx = rj.train.optimizer("adam", 1e-2, clip_norm=1.0)
    updates, _ = tx.update(grads, state.opt_state, state.params)
    expected = optax.apply_updates(state.params, updates)
    new, metrics = step(state, batch, jax.random.key(1))
    chex.assert_trees_all_close(new.params, expected, atol=1e-7)
    np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-6)


def test_group_norms_cover_every_array_and_make_up_the_global_norm():
    state, step = make(group_norms=True)
    _, metrics = step(state, data(0), jax.random.key(1))
    groups = {k: v for k, v in metrics.items() if k.startswith("grad_norm/")}
    assert len(groups) == len(jax.tree.leaves(state.params))
    assert "grad_norm/head.V" in groups and "grad_norm/rnn.0.0.W" in groups
    np.testing.assert_allclose(np.sqrt(sum(v**2 for v in groups.values())), metrics["grad_norm"], rtol=1e-5)


def test_clipping_bounds_the_update():
    tx = rj.train.optimizer("sgd", 1.0, clip_norm=0.5)
    params = {"w": jnp.ones(4)}
    updates, _ = tx.update({"w": jnp.full(4, 10.0)}, tx.init(params), params)
    np.testing.assert_allclose(optax.tree.norm(updates), 0.5, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name="lbfgs"), "name: expected one of"),
        (dict(schedule="linear"), "schedule: expected"),
        (dict(schedule="cosine"), "total_steps: expected a positive int"),
    ],
)
def test_optimizer_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rj.train.optimizer(**kwargs)


def test_schedules_reach_their_ends():
    tx = rj.train.optimizer("sgd", 1.0, clip_norm=None, schedule="warmup_cosine", total_steps=10, warmup_steps=5)
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    sizes = []
    for _ in range(10):
        updates, state = tx.update({"w": jnp.ones(())}, state, params)
        sizes.append(-float(updates["w"]))
    assert sizes[0] == 0.0 and max(sizes) == pytest.approx(1.0) and sizes[-1] < 0.2


def test_fit_logs_every_step_and_evaluations(tmp_path):
    state, step = make()
    eval_fn = jax.jit(lambda p: {"loss": loss_fn(p, data(10**6), None)[0]})
    final, history = rj.train.fit(
        state, step, data, 12, key=jax.random.key(1), run_dir=tmp_path, eval_fn=eval_fn, eval_every=5, progress=False
    )
    assert int(final.step) == 12
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == history
    assert [r["step"] for r in records] == list(range(1, 13))
    assert [r["step"] for r in records if "eval/loss" in r] == [5, 10, 12]
    steps, losses = rj.train.history_array(history, "loss")
    assert steps.tolist() == list(range(1, 13)) and np.isfinite(losses).all()


def test_fit_drives_the_loss_down():
    state, step = make()
    _, history = rj.train.fit(state, step, data, 300, key=jax.random.key(1), progress=False)
    _, losses = rj.train.history_array(history, "loss")
    assert losses[-20:].mean() < 0.5 * losses[:20].mean()


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    state, step = make()
    key = jax.random.key(1)
    config = {"lr": 1e-2, "cell": "gru"}
    full, full_history = rj.train.fit(
        state, step, data, 9, key=key, run_dir=tmp_path / "full", checkpoint_every=3, config=config, progress=False
    )
    # Interrupted: stops at step 5 (last checkpoint at 3, with steps 4 and 5 logged after it) ...
    rj.train.fit(
        state, step, data, 5, key=key, run_dir=tmp_path / "cut", checkpoint_every=3, config=config, progress=False
    )
    # ... and resumed from a fresh state of the same structure.
    fresh, _ = make()
    fresh = fresh._replace(params=jax.tree.map(jnp.zeros_like, fresh.params))
    resumed, history = rj.train.fit(
        fresh, step, data, 9, key=key, run_dir=tmp_path / "cut", checkpoint_every=3, resume=True, config=config,
        progress=False,
    )  # fmt: skip
    chex.assert_trees_all_equal(resumed, full)
    assert [r["loss"] for r in history] == [r["loss"] for r in full_history]
    logged = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 10))


def test_resume_refuses_what_it_cannot_honour(tmp_path):
    state, step = make()
    key = jax.random.key(1)
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        rj.train.fit(state, step, data, 4, key=key, run_dir=tmp_path / "none", resume=True, progress=False)
    rj.train.fit(state, step, data, 2, key=key, run_dir=tmp_path / "a", config={"lr": 1}, progress=False)
    with pytest.raises(CheckpointError, match=r"other values of \['lr'\]"):
        rj.train.fit(
            state, step, data, 4, key=key, run_dir=tmp_path / "a", resume=True, config={"lr": 2}, progress=False
        )
    with pytest.raises(CheckpointError, match="earlier run: pass resume=True to continue it or overwrite=True"):
        rj.train.fit(state, step, data, 2, key=key, run_dir=tmp_path / "a", config={"lr": 1}, progress=False)
    _, history = rj.train.fit(
        state, step, data, 2, key=key, run_dir=tmp_path / "a", config={"lr": 1}, progress=False, overwrite=True
    )
    assert [r["step"] for r in history] == [1, 2]
    with pytest.raises(ValueError, match="run_dir: expected a directory"):
        rj.train.fit(state, step, data, 4, key=key, resume=True, progress=False)


def test_nan_guard_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    state, step = make()

    def poisoned(s):
        xs, ys = data(s)
        if s == 6:  # the 7th step sees a NaN input
            xs = xs.copy()
            xs[0, 0, 0] = np.nan
        return xs, ys

    with pytest.raises(TrainingDiverged, match=r"step 7: loss = nan.*last good checkpoint: step 6"):
        rj.train.fit(
            state, step, poisoned, 10, key=jax.random.key(1), run_dir=tmp_path, checkpoint_every=2, progress=False
        )
    with rj.checkpoint.Checkpoints(tmp_path / "checkpoints") as ckpt:
        assert ckpt.latest_step == 6
        restored, _ = ckpt.restore(state)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(restored))
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert last == {"step": 7, "diverged": "loss = nan"}


def test_evaluate_averages_over_batches():
    out = rj.train.evaluate(lambda p, b: {"x": b * p}, 2.0, [1.0, 2.0, 6.0])
    assert out == {"x": 6.0}
    with pytest.raises(ValueError, match="batches: expected at least one batch"):
        rj.train.evaluate(lambda p, b: {}, 1.0, [])


def poison(train_step, field, at):
    """``train_step`` whose new ``field`` (params or opt_state) is NaN from the state of step ``at`` on."""

    def step(state, batch, key):
        new, metrics = train_step(state, batch, key)
        floating = lambda x: jnp.issubdtype(x.dtype, jnp.floating)  # noqa: E731
        bad = jax.tree.map(lambda x: jnp.where(new.step >= at, jnp.nan, x) if floating(x) else x, getattr(new, field))
        return new._replace(**{field: bad}), metrics

    return step


def strict_records(path):
    def refuse(name):
        raise AssertionError(f"{path} holds {name}, which is not JSON")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("field", ["params", "opt_state"])
def test_nan_guard_checks_the_updated_state_before_it_is_kept(tmp_path, field):
    state, step = make()
    with pytest.raises(TrainingDiverged, match=rf"step 3: {field}: NaN or Inf.*last good checkpoint: step 2"):
        rj.train.fit(
            state, poison(step, field, 3), data, 6, key=jax.random.key(1), run_dir=tmp_path, checkpoint_every=1,
            progress=False,
        )  # fmt: skip
    with rj.checkpoint.Checkpoints(tmp_path / "checkpoints") as ckpt:
        assert ckpt.steps == [1, 2]
        restored, _ = ckpt.restore(state)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(restored))
    last = strict_records(tmp_path / "metrics.jsonl")[-1]
    assert last == {"step": 3, "diverged": f"{field}: NaN or Inf after the update"}


def test_nan_in_an_evaluation_is_divergence_and_the_log_stays_strict_json(tmp_path):
    state, step = make()
    calls = []

    def eval_fn(params):
        calls.append(1)
        return {"loss": 0.5 if len(calls) == 1 else float("nan")}

    with pytest.raises(TrainingDiverged, match=r"step 4: eval/loss = nan.*last good checkpoint: step 2"):
        rj.train.fit(
            state, step, data, 6, key=jax.random.key(1), run_dir=tmp_path, eval_fn=eval_fn, eval_every=2,
            checkpoint_every=2, progress=False,
        )  # fmt: skip
    records = strict_records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4] and records[1]["eval/loss"] == 0.5
    assert records[-1] == {"step": 4, "diverged": "eval/loss = nan"}
    with rj.checkpoint.Checkpoints(tmp_path / "checkpoints") as ckpt:
        assert ckpt.steps == [2]


def test_resume_drops_a_torn_last_log_line_and_refuses_damage_before_it(tmp_path):
    state, step = make()
    key = jax.random.key(1)
    rj.train.fit(state, step, data, 4, key=key, run_dir=tmp_path, checkpoint_every=2, progress=False)
    log = tmp_path / "metrics.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines) + '\n{"step": 5, "lo')  # killed while appending step 5
    with pytest.warns(RuntimeWarning, match="line 5: dropped an incomplete last record"):
        _, history = rj.train.fit(
            state, step, data, 6, key=key, run_dir=tmp_path, checkpoint_every=2, resume=True, progress=False
        )
    assert [r["step"] for r in history] == [1, 2, 3, 4, 5, 6]
    assert strict_records(log) == history
    log.write_text(log.read_text().replace('{"step": 3,', '{"step": 3, "loss": NaN, "x":'))
    with pytest.raises(rj.runlog.RunLogError, match=rf"{log}, line 3: not a record"):
        rj.train.fit(state, step, data, 8, key=key, run_dir=tmp_path, resume=True, progress=False)


def test_fit_refuses_a_run_dir_another_process_holds(tmp_path):
    state, step = make()
    key = jax.random.key(1)
    rj.train.fit(state, step, data, 2, key=key, run_dir=tmp_path, progress=False)
    before = (tmp_path / "metrics.jsonl").read_text()
    # The holder is this process through another open file: flock treats it as a second process;
    # tests/test_runlog.py holds the lock from a real second process.
    with rj.runlog.lock_run_dir(tmp_path), pytest.raises(rj.train.RunDirLocked, match=f"{tmp_path} is in use by"):
        rj.train.fit(state, step, data, 2, key=key, run_dir=tmp_path, overwrite=True, progress=False)
    assert (tmp_path / "metrics.jsonl").read_text() == before
    with rj.checkpoint.Checkpoints(tmp_path / "checkpoints") as ckpt:
        assert ckpt.steps == [2]


def test_divergence_before_the_first_checkpoint_leaves_a_directory_that_starts_afresh(tmp_path):
    state, step = make()
    key = jax.random.key(1)

    def poisoned(s):
        xs, ys = data(s)
        return (np.full_like(xs, np.nan), ys) if s == 1 else (xs, ys)

    with pytest.raises(TrainingDiverged, match="step 2: loss = nan; training stopped, no checkpoint saved yet"):
        rj.train.fit(state, step, poisoned, 6, key=key, run_dir=tmp_path, checkpoint_every=5, progress=False)
    with pytest.raises(CheckpointError, match="diverged at step 2, before the first save.*without resume=True"):
        rj.train.fit(state, step, data, 6, key=key, run_dir=tmp_path, resume=True, progress=False)
    _, history = rj.train.fit(state, step, data, 3, key=key, run_dir=tmp_path, progress=False)
    assert [r["step"] for r in history] == [1, 2, 3] == [r["step"] for r in strict_records(tmp_path / "metrics.jsonl")]


def test_a_checkpoint_save_killed_midway_is_cleaned_and_not_an_earlier_run(tmp_path, kill_saves):
    state, step = make()
    key = jax.random.key(1)
    kill_saves()
    with pytest.raises(Killed):
        rj.train.fit(state, step, data, 4, key=key, run_dir=tmp_path, checkpoint_every=2, progress=False)
    kill_saves(False)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["2.orbax-checkpoint-tmp"]
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        rj.train.fit(state, step, data, 4, key=key, run_dir=tmp_path, resume=True, progress=False)
    _, history = rj.train.fit(state, step, data, 4, key=key, run_dir=tmp_path, checkpoint_every=2, progress=False)
    assert len(history) == 4
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2", "4"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_steps=-1), "num_steps: expected an int >= 0"),
        (dict(num_steps=3.0), "num_steps: expected an int >= 0"),
        (dict(num_steps=True), "num_steps: expected an int >= 0"),
        (dict(checkpoint_every=-1), "checkpoint_every: expected an int >= 0"),
        (dict(checkpoint_every=1.5), "checkpoint_every: expected an int >= 0"),
        (dict(eval_every=True, eval_fn=lambda p: {}), "eval_every: expected an int >= 0"),
        (dict(keep=0), "keep: expected a positive int"),
        (dict(keep=2.0), "keep: expected a positive int"),
        (dict(eval_every=2), "eval_fn: expected a function for eval_every=2, got None"),
        (dict(eval_fn="loss"), "eval_fn: expected a function"),
        (dict(key=0), "key: expected a PRNG key"),
        (dict(key=jnp.zeros(2)), "key: expected a PRNG key"),
        (dict(data=[1, 2]), "data: expected a function"),
        (dict(train_step=None), "train_step: expected a function"),
        (dict(resume=True, overwrite=True), "overwrite: expected False with resume=True"),
    ],
)
def test_fit_argument_errors(tmp_path, kwargs, match):
    state, step = make()
    args = dict(train_step=step, data=data, num_steps=3, key=jax.random.key(1), run_dir=tmp_path) | kwargs
    with pytest.raises(ValueError, match=match):
        rj.train.fit(state, progress=False, **args)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_num_steps_before_the_start_is_an_error(tmp_path):
    state, step = make()
    key = jax.random.key(1)
    with pytest.raises(ValueError, match=r"num_steps: expected at least 5 \(state.step\), got 3"):
        rj.train.fit(state._replace(step=jnp.array(5, jnp.int32)), step, data, 3, key=key, progress=False)
    rj.train.fit(state, step, data, 6, key=key, run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"num_steps: expected at least 6 \(the step of the checkpoint in .*\), got 4"):
        rj.train.fit(state, step, data, 4, key=key, run_dir=tmp_path, resume=True, progress=False)
    final, history = rj.train.fit(state, step, data, 6, key=key, run_dir=tmp_path, resume=True, progress=False)
    assert int(final.step) == 6 and len(history) == 6  # resuming a finished run at its end is a no-op


def test_fit_fetches_the_metrics_every_log_every_steps_and_logs_every_step(monkeypatch):
    """The host does not wait for the device at every step: one transfer per ``log_every`` steps (and at the
    end), and the log is the same as with a transfer after every step."""
    state, step = make()
    histories = {}
    for log_every in (1, 10):
        calls = []
        real = jax.device_get
        monkeypatch.setattr(jax, "device_get", lambda x: (calls.append(1), real(x))[1])
        _, histories[log_every] = rj.train.fit(
            state, step, data, 25, key=jax.random.key(2), progress=False, log_every=log_every
        )
        monkeypatch.setattr(jax, "device_get", real)
        assert len(calls) == (25 if log_every == 1 else 3), log_every  # at steps 10, 20 and 25
    assert [r["step"] for r in histories[10]] == list(range(1, 26))
    assert histories[10] == histories[1]


def test_a_divergence_inside_a_window_is_found_at_its_step_and_nothing_after_it_is_kept(tmp_path):
    state, step = make()

    def poisoned(s):
        xs, ys = data(s)
        if s == 6:  # the 7th step, in the window of steps 6 to 10
            xs = xs.copy()
            xs[0, 0, 0] = np.nan
        return xs, ys

    with pytest.raises(TrainingDiverged, match=r"step 7: loss = nan.*no checkpoint saved yet"):
        rj.train.fit(state, step, poisoned, 12, key=jax.random.key(1), run_dir=tmp_path, log_every=5, progress=False)
    records = strict_records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6, 7] and records[-1]["diverged"] == "loss = nan"
    assert not any((tmp_path / "checkpoints").glob("[0-9]*"))
    with pytest.raises(ValueError, match="^log_every: expected a positive int"):
        rj.train.fit(state, step, data, 3, key=jax.random.key(1), log_every=0, progress=False)


def test_fit_compiles_its_step_once_for_many_calls(monkeypatch):
    """fit called again with the same train_step (runs in stages, benchmark rounds) reuses its compiled step."""
    model = rj.models.ManyToOne(rj.RNN(cell="rnn", hidden_size=3), output_size=1)
    tx = rj.train.optimizer("sgd", 1e-2)
    state = rj.train.TrainState.create(model.init(jax.random.key(0), 2), tx)
    traces = []

    def loss_fn(params, batch, key):
        traces.append(1)  # runs once per trace
        xs, ys = batch
        return rj.losses.mse(model.apply(params, xs), ys), {}

    step = rj.train.make_train_step(loss_fn, tx)
    data = lambda s: rj.data.adding_problem(np.random.default_rng(s), 2, 4)  # noqa: E731
    for stop in (2, 4, 6):
        state, _ = rj.train.fit(state, step, data, stop, key=jax.random.key(1), progress=False)
    assert len(traces) == 1


def test_project_params_ends_every_step_at_the_projection():
    """Projected gradient descent: after ``tx.update`` the params are ``project`` of where the plain step would
    have taken them, and the projection never runs without the params."""
    params = {"u": jnp.array([0.5, -2.0, 3.0]), "w": jnp.array([1.0])}
    grads = {"u": jnp.array([-1.0, 1.0, -1.0]), "w": jnp.array([2.0])}
    clip = lambda p: {"u": jnp.clip(p["u"], -1.0, 1.0), "w": p["w"]}  # noqa: E731
    plain = optax.sgd(0.5)
    tx = optax.chain(plain, rj.train.project_params(clip))
    updates, _ = tx.update(grads, tx.init(params), params)
    free, _ = plain.update(grads, plain.init(params), params)
    chex.assert_trees_all_close(optax.apply_updates(params, updates), clip(optax.apply_updates(params, free)))
    with pytest.raises(ValueError, match="params: project_params needs the params"):
        tx.update(grads, tx.init(params))


def param_norm(params):
    return {"param_norm": optax.tree.norm(params)}


def test_fit_monitors_at_the_start_every_monitor_every_steps_and_at_the_end(tmp_path):
    state, step = make()
    monitor = jax.jit(param_norm)

    final, history = rj.train.fit(
        state, step, data, 7, key=jax.random.key(1), run_dir=tmp_path, monitor=monitor, monitor_every=3,
        log_every=2, progress=False,
    )  # fmt: skip

    assert [r["step"] for r in history] == list(range(8))  # step 0: the starting params, then every step
    assert history[0] == {"step": 0, "param_norm": pytest.approx(float(monitor(state.params)["param_norm"]))}
    assert [r["step"] for r in history if "param_norm" in r] == [0, 3, 6, 7]
    assert history[-1]["param_norm"] == pytest.approx(float(monitor(final.params)["param_norm"]))
    assert all("loss" in r and "grad_norm" in r for r in history[1:])
    assert [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == history


def test_a_non_finite_monitored_metric_is_divergence(tmp_path):
    state, step = make()
    calls = []

    def monitor(params):  # NaN at its third measurement, step 6
        calls.append(1)
        return {"m": jnp.nan if len(calls) == 3 else 1.0}

    with pytest.raises(TrainingDiverged, match=r"step 6: m = nan"):
        rj.train.fit(state, step, data, 9, key=jax.random.key(1), run_dir=tmp_path, monitor=monitor,
                     monitor_every=3, progress=False)  # fmt: skip
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert last == {"step": 6, "diverged": "m = nan"}


def test_a_run_resumed_after_a_crash_monitors_at_the_steps_of_the_uninterrupted_one(tmp_path):
    state, step = make()
    key, monitor = jax.random.key(1), jax.jit(param_norm)
    kw = dict(key=key, checkpoint_every=4, monitor=monitor, monitor_every=2, progress=False)
    _, full = rj.train.fit(state, step, data, 10, run_dir=tmp_path / "full", **kw)

    def crashing(s):  # the process dies while step 6 (s = 5) is prepared: last checkpoint at 4
        if s == 5:
            raise KeyboardInterrupt
        return data(s)

    with pytest.raises(KeyboardInterrupt):
        rj.train.fit(state, step, crashing, 10, run_dir=tmp_path / "cut", **kw)
    _, resumed = rj.train.fit(state, step, data, 10, run_dir=tmp_path / "cut", resume=True, **kw)

    def monitored(history):
        return [(r["step"], r["param_norm"]) for r in history if "param_norm" in r]

    assert [s for s, _ in monitored(full)] == [0, 2, 4, 6, 8, 10]
    assert monitored(resumed) == monitored(full)  # the same params at the same steps, bit for bit
    assert [r["step"] for r in resumed] == list(range(11))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(monitor_every=2), "monitor: expected a function for monitor_every=2, got None"),
        (dict(monitor="lyapunov"), "monitor: expected a function params -> metrics"),
        (dict(monitor=param_norm, monitor_every=-1), "monitor_every: expected an int >= 0"),
        (dict(monitor=lambda p: [1.0]), "monitor: expected it to return a dict of metrics by name"),
        (dict(monitor=lambda p: {"loss": 1.0}, monitor_every=1), r"monitor: its metrics \['loss'\] have the names"),
    ],
)
def test_fit_monitor_errors(kwargs, match):
    state, step = make()
    with pytest.raises(ValueError, match=match):
        rj.train.fit(state, step, data, 3, key=jax.random.key(1), progress=False, **kwargs)


def test_stop_ends_the_run_at_the_evaluation_it_accepts_and_checkpoints_there(tmp_path):
    state, step = make()
    seen = []

    def stop(record):  # the third evaluation, step 6
        seen.append(record["step"])
        return len(seen) == 3

    final, history = rj.train.fit(
        state, step, data, 20, key=jax.random.key(1), run_dir=tmp_path, eval_fn=lambda p: {"n": 1.0},
        eval_every=2, checkpoint_every=5, stop=stop, progress=False,
    )  # fmt: skip

    assert seen == [2, 4, 6] and int(final.step) == 6 and history[-1]["step"] == 6
    assert [r["step"] for r in history] == list(range(1, 7)) and {"loss", "eval/n"} <= set(history[-1])
    with rj.checkpoint.Checkpoints(tmp_path / "checkpoints") as ckpt:
        assert ckpt.latest_step == 6
    _, resumed = rj.train.fit(
        state, step, data, 8, key=jax.random.key(1), run_dir=tmp_path, resume=True, eval_fn=lambda p: {"n": 1.0},
        eval_every=2, stop=lambda r: False, progress=False,
    )  # fmt: skip
    assert [r["step"] for r in resumed] == list(range(1, 9))  # resumed from the stop, trained on to num_steps


def test_a_stop_at_the_last_step_or_between_evaluations_changes_nothing(tmp_path):
    state, step = make()
    kw = dict(key=jax.random.key(1), eval_fn=lambda p: {"n": 1.0}, eval_every=3, progress=False)
    full, plain = rj.train.fit(state, step, data, 7, **kw)
    stopped, history = rj.train.fit(state, step, data, 7, stop=lambda r: r["step"] == 7, **kw)
    assert history == plain
    chex.assert_trees_all_equal(full.params, stopped.params)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stop=lambda r: True), "eval_fn: expected the evaluation that stop= decides on, got None"),
        (dict(stop=True, eval_fn=lambda p: {}), "stop: expected a function record -> bool or None, got"),
    ],
)
def test_fit_stop_errors(kwargs, match):
    state, step = make()
    with pytest.raises(ValueError, match=match):
        rj.train.fit(state, step, data, 3, key=jax.random.key(1), progress=False, **kwargs)
