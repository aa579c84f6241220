"""The temporal order problem with and without gradient clipping: a long-range benchmark over seeds.

Two symbols, each X or Y, hide among T one-hot distractors, the first in steps [T/10, T/5), the second in
[T/2, 3T/5); the class read after the last step is their order, XX, XY, YX or YY (Hochreiter & Schmidhuber 1997,
experiment 6a, in the placement of Pascanu, Mikolov & Bengio 2013, section 4.1.1; :mod:`rnnjax.data.temporal_order`).
A model blind to them scores accuracy 1/4, cross-entropy log 4.

Pascanu et al.'s setting for the tanh RNN: 50 units, their "smart tanh" initialisation (``U, V ~ N(0, 0.01^2)``,
``W`` sparse with 15 incoming weights per unit and spectral radius 0.95, ``b = c = 0``), plain SGD without
momentum, minibatches of 20, clipping the gradient norm at 1; a run is a success when it misclassifies under 1% of
10,000 fresh sequences. Their budget was up to 5M updates at learning rate 0.01; ours is ``rnn_steps`` updates at
0.1 (at 0.01, basic tanh, clipped, T = 50, no seed of five solved it in 10,000 updates and one reached 50%
accuracy). Their "basic tanh" (``U, W, V ~ N(0, 0.1^2)``, ``--rnn-init basic_tanh``) starts at spectral radius
about ``0.1 sqrt(50) = 0.71``, so a gradient from 40 steps back arrives shrunk by about ``0.71^40 = 1e-6``; with it
no seed of five left chance at T = 50 in 10,000 updates at 0.1, clipped or not.

Beside the RNN, the LSTM (forget-gate bias 1) and the GRU (update-gate bias by the chrono initialisation of Tallec
& Ollivier 2018, T_max = T: at its default ``b_z = 0`` the GRU keeps half its state per step and, with Adam at
3e-3, solved no seed of five at T = 100 in 1,500 steps), both with Adam, the gated cells' usual optimiser.

Each (cell, clipping, T) trains ``seeds`` networks at once (``jax.vmap`` over seeds: one jitted step for all of
them); each seed's key is ``key_for(key, "<cell>/clip=<c>/T=<T>/seed=<s>")`` and its batches come from that key, so
no run depends on the others. As in Pascanu et al.'s code a run stops once solved: a seed whose validation error is
under 1% at an evaluation has those params as its result (it trains on beside the others, unused; the group stops
once every seed has stopped, through ``fit(stop=)``), and the verdict is their error on ``test_size`` fresh
sequences. Without clipping, a step whose loss, gradient or update is NaN or infinite is skipped for that seed (its
params kept) and counted, so one seed's overflow does not end the others.

Writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl`` (every group's steps, per-seed columns),
``success.png`` (success rate against T, one curve per cell and clipping), ``accuracy.png`` (median test accuracy
against T, chance 1/4), ``loss_T<T>.png`` and ``report.md``; and for every seed a folder
``<cell>/clip=<c>/T=<T>/seed=<s>/`` with ``model.json``, ``probe.npz``, ``checkpoints/`` and its ``metrics.jsonl``,
which ``rj.runs.load_run`` reads back (the seeds train together under ``vmap``, so their folders are written from
the stacked state with the pieces ``fit`` uses, ``rj.runs.save_definition`` and ``rj.checkpoint.Checkpoints``).

Run::

    python experiments/temporal_order.py             # T = 50, 100; rnn, lstm, gru; 5 seeds (see below)
    python experiments/temporal_order.py --tiny      # seconds: a smoke test
    python experiments/temporal_order.py --cells rnn --lengths 50 100 150 --rnn-steps 50000

The default run took 190 s of wall time (283 s of CPU time) on 2 cores (AMD EPYC) at a load average under 2.
Its numbers do not depend on the load: every key and batch follows from the names.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj
from rnnjax.checkpoint import Checkpoints
from rnnjax.data.temporal_order import CHANCE_ACCURACY, CHANCE_CROSS_ENTROPY, SYMBOLS, temporal_order

CLASSES = 4
INPUTS = len(SYMBOLS["pascanu"])
VALID, TEST = 2**31, 2**31 + 1
"""The streams of a seed's held-out sets (its training batches use the steps 0, 1, ...)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Success rates on the temporal order problem, with and without gradient-norm clipping, over seeds."""

    lengths: tuple[int, ...] = (50, 100)
    """Sequence lengths T."""
    cells: tuple[str, ...] = ("rnn", "lstm", "gru")
    """rnn (tanh, Pascanu et al.'s init and SGD), lstm (forget-gate bias 1), gru (chrono update-gate bias)."""
    seeds: int = 5
    """Networks per (cell, clipping, T), trained together (Pascanu et al.: 5)."""
    hidden_size: int = 50
    """Units per cell (Pascanu et al.: 50)."""
    batch_size: int = 20
    """Sequences per step, fresh every step (Pascanu et al.: 20)."""
    clip_norm: float = 1.0
    """Threshold of the clipped runs (Pascanu et al.: 1); every setting also runs without clipping."""
    rnn_init: str = "smart_tanh"
    """smart_tanh (U, V ~ N(0, 0.01^2), W sparse with 15 inputs per unit and spectral radius 0.95) or basic_tanh
    (U, W, V ~ N(0, 0.1^2)), both with zero biases (Pascanu et al. 2013, section 4.1.1)."""
    rnn_optimizer: str = "sgd"
    """Optimiser of the tanh RNN (Pascanu et al.: SGD without momentum)."""
    rnn_learning_rate: float = 0.1
    """Its learning rate (Pascanu et al.: 0.01 for up to 5M updates)."""
    rnn_steps: int = 10000
    """Updates per tanh RNN at most."""
    gated_optimizer: str = "adam"
    """Optimiser of the LSTM and the GRU."""
    gated_learning_rate: float = 3e-3
    """Their learning rate."""
    gated_steps: int = 1500
    """Updates per LSTM or GRU at most."""
    gru_chrono: bool = True
    """GRU update-gate bias log(U(1, T - 1)) (chrono, T_max = T); False: b_z = 0."""
    threshold: float = 0.01
    """A run is solved when it misclassifies fewer than this share of sequences (Pascanu et al.: 1%)."""
    eval_size: int = 1000
    """Validation sequences per seed, checked every eval_every steps (the stopping test)."""
    eval_every: int = 250
    """Steps between validations."""
    test_size: int = 10000
    """Fresh test sequences per seed for the verdict (Pascanu et al.: 10,000)."""
    seed: int = 0
    """The root of every key (each seed's key comes from its name)."""
    name: str = "temporal_order"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per group."""
    tiny: bool = False
    """Smoke test: T = 20, 2 seeds, 8 units, a few steps (seconds); overrides those fields."""


TINY = dict(lengths=(20,), seeds=2, hidden_size=8, batch_size=8, rnn_steps=6, gated_steps=6, eval_size=16,
            eval_every=3, test_size=32)  # fmt: skip


def make_model(cell: str, cfg: Config, length: int) -> rj.models.ManyToOne:
    """The classifier: one layer of ``cell``, its last output through ``V a_T + c`` to the 4 classes' logits."""
    h = cfg.hidden_size
    cells = {
        "rnn": lambda: rj.cells.rnn(h),
        "lstm": lambda: rj.cells.lstm(h, forget_bias=1.0),
        "gru": lambda: rj.cells.gru(h, chrono=float(length)) if cfg.gru_chrono else rj.cells.gru(h),
    }
    if cell not in cells:
        raise ValueError(f"cells: expected names among {tuple(cells)}, got {cell!r}")
    return rj.models.ManyToOne(rj.RNN(cell=cells[cell]()), output_size=CLASSES)


def pascanu_init(params, key: jax.Array, init: str):
    """The tanh RNN's params drawn as Pascanu et al. 2013 (section 4.1.1) do, ``b = c = 0``: ``"basic_tanh"``,
    ``U, W, V ~ N(0, 0.1^2)``; ``"smart_tanh"``, ``U, V ~ N(0, 0.01^2)`` and ``W`` sparse, drawn as
    ``N(0, 0.01^2)`` with all but 15 entries of each unit's incoming row zeroed (rescale it to spectral radius
    0.95 with :func:`spectral_radius_to`, outside ``jit``)."""
    if init not in ("basic_tanh", "smart_tanh"):
        raise ValueError(f"rnn_init: expected 'basic_tanh' or 'smart_tanh', got {init!r}")
    cell, head = params.rnn[0][0], params.head
    k_u, k_w, k_v, k_mask = jax.random.split(key, 4)
    scale = 0.1 if init == "basic_tanh" else 0.01
    U, W, V = (scale * jax.random.normal(k, x.shape, x.dtype) for k, x in ((k_u, cell.U), (k_w, cell.W), (k_v, head.V)))
    if init == "smart_tanh":
        h = W.shape[0]
        W = jnp.where(jax.vmap(lambda k: jax.random.permutation(k, h) < 15)(jax.random.split(k_mask, h)), W, 0.0)
    cell = cell._replace(U=U, W=W, b=jnp.zeros_like(cell.b))
    return params._replace(rnn=((cell,),), head=head._replace(V=V, c=jnp.zeros_like(head.c)))


def spectral_radius_to(params, radius: float = 0.95):
    """``params`` with the tanh RNN's ``W`` scaled to spectral radius ``radius`` (the smart_tanh init)."""
    cell = params.rnn[0][0]
    W = np.asarray(cell.W, np.float64)
    scaled = jnp.asarray(radius * W / np.abs(np.linalg.eigvals(W)).max(), cell.W.dtype)
    return params._replace(rnn=((cell._replace(W=scaled),),))


def seed_rng(key: jax.Array, stream: int) -> np.random.Generator:
    """A numpy generator drawn from a seed's key: its batches (``stream`` = the step) and held-out sets."""
    return np.random.default_rng([*np.asarray(jax.random.key_data(key)).tolist(), stream])


def _stack(trees):
    """Trees of the same structure stacked leaf by leaf on a new first axis (the seeds)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _per_seed_finite(tree, seeds: int) -> jax.Array:
    ok = jnp.ones(seeds, bool)
    for x in jax.tree.leaves(tree):
        if jnp.issubdtype(x.dtype, jnp.inexact):
            ok &= jnp.isfinite(x).reshape(seeds, -1).all(axis=1)
    return ok


def vmapped_step(train_step, seeds: int):
    """``train_step`` of one network run for ``seeds`` networks at once (``TrainState.step`` shared); a seed whose
    loss, gradient or update is not finite keeps its state for that step (``skipped/<s>`` = 1, loss logged as 0)."""
    axes = rj.train.TrainState(None, 0, 0)
    each = jax.vmap(train_step, in_axes=(axes, 0, None), out_axes=(axes, 0))

    def step(state, batch, key):
        new, m = each(state, batch, key)
        ok = jnp.isfinite(m["loss"]) & jnp.isfinite(m["grad_norm"]) & _per_seed_finite(new, seeds)

        def keep(a, b):
            return jnp.where(ok.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

        new = new._replace(params=jax.tree.map(keep, new.params, state.params),
                           opt_state=jax.tree.map(keep, new.opt_state, state.opt_state))  # fmt: skip
        loss, norm = jnp.where(ok, m["loss"], 0.0), jnp.where(ok, m["grad_norm"], 0.0)
        metrics = {"loss": loss.sum() / jnp.maximum(ok.sum(), 1), "skipped": (~ok).sum()}
        for s in range(seeds):
            metrics |= {f"loss/{s}": loss[s], f"grad_norm/{s}": norm[s], f"skipped/{s}": (~ok[s]).astype(jnp.int32)}
        return new, metrics

    return step


def error_rate(model, params, xs, labels) -> jax.Array:
    """Share of misclassified sequences of every seed: ``params`` and ``xs`` stacked by seed."""
    logits = jax.vmap(model.apply)(params, xs)
    return (jnp.argmax(logits, -1) != labels).mean(-1)


def _slice(tree, s: int):
    """Seed ``s`` of a tree stacked by seed."""
    return jax.tree.map(lambda x: x[s], tree)


def train_group(cfg: Config, cell: str, clip: float | None, length: int, run_dir: Path) -> dict:
    """Trains the seeds of one (cell, clipping, T), saves each seed's folder, returns the group's row."""
    label = "none" if clip is None else f"{clip:g}"
    group = f"{cell}/clip={label}/T={length}"
    keys = [rj.experiment.key_for(jax.random.key(cfg.seed), f"{group}/seed={s}") for s in range(cfg.seeds)]
    model = make_model(cell, cfg, length)

    def init(key):
        params = model.init(jax.random.fold_in(key, 0), INPUTS)
        return params if cell != "rnn" else pascanu_init(params, jax.random.fold_in(key, 1), cfg.rnn_init)

    params = jax.jit(jax.vmap(init))(jnp.stack(keys))
    if cell == "rnn" and cfg.rnn_init == "smart_tanh":
        params = _stack([spectral_radius_to(_slice(params, s)) for s in range(cfg.seeds)])
    gated = cell != "rnn"
    opt, lr = (cfg.gated_optimizer, cfg.gated_learning_rate) if gated else (cfg.rnn_optimizer, cfg.rnn_learning_rate)
    steps = cfg.gated_steps if gated else cfg.rnn_steps
    tx = rj.train.optimizer(opt, lr, clip_norm=clip)

    def loss_fn(p, batch, key):
        xs, labels = batch
        return rj.losses.cross_entropy(model.apply(p, xs), labels), {}

    valid = [temporal_order(seed_rng(k, VALID), cfg.eval_size, length) for k in keys]
    valid_xs, valid_ys = jnp.asarray(np.stack([v[0] for v in valid])), jnp.asarray(np.stack([v[1] for v in valid]))
    errors_of = jax.jit(functools.partial(error_rate, model))  # one program for validation and test chunks
    # fit evaluates after every eval_every-th step and after the last; the i-th call is at eval_steps[i]
    eval_steps = sorted({*range(cfg.eval_every, steps, cfg.eval_every), steps}) if cfg.eval_every else [steps]
    evaluated: list[int] = []
    stopped: dict[int, tuple[int, object]] = {}  # seed -> (step, params) at its first validation under threshold

    def evaluate(params) -> dict[str, float]:
        errors = np.asarray(errors_of(params, valid_xs, valid_ys))
        step = eval_steps[len(evaluated)]
        evaluated.append(step)
        for s in np.flatnonzero(errors < cfg.threshold):
            stopped.setdefault(int(s), (step, _slice(jax.device_get(params), int(s))))
        return {"error": float(errors.mean()), **{f"error/{s}": float(e) for s, e in enumerate(errors)}}

    def data(step: int):
        batches = [temporal_order(seed_rng(k, step), cfg.batch_size, length) for k in keys]
        return np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches])

    state = rj.train.TrainState(jnp.zeros((), jnp.int32), params, jax.jit(jax.vmap(tx.init))(params))
    start = time.perf_counter()
    state, history = rj.train.fit(
        state, vmapped_step(rj.train.make_train_step(loss_fn, tx), cfg.seeds), data, steps,
        key=jax.random.fold_in(keys[0], 2), run_dir=run_dir / group, eval_fn=evaluate, eval_every=cfg.eval_every,
        stop=lambda record: len(stopped) == cfg.seeds, config=dataclasses.asdict(cfg), progress=cfg.progress,
        description=group, overwrite=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    final = jax.device_get(state.params)
    chosen = [stopped.get(s) or (steps, _slice(final, s)) for s in range(cfg.seeds)]  # (step, params) per seed
    errors = held_out_errors(errors_of, _stack([p for _, p in chosen]), keys, length, cfg.test_size, cfg.eval_size)
    rows = []
    for s, (step, p) in enumerate(chosen):
        _save_seed(run_dir / group / f"seed={s}", model, p, step, np.asarray(valid_xs[s, :8]), history, s, cfg)
        norms = [r[f"grad_norm/{s}"] for r in history if f"grad_norm/{s}" in r]
        losses = [r[f"loss/{s}"] for r in history if f"loss/{s}" in r and not r[f"skipped/{s}"]]
        rows.append({
            "seed": s, "stopped_at": stopped[s][0] if s in stopped else None, "test_error": float(errors[s]),
            "skipped": int(sum(r.get(f"skipped/{s}", 0) for r in history)), "max_grad_norm": max(norms, default=0.0),
            "final_loss": float(np.mean(losses[-100:])) if losses else float("nan"),
        })  # fmt: skip
    solved = sum(r["test_error"] < cfg.threshold for r in rows)
    return {
        "cell": cell, "clip": label, "T": length, "seeds": rows, "solved": solved, "success": solved / cfg.seeds,
        "steps": steps, "optimizer": f"{opt} {lr:g}", "seconds": seconds,
        "loss": rj.train.history_array(history, "loss"),
    }  # fmt: skip


def held_out_errors(errors_of, params, keys: list[jax.Array], length: int, size: int, chunk: int) -> np.ndarray:
    """Each seed's misclassified share of ``size`` fresh sequences: chunks of ``chunk`` drawn in turn from the
    ``TEST`` stream of its key (``errors_of(params, xs, labels)``: :func:`error_rate` of the model; ``params``
    stacked by seed)."""
    rngs = [seed_rng(k, TEST) for k in keys]
    wrong = np.zeros(len(keys))
    for n in [chunk] * (size // chunk) + ([size % chunk] if size % chunk else []):
        batches = [temporal_order(rng, n, length) for rng in rngs]
        xs, labels = np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches])
        wrong += np.rint(n * np.asarray(errors_of(params, xs, labels), np.float64))  # counts, exactly
    return wrong / size


def _save_seed(seed_dir: Path, model, params, step: int, probe, history, s: int, cfg: Config) -> None:
    """What ``fit(model=, probe=)`` leaves for ``rj.runs.load_run``: the definition, the probe, the params at
    ``step`` in ``checkpoints/``, and this seed's columns of the group's log as its ``metrics.jsonl``."""
    rj.runs.save_definition(seed_dir, model, params, {"xs": np.asarray(probe)})
    with Checkpoints(seed_dir / "checkpoints", keep=1) as ckpt:
        ckpt.clear()
        ckpt.save(step, {"step": jnp.asarray(step), "params": params}, dataclasses.asdict(cfg))
    names = {
        f"loss/{s}": "loss",
        f"grad_norm/{s}": "grad_norm",
        f"skipped/{s}": "skipped",
        f"eval/error/{s}": "eval/error",
    }
    records = [{"step": r["step"], **{new: r[old] for old, new in names.items() if old in r}} for r in history]
    rj.runlog.write_log(seed_dir / "metrics.jsonl", [r for r in records if len(r) > 1])


def _group(groups: list[dict], cell: str, clip: str, length: int) -> dict | None:
    return next((g for g in groups if (g["cell"], g["clip"], g["T"]) == (cell, clip, length)), None)


def _max_norm(group: dict) -> float:
    return max(r["max_grad_norm"] for r in group["seeds"])


def _loss_range(group: dict) -> str:
    losses = [r["final_loss"] for r in group["seeds"]]
    return f"{min(losses):.3f}-{max(losses):.3f}"


def _rnn_classic(cfg: Config, groups: list[dict], clip: str) -> rj.experiment.Classic | None:
    pairs = [(T, _group(groups, "rnn", clip, T), _group(groups, "rnn", "none", T)) for T in cfg.lengths]
    pairs = [(T, c, n) for T, c, n in pairs if c and n]
    if not pairs:
        return None
    gaps = [c["success"] - n["success"] for _, c, n in pairs]
    never_worse = all(g >= 0 for g in gaps)
    if never_worse and gaps[-1] > 0 and gaps == sorted(gaps):
        agrees = "yes"  # clipping never hurts, helps at the longest T, and helps more as T grows
    else:
        agrees = "partly" if never_worse and any(g > 0 for g in gaps) else "no"
    stalled = [str(T) for T, c, n in pairs if c["solved"] == n["solved"] == 0]
    note = (
        f"{pairs[0][1]['steps']:,} updates of SGD at {cfg.rnn_learning_rate:g} (theirs: up to 5M at 0.01), "
        f"{cfg.seeds} seeds per setting (each run's key names its clipping, so the seeds are not paired), "
        f"{cfg.rnn_init} init, batch {cfg.batch_size}; success = under {cfg.threshold:.0%} errors on "
        f"{cfg.test_size:,} fresh sequences, as theirs. "
        + (f"At T = {', '.join(stalled)} no seed left chance in our budget, clipped or not: there the budget decides, "
           "not clipping. " if stalled else "")
        + "Largest gradient norm before clipping, over seeds and steps: "
        + "; ".join(f"T = {T}: {_max_norm(c):.3g} clipped, {_max_norm(n):.3g} unclipped" for T, c, n in pairs)
        + "; the unclipped seeds' final training loss: "
        + "; ".join(f"T = {T}: {_loss_range(n)}" for T, _, n in pairs)
        + f" (chance: {CHANCE_CROSS_ENTROPY:.3f}). Their fig. 7 gives the rates per length as a plot; the text "
        "states the trend."
    )  # fmt: skip
    return rj.experiment.Classic(
        result="temporal order, tanh RNN: clipping the gradient norm raises the success rate, more so as T grows",
        source=f"Pascanu, Mikolov & Bengio 2013, sec. 4.1.1, fig. 7 ({cfg.rnn_init.replace('_', ' ')})",
        published="success out of 5 runs (50 units, SGD 0.01, batch 20, clip 1, up to 5M updates): 'as the length "
        "of the sequence increases, using clipping becomes more important to achieve a better success rate'",
        ours="; ".join(
            f"T = {T}: {c['solved']}/{cfg.seeds} clipped, {n['solved']}/{cfg.seeds} unclipped" for T, c, n in pairs
        ),  # fmt: skip
        agrees=agrees,
        note=note,
    )


def _lstm_classic(cfg: Config, groups: list[dict], clip: str) -> rj.experiment.Classic | None:
    found = [g for T in cfg.lengths if (g := _group(groups, "lstm", clip, T))]
    if not found:
        return None
    g = found[-1]  # the longest T
    stops = [r["stopped_at"] for r in g["seeds"] if r["stopped_at"] is not None]
    wrong = round(min(r["test_error"] for r in g["seeds"]) * cfg.test_size)
    to_stop = (
        f"median {int(np.median(stops)) * cfg.batch_size:,} training sequences to stop" if stops else "none stopped"
    )
    return rj.experiment.Classic(
        result="temporal order (experiment 6a): the LSTM learns the order of two symbols 30+ steps apart",
        source="Hochreiter & Schmidhuber 1997, sec. 5.6, table 9",
        published="task 6a (T 100-110): 1 of 2,560 test sequences wrong after 31,390 training sequences (mean of 20)",
        ours=f"T = {g['T']}: {g['solved']}/{cfg.seeds} seeds under {cfg.threshold:.0%} test error; best seed {wrong} "
        f"of {cfg.test_size:,} wrong; {to_stop}",
        agrees="yes" if g["solved"] == cfg.seeds else "partly" if g["solved"] else "no",
        note=f"{g['optimizer']}, clipping at {clip}, {cfg.hidden_size} units with a forget gate (theirs: 2 blocks of 2 "
        "cells, no forget gate, SGD 0.5 online), Pascanu et al.'s placement of the symbols, stopped at the first "
        f"validation under {cfg.threshold:.0%} error (theirs: training error < 0.1 and 2,000 right in a row)",
    )


def _figures(cfg: Config, groups: list[dict], run_dir: Path, clip: str) -> str:
    """The sweeps (success rate, median test accuracy) and the loss curves; returns their markdown."""
    success, accuracy = {}, {}
    for cell in cfg.cells:
        for k in (clip, "none"):
            mine = [g for g in groups if (g["cell"], g["clip"]) == (cell, k)]
            Ts = np.array([g["T"] for g in mine])
            success[f"{cell}, clip {k}"] = (Ts, np.array([g["success"] for g in mine]))
            median = [1 - np.median([r["test_error"] for r in g["seeds"]]) for g in mine]
            accuracy[f"{cell}, clip {k}"] = (Ts, np.array(median))
    rj.plots.sweep(
        success, run_dir / "success.png", xlabel="T (sequence length)", ylabel="success rate",
        title=f"temporal order: share of {cfg.seeds} seeds under {cfg.threshold:.0%} test error",
        baselines={"chance (accuracy 1/4): never a success": 0.0},
    )  # fmt: skip
    rj.plots.sweep(
        accuracy, run_dir / "accuracy.png", xlabel="T (sequence length)", ylabel="median test accuracy",
        title=f"temporal order: median over {cfg.seeds} seeds", baselines={"chance 1/4": CHANCE_ACCURACY},
    )  # fmt: skip
    lines = ["![success rate](success.png)", "![median test accuracy](accuracy.png)"]
    for T in cfg.lengths:
        rj.plots.loss_curves(
            {f"{g['cell']}, clip {g['clip']}": g["loss"] for g in groups if g["T"] == T}, run_dir / f"loss_T{T}.png",
            baselines={"chance: log 4": CHANCE_CROSS_ENTROPY}, window=50,
            title=f"temporal order, T = {T}: training loss, mean over the seeds",
        )  # fmt: skip
        lines.append(f"![loss, T = {T}](loss_T{T}.png)")
    return "\n".join(lines)


def _tables(cfg: Config, groups: list[dict], clip: str) -> tuple[str, str]:
    rows = [
        [f"{cell}, clip {k}", *[f"{_group(groups, cell, k, T)['solved']}/{cfg.seeds}" for T in cfg.lengths]]
        for cell in cfg.cells
        for k in (clip, "none")
    ]
    table = rj.experiment.markdown_table(["cell, clipping", *[f"T = {T}" for T in cfg.lengths]], rows)
    headers = ["cell", "clip", "T", "optimiser", "updates (max)", "solved", "stopped at (step)", "test error",
               "final training loss", "skipped steps", "max grad norm", "seconds"]  # fmt: skip
    detail = [
        [g["cell"], g["clip"], g["T"], g["optimizer"], g["steps"], f"{g['solved']}/{cfg.seeds}",
         " ".join(str(r["stopped_at"] or "-") for r in g["seeds"]),
         " ".join(f"{r['test_error']:.4f}" for r in g["seeds"]), " ".join(f"{r['final_loss']:.3f}" for r in g["seeds"]),
         sum(r["skipped"] for r in g["seeds"]),
         f"{_max_norm(g):.3g}", f"{g['seconds']:.0f}"]
        for g in groups
    ]  # fmt: skip
    return table, rj.experiment.markdown_table(headers, detail)


def main(cfg: Config) -> dict:
    """Trains every (cell, clipping, T) group, writes the run folder and the report, returns the groups."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    clip = f"{cfg.clip_norm:g}"
    groups = [
        train_group(cfg, cell, c, T, run_dir) for cell in cfg.cells for c in (cfg.clip_norm, None) for T in cfg.lengths
    ]
    rj.experiment.merge_metrics(run_dir, [f"{g['cell']}/clip={g['clip']}/T={g['T']}" for g in groups], key="group")
    figures = _figures(cfg, groups, run_dir, clip)
    table, detail = _tables(cfg, groups, clip)
    body = (
        f"Success rate: the seeds (of {cfg.seeds}) whose network misclassified under {cfg.threshold:.0%} of "
        f"{cfg.test_size:,} fresh test sequences, each stopped at its first validation ({cfg.eval_size:,} sequences, "
        f"every {cfg.eval_every} steps) under {cfg.threshold:.0%} error, or at the budget. {cfg.hidden_size} units, "
        f"batches of {cfg.batch_size}; the tanh RNN with {cfg.rnn_optimizer} {cfg.rnn_learning_rate:g} from "
        f"Pascanu et al.'s {cfg.rnn_init} init, the LSTM and the GRU with {cfg.gated_optimizer} "
        f"{cfg.gated_learning_rate:g}; clipping the gradient norm at {clip}, or not at all. Chance: accuracy 1/4, "
        f"cross-entropy log 4 = {CHANCE_CROSS_ENTROPY:.4f}.\n\n{table}\n\n"
        "Per group: each seed's stopping step (- where it never stopped), test error and training loss (the mean of "
        "its last 100 steps, where the group stopped: a stopped seed trains on with the others); skipped steps are "
        "updates dropped for a non-finite loss, gradient or update; the gradient norm is before clipping.\n\n"
        f"{detail}\n\n"
        f"{figures}"
    )
    found = [c for c in (_rnn_classic(cfg, groups, clip), _lstm_classic(cfg, groups, clip)) if c is not None]
    title = "Temporal order problem: clipping and gating over seeds"
    rj.experiment.write_report(run_dir, title, body, seconds=time.perf_counter() - start, classics=found)
    summary = [{k: v for k, v in g.items() if k != "loss"} for g in groups]
    (run_dir / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(table)
    return {"run_dir": run_dir, "groups": groups, "table": table}


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
