"""The adding problem: can a recurrent network carry two numbers across T steps?

Each sequence has T steps of two inputs: a value from U(0, 1) and a marker that is 1 at two steps,
one in each half. The target, read after the last step, is the sum of the two marked values
(Hochreiter & Schmidhuber 1997; the form of Le, Jaitly & Hinton 2015). Predicting the mean scores an
MSE of 1/6 ~ 0.167, the baseline a network must beat to show it remembers anything.

This script trains the tanh RNN, the IRNN (ReLU with identity recurrence), the LSTM and the GRU on
the same batches and writes ``runs/<name>/`` under the current directory: ``config.json``,
``metrics.jsonl`` (one record per cell and step), ``loss_curves.png`` and ``report.md`` (with the run's
wall time). Each cell's keys come from its name (``rj.experiment.key_for``), so its result does not depend
on which other cells run beside it.

Run::

    python experiments/adding_problem.py                      # T = 100, the four cells
    python experiments/adding_problem.py --tiny               # seconds: a smoke test
    python experiments/adding_problem.py --length 200 --cells lstm gru --steps 5000
    python experiments/adding_problem.py --tbptt 20           # truncated BPTT: 20 steps per chunk
"""

from __future__ import annotations

import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj
from rnnjax.data.synthetic import ADDING_BASELINE_MSE, adding_problem


@dataclasses.dataclass(frozen=True)
class Config:
    """Train RNN, IRNN, LSTM and GRU on the adding problem and compare them with the baseline."""

    length: int = 100
    """T, steps per sequence."""
    cells: tuple[str, ...] = ("rnn", "irnn", "lstm", "gru")
    """Cells to train: rnn (tanh, orthogonal W), irnn (ReLU, W = I), lstm (forget bias 1), gru."""
    hidden_size: int = 64
    """Units per cell."""
    batch_size: int = 50
    """Sequences per training step (fresh ones every step)."""
    steps: int = 3000
    """Training steps per cell."""
    optimizer: str = "adam"
    """adam, adamw, sgd or rmsprop."""
    learning_rate: float = 1e-3
    """Peak learning rate."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    tbptt: int | None = None
    """Truncated BPTT: steps per chunk (None: full BPTT). Below T/2 the gradient cannot connect the
    first marker to the target."""
    eval_size: int = 1000
    """Held-out sequences for the evaluation MSE."""
    eval_every: int = 250
    """Evaluate every this many steps (and at the end)."""
    seed: int = 0
    """One seed for the weights and the data."""
    name: str = "adding_problem"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per cell."""
    tiny: bool = False
    """Smoke test: T = 10, 8 units, 4 steps (seconds); overrides those fields."""


TINY = dict(length=10, hidden_size=8, batch_size=8, steps=4, eval_size=16, eval_every=2)


def make_cell(name: str, hidden_size: int) -> rj.Cell:
    cells = {
        "rnn": lambda: rj.cells.rnn(hidden_size),
        "irnn": lambda: rj.cells.irnn(hidden_size),
        "lstm": lambda: rj.cells.lstm(hidden_size, forget_bias=1.0),
        "gru": lambda: rj.cells.gru(hidden_size),
    }
    if name not in cells:
        raise ValueError(f"cells: expected names among {tuple(cells)}, got {name!r}")
    return cells[name]()


def train_cell(cfg: Config, name: str, run_dir, eval_set) -> dict:
    """Trains one cell; returns its summary row and curves."""
    model = rj.models.ManyToOne(rj.RNN(cell=make_cell(name, cfg.hidden_size)), output_size=1)
    key = rj.experiment.key_for(jax.random.key(cfg.seed), name)
    params = model.init(jax.random.fold_in(key, 0), 2)
    tx = rj.train.optimizer(cfg.optimizer, cfg.learning_rate, clip_norm=cfg.clip_norm)

    def data(step: int):
        return adding_problem(np.random.default_rng([cfg.seed, step]), cfg.batch_size, cfg.length)

    def loss_fn(p, batch, key):
        xs, ys = batch
        return rj.losses.mse(model.apply(p, xs), ys), {}

    value_and_grad = None
    if cfg.tbptt is not None:
        value_and_grad = _truncated(model, cfg.tbptt)

    @jax.jit
    def eval_mse(p):
        return {"mse": rj.losses.mse(model.apply(p, eval_set[0]), eval_set[1])}

    train_step = rj.train.make_train_step(loss_fn, tx, value_and_grad=value_and_grad)
    start = time.perf_counter()
    _, history = rj.train.fit(
        rj.train.TrainState.create(params, tx), train_step, data, cfg.steps,
        key=jax.random.fold_in(key, 1), run_dir=run_dir / name, eval_fn=eval_mse, eval_every=cfg.eval_every,
        config=dataclasses.asdict(cfg), progress=cfg.progress, description=name, overwrite=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    steps, evals = rj.train.history_array(history, "eval/mse")
    solved = steps[evals < 0.01]
    return {
        "cell": name,
        "final_mse": float(evals[-1]),
        "best_mse": float(evals.min()),
        "first_step_below_0.01": int(solved[0]) if solved.size else None,
        "seconds": seconds,
        "train": rj.train.history_array(history, "loss"),
        "eval": (steps, evals),
    }


def _truncated(model: rj.models.ManyToOne, k: int):
    """Gradients by truncated BPTT: the loss sits on the last step, chunks of k steps before it."""

    def chunk_loss(p, carry, chunk):
        xs, target, weight = chunk  # weight: 1 at the sequence's last step, 0 elsewhere
        ys, finals = model.rnn.apply(p.rnn, xs, carry=carry)
        pred = rj.models.dense(p.head, ys)
        return rj.losses.mse(pred, target, weight, reduction="sum") / xs.shape[0], finals

    def value_and_grad(p, batch, key):
        del key
        xs, ys = batch
        b, t, _ = xs.shape
        weight = jnp.zeros((b, t)).at[:, -1].set(1.0)
        target = jnp.broadcast_to(ys[:, None], (b, t, ys.shape[-1]))
        carry = model.rnn.initial_carry(p.rnn, b)
        loss, grads, _ = rj.bptt.truncated_value_and_grad(chunk_loss, p, carry, (xs, target, weight), k)
        return (loss, {}), grads

    return value_and_grad


def main(cfg: Config) -> dict:
    """Trains every cell, writes the run folder, prints and returns the results table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    eval_set = adding_problem(np.random.default_rng([cfg.seed, 2**31]), cfg.eval_size, cfg.length)
    results = [train_cell(cfg, name, run_dir, eval_set) for name in cfg.cells]
    with (run_dir / "metrics.jsonl").open("w") as f:  # all cells in one log, one record per step
        for r in results:
            for line in (run_dir / r["cell"] / "metrics.jsonl").read_text().splitlines():
                f.write(json.dumps({"cell": r["cell"], **json.loads(line)}) + "\n")
    rj.plots.loss_curves(
        {r["cell"]: r["train"] for r in results}, run_dir / "loss_curves.png",
        evals={r["cell"]: r["eval"] for r in results}, baselines={"predict 1 (MSE 1/6)": ADDING_BASELINE_MSE},
        ylabel="MSE", window=max(1, cfg.steps // 100),
        title=f"adding problem, T = {cfg.length}" + (f", truncated BPTT k = {cfg.tbptt}" if cfg.tbptt else ""),
    )  # fmt: skip
    rows = [
        [r["cell"], r["final_mse"], r["best_mse"], r["final_mse"] / ADDING_BASELINE_MSE,
         r["first_step_below_0.01"] or "never", f"{r['seconds']:.1f}"]
        for r in results
    ]  # fmt: skip
    table = rj.experiment.markdown_table(
        ["cell", "final eval MSE", "best eval MSE", "final / baseline", "first step with MSE < 0.01", "seconds"], rows
    )
    body = (
        f"T = {cfg.length}, hidden {cfg.hidden_size}, batch {cfg.batch_size}, {cfg.steps} steps of {cfg.optimizer} "
        f"(lr {cfg.learning_rate}, clip {cfg.clip_norm}), "
        + ("full BPTT" if cfg.tbptt is None else f"truncated BPTT k = {cfg.tbptt}")
        + f"; evaluation on {cfg.eval_size} held-out sequences. "
        f"Baseline (always predict 1): MSE {ADDING_BASELINE_MSE:.4f}.\n\n{table}\n\n![loss curves](loss_curves.png)"
    )
    rj.experiment.write_report(run_dir, "Adding problem", body, seconds=time.perf_counter() - start)
    print(table)
    return {"run_dir": run_dir, "results": results, "table": table}


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
