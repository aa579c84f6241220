"""Training with Optax: a pure train step, evaluation, and ``fit`` with logs, checkpoints and a NaN guard.

::

    tx = rj.train.optimizer("adam", 1e-3, clip_norm=1.0)
    state = rj.train.TrainState.create(params, tx)
    train_step = rj.train.make_train_step(loss_fn, tx)     # loss_fn(params, batch, key) -> (loss, metrics)
    state, metrics = jax.jit(train_step)(state, batch, key)
    state, history = rj.train.fit(state, train_step, data, num_steps=1000, key=key, run_dir="runs/x")

``data(step) -> batch`` is a function of the step, so a resumed run sees exactly the batches the
uninterrupted run would have seen, and its per-step keys are ``fold_in(key, step)``.

A ``run_dir`` serves one ``fit`` at a time (it is locked, see :mod:`rnnjax.runlog`) and stays
resumable after a crash at any moment: ``metrics.jsonl`` is strict JSON appended a line at a time, and a
checkpoint is saved only for a finite state, after the log lines it stands for are on disk.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm import tqdm

from rnnjax import runlog, runs, sharding
from rnnjax.checkpoint import CheckpointError, Checkpoints
from rnnjax.checks import check_key, check_nonnegative_int, check_positive_int, describe
from rnnjax.runlog import RunDirLocked
from rnnjax.types import Array, Params, PRNGKey

__all__ = [
    "CheckpointError",
    "RunDirLocked",
    "TrainState",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "history_array",
    "make_train_step",
    "optimizer",
    "param_group_norms",
    "project_params",
]

Batch = Any
LossFn = Callable[[Params, Batch, PRNGKey], tuple[Array, dict[str, Array]]]
TrainStep = Callable[["TrainState", Batch, PRNGKey], tuple["TrainState", dict[str, Array]]]


class TrainState(NamedTuple):
    """What changes during training: the step count, the params and the optimiser state."""

    step: Array
    params: Params
    opt_state: optax.OptState

    @classmethod
    def create(cls, params: Params, tx: optax.GradientTransformation) -> TrainState:
        return cls(jnp.zeros((), jnp.int32), params, tx.init(params))


class TrainingDiverged(FloatingPointError):
    """A loss, gradient norm, metric, evaluation or the updated state became NaN or infinite; the message
    names the step and the quantity."""


def project_params(project: Callable[[Any], Any]) -> optax.GradientTransformation:
    """The last link of an Optax chain after which every step ends at ``project(params + updates)``: projected
    gradient descent (e.g. IndRNN's clip of ``|u|``, Li et al. 2018, with ``rj.cells.constrain_indrnn``), in the
    way of ``optax.keep_params_nonnegative``: the updates change, the training loop does not.

    Example:
        >>> tx = optax.chain(rj.train.optimizer("adam", 1e-3), project_params(lambda p: constrain(p)))
    """

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        if params is None:
            raise ValueError("params: project_params needs the params in tx.update(updates, state, params)")
        new = project(optax.apply_updates(params, updates))
        return jax.tree.map(jnp.subtract, new, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def optimizer(
    name: str = "adam",
    learning_rate: float = 1e-3,
    *,
    clip_norm: float | None = 1.0,
    schedule: str = "constant",
    total_steps: int | None = None,
    warmup_steps: int = 0,
    momentum: float | None = None,
) -> optax.GradientTransformation:
    """An Optax chain: global-norm clipping, then SGD or Adam on a learning-rate schedule.

    Args:
        name: ``"adam"``, ``"adamw"``, ``"sgd"`` or ``"rmsprop"``.
        clip_norm: clip the global gradient norm to this (Pascanu et al. 2013); None: no clipping.
        schedule: ``"constant"``, ``"cosine"`` (decay to 0 over ``total_steps``) or
            ``"warmup_cosine"`` (linear warm-up over ``warmup_steps``, then cosine).
        momentum: for SGD (None: plain SGD).
    """
    if schedule == "constant":
        lr: Any = learning_rate
    elif schedule in ("cosine", "warmup_cosine"):
        if total_steps is None or total_steps < 1:
            raise ValueError(f"total_steps: expected a positive int for schedule={schedule!r}, got {total_steps}")
        if schedule == "cosine":
            lr = optax.cosine_decay_schedule(learning_rate, total_steps)
        else:
            lr = optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup_steps, total_steps)
    else:
        raise ValueError(f"schedule: expected 'constant', 'cosine' or 'warmup_cosine', got {schedule!r}")
    optimizers = {
        "adam": lambda: optax.adam(lr),
        "adamw": lambda: optax.adamw(lr),
        "sgd": lambda: optax.sgd(lr, momentum=momentum),
        "rmsprop": lambda: optax.rmsprop(lr),
    }
    if name not in optimizers:
        raise ValueError(f"name: expected one of {tuple(optimizers)}, got {name!r}")
    parts = [] if clip_norm is None else [optax.clip_by_global_norm(clip_norm)]
    return optax.chain(*parts, optimizers[name]())


def param_group_norms(grads: Params) -> dict[str, Array]:
    """``{"grad_norm/<path>": ||g||}`` for every array in ``grads``, e.g. ``grad_norm/rnn.0.0.W``."""
    out = {}
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        name = ".".join(str(getattr(k, "name", getattr(k, "idx", getattr(k, "key", k)))) for k in path)
        out[f"grad_norm/{name}"] = jnp.sqrt(jnp.sum(jnp.square(g)))
    return out


def make_train_step(
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    *,
    group_norms: bool = False,
    value_and_grad: Callable[[Params, Batch, PRNGKey], tuple[tuple[Array, dict], Params]] | None = None,
    mesh: Mesh | None = None,
) -> TrainStep:
    """A pure ``train_step(state, batch, key) -> (state, metrics)``; jit it where you call it.

    Args:
        loss_fn: ``loss_fn(params, batch, key) -> (loss, metrics)``; ``key`` is for dropout.
        tx: the optimiser.
        group_norms: also report the gradient norm of every parameter array.
        value_and_grad: replaces ``jax.value_and_grad(loss_fn, has_aux=True)``, for gradients
            that are not those of one function, e.g. truncated BPTT
            (:func:`rnnjax.bptt.truncated_value_and_grad`).
        mesh: data parallelism (:mod:`rnnjax.sharding`): inside the step the batch is pinned split over the
            mesh's ``data`` axis and the new state replicated (or split over ``model``, where that axis has more
            than one device: ``rj.sharding.state_shardings``), so that under ``jax.jit`` each device computes
            its rows and the gradients are summed across devices; the values are those of one device, up to
            the order of the sums.

    ``metrics`` holds ``loss``, the global gradient norm ``grad_norm`` (before clipping) and what
    ``loss_fn`` returned.
    """

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True) if value_and_grad is None else value_and_grad
    if mesh is not None:
        sharding.check_mesh(mesh)

    def train_step(state: TrainState, batch: Batch, key: PRNGKey) -> tuple[TrainState, dict[str, Array]]:
        if mesh is not None:
            batch = sharding.constrain(batch, sharding.batch_sharding(mesh))
        (loss, aux), grads = grad_fn(state.params, batch, key)
        with jax.numpy_dtype_promotion("standard"):  # Optax mixes Python floats and int32 counts
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **aux, "grad_norm": optax.tree.norm(grads)}
        if group_norms:
            metrics |= param_group_norms(grads)
        new = TrainState(state.step + 1, params, opt_state)
        if mesh is not None:
            new = sharding.constrain_state(new, mesh)
        return new, metrics

    return train_step


def evaluate(eval_fn: Callable[[Params, Batch], dict[str, Array]], params: Params, batches: Any) -> dict[str, float]:
    """The mean of ``eval_fn(params, batch)``'s metrics over ``batches`` (equal weight per batch)."""
    sums: dict[str, float] = {}
    n = 0
    for batch in batches:
        for name, value in eval_fn(params, batch).items():
            sums[name] = sums.get(name, 0.0) + float(value)
        n += 1
    if n == 0:
        raise ValueError("batches: expected at least one batch to evaluate, got none")
    return {name: total / n for name, total in sums.items()}


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def _first_bad(metrics: dict[str, float], first: tuple[str, ...] = ("loss", "grad_norm")) -> str | None:
    for name in (*first, *metrics):
        if name in metrics and not math.isfinite(metrics[name]):
            return f"{name} = {metrics[name]}"
    return None


def _all_finite(tree: Any) -> Array:
    """One bool: every floating leaf of ``tree`` is finite (reduced on the device)."""
    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return jnp.stack(leaves).all() if leaves else jnp.asarray(True)


@functools.lru_cache(maxsize=16)
def _guarded(train_step: TrainStep) -> Callable[..., tuple[TrainState, dict[str, Array], dict[str, Array]]]:
    """``train_step``, jitted, that also says whether the new params and opt_state are finite.

    Cached per ``train_step`` (the last 16), so that calling ``fit`` again with the same step (a run
    continued in stages, a benchmark's rounds) compiles nothing anew.
    """

    def step(state: TrainState, batch: Batch, key: PRNGKey) -> tuple[TrainState, dict[str, Array], dict[str, Array]]:
        new, metrics = train_step(state, batch, key)
        return new, metrics, {"params": _all_finite(new.params), "opt_state": _all_finite(new.opt_state)}

    return jax.jit(step)


def _check_fit_args(
    train_step: Any, data: Any, num_steps: Any, key: Any, eval_fn: Any, eval_every: Any, checkpoint_every: Any,
    keep: Any, run_dir: Any, resume: bool, overwrite: bool, log_every: Any,
) -> None:  # fmt: skip
    if not callable(train_step):
        raise ValueError(
            f"train_step: expected a function (state, batch, key) -> (state, metrics), got {describe(train_step)}"
        )
    if not callable(data):
        raise ValueError(f"data: expected a function step -> batch, got {describe(data)}")
    check_nonnegative_int(num_steps, "num_steps")
    check_key(key, "key")
    check_nonnegative_int(eval_every, "eval_every")
    check_nonnegative_int(checkpoint_every, "checkpoint_every")
    check_positive_int(keep, "keep")
    check_positive_int(log_every, "log_every")
    if eval_fn is not None and not callable(eval_fn):
        raise ValueError(f"eval_fn: expected a function params -> metrics or None, got {describe(eval_fn)}")
    if eval_every and eval_fn is None:
        raise ValueError(f"eval_fn: expected a function for eval_every={eval_every}, got None")
    if (checkpoint_every or resume) and run_dir is None:
        raise ValueError("run_dir: expected a directory for checkpoints (checkpoint_every or resume), got None")
    if resume and overwrite:
        raise ValueError("overwrite: expected False with resume=True (continue the old run or delete it, not both)")


def _open_run(
    stack: ExitStack, run_dir: Path, keep: int, resume: bool, overwrite: bool
) -> tuple[Checkpoints, list[dict[str, Any]]]:
    """Locks ``run_dir`` for the ``stack``'s life and opens its checkpoints; returns them and, on resume,
    the log (to be cut at the checkpoint's step)."""
    stack.enter_context(runlog.lock_run_dir(run_dir))
    ckpt = stack.enter_context(Checkpoints(run_dir / "checkpoints", keep=keep))
    ckpt.remove_unfinished()  # saves killed midway: no process saves here while we hold the lock
    log = runlog.read_log(run_dir / "metrics.jsonl") if resume else []
    if resume and not ckpt.steps:
        diverged = [r for r in log if "diverged" in r]
        why = f" (its run diverged at step {diverged[-1]['step']}, before the first save)" if diverged else ""
        raise CheckpointError(
            f"no checkpoint in {ckpt.directory}{why}: nothing to resume from; start afresh without resume=True"
        )
    if not resume and ckpt.steps:
        if not overwrite:
            raise CheckpointError(
                f"{ckpt.directory} holds checkpoints of an earlier run: pass resume=True to continue it or "
                f"overwrite=True to start afresh (saved steps: {ckpt.steps})"
            )
        ckpt.clear()
    return ckpt, log


def fit(
    state: TrainState,
    train_step: TrainStep,
    data: Callable[[int], Batch],
    num_steps: int,
    *,
    key: PRNGKey,
    run_dir: str | Path | None = None,
    eval_fn: Callable[[Params], dict[str, Any]] | None = None,
    eval_every: int = 0,
    checkpoint_every: int = 0,
    keep: int = 3,
    resume: bool = False,
    overwrite: bool = False,
    config: dict[str, Any] | None = None,
    progress: bool = True,
    description: str = "train",
    log_every: int = 10,
    model: Any = None,
    probe: dict[str, Any] | None = None,
    monitor: Callable[[Params], dict[str, Any]] | None = None,
    monitor_every: int = 0,
    stop: Callable[[dict[str, Any]], bool] | None = None,
    mesh: Mesh | None = None,
) -> tuple[TrainState, list[dict[str, Any]]]:
    """Trains until ``state.step == num_steps`` (or until ``stop`` says so), logging every step.

    The steps are dispatched without waiting for the device: each step's metrics (and whether its
    updated state is finite) stay on the device until every ``log_every`` steps, when they are fetched
    in one transfer, checked, logged and shown. Evaluations and checkpoints happen at such a fetch,
    after every step before them was found finite.

    Args:
        state: the starting state (with ``resume``, only its structure is used).
        train_step: from :func:`make_train_step`; ``fit`` jits it.
        data: ``data(step) -> batch``.
        num_steps: the step to stop at (not a count from ``state.step``): an int, at least the
            starting step (``state.step``, or the checkpoint's step with ``resume``).
        key: the run's PRNG key; step s uses ``fold_in(key, s)``.
        run_dir: where ``metrics.jsonl`` (one strict-JSON record per step, evaluations included)
            and the ``checkpoints/`` go; None: keep nothing on disk. ``fit`` holds an exclusive
            lock on it (``run_dir/.lock``) while it runs.
        eval_fn: ``eval_fn(params) -> metrics``, run every ``eval_every`` steps and at the end;
            its metrics are logged with an ``eval/`` prefix.
        eval_every: 0: only at the end (needs ``eval_fn`` when > 0).
        checkpoint_every: save every this many steps and at the end (0: only at the end);
            needs ``run_dir``.
        keep: checkpoints kept (>= 1).
        resume: continue from the latest checkpoint in ``run_dir`` (an error if there is none,
            or if it was saved with a different ``config``); the log is cut back to the
            checkpoint's step, dropping (with a warning) a last line torn by a crash.
        overwrite: without ``resume``, delete the checkpoints an earlier run left in ``run_dir``;
            if False, finding any is an error (a fresh start never mixes with an old run). A
            directory with a log but no checkpoint (a run that stopped before its first save)
            is started afresh either way.
        config: saved beside every checkpoint.
        progress: show a tqdm progress bar (the loss and steps per second).
        log_every: steps between fetches of the metrics from the device (1: every step, which makes
            the host wait for each step); every step is still logged. Also at every evaluation,
            checkpoint and the last step.
        model: the model whose params ``state.params`` are (any of :mod:`rnnjax.models` or an
            ``rj.RNN``): its definition is written to ``run_dir/model.json`` before training, so that
            ``rj.runs.load_run(run_dir)`` and ``python -m rnnjax.analyse run_dir`` rebuild it (needs
            ``run_dir``).
        probe: a few inputs of ``model``, keyword arguments of ``model.apply`` (``{"xs": xs}``), kept in
            ``run_dir/probe.npz`` for the analysis to drive the trained network with (needs ``model``).
        monitor: ``monitor(params) -> metrics`` (jitted: it runs inside the training loop), measured on the
            starting params of a run that starts at step 0 (a record ``{"step": 0, ...}``), then every
            ``monitor_every`` steps and at the end; its metrics join that step's record under their own names
            (which must not be those of the train step's metrics), are checked for NaN and Inf like
            evaluations; a run resumed after a crash measures where the uninterrupted run does (one that
            stopped at its own ``num_steps`` measured there too, as it evaluated there). E.g. the
            largest Lyapunov exponents, :func:`rnnjax.analysis.lyapunov_monitor` (``lyapunov/1`` ..
            ``lyapunov/k``); its cost, measured by ``benchmarks/fit_overhead.py``, is in that function's docs.
        monitor_every: 0: only at the start and the end (needs ``monitor`` when > 0).
        stop: ``stop(record) -> bool``, early stopping: called with the log record of every evaluation
            (``{"step", "loss", ..., "eval/<name>"}``); True ends the run after that step, which is then
            checkpointed as the last step is (needs ``eval_fn``). A run resumed from that checkpoint trains on
            towards ``num_steps``.
        mesh: data parallelism (:mod:`rnnjax.sharding`): the state (also one restored by ``resume``) is
            replicated over the mesh (or split over its ``model`` axis: ``rj.sharding.state_shardings``) and every
            batch split over its ``data`` axis (a leading axis that does not divide is an error), so the jitted
            step runs on every device; checkpoints are of the whole
            state, and restore onto any number of devices. Pair it with ``make_train_step(..., mesh=mesh)``.

    Returns:
        The final state and the log records of this run (after a resume: the earlier records
        up to the checkpoint, then the new ones).

    Raises:
        ValueError: an argument of the wrong type or value; the message names it.
        RunDirLocked: another process is using ``run_dir``.
        CheckpointError: nothing to resume from, a different config, or an earlier run's
            checkpoints without ``resume`` or ``overwrite``.
        TrainingDiverged: a NaN or Inf loss, gradient norm, metric, evaluation metric
            (``eval/<name>``), monitored metric, or in the updated params or opt_state; the step and
            quantity are named in the message and in a last ``{"step", "diverged"}`` log record. That step's
            state is never saved; the checkpoints written before stay as they are.
    """
    _check_fit_args(train_step, data, num_steps, key, eval_fn, eval_every, checkpoint_every, keep, run_dir, resume,
                    overwrite, log_every)  # fmt: skip
    if model is not None and run_dir is None:
        raise ValueError("run_dir: expected a directory to save the model's definition in (model=), got None")
    if probe is not None and model is None:
        raise ValueError("model: expected the model that probe= is an input of, got None")
    check_nonnegative_int(monitor_every, "monitor_every")
    if monitor is not None and not callable(monitor):
        raise ValueError(f"monitor: expected a function params -> metrics or None, got {describe(monitor)}")
    if monitor_every and monitor is None:
        raise ValueError(f"monitor: expected a function for monitor_every={monitor_every}, got None")
    if stop is not None and not callable(stop):
        raise ValueError(f"stop: expected a function record -> bool or None, got {describe(stop)}")
    if stop is not None and eval_fn is None:
        raise ValueError("eval_fn: expected the evaluation that stop= decides on, got None")
    if mesh is not None:
        sharding.check_mesh(mesh)
    run_dir = None if run_dir is None else Path(run_dir)
    config = json.loads(json.dumps(config or {}))  # what JSON gives back, to compare on resume
    history: list[dict[str, Any]] = []
    ckpt = log = None
    with ExitStack() as stack:
        if run_dir is not None:
            ckpt, history = _open_run(stack, run_dir, keep, resume, overwrite)
        if resume:
            state, saved = ckpt.restore(state)
            if saved != config:
                changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
                raise CheckpointError(
                    f"config: the checkpoint in {ckpt.directory} was saved with other values of {changed}"
                )
            history = [r for r in history if r["step"] <= int(state.step)]
        if model is not None:
            runs.save_definition(run_dir, model, state.params, probe)
        if mesh is not None:
            state = sharding.place_state(state, mesh)
        start = int(state.step)
        if num_steps < start:
            where = f"the step of the checkpoint in {ckpt.directory}" if resume else "state.step"
            raise ValueError(f"num_steps: expected at least {start} ({where}), got {num_steps}")
        if run_dir is not None:
            log = stack.enter_context(runlog.start_log(run_dir / "metrics.jsonl", history))
        try:
            step_fn = _guarded(train_step)
        except TypeError:  # a train_step that cannot be hashed: jitted anew
            step_fn = _guarded.__wrapped__(train_step)
        bar = tqdm(total=num_steps, initial=start, desc=description, unit="step", disable=not progress)
        stack.callback(bar.close)  # also when diverged: the message is not printed into a half-drawn bar

        def record(entry: dict[str, Any]) -> None:
            history.append(entry)
            if log is not None:
                runlog.append_record(log, entry)

        def diverged(step: int, bad: str) -> TrainingDiverged:
            record({"step": step, "diverged": bad})
            last = None if ckpt is None else ckpt.latest_step
            if ckpt is None:
                where = ""
            elif last is None:
                where = f", no checkpoint saved yet in {ckpt.directory} (start afresh: resume has nothing to resume)"
            else:
                where = f", last good checkpoint: step {last} in {ckpt.directory}"
            return TrainingDiverged(f"step {step}: {bad}; training stopped{where}")

        def due(every: int, done: int) -> bool:
            return (every > 0 and done % every == 0) or done == num_steps

        def measure(params: Params, step: int, taken: tuple[str, ...]) -> dict[str, float]:
            values = monitor(params)
            if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
                raise ValueError(f"monitor: expected it to return a dict of metrics by name, got {describe(values)}")
            if clash := sorted(set(values) & {"step", "diverged", *taken}):
                raise ValueError(f"monitor: its metrics {clash} have the names of the train step's; rename them")
            values = _floats(values)
            if (bad := _first_bad(values, ())) is not None:
                raise diverged(step, bad)
            return values

        if monitor is not None and start == 0:
            record({"step": 0, **measure(state.params, 0, ())})

        pending: list[tuple[int, dict[str, Array], dict[str, Array]]] = []  # on the device, not yet checked
        for step in range(start, num_steps):
            batch = data(step) if mesh is None else sharding.shard_batch(data(step), mesh)
            state, metrics, finite = step_fn(state, batch, jax.random.fold_in(key, step))
            done = step + 1
            pending.append((done, metrics, finite))
            evaluate_now = eval_fn is not None and due(eval_every, done)
            monitor_now = monitor is not None and due(monitor_every, done)
            save_now = ckpt is not None and due(checkpoint_every, done)
            if not (due(log_every, done) or evaluate_now or monitor_now or save_now):
                continue
            # One transfer for the window; a NaN in it stops the run before anything later is kept.
            for (s, _, _), (m, f) in zip(pending, jax.device_get([(m, f) for _, m, f in pending]), strict=True):
                m = _floats(m)
                bad = _first_bad(m)
                if bad is None:
                    bad = next((f"{name}: NaN or Inf after the update" for name, ok in f.items() if not ok), None)
                if bad is not None:
                    raise diverged(s, bad)
                if s < done:
                    record({"step": s, **m})
            bar.update(len(pending))
            pending = []
            entry = {"step": done, **m}
            if evaluate_now:
                evals = {f"eval/{k}": v for k, v in _floats(eval_fn(state.params)).items()}
                if (bad := _first_bad(evals, ())) is not None:
                    raise diverged(done, bad)
                entry |= evals
            if monitor_now:
                entry |= measure(state.params, done, tuple(entry))
            record(entry)
            bar.set_postfix(loss=f"{m['loss']:.4g}")
            stopping = evaluate_now and done < num_steps and stop is not None and bool(stop(entry))
            if ckpt is not None and (save_now or stopping):
                runlog.sync_log(log)  # the steps this checkpoint stands for are on disk before it
                ckpt.save(done, state, config)
            if stopping:
                break
    return state, history


def history_array(history: list[dict[str, Any]], name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of one metric from the log records that have it."""
    rows = [(r["step"], r[name]) for r in history if name in r]
    steps, values = zip(*rows, strict=True) if rows else ((), ())
    return np.asarray(steps), np.asarray(values)
