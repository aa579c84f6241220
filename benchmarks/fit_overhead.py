"""What ``rj.train.fit`` costs over a bare jitted loop, and what its Lyapunov monitor costs over ``fit``: steps per
second of the three, measured in one run.

Both train the same model on the same batches with the same jitted step: the bare loop calls it and waits
once at the end; ``fit`` adds its NaN guard (an on-device finiteness check of the updated state), the
transfer of the metrics every ``log_every`` steps, the strict-JSON log and the progress bar (off here).
The two take turns, round after round, and the median of each is compared: the ratio is
``fit / bare`` steps per second (1.0: no overhead; the goal is at least 0.95 on the CPU).

The third side is ``fit`` with ``monitor=rj.analysis.lyapunov_monitor(...)`` every ``monitor_every`` steps: the
``monitor_k`` largest Lyapunov exponents of the trained network driven by ``monitor_batch`` fixed sequences of the
task (Vogt et al. 2022), logged beside the loss. Its ratio ``monitored / fit`` (steps per second) is the cost
of leaving the monitor on. On a busy machine the rounds' medians wobble by more than the monitor costs, so the
same ratio is also computed from its parts: the fastest of many calls of one train step and of one measurement,
``1 / (1 + t_measure / (monitor_every * t_step))``.

Run::

    python benchmarks/fit_overhead.py                    # the adding problem's LSTM, writes runs/fit_overhead/
    python benchmarks/fit_overhead.py --log-every 1      # the host waits for every step
    python benchmarks/fit_overhead.py --monitor-every 10  # the Lyapunov monitor ten times as often
    python benchmarks/fit_overhead.py --tiny             # seconds
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj
from rnnjax.analysis.monitor import lyapunov_monitor
from rnnjax.data import adding_problem


@dataclasses.dataclass(frozen=True)
class Config:
    """Steps per second of rj.train.fit against a bare jitted loop over the same step."""

    cell: str = "lstm"
    """The cell, by name for rj.cells.make."""
    hidden_size: int = 64
    """Units of the cell (the adding problem's experiment uses 64)."""
    length: int = 100
    """T of the adding problem."""
    batch_size: int = 50
    """Sequences per step."""
    steps: int = 1000
    """Training steps per timed round, for each side (fit's fixed costs, the lock, the log file and the final
    checkpoint, weigh more in short rounds)."""
    rounds: int = 5
    """Timed rounds per side (after one warm-up round each); the median is reported."""
    log_every: int = 10
    """fit's log_every: steps between transfers of the metrics from the device."""
    run_dir: bool = True
    """Give fit a run directory (the strict-JSON log on disk), as the experiments do."""
    monitor_every: int = 100
    """The monitored side: fit's monitor_every, steps between measurements of the Lyapunov exponents."""
    monitor_k: int = 3
    """Exponents the monitor measures (the largest k)."""
    monitor_batch: int = 8
    """Sequences of the task (of the same length T) that drive the network while the monitor measures."""
    calls: int = 50
    """Timed calls of one train step and of one measurement, for the cost from the parts (the fastest counts)."""
    tiny: bool = False
    """Smoke test: a tiny model, few steps, one round (seconds)."""
    seed: int = 0
    """Seed of the weights and the batches."""
    name: str = "fit_overhead"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""


TINY = dict(hidden_size=4, length=5, batch_size=2, steps=12, rounds=1, monitor_every=6, monitor_k=2, monitor_batch=2,
            calls=3)  # fmt: skip


def main(cfg: Config) -> dict[str, float]:
    """Times both sides, prints and writes the table; returns the medians and their ratio."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    model = rj.models.ManyToOne(rj.RNN(cell=rj.cells.make(cfg.cell, cfg.hidden_size)), output_size=1)
    key = jax.random.key(cfg.seed)
    tx = rj.train.optimizer("adam", 1e-3, clip_norm=1.0)
    state0 = rj.train.TrainState.create(model.init(key, 2), tx)

    def loss_fn(params, batch, key):
        xs, ys = batch
        return rj.losses.mse(model.apply(params, xs), ys), {}

    train_step = rj.train.make_train_step(loss_fn, tx)
    batches = [adding_problem(np.random.default_rng([cfg.seed, s]), cfg.batch_size, cfg.length)
               for s in range(cfg.steps)]  # fmt: skip
    data = batches.__getitem__  # made before the clock starts: both sides time training, not data
    bare_step = jax.jit(train_step)
    probe = jnp.asarray(adding_problem(np.random.default_rng([cfg.seed, 2**31]), cfg.monitor_batch, cfg.length)[0])
    monitor = lyapunov_monitor(lambda p: (model.rnn, p.rnn), probe, k=cfg.monitor_k)

    def bare() -> None:
        state = state0
        for s in range(cfg.steps):
            state, _ = bare_step(state, data(s), jax.random.fold_in(key, s))
        jax.block_until_ready(state)

    def fit(**options) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            state, _ = rj.train.fit(
                state0, train_step, data, cfg.steps, key=key, run_dir=tmp if cfg.run_dir else None,
                progress=False, log_every=cfg.log_every, **options,
            )  # fmt: skip
            jax.block_until_ready(state)

    monitored = f"fit + Lyapunov monitor (k = {cfg.monitor_k}, every {cfg.monitor_every})"
    sides = {
        "bare jitted loop": bare,
        "rj.train.fit": fit,
        monitored: lambda: fit(monitor=monitor, monitor_every=cfg.monitor_every),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for name, run in sides.items():  # warm-up: compile both
        run()
    for r in range(cfg.rounds):
        for name in list(sides) if r % 2 == 0 else list(sides)[::-1]:  # the order turns every round
            t0 = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - t0)
    rates = {name: cfg.steps / statistics.median(t) for name, t in times.items()}
    ratio = rates["rj.train.fit"] / rates["bare jitted loop"]
    monitor_ratio = rates[monitored] / rates["rj.train.fit"]
    # The same cost from its parts, each the fastest of many calls (what a busy machine disturbs least): one
    # measurement against monitor_every train steps.
    t_step = fastest(lambda: bare_step(state0, data(0), key), cfg.calls)
    t_monitor = fastest(lambda: monitor(state0.params), cfg.calls)
    parts_ratio = 1.0 / (1.0 + t_monitor / (cfg.monitor_every * t_step))
    rows = [[name, f"{rates[name]:.1f}", f"{cfg.steps / min(t):.1f}", f"{cfg.steps / max(t):.1f}"]
            for name, t in times.items()]  # fmt: skip
    table = rj.experiment.markdown_table(["side", "steps/s (median)", "fastest", "slowest"], rows)
    body = (
        f"{cfg.cell}, hidden {cfg.hidden_size}, adding problem T = {cfg.length}, batch {cfg.batch_size}; "
        f"{cfg.steps} steps per round, {cfg.rounds} rounds per side; fit with log_every={cfg.log_every}"
        f"{' and a run directory' if cfg.run_dir else ''}. The monitored side measures the {cfg.monitor_k} largest "
        f"Lyapunov exponents (rj.analysis.lyapunov_monitor) on {cfg.monitor_batch} sequences of T = {cfg.length} "
        f"every {cfg.monitor_every} steps.\n\n{table}\n\nfit / bare: **{ratio:.3f}**\n\n"
        f"fit with the Lyapunov monitor / fit: **{monitor_ratio:.3f}**\n\n"
        f"From the parts (the fastest of {cfg.calls} calls each): a train step {1e3 * t_step:.2f} ms, one measurement "
        f"{1e3 * t_monitor:.2f} ms, so one every {cfg.monitor_every} steps leaves fit at **{parts_ratio:.3f}** of "
        f"its speed."
    )
    record = {"times_s": times, "steps_per_s": rates, "ratio": ratio, "monitor_ratio": monitor_ratio,
              "step_s": t_step, "monitor_s": t_monitor, "parts_ratio": parts_ratio}  # fmt: skip
    (run_dir / "metrics.jsonl").write_text(json.dumps(record, allow_nan=False) + "\n")
    rj.experiment.write_report(run_dir, "fit against a bare jitted loop", body, seconds=time.perf_counter() - start)
    print(table, f"\nfit / bare: {ratio:.3f}\nfit with the Lyapunov monitor / fit: {monitor_ratio:.3f} (from the "
          f"parts: {parts_ratio:.3f})")  # fmt: skip
    return {**rates, "ratio": ratio, "monitor_ratio": monitor_ratio, "parts_ratio": parts_ratio}


def fastest(call: Callable[[], object], calls: int) -> float:
    """The fastest of ``calls`` timed calls (each waited for), in seconds."""
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    return min(times)


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
