"""The adding problem: how far back can a recurrent network carry two numbers?

Each sequence has T steps of two inputs: a value from U(0, 1) and a marker that is 1 at two steps,
one in each half. The target, read after the last step, is the sum of the two marked values
(Hochreiter & Schmidhuber 1997; the form of Le, Jaitly & Hinton 2015). Predicting the mean, 1, scores an
MSE of 1/6 ~ 0.167, the baseline a network must beat to show it remembers anything; remembering only the
second value (at most T/2 steps back) scores Var(U) = 1/12 ~ 0.083.

This script sweeps T (100, 200 and 400 by default) and trains, at each T and on the same batches, the tanh
RNN, the IRNN (ReLU with W = I, Le et al. 2015), the LSTM, the GRU, the IndRNN (Li et al. 2018) and the
minGRU (Feng et al. 2024), with the same optimiser and the same number of steps for every cell at a given T
(the IRNN at its own learning rate, see ``Config.learning_rates``). It reports, per cell, the final
evaluation MSE at each T and the longest T at which the cell still beats the baseline, beside Le et al.'s
figure (the IRNN and the LSTM solve T = 150 to 400) and Hochreiter & Schmidhuber's LSTM at T = 100.

It writes ``runs/<name>/`` under the current directory: ``config.json``, ``metrics.jsonl`` (one record per
cell, T and step), ``sweep.png`` (final MSE against T), ``loss_curves_T<T>.png`` (one per T), ``report.md``
(with the run's wall time) and one folder per model, ``<cell>_T<T>/``, that ``rj.runs.load_run`` reads back.
Each model's key comes from its name and T (``rj.experiment.key_for(key, "lstm/T=200")``), so its result does
not depend on which other cells or lengths run beside it.

Budget: a step at T = 400 costs 4 (the tanh RNN) to 7 (the LSTM) times a step at T = 100 (measured), so the
default trains fewer steps at the longer T (``Config.steps``: 3000, 2000 and 1500), the same for every cell at
a T. The default run takes about 6 minutes on 2 quiet CPU cores: measured on a loaded machine (load average
10 on 2 cores), it took 12 minutes of wall time and 372 s of CPU time (the report gives each run's wall time).

Run::

    python experiments/adding_problem.py                      # T = 100, 200, 400; six cells
    python experiments/adding_problem.py --tiny               # seconds: a smoke test
    python experiments/adding_problem.py --lengths 100 200 --steps 3000 --cells lstm gru
    python experiments/adding_problem.py --lengths 200 --tbptt 50   # truncated BPTT: 50 steps per chunk
"""

from __future__ import annotations

import dataclasses
import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rnnjax as rj
from rnnjax.data.synthetic import ADDING_BASELINE_MSE, adding_problem

ONE_VALUE_MSE = 1.0 / 12.0
"""MSE of a network that remembers only one of the two marked values: the variance of the other, U(0, 1)."""
SOLVED_MSE = 0.01
"""The MSE below which a run counts as having solved the task (the usual threshold since Hochreiter &
Schmidhuber 1997, whose stopping criterion was an average training error below 0.01)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Train recurrent cells on the adding problem at several lengths T and find where each stops beating the
    baseline."""

    lengths: tuple[int, ...] = (100, 200, 400)
    """The sequence lengths T to sweep (each at least 2)."""
    cells: tuple[str, ...] = ("rnn", "irnn", "lstm", "gru", "indrnn", "mingru")
    """Cells to train (any of rj.cells.CELLS): rnn (tanh, orthogonal W), irnn (ReLU, W = I, input weights
    N(0, 0.001^2), Le et al. 2015), lstm (forget bias 1), gru, indrnn (ReLU, u ~ U(2^(-1/T), 2^(1/T)) and |u|
    clipped to 2^(1/T) after every step, Li et al. 2018), mingru (Feng et al. 2024: gate and candidate from x_t
    alone); the others with rj.cells.make's defaults. Left out of the default to keep it within its budget: lru,
    minlstm and ln_lstm (whose step costs about 3.5 times the LSTM's, benchmarks/cell_speed.py)."""
    hidden_size: int = 64
    """Units per cell."""
    batch_size: int = 50
    """Sequences per training step (fresh ones every step)."""
    steps: tuple[int, ...] = (3000, 2000, 1500)
    """Training steps per cell at each T: one number per entry of lengths, or one number for every T. The same
    for every cell at a given T."""
    optimizer: str = "adam"
    """adam, adamw, sgd or rmsprop."""
    learning_rate: float = 3e-3
    """Learning rate (constant) of every cell not in learning_rates. 3e-3 rather than Adam's usual 1e-3: at 1e-3
    the LSTM stayed at the baseline at T = 200 through 2000 steps (measured), at 3e-3 it ended at an MSE of 0.0016."""
    learning_rates: tuple[tuple[str, float], ...] = (("irnn", 1e-4),)
    """Learning rates by cell that replace learning_rate (--learning-rates irnn 1e-4 lstm 1e-3), as Le et al. tuned
    theirs per model. The IRNN's: Adam's first steps move every entry of W = I by about the learning rate, so at
    3e-3 its spectral radius left 1 and h_400 overflowed at step 2 (measured); at 1e-4 the IRNN ended at MSEs of
    0.054, 0.141 and 0.084 at T = 100, 200 and 400, at 3e-4 at 0.024, 0.168 and 0.159."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    tbptt: int | None = None
    """Truncated BPTT: steps per chunk, at most the shortest T (None: full BPTT). Below T/2 the gradient cannot
    connect the first marker to the target."""
    eval_size: int = 1000
    """Held-out sequences per T for the evaluation MSE."""
    eval_every: int = 250
    """Evaluate every this many steps (and at the end)."""
    seed: int = 0
    """One seed for the weights and the data."""
    name: str = "adding_problem"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per model."""
    tiny: bool = False
    """Smoke test: T = 10 and 100, 8 units, 4 steps (seconds); overrides those fields."""


TINY = dict(lengths=(10, 100), hidden_size=8, batch_size=8, steps=(4,), eval_size=16, eval_every=2)


def baseline_threshold(eval_size: int) -> float:
    """The MSE a run must end below to count as beating the predict-1 baseline on ``eval_size`` sequences.

    Predicting 1 has squared errors ``e = (u_1 + u_2 - 1)^2``, with ``u_1 + u_2 - 1`` triangular on [-1, 1]:
    ``E[e] = 1/6`` and ``Var[e] = E[x^4] - E[x^2]^2 = 1/15 - 1/36 = 7/180``. The threshold is the baseline less
    three standard errors of its mean over ``eval_size`` sequences, ``1/6 - 3 sqrt(7/180 / n)`` (0.148 for
    1,000), so that a network that learned nothing does not count as beating it by the luck of the evaluation set.
    """
    if not isinstance(eval_size, int) or isinstance(eval_size, bool) or eval_size < 1:
        raise ValueError(f"eval_size: expected a positive int, got {eval_size!r}")
    return ADDING_BASELINE_MSE - 3.0 * math.sqrt(7.0 / 180.0 / eval_size)


def steps_per_length(cfg: Config) -> dict[int, int]:
    """``{T: training steps}`` from ``cfg.steps`` (one per length, or one for all)."""
    if len(cfg.steps) not in (1, len(cfg.lengths)):
        raise ValueError(
            f"steps: expected one number or one per length ({len(cfg.lengths)}: {cfg.lengths}), got {cfg.steps}"
        )
    steps = cfg.steps * len(cfg.lengths) if len(cfg.steps) == 1 else cfg.steps
    return dict(zip(cfg.lengths, steps, strict=True))


def check_config(cfg: Config) -> None:
    """Raises ValueError for a config the sweep cannot run, naming the field."""
    if not cfg.lengths or len(set(cfg.lengths)) != len(cfg.lengths) or min(cfg.lengths) < 2:
        raise ValueError(f"lengths: expected distinct lengths T >= 2, got {cfg.lengths}")
    unknown = [c for c in cfg.cells if c not in rj.cells.CELLS]
    if not cfg.cells or unknown or len(set(cfg.cells)) != len(cfg.cells):
        raise ValueError(f"cells: expected distinct names among {tuple(rj.cells.CELLS)}, got {cfg.cells}")
    if any(s < 1 for s in steps_per_length(cfg).values()):
        raise ValueError(f"steps: expected positive step counts, got {cfg.steps}")
    rates = [name for name, _ in cfg.learning_rates]
    if len(set(rates)) != len(rates) or any(n not in rj.cells.CELLS or not lr > 0 for n, lr in cfg.learning_rates):
        raise ValueError(f"learning_rates: expected distinct cell names with positive rates, got {cfg.learning_rates}")
    if not cfg.learning_rate > 0:
        raise ValueError(f"learning_rate: expected a positive rate, got {cfg.learning_rate}")
    if cfg.tbptt is not None and not 1 <= cfg.tbptt <= min(cfg.lengths):
        raise ValueError(f"tbptt: expected None or 1 to the shortest T ({min(cfg.lengths)}), got {cfg.tbptt}")


def make_cell(name: str, hidden_size: int, length: int) -> rj.Cell:
    """The cell ``name`` for sequences of ``length`` steps (the IndRNN's recurrent weights depend on T)."""
    if name == "lstm":
        return rj.cells.lstm(hidden_size, forget_bias=1.0)
    if name == "indrnn":  # the authors' initialisation for a layer read at its last step only
        return rj.cells.indrnn(hidden_size, "relu", t_max=length, long_memory=True)
    return rj.cells.make(name, hidden_size)


def learning_rate(cfg: Config, name: str) -> float:
    """The learning rate of cell ``name``: its entry in ``cfg.learning_rates``, else ``cfg.learning_rate``."""
    return dict(cfg.learning_rates).get(name, cfg.learning_rate)


def make_optimizer(cfg: Config, name: str, length: int) -> optax.GradientTransformation:
    """The config's optimiser at the cell's learning rate; for the IndRNN followed by the paper's clip of ``|u|``
    to ``2^(1/T)``."""
    tx = rj.train.optimizer(cfg.optimizer, learning_rate(cfg, name), clip_norm=cfg.clip_norm)
    if name == "indrnn":
        return optax.chain(tx, rj.train.project_params(lambda p: rj.cells.constrain_indrnn(p, t_max=length)))
    return tx


def train_cell(cfg: Config, name: str, length: int, steps: int, run_dir, eval_set) -> dict:
    """Trains one cell at one T; returns its summary row and curves (or, if training diverged, says where)."""
    model = rj.models.ManyToOne(rj.RNN(cell=make_cell(name, cfg.hidden_size, length)), output_size=1)
    key = rj.experiment.key_for(jax.random.key(cfg.seed), f"{name}/T={length}")
    params = model.init(jax.random.fold_in(key, 0), 2)
    tx = make_optimizer(cfg, name, length)

    def data(step: int):
        return adding_problem(np.random.default_rng([cfg.seed, length, step]), cfg.batch_size, length)

    def loss_fn(p, batch, key):
        xs, ys = batch
        return rj.losses.mse(model.apply(p, xs), ys), {}

    value_and_grad = None if cfg.tbptt is None else _truncated(model, cfg.tbptt)

    @jax.jit
    def eval_mse(p):
        return {"mse": rj.losses.mse(model.apply(p, eval_set[0]), eval_set[1])}

    train_step = rj.train.make_train_step(loss_fn, tx, value_and_grad=value_and_grad)
    folder = f"{name}_T{length}"
    start = time.perf_counter()
    row = {"cell": name, "T": length, "steps": steps, "folder": folder}
    try:
        _, history = rj.train.fit(
            rj.train.TrainState.create(params, tx), train_step, data, steps, key=jax.random.fold_in(key, 1),
            run_dir=run_dir / folder, eval_fn=eval_mse, eval_every=cfg.eval_every, config=dataclasses.asdict(cfg),
            progress=cfg.progress, description=f"{name} T={length}", overwrite=True, model=model,
            probe={"xs": eval_set[0][:8]},
        )  # fmt: skip
    except rj.train.TrainingDiverged as e:  # a row that says so; the other models still run
        return row | {"diverged": str(e).split("; training stopped")[0], "seconds": time.perf_counter() - start}
    steps_at, evals = rj.train.history_array(history, "eval/mse")
    solved = steps_at[evals < SOLVED_MSE]
    return row | {
        "diverged": None,
        "final_mse": float(evals[-1]),
        "best_mse": float(evals.min()),
        "first_step_solved": int(solved[0]) if solved.size else None,
        "seconds": time.perf_counter() - start,
        "train": rj.train.history_array(history, "loss"),
        "eval": (steps_at, evals),
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


def _beats(r: dict, threshold: float) -> bool:
    return r["diverged"] is None and r["final_mse"] < threshold


def longest_below(results: list[dict], cell: str, threshold: float) -> tuple[int | None, int | None]:
    """``(longest T at which cell beats the baseline, shortest T at which it does not)``, None where none."""
    rows = [r for r in results if r["cell"] == cell]
    below = [r["T"] for r in rows if _beats(r, threshold)]
    above = [r["T"] for r in rows if not _beats(r, threshold)]
    return (max(below) if below else None), (min(above) if above else None)


def sweep_table(cfg: Config, results: list[dict], threshold: float) -> str:
    """One row per cell: the final eval MSE at each T, the longest T below the baseline, the first T not."""
    by = {(r["cell"], r["T"]): r for r in results}
    rows = []
    for cell in cfg.cells:
        longest, first_not = longest_below(results, cell, threshold)
        mses = ["diverged" if by[cell, t]["diverged"] else by[cell, t]["final_mse"] for t in cfg.lengths]
        rows.append([cell, *mses, longest or "none", first_not or f"none up to {max(cfg.lengths)}"])
    headers = ["cell", *[f"T = {t}" for t in cfg.lengths], "longest T below the baseline", "first T not below"]
    return rj.experiment.markdown_table(headers, rows)


DETAIL_COLUMNS = ("cell", "final eval MSE", "best eval MSE", "final / baseline", "first step with MSE < 0.01",
                  "seconds")  # fmt: skip


def detail_table(results: list[dict]) -> str:
    """The runs at one T: the columns of :data:`DETAIL_COLUMNS`."""
    rows = []
    for r in results:
        if r["diverged"]:
            rows.append([r["cell"], r["diverged"], "", "", "", f"{r['seconds']:.1f}"])
            continue
        rows.append([r["cell"], r["final_mse"], r["best_mse"], r["final_mse"] / ADDING_BASELINE_MSE,
                     r["first_step_solved"] or "never", f"{r['seconds']:.1f}"])  # fmt: skip
    return rj.experiment.markdown_table(DETAIL_COLUMNS, rows)


def _rates(cfg: Config) -> str:
    """``0.003`` or ``0.003, irnn 0.0001``: the learning rates of the run's cells."""
    return ", ".join([f"{cfg.learning_rate:g}", *[f"{n} {lr:g}" for n, lr in cfg.learning_rates if n in cfg.cells]])


def classics(cfg: Config, results: list[dict], threshold: float) -> list[rj.experiment.Classic]:
    """Le et al. 2015 (the IRNN and the LSTM against the tanh RNN) and Hochreiter & Schmidhuber 1997 (the LSTM
    at T = 100) beside this run, for the cells and lengths it has."""
    by = {(r["cell"], r["T"]): r for r in results}
    long = [t for t in cfg.lengths if t >= 150] or list(cfg.lengths)  # Le et al.'s figure: T = 150 to 400
    at_long = "/".join(map(str, long))

    def beaten(cell: str) -> list[int]:
        return [t for t in long if _beats(by[cell, t], threshold)]

    def solved(cell: str) -> str:
        return "/".join(str(t) for t in long if not by[cell, t]["diverged"] and by[cell, t]["final_mse"] < SOLVED_MSE)

    def mses(cell: str) -> str:
        rows = [by[cell, t] for t in cfg.lengths]
        return "/".join("diverged" if r["diverged"] else f"{r['final_mse']:.3g}" for r in rows)

    lengths = "/".join(map(str, cfg.lengths))
    budget = (f"{'/'.join(map(str, steps_per_length(cfg).values()))} steps of {cfg.optimizer} (lr {_rates(cfg)}; "
              f"batch {cfg.batch_size}, {cfg.hidden_size} units) at T = {lengths}")  # fmt: skip
    out = []
    if "irnn" in cfg.cells and "lstm" in cfg.cells:
        irnn, lstm = beaten("irnn"), beaten("lstm")
        out.append(rj.experiment.Classic(
            result="adding problem, T = 150 to 400: the IRNN learns it as well as the LSTM",
            source="Le, Jaitly & Hinton 2015, sec. 4.1, fig. 2",
            published="IRNN and LSTM test MSE far below the 0.1767 baseline at T = 150, 200, 300 and 400 (100 units, "
                      "SGD, 100,000 training sequences); abstract: \"comparable to a standard implementation of "
                      "LSTMs on our four benchmarks\"",
            ours=f"final MSE at T = {lengths}: IRNN {mses('irnn')}, LSTM {mses('lstm')} (baseline 0.1667, beaten "
                 f"below {threshold:.3f})",
            agrees="yes" if solved("irnn") == solved("lstm") == at_long else "partly" if irnn or lstm else "no",
            note=f"ours: {budget}, {cfg.optimizer} instead of SGD, a budget far below the paper's (many passes over "
                 f"its 100,000 training sequences); of T = {at_long} the IRNN beats the baseline at "
                 f"{'/'.join(map(str, irnn)) or 'none'} and ends below MSE 0.01 at {solved('irnn') or 'none'}; the "
                 f"LSTM beats it at {'/'.join(map(str, lstm)) or 'none'} and ends below 0.01 at "
                 f"{solved('lstm') or 'none'}",
        ))  # fmt: skip
    if "rnn" in cfg.cells:
        rnn = beaten("rnn")
        out.append(rj.experiment.Classic(
            result="adding problem, T = 150 to 400: the tanh RNN does not learn it",
            source="Le, Jaitly & Hinton 2015, fig. 2",
            published="RNN + tanh stays near the 0.1767 baseline at T = 150, 200, 300 and 400 (as read from the "
                      "figure)",
            ours=f"tanh RNN final MSE at T = {lengths}: {mses('rnn')}",
            agrees="no" if rnn else "yes",
            note=f"ours: {budget}; of T = {at_long} it beats the baseline (MSE < {threshold:.3f}) at "
                 f"{'/'.join(map(str, rnn)) or 'none'}",
        ))  # fmt: skip
    if ("lstm", 100) in by:
        r, sequences = by["lstm", 100], steps_per_length(cfg)[100] * cfg.batch_size
        if r["diverged"]:
            ours, agrees = f"LSTM training diverged ({r['diverged']})", "no"
        elif r["first_step_solved"] is not None:
            ours = (
                f"LSTM eval MSE < 0.01 after {r['first_step_solved'] * cfg.batch_size:,} sequences (step "
                f"{r['first_step_solved']}, batch {cfg.batch_size}); final MSE {r['final_mse']:.3g}"
            )
            agrees = "yes"
        else:
            ours = f"LSTM not below MSE 0.01 within {sequences:,} sequences; final MSE {r['final_mse']:.3g}"
            agrees = "partly" if _beats(r, threshold) else "no"
        out.append(rj.experiment.Classic(
            result="adding problem, T = 100: the LSTM solves it",
            source="Hochreiter & Schmidhuber 1997, sec. 5.4 (experiment 4), table 7",
            published="T = 100: training stopped after 74,000 sequences on average (average training error below "
                      "0.01 and the last 2,000 sequences all within 0.04 of their targets)",
            ours=ours,
            agrees=agrees,
            note="their variant differs: values in [-1, 1], target 0.5 + (x_1 + x_2) / 4 (half of ours, so squared "
                 "errors a quarter of ours), lengths T to 1.1 T, the first marker in the first 10 steps, a much "
                 f"smaller LSTM trained online; ours reads the eval MSE every {cfg.eval_every} steps",
        ))  # fmt: skip
    return out


def main(cfg: Config) -> dict:
    """Trains every cell at every T, writes the run folder, prints and returns the sweep table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    check_config(cfg)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    threshold = baseline_threshold(cfg.eval_size)
    results, predict_one = [], {}
    for length, steps in steps_per_length(cfg).items():
        eval_set = adding_problem(np.random.default_rng([cfg.seed, 2**31, length]), cfg.eval_size, length)
        predict_one[length] = float(np.mean((eval_set[1] - 1.0) ** 2))
        results += [train_cell(cfg, name, length, steps, run_dir, eval_set) for name in cfg.cells]
    with (run_dir / "metrics.jsonl").open("w") as f:  # every model in one log, one record per step
        for r in results:
            for line in (run_dir / r["folder"] / "metrics.jsonl").read_text().splitlines():
                f.write(json.dumps({"cell": r["cell"], "T": r["T"], **json.loads(line)}) + "\n")

    baselines = {"predict 1 (MSE 1/6)": ADDING_BASELINE_MSE, "one value remembered (MSE 1/12)": ONE_VALUE_MSE}
    trained = [r for r in results if not r["diverged"]]
    points = {c: [(r["T"], r["final_mse"]) for r in trained if r["cell"] == c] for c in cfg.cells}
    rj.plots.sweep(
        {c: tuple(np.array(v, float).reshape(-1, 2).T) for c, v in points.items()}, run_dir / "sweep.png",
        xlabel="T (steps per sequence)", ylabel="final eval MSE", log_y=True, baselines=baselines,
        title="adding problem: final MSE against T" + (f", truncated BPTT k = {cfg.tbptt}" if cfg.tbptt else ""),
    )  # fmt: skip
    tables = {"sweep": sweep_table(cfg, results, threshold)}
    sections = []
    for length, steps in steps_per_length(cfg).items():
        at = [r for r in results if r["T"] == length]
        ok = [r for r in at if not r["diverged"]]
        figure = f"loss_curves_T{length}.png"
        rj.plots.loss_curves(
            {r["cell"]: r["train"] for r in ok}, run_dir / figure, evals={r["cell"]: r["eval"] for r in ok},
            baselines=baselines, ylabel="MSE", window=max(1, steps // 100), clip_to_baselines=True,
            title=f"adding problem, T = {length}" + (f", truncated BPTT k = {cfg.tbptt}" if cfg.tbptt else ""),
        )  # fmt: skip
        tables[f"T={length}"] = detail_table(at)
        sections.append(f"### T = {length}\n\n{steps} steps per cell; predicting 1 scores an MSE of "
                        f"{predict_one[length]:.4f} on this T's evaluation set.\n\n{tables[f'T={length}']}\n\n"
                        f"![loss curves, T = {length}]({figure})")  # fmt: skip
    steps_text = ", ".join(f"{s} at T = {t}" for t, s in steps_per_length(cfg).items())
    body = (
        f"T = {', '.join(str(t) for t in cfg.lengths)}; hidden {cfg.hidden_size}, batch {cfg.batch_size}, "
        f"{cfg.optimizer} (lr {_rates(cfg)}, clip {cfg.clip_norm}), "
        + ("full BPTT" if cfg.tbptt is None else f"truncated BPTT k = {cfg.tbptt}")
        + f"; training steps per cell: {steps_text}; evaluation on {cfg.eval_size} held-out sequences per T. "
        f"Baseline (always predict 1): MSE {ADDING_BASELINE_MSE:.4f}; a cell beats it at a T when its final eval "
        f"MSE is below {threshold:.4f} (the baseline less 3 standard errors of its mean over {cfg.eval_size} "
        f"sequences). Remembering only one of the two values scores {ONE_VALUE_MSE:.4f}.\n\n"
        f"Final eval MSE against T:\n\n{tables['sweep']}\n\n![final MSE against T](sweep.png)\n\n"
        + "\n\n".join(sections)
    )
    found = classics(cfg, results, threshold)
    rj.experiment.write_report(run_dir, "Adding problem", body, seconds=time.perf_counter() - start, classics=found)
    print(tables["sweep"])
    return {"run_dir": run_dir, "results": results, "tables": tables, "table": tables["sweep"], "classics": found}


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
