"""Vanishing and exploding gradients, measured: Jacobian products, their spectra and Lyapunov exponents.

Backpropagation through time multiplies the step Jacobians ``J_t = da_t/da_{t-1}``: the gradient that
reaches step k from step t is ``dL/da_t J_t ... J_{k+1}``. This study measures the products
``da_t/da_k`` for the tanh RNN, the ReLU RNN with identity init (IRNN), the LSTM with forget bias 0 and
1, the GRU, the minGRU (Feng et al. 2024) and the LRU (Orvieto et al. 2023):

(a) at initialisation, across recurrent gains: ``||da_T/da_k||`` against the lag, its exponential rate,
    and the largest Lyapunov exponent; beside them the bound of Pascanu et al. 2013,
    ``||da_t/da_k|| <= sigma_max(W)^(t-k)`` for the tanh and ReLU RNNs. The minGRU has no recurrent
    weights: its published init stands at every gain. The LRU's gain is the radius of its eigenvalues' disc
    (``lambda`` uniform on ``|lambda| <= g``, the diagonal twin of the circular law of a Gaussian ``W``), for
    ``g <= 1`` only: its parametrisation keeps ``|lambda| < 1``;
(b) after training on the adding problem: the same measurements on the trained weights, the norm of
    ``dL/da_k`` for every k at several points of training (how far back the gradient reaches), and the
    gates of the trained LSTM along one sequence;
(c) the one-unit "cliff" of Pascanu et al. 2013 (Fig. 6): ``x_t = w sigma(x_{t-1}) + b``, ``x_0 = 0.5``,
    loss ``(sigma(x_50) - 0.7)^2`` over a grid of w and b;
(d) a check for the cells linear in their state, ``h_t = a_t * h_{t-1} + b_t`` (minGRU, LRU): their step
    Jacobian is ``diag(a_t)`` (for the LRU's complex ``h``, on ``[Re h, Im h]``, a rotation and scaling of each
    unit's plane), so their Lyapunov exponents are each unit's mean of ``log |a_t|``, sorted; the measured
    spectrum is compared with that, at initialisation and after training.

It writes ``runs/<name>/`` under the current directory: ``config.json``, ``metrics.jsonl``, the figures,
``report.md`` (with the run's wall time) and a folder per cell trained in (b) with its model, checkpoint and
probe (``python -m rnnjax.analyse runs/<name>`` analyses them). Each cell's keys come from its name
(``rj.experiment.key_for``), so its results do not depend on which other cells run beside it; all cells see the
same data.

Run::

    python experiments/gradient_flow.py                        # the defaults (the README's tables)
    python experiments/gradient_flow.py --gains 0.8 1 1.2 --train-steps 3000
    python experiments/gradient_flow.py --tiny                 # seconds: a smoke test
"""

from __future__ import annotations

import dataclasses
import functools
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import rnnjax as rj
from rnnjax import analysis
from rnnjax.data.synthetic import adding_problem


@dataclasses.dataclass(frozen=True)
class Config:
    """Measure gradient flow through the RNN, IRNN, LSTM (forget bias 0 and 1), GRU, minGRU and LRU."""

    cells: tuple[str, ...] = ("rnn", "irnn", "lstm_fb0", "lstm_fb1", "gru", "mingru", "lru")
    """Cells to study: rnn (tanh), irnn (ReLU, W = gain * I), lstm_fb0, lstm_fb1 (forget bias 0 or 1), gru,
    mingru (no recurrent weights), lru (lambda uniform on the disc |lambda| <= gain, gain <= 1)."""
    hidden_size: int = 32
    """Units per cell."""
    length: int = 100
    """T: the products da_T/da_k are measured for k = 0..T."""
    batch: int = 8
    """Sequences whose products are measured (the norms are their median)."""
    gains: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
    """Recurrent gains at initialisation: W ~ N(0, gain^2 / h) per gate (W = gain * I for the IRNN; the LRU's
    r_max = gain; none for the minGRU)."""
    lags: tuple[int, ...] = (1, 10, 50, 100)
    """Lags t - k reported in the tables."""
    lyapunov_steps: int = 400
    """Steps of the trajectory for the Lyapunov exponents."""
    lyapunov_warmup: int = 100
    """Steps left out of the Lyapunov average."""
    train_length: int = 50
    """T of the adding problem for part (b)."""
    train_steps: int = 800
    """Training steps per cell in part (b)."""
    batch_size: int = 32
    """Sequences per training step."""
    learning_rate: float = 1e-2
    """Adam learning rate (clipped at global norm 1)."""
    snapshots: int = 4
    """Points of training at which dL/da_k is measured (evenly spaced, the first at step 0)."""
    cliff_grid: int = 121
    """Grid points per axis of the cliff figure."""
    seed: int = 0
    """One seed for weights and data."""
    name: str = "gradient_flow"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show progress bars."""
    tiny: bool = False
    """Smoke test: 6 units, T = 10, two gains, 4 training steps (seconds); overrides those fields."""


TINY = dict(hidden_size=6, length=10, batch=2, gains=(0.5, 2.0), lags=(1, 5, 10), lyapunov_steps=20,
            lyapunov_warmup=5, train_length=6, train_steps=4, batch_size=4, snapshots=2, cliff_grid=9)  # fmt: skip


INPUT_SIZE = 2  # the adding problem's (value, marker)


def make_cell(name: str, hidden: int, gain: float | None = None) -> rj.Cell | None:
    """A cell of the study; ``gain`` (None: the cell's default init) scales Gaussian recurrent weights.

    The minGRU has no recurrent weights: the same cell at every gain. The LRU's gain is ``r_max``, the radius
    of the disc its ``lambda`` are drawn on (its default: 1); None above 1, where no LRU exists.
    """
    sweep = {} if gain is None else {"recurrent_init": "gaussian", "gain": gain}
    disc = {} if gain is None else {"r_max": gain}  # the LRU's lambda uniform on |lambda| <= gain
    cells = {
        "rnn": lambda: rj.cells.rnn(hidden, **sweep),
        "irnn": lambda: rj.cells.irnn(hidden, gain=1.0 if gain is None else gain),
        "lstm_fb0": lambda: rj.cells.lstm(hidden, forget_bias=0.0, **sweep),
        "lstm_fb1": lambda: rj.cells.lstm(hidden, forget_bias=1.0, **sweep),
        "gru": lambda: rj.cells.gru(hidden, **sweep),
        "mingru": lambda: rj.cells.mingru(hidden),
        "lru": lambda: rj.cells.lru(hidden, **disc) if gain is None or gain <= 1 else None,
    }
    if name not in cells:
        raise ValueError(f"cells: expected names among {tuple(cells)}, got {name!r}")
    return cells[name]()


@functools.partial(jax.jit, static_argnums=(0, 4))
def measure(cell: rj.Cell, params: Any, xs: jax.Array, lyap_xs: jax.Array, warmup: int) -> dict[str, Any]:
    """Norms of da_T/da_k against the lag (median over the batch), their rate, the largest exponent."""
    J = analysis.step_jacobians(cell, params, xs)
    lag = analysis.norms_by_lag(J, warn=False)  # out-of-range lags are reported instead, below
    norms = jnp.median(lag.norms, axis=0)
    rate, _ = analysis.fit_rate(lag.lags, norms, warn=False)
    # Lags where a product left float32's range in some sequence: left out of the fit, and said so.
    lost = (lag.underflow | lag.overflow).any(0)
    lyap = analysis.lyapunov_spectrum(cell, params, lyap_xs, k=1, warmup=warmup)[:, 0]
    # An exploding trajectory (the IRNN above gain 1) overflows float32: no exponent can be read off then.
    finite = jnp.isfinite(analysis.trajectory(cell, params, lyap_xs)).all()
    return {"norms": norms, "rate": rate, "lyapunov": jnp.where(finite, jnp.mean(lyap), jnp.nan), "lost": lost}


def diagonal_exponents(cell: rj.Cell, params: Any, xs: jax.Array, warmup: int) -> jax.Array | None:
    """The Lyapunov spectrum in closed form of a cell linear in its state, ``h_t = a_t * h_{t-1} + b_t``
    (``spec.linear``: the minGRU and the LRU), else None: ``(batch, n)``, largest first.

    Its step Jacobian is ``diag(a_t)``, so a perturbation of unit j grows by ``prod_t |a_t,j|``: the exponents
    are each unit's mean of ``log |a_t|`` over the steps :func:`~rnnjax.analysis.lyapunov_spectrum` counts (after
    ``warmup``), sorted. A complex ``a`` (the LRU's ``lambda``) rotates and scales the plane ``(Re h_j, Im h_j)``
    of the real state ``[Re h, Im h]``: its exponent comes twice.
    """
    spec = cell.spec
    if spec.linear is None:
        return None
    loop = spec.prepare(params)
    a, _ = spec.linear.coefficients(loop, spec.project(loop, xs))  # (batch, time, N): a_t reads x_t alone
    logs = jnp.log(jnp.abs(a))[:, warmup:].mean(axis=1)
    if jnp.iscomplexobj(a):
        logs = jnp.concatenate([logs, logs], axis=-1)
    return -jnp.sort(-logs, axis=-1)


@functools.partial(jax.jit, static_argnums=(0, 3))
def diagonal_check(cell: rj.Cell, params: Any, runs: dict[str, jax.Array], warmup: int) -> dict[str, Any]:
    """The measured spectrum against :func:`diagonal_exponents`, on each of ``runs`` (``{name: xs}``): the
    largest absolute difference, the difference of the sums (the QR method gets a sum exactly, ``log |det J_t|``
    per step; one exponent only once its frame has turned onto its unit, slowly where two units' rates are
    close) and the largest exponents (the mean over the batch)."""
    out = {}
    for run, xs in runs.items():
        measured = analysis.lyapunov_spectrum(cell, params, xs, warmup=warmup)
        closed = diagonal_exponents(cell, params, xs, warmup)
        out[run] = {"max_diff": jnp.abs(measured - closed).max(), "n": measured.shape[-1],
                    "sum_diff": jnp.abs(measured.sum(-1) - closed.sum(-1)).max(),
                    "largest": measured[:, 0].mean(), "largest_closed": closed[:, 0].mean()}  # fmt: skip
    return out


def out_of_range_note(sweep: dict[str, dict[float, dict[str, Any]]], trained: dict[str, dict[str, Any]]) -> str:
    """Which fits left lags out because a Jacobian product under- or overflowed float32."""
    cases = [(f"{name}, gain {g}", m["lost"]) for name, by_gain in sweep.items() for g, m in by_gain.items() if m]
    cases += [(f"{name}, trained", m["lost"]) for name, m in trained.items()]
    lost = [f"{what} (from lag {int(np.argmax(mask))}, {int(mask.sum())} lags)" for what, mask in cases if mask.any()]
    if not lost:
        return "No Jacobian product left float32's range: every fitted rate uses every lag."
    return "Lags left out of the fitted rates because a product left float32's range: " + "; ".join(lost) + "."


def bound_of(cell: rj.Cell, params: Any, lags: np.ndarray) -> np.ndarray | None:
    """Pascanu's bound for single-matrix cells, ``a_t = f(W a_{t-1} + U x_t + b)`` with one square ``W`` over
    the whole state (the tanh and ReLU RNNs: ``|f'| <= 1``); None for the others (gated, diagonal).

    The step is an activation of one pre-activation where the cell says so (``spec.parts.slope``, for the
    fused backward pass); the activations that have it (tanh, ReLU, identity) all have ``|f'| <= 1``.
    """
    W, parts = getattr(params, "W", None), cell.spec.parts
    n = analysis.state_vector(cell.initial_carry(params)).shape[-1]
    if parts is None or parts.slope is None or W is None or W.shape != (n, n):
        return None
    return np.asarray(analysis.pascanu_bound(W, lags))


def cliff(cfg: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The one-unit network of Pascanu et al. 2013, Fig. 6: its loss and gradient norm over (w, b)."""
    w = np.linspace(-2.0, 14.0, cfg.cliff_grid)
    b = np.linspace(-10.0, 4.0, cfg.cliff_grid)

    def loss(w, b):
        x = jax.lax.fori_loop(0, 50, lambda _, x: w * jax.nn.sigmoid(x) + b, jnp.asarray(0.5))
        return (jax.nn.sigmoid(x) - 0.7) ** 2

    grid = jax.vmap(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1)), (None, 0)), (0, None))
    values, (gw, gb) = jax.jit(grid)(jnp.asarray(w), jnp.asarray(b))
    return w, b, np.asarray(values), np.asarray(jnp.sqrt(gw**2 + gb**2))


def train(
    cfg: Config, name: str, key: jax.Array, probe: tuple[np.ndarray, np.ndarray], run_dir: Path
) -> dict[str, Any]:
    """Trains one cell on the adding problem; records dL/da_k on a fixed batch at snapshots. The last stage of
    training saves the model, its checkpoint and a few probe sequences in ``run_dir/<name>/`` (for
    ``python -m rnnjax.analyse``), and its ``metrics.jsonl`` holds every step."""
    cell = make_cell(name, cfg.hidden_size)
    model = rj.models.ManyToOne(rj.RNN(cell=cell), output_size=1)
    params = model.init(jax.random.fold_in(key, 0), INPUT_SIZE)
    tx = rj.train.optimizer("adam", cfg.learning_rate, clip_norm=1.0)

    def loss_fn(p, batch, key):
        xs, ys = batch
        return rj.losses.mse(model.apply(p, xs), ys), {}

    def data(step):
        return adding_problem(np.random.default_rng([cfg.seed, 1, step]), cfg.batch_size, cfg.train_length)

    @jax.jit
    def reach(p):
        xs, ys = probe

        def readout_loss(outputs, final):
            return rj.losses.mse(rj.models.dense(p.head, outputs[:, -1]), ys)

        return analysis.gradient_reach(analysis.state_gradients(cell, p.rnn[0][0], xs, readout_loss))

    state = rj.train.TrainState.create(params, tx)
    step = rj.train.make_train_step(loss_fn, tx)
    stops = np.linspace(0, cfg.train_steps, cfg.snapshots).round().astype(int)
    reaches, history = {}, []
    for stop in stops:
        last = {"run_dir": run_dir / name, "overwrite": True, "model": model, "probe": {"xs": probe[0][:8]}}
        state, part = rj.train.fit(state, step, data, int(stop), key=jax.random.fold_in(key, 1), progress=False,
                                   **(last if stop == stops[-1] else {}))  # fmt: skip
        history += part
        reaches[int(stop)] = np.asarray(reach(state.params))
    rj.runlog.write_log(run_dir / name / "metrics.jsonl", history)  # the stages before the last too
    xs, ys = probe
    final_mse = float(rj.losses.mse(model.apply(state.params, xs), ys))
    return {"cell": cell, "params": state.params.rnn[0][0], "reach": reaches, "history": history, "mse": final_mse}


def main(cfg: Config) -> dict[str, Any]:
    """Runs (a), (b) and (c), writes the run folder and returns the tables."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    key = jax.random.key(cfg.seed)
    xs = jnp.asarray(adding_problem(np.random.default_rng([cfg.seed, 0]), cfg.batch, cfg.length)[0])
    lyap_xs = jnp.asarray(adding_problem(np.random.default_rng([cfg.seed, 2]), 2, cfg.lyapunov_steps)[0])
    lags = np.arange(cfg.length + 1)
    report_lags = [lag for lag in cfg.lags if lag <= cfg.length]
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(cfg.cells) * (len(cfg.gains) + 1) + 1, desc="gradient flow", disable=not cfg.progress)

    # (a) At initialisation, across gains.
    sweep: dict[str, dict[float, dict[str, Any]]] = {}
    for name in cfg.cells:
        sweep[name] = {}
        for gain in cfg.gains:  # one key per cell across the gains: the same weights, scaled
            cell = make_cell(name, cfg.hidden_size, gain)
            if cell is None:  # no such cell at this gain (the LRU above 1)
                sweep[name][gain] = {}
                records.append({"part": "init", "cell": name, "gain": gain, "rate": None, "lyapunov": None})
                bar.update()
                continue
            params = cell.init(jax.random.fold_in(rj.experiment.key_for(key, name), 0), INPUT_SIZE)
            m = jax.device_get(measure(cell, params, xs, lyap_xs, cfg.lyapunov_warmup))
            m["bound"] = bound_of(cell, params, lags)
            sweep[name][gain] = m
            records.append({"part": "init", "cell": name, "gain": gain, "rate": float(m["rate"]),
                            "lyapunov": float(m["lyapunov"]), "norms": np.asarray(m["norms"]).tolist()})  # fmt: skip
            bar.update()

    # (b) After training on the adding problem.
    probe = adding_problem(np.random.default_rng([cfg.seed, 3]), 64, cfg.train_length)
    train_xs = jnp.asarray(adding_problem(np.random.default_rng([cfg.seed, 4]), cfg.batch, cfg.train_length)[0])
    trained: dict[str, dict[str, Any]] = {}
    for name in cfg.cells:
        result = train(cfg, name, jax.random.fold_in(rj.experiment.key_for(key, name), 1), probe, run_dir)
        m = jax.device_get(measure(result["cell"], result["params"], train_xs, lyap_xs, cfg.lyapunov_warmup))
        m["bound"] = bound_of(result["cell"], result["params"], np.arange(cfg.train_length + 1))
        trained[name] = {**result, **m}
        records.append({"part": "trained", "cell": name, "mse": result["mse"], "rate": float(m["rate"]),
                        "lyapunov": float(m["lyapunov"]), "norms": np.asarray(m["norms"]).tolist(),
                        "reach": {str(k): v.tolist() for k, v in result["reach"].items()}})  # fmt: skip
        bar.update()

    # (c) The cliff.
    w, b, cliff_loss, cliff_grad = cliff(cfg)
    bar.update()

    # (d) The cells linear in their state: the measured spectrum against its closed form, at the study's
    # trajectory length and at 4 times it (the QR method converges as its frame aligns with the units).
    long_xs = jnp.asarray(adding_problem(np.random.default_rng([cfg.seed, 6]), 2, 4 * cfg.lyapunov_steps)[0])
    runs = {"short": lyap_xs, "long": long_xs}
    diagonal: dict[tuple[str, str], dict[str, Any]] = {}
    for name in cfg.cells:
        cell = make_cell(name, cfg.hidden_size)
        if cell.spec.linear is None:
            continue
        initial = cell.init(jax.random.fold_in(rj.experiment.key_for(key, name), 0), INPUT_SIZE)
        for weights, params in (("init", initial), ("trained", trained[name]["params"])):
            diagonal[name, weights] = jax.device_get(diagonal_check(cell, params, runs, cfg.lyapunov_warmup))
            records.append({"part": "diagonal", "cell": name, "weights": weights,
                            **{f"{k}_{length}": float(v) for length, r in diagonal[name, weights].items()
                               for k, v in r.items()}})  # fmt: skip
    bar.close()
    with (run_dir / "metrics.jsonl").open("w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")

    figures = write_figures(cfg, run_dir, sweep, trained, (w, b, cliff_loss, cliff_grad), xs)
    tables = write_report(cfg, run_dir, sweep, trained, diagonal, report_lags, figures, time.perf_counter() - start)
    print(*tables.values(), sep="\n\n")
    return {"run_dir": run_dir, "tables": tables, "sweep": sweep, "trained": trained, "diagonal": diagonal}


def _exponent(value: Any) -> str:
    value = float(value)
    return "overflow" if np.isnan(value) else f"{value:.4f}"


def _at_gain(m: dict[str, Any], key: str) -> float:
    """A number measured at one gain; NaN where the cell has no version at that gain (the figures skip it)."""
    return float(m[key]) if m else float("nan")


def _bound_at(m: dict[str, Any], lag: int) -> str:
    return "n/a" if m["bound"] is None else f"{m['bound'][lag]:.3g}"


def _norm_cells(m: dict[str, Any], lags: list[int]) -> list[str]:
    norms = np.asarray(m["norms"])
    return [f"{norms[lag]:.3g} (bound {_bound_at(m, lag)})" if m["bound"] is not None else f"{norms[lag]:.3g}"
            for lag in lags if lag < len(norms)]  # fmt: skip


def write_figures(cfg, run_dir, sweep, trained, cliff_data, xs) -> dict[str, str]:
    plots = rj.plots
    unit = 1.0 if 1.0 in cfg.gains else cfg.gains[len(cfg.gains) // 2]
    lags = np.arange(cfg.length + 1)
    out = {}
    at_unit = [name for name in cfg.cells if sweep[name][unit]]
    curves = {name: (lags, np.asarray(sweep[name][unit]["norms"])) for name in at_unit}
    bounds = {name: (lags, sweep[name][unit]["bound"]) for name in at_unit if sweep[name][unit]["bound"] is not None}
    out["init"] = plots.norms_by_lag(curves, run_dir / "norms_at_init.png", bounds=bounds,
                                     title=f"at initialisation, gain {unit}: ||da_T/da_(T-lag)||").name  # fmt: skip
    t_lags = np.arange(cfg.train_length + 1)
    curves = {name: (t_lags, np.asarray(trained[name]["norms"])) for name in cfg.cells}
    bounds = {name: (t_lags, trained[name]["bound"]) for name in cfg.cells if trained[name]["bound"] is not None}
    out["trained"] = plots.norms_by_lag(curves, run_dir / "norms_trained.png", bounds=bounds,
                                        title="after training on the adding problem").name  # fmt: skip
    gains = np.asarray(cfg.gains)
    out["lyapunov"] = plots.lines(
        gains, {name: [_at_gain(sweep[name][g], "lyapunov") for g in cfg.gains] for name in cfg.cells},
        run_dir / "lyapunov_vs_gain.png", xlabel="recurrent gain g", ylabel="largest Lyapunov exponent (per step)",
        title="order to chaos: the largest exponent against the gain", hline=0.0,
    ).name  # fmt: skip
    out["rates"] = plots.lines(
        gains, {name: [_at_gain(sweep[name][g], "rate") for g in cfg.gains] for name in cfg.cells},
        run_dir / "rate_vs_gain.png", xlabel="recurrent gain g", ylabel="fitted rate of log ||da_T/da_k|| per step",
        title="vanishing (< 0) or exploding (> 0) with the gain", hline=0.0,
    ).name  # fmt: skip
    name = "lstm_fb1" if "lstm_fb1" in cfg.cells else cfg.cells[0]
    cell, params = trained[name]["cell"], trained[name]["params"]
    J = analysis.step_jacobians(cell, params, xs[:1, : cfg.train_length])[0]
    out["heatmap"] = plots.heatmap(np.asarray(analysis.norm_matrix(J)), run_dir / "norm_matrix.png",
                                   title=f"{name} trained: log10 ||da_t/da_k||").name  # fmt: skip
    svals = {}
    for n in cfg.cells:
        J_n = analysis.step_jacobians(trained[n]["cell"], trained[n]["params"], xs[:1, : cfg.train_length])
        svals[n] = np.asarray(analysis.singular_values(analysis.jacobian_products(J_n)[0, 0]))
    out["spectra"] = plots.spectra(
        svals,
        run_dir / "singular_values_trained.png",
        title=f"singular values of da_T/da_0, trained (T = {cfg.train_length})",
    ).name
    reach_name = name
    reach = trained[reach_name]["reach"]
    out["reach"] = plots.lines(
        np.arange(1, cfg.train_length + 1), {f"step {s}": r for s, r in reach.items()}, run_dir / "gradient_reach.png",
        xlabel="time step k", ylabel="||dL/da_k||", title=f"{reach_name}: how far back the gradient reaches",
        log_y=True,
    ).name  # fmt: skip
    if "lstm" in trained[name]["cell"].name:
        probe_xs, _ = adding_problem(np.random.default_rng([cfg.seed, 5]), 1, cfg.train_length)
        traces = analysis.gate_traces(cell, params, jnp.asarray(probe_xs))
        traces["C"] = traces["c"]  # the carry's field c, the textbook's cell state C_t
        marks = np.flatnonzero(probe_xs[0, :, 1])
        out["gates"] = plots.gate_heatmaps(
            {k: np.asarray(traces[k][0]) for k in ("f", "i", "C_tilde", "o", "C")}, run_dir / "lstm_gates.png",
            title=f"{name} gates on one adding-problem sequence (dotted: the two marked steps)", marks=marks,
        ).name  # fmt: skip
    w, b, loss, grad = cliff_data
    out["cliff"] = plots.surface(w, b, loss, run_dir / "cliff.png", xlabel="w", ylabel="b", zlabel="loss",
                                 title="(sigma(x_50) - 0.7)^2, x_t = w sigma(x_(t-1)) + b").name  # fmt: skip
    return out


def _diagonal_table(cfg: Config, diagonal: dict[tuple[str, str], dict[str, Any]]) -> str:
    steps = (cfg.lyapunov_steps, 4 * cfg.lyapunov_steps)
    rows = [[name, weights, int(r["short"]["n"]), *[f"{float(r[k]['max_diff']):.2g}" for k in ("short", "long")],
             *[f"{float(r[k]['sum_diff']):.2g}" for k in ("short", "long")], f"{float(r['short']['largest']):.4f}",
             f"{float(r['short']['largest_closed']):.4f}"] for (name, weights), r in diagonal.items()]  # fmt: skip
    return rj.experiment.markdown_table(
        ["cell", "weights", "exponents", *[f"max abs difference, {t} steps" for t in steps],
         *[f"difference of the sums, {t} steps" for t in steps], "largest, measured", "largest, mean log abs a_t"],
        rows,
    )  # fmt: skip


def _fill(paragraph: str) -> str:
    return textwrap.fill(paragraph, 110, break_long_words=False, break_on_hyphens=False)


def _gain_notes(cells: tuple[str, ...]) -> str:
    notes = {
        "mingru": "The minGRU has no recurrent weights (its gates read ``x_t`` alone): its row is its published init "
        "(PyTorch's ``nn.Linear`` draws), the same at every gain.",
        "lru": "For the LRU the gain is the radius of the disc its eigenvalues are drawn on uniformly (``r_min = 0``, "
        "``r_max = g``; the paper's init at g = 1), as the eigenvalues of a Gaussian ``W`` of gain g fill the disc "
        "of radius g (the circular law); its parametrisation keeps ``|lambda| < 1``: no LRU above g = 1 (n/a).",
    }
    return "".join(" " + notes[name] for name in notes if name in cells)


def _lru_note(cells: tuple[str, ...]) -> str:
    if "lru" not in cells:
        return ""
    return (" One LRU layer under a dense readout is linear in its inputs (``y_T = Re(sum_k C lambda^(T-k) gamma B "
            "x_k) + D x_T``), and the target is a sum of products of each step's value and marker: it cannot fit it, "
            "whatever its gradients do (the paper puts a non-linear MLP or GLU after every LRU layer).")  # fmt: skip


def _diagonal_section(cfg: Config, diagonal: dict[tuple[str, str], dict[str, Any]]) -> str:
    if not diagonal:
        return ""
    return f"""
## (d) Cells linear in their state: diagonal step Jacobians

A cell with ``h_t = a_t * h_(t-1) + b_t``, ``a_t`` read from ``x_t`` alone (the minGRU's ``1 - z_t``, the LRU's
``lambda``), has the step Jacobian ``diag(a_t)`` (for the LRU's complex ``h``, on the real state
``[Re h, Im h]``: a rotation and scaling of each unit's plane), so ``da_t/da_k`` is the product of the
``diag(a_s)`` in between and the Lyapunov exponents are each unit's mean of ``log |a_t|`` over the counted
steps, sorted (the LRU's: ``log |lambda_j|``, twice, whatever the input). The table compares the spectrum
measured by the QR method (every exponent of 2 sequences, {cfg.lyapunov_warmup} steps of warm-up) with that
closed form, at the study's {cfg.lyapunov_steps} steps and at 4 times as many. The QR method gets the sum of
the exponents exactly (``log |det J_t|`` per step) but one exponent only once its frame has turned onto its
unit, which takes about ``1 / gap`` steps where two units' rates lie a gap apart: what differs is that.

{_diagonal_table(cfg, diagonal)}
"""


def _title(cells: tuple[str, ...]) -> str:
    names = {"rnn": "RNN", "irnn": "IRNN", "lstm_fb0": "LSTM", "lstm_fb1": "LSTM", "gru": "GRU", "mingru": "minGRU",
             "lru": "LRU"}  # fmt: skip
    shown = list(dict.fromkeys(names[name] for name in cells))
    return "Gradient flow through " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1])


def write_report(cfg, run_dir, sweep, trained, diagonal, lags, figures, seconds) -> dict[str, str]:
    unit = 1.0 if 1.0 in cfg.gains else cfg.gains[len(cfg.gains) // 2]
    lag_heads = [f"lag {lag}" for lag in lags]
    init_rows = [[name, *_norm_cells(sweep[name][unit], lags), f"{float(sweep[name][unit]['rate']):.4f}",
                  _exponent(sweep[name][unit]["lyapunov"])] if sweep[name][unit] else [name, *["n/a"] * (len(lags) + 2)]
                 for name in cfg.cells]  # fmt: skip
    init = rj.experiment.markdown_table(["cell", *lag_heads, "fitted rate", "largest Lyapunov exp."], init_rows)
    gain_rows = [[name, *[f"{_exponent(sweep[name][g]['lyapunov'])} / {float(sweep[name][g]['rate']):.3f}"
                          if sweep[name][g] else "n/a" for g in cfg.gains]] for name in cfg.cells]  # fmt: skip
    gains = rj.experiment.markdown_table(["cell", *[f"g = {g}" for g in cfg.gains]], gain_rows)
    t_lags = [lag for lag in lags if lag <= cfg.train_length]
    trained_rows = [[name, f"{trained[name]['mse']:.4f}", *_norm_cells(trained[name], t_lags),
                     f"{float(trained[name]['rate']):.4f}", _exponent(trained[name]["lyapunov"])]
                    for name in cfg.cells]  # fmt: skip
    trained_table = rj.experiment.markdown_table(
        ["cell", "adding MSE", *[f"lag {lag}" for lag in t_lags], "fitted rate", "largest Lyapunov exp."], trained_rows
    )
    body = f"""Cells of {cfg.hidden_size} units, inputs from the adding problem. Norms are the largest singular value
of the Jacobian product ``da_T/da_(T-lag)``, the median over {cfg.batch} sequences; the fitted rate is the
slope of its logarithm against the lag (per step: below 0 the gradient vanishes, above 0 it explodes);
the Lyapunov exponent is the largest one, per step, from {cfg.lyapunov_steps} steps ({cfg.lyapunov_warmup}
of warm-up; "overflow" where the states leave float32's range). For the tanh RNN and the IRNN the
bound of Pascanu et al. 2013, ``sigma_max(W)^lag``, stands beside each norm; the gated cells and the
cells linear in their state (minGRU, LRU) have no such bound.

## (a) At initialisation (recurrent gain {unit}: W ~ N(0, g^2/h) per gate; the IRNN has W = g I)

{_fill(f"T = {cfg.length}." + _gain_notes(cfg.cells))}

{init}

![norms at initialisation]({figures["init"]})

Largest Lyapunov exponent / fitted rate against the gain:

{gains}

![Lyapunov exponent against gain]({figures["lyapunov"]}) ![rate against gain]({figures["rates"]})

{out_of_range_note(sweep, trained)}

## (b) After {cfg.train_steps} steps of training on the adding problem (T = {cfg.train_length})

{_fill("The MSE is on 64 held-out sequences (always predicting 1 scores 0.167)." + _lru_note(cfg.cells))}

{trained_table}

![norms after training]({figures["trained"]}) ![singular values]({figures["spectra"]})

![norm matrix]({figures["heatmap"]}) ![gradient reach]({figures["reach"]})
"""
    if "gates" in figures:
        body += f"\n![LSTM gates]({figures['gates']})\n"
    body += f"""
## (c) The cliff (Pascanu et al. 2013, Fig. 6)

One unit, ``x_t = w sigma(x_(t-1)) + b``, ``x_0 = 0.5``, loss ``(sigma(x_50) - 0.7)^2`` on a {cfg.cliff_grid} x
{cfg.cliff_grid} grid of (w, b): the loss is flat almost everywhere and falls off a cliff along the
bifurcation, where the gradient explodes.

![cliff]({figures["cliff"]})
{_diagonal_section(cfg, diagonal)}
## How to read this

- A straight line on the log-scale norm plot is exponential vanishing (falling) or exploding (rising); its
  slope is the fitted rate. The tanh RNN's norms stay under the dashed bound; the LSTM's cell state keeps
  products near 1 over long lags when its forget gate sits near 1.
- The largest Lyapunov exponent crosses 0 where the network turns from ordered (perturbations die out,
  gradients vanish) to chaotic (they grow, gradients explode).
"""
    if diagonal:
        body += """- A cell linear in its state (minGRU, LRU) has a diagonal step Jacobian: the gradient that reaches
  back k steps through a unit is the product of that unit's ``a_t`` over those steps, so it vanishes exactly
  as fast as the unit forgets its state; units never mix, and with ``|a_t| < 1`` (both parametrisations keep
  it so) no product grows.
"""
    rj.experiment.write_report(run_dir, _title(cfg.cells), body, seconds=seconds)
    tables = {"init": init, "gains": gains, "trained": trained_table}
    return {**tables, "diagonal": _diagonal_table(cfg, diagonal)} if diagonal else tables


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
