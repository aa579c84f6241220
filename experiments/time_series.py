"""Time-series forecasting: LSTM and GRU against persistence, seasonal naive and (S)ARIMA on three real series.

The series (``rj.data.series``): yearly sunspots 1700-2008, Mauna Loa CO2 (weekly gaps interpolated, monthly
means 1958-2001) and the monthly AirPassengers 1949-1960. Each is split by time: the last ``H + origins - 1``
points are the test tail, and ``origins`` forecasts of the next ``H`` values start inside it (rolling origin: the
first from the end of the training part, each later one a step on, every one reading only the values observed
before it; nothing is refitted). Scalers, baselines and networks are fitted on the training part alone.

The networks are direct multi-step forecasters: ``rj.models.ManyToOne`` reads a window of the last ``L`` values
and predicts all ``H`` next ones at once. They read the standardised series (log values for AirPassengers, whose
seasonal swing grows with its level) as one feature per step, its difference to the window's last value, and
predict the change from that last value (so the zero output is persistence; the level is not an input, so a
series that climbs out of its training range, as CO2 and AirPassengers do, is no extrapolation for them). Each
cell is trained ``replicas`` times with keys from its name and replica (``rj.experiment.key_for``); the table
reports the mean over replicas (and their spread).

Baselines, on the same split and origins: persistence, seasonal naive (period 12; 11 for sunspots, whose cycle is
only roughly periodic), the training mean (sunspots), and a statsmodels (S)ARIMA with fixed orders fitted once on
the training part, then filtered forward to each origin with the fitted parameters:
SARIMA(1,1,1)(0,1,1,12) on log AirPassengers (the airline model's family), SARIMA(1,1,1)(0,1,1,12) on monthly
CO2 (both by exact maximum likelihood, Kalman filter), and AR(9) with a constant on sunspots (least squares,
statsmodels' AutoReg).

Writes ``runs/<name>/``: ``config.json``, ``metrics.jsonl``, ``forecast_<series>.png`` (the forecast from the end of
training), ``rmse_<series>.png`` (RMSE by horizon), ``loss_curves.png`` and ``report.md``.

Run::

    python experiments/time_series.py                 # the three series, LSTM and GRU, 3 replicas (~80 s, 2 cores)
    python experiments/time_series.py --tiny          # seconds: a smoke test
    python experiments/time_series.py --series air_passengers --steps 3000 --replicas 5
"""

from __future__ import annotations

import dataclasses
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax as rj
from rnnjax.baselines import forecast
from rnnjax.data import series as ts


@dataclasses.dataclass(frozen=True)
class Config:
    """Forecast the tails of sunspots, CO2 and AirPassengers with LSTM and GRU against naive and (S)ARIMA baselines."""

    series: tuple[str, ...] = ("sunspots", "co2", "air_passengers")
    """Series to forecast (rj.data.series.NAMES)."""
    cells: tuple[str, ...] = ("lstm", "gru")
    """Recurrent cells to train: lstm, gru or rnn."""
    origins: int = 12
    """Forecast origins in the test tail (the tail is H + origins - 1 points long)."""
    hidden_size: int = 32
    """Units per cell."""
    input_windows: int = 3
    """Input window length L in seasons (periods): 3 gives 33 years of sunspots and 36 months of CO2/air."""
    batch_size: int = 32
    """Training windows per step."""
    steps: int = 1000
    """Training steps per model."""
    learning_rate: float = 3e-3
    """Peak Adam learning rate (cosine decay to 0)."""
    clip_norm: float = 1.0
    """Global gradient-norm clipping."""
    replicas: int = 3
    """Trainings per cell and series, with different keys; scores are averaged over them."""
    sarima: bool = True
    """Fit the (S)ARIMA baseline (statsmodels)."""
    sarima_maxiter: int = 50
    """L-BFGS iterations of the (S)ARIMA maximum-likelihood fit (statsmodels' default)."""
    seed: int = 0
    """One seed for the weights and the batches."""
    name: str = "time_series"
    """The run folder: <root>/<name>/."""
    root: str | None = None
    """Where run folders go (None: $RNNJAX_RUNS, else runs/ under the current directory)."""
    progress: bool = True
    """Show a progress bar per model."""
    tiny: bool = False
    """Smoke test: 8 units, 3 steps, 1 replica, 2 origins, 3 (S)ARIMA iterations (seconds); overrides those."""


TINY = dict(hidden_size=8, steps=3, replicas=1, origins=2, batch_size=8, sarima_maxiter=3)
PROBE = 8
"""Held-out examples saved with each model (fit's probe=), the inputs that python -m rnnjax.analyse drives it with."""

ORDERS = {  # (order, seasonal_order, trend) of the statsmodels SARIMAX baseline, fixed in advance
    "sunspots": ((9, 0, 0), (0, 0, 0, 0), "c"),
    "co2": ((1, 1, 1), (0, 1, 1, 12), None),
    "air_passengers": ((1, 1, 1), (0, 1, 1, 12), None),
}
LOG = {"sunspots": False, "co2": False, "air_passengers": True}
"""Model the log of the series (AirPassengers: multiplicative seasonality)."""
WHY_NOT = {  # our best guess, shown only when the best network loses to the best baseline
    "sunspots": "AR(9) captures the ~11-year cycle from {train} yearly values; the networks get {windows} overlapping "
    "windows and no level input, too little to learn the cycle's amplitude",
    "co2": "trend plus a fixed season is exactly what SARIMA models",
    "air_passengers": "SARIMA on log values is the textbook model of this series; the networks have {windows} "
    "training windows ({train} months) to learn the growing season from",
}
"""Formatted with the run's counts: ``train`` values before the test tail, ``windows`` training windows."""
UNITS = {"sunspots": "sunspot number", "co2": "CO2 (ppm)", "air_passengers": "passengers (thousands)"}


def transform(name: str, y: np.ndarray) -> np.ndarray:
    return np.log(y) if LOG[name] else np.asarray(y, np.float64)


def untransform(name: str, z: np.ndarray) -> np.ndarray:
    return np.exp(z) if LOG[name] else z


def features(z: np.ndarray) -> np.ndarray:
    """``(n, L)`` scaled windows to ``(n, L, 1)``: each step's difference to the window's last value.

    The level itself is left out: with it the networks fitted the training windows better and forecast the tails
    worse (CO2 and AirPassengers climb above every training level, where a level input extrapolates)."""
    return (z - z[:, -1:])[..., None].astype(np.float32)


def make_cell(name: str, hidden_size: int) -> rj.Cell:
    cells = {"lstm": lambda: rj.cells.lstm(hidden_size, forget_bias=1.0), "gru": lambda: rj.cells.gru(hidden_size),
             "rnn": lambda: rj.cells.rnn(hidden_size)}  # fmt: skip
    if name not in cells:
        raise ValueError(f"cells: expected names among {tuple(cells)}, got {name!r}")
    return cells[name]()


def baselines(cfg: Config, s: ts.Series) -> dict[str, np.ndarray]:
    """Every baseline's ``(origins, H)`` forecasts on the original scale."""
    histories = [s.values[:o] for o in s.origins]
    out = {
        "persistence": np.stack([forecast.persistence(h, s.horizon) for h in histories]),
        f"seasonal naive (m={s.period})": np.stack(
            [forecast.seasonal_naive(h, s.horizon, s.period) for h in histories]
        ),
    }
    if s.name == "sunspots":  # no exact season: the training mean is the other naive forecast
        out["training mean"] = np.repeat(forecast.mean(s.train, s.horizon)[None], len(s.origins), 0)
    if cfg.sarima:
        out[sarima_name(s.name)] = sarima(s, cfg.sarima_maxiter)
    return out


def sarima_name(name: str) -> str:
    order, seasonal, _ = ORDERS[name]
    if seasonal[-1] == 0 and order[1:] == (0, 0):
        return f"AR({order[0]})"
    label = f"ARIMA{order}" if seasonal[-1] == 0 else f"SARIMA{order}{seasonal[:3]}{seasonal[3]}"
    return label.replace(" ", "") + (" on log" if LOG[name] else "")


def sarima(s: ts.Series, maxiter: int = 50) -> np.ndarray:
    """(S)ARIMA fitted on the training part, then filtered forward to each origin with its fitted parameters."""
    order, seasonal, trend = ORDERS[s.name]
    z = transform(s.name, s.values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of the optimiser
        if seasonal[-1] == 0 and order[1:] == (0, 0):  # a pure AR: least squares (conditional MLE), no Kalman filter
            ar_model = rj.data.packages.require("statsmodels.tsa.ar_model", "the AR baseline")
            fitted = ar_model.AutoReg(z[: s.split], lags=order[0], trend=trend).fit()
        else:
            sarimax = rj.data.packages.require("statsmodels.tsa.statespace.sarimax", "the (S)ARIMA baseline")
            fitted = sarimax.SARIMAX(z[: s.split], order=order, seasonal_order=seasonal, trend=trend)
            fitted = fitted.fit(disp=False, maxiter=maxiter, cov_type="none")  # no standard errors: only forecasts
        rows = []
        for o in s.origins:
            res = fitted if o == s.split else fitted.append(z[s.split : o])
            rows.append(np.asarray(res.forecast(s.horizon)))
    return untransform(s.name, np.stack(rows))


class Forecaster(NamedTuple):
    """One network shape (cell, L, H) with its optimiser, train step and jitted forecast, shared by every series
    and replica of that shape (``rj.train.fit`` caches its jitted step per ``train_step``: one compilation)."""

    model: rj.models.ManyToOne
    tx: Any
    train_step: Any
    predict: Any


def make_forecaster(cfg: Config, cell: str, horizon: int) -> Forecaster:
    model = rj.models.ManyToOne(rj.RNN(cell=make_cell(cell, cfg.hidden_size)), output_size=horizon)
    tx = rj.train.optimizer(
        "adam", cfg.learning_rate, clip_norm=cfg.clip_norm, schedule="cosine", total_steps=cfg.steps
    )

    def loss_fn(p, batch, key):
        del key
        x, y = batch
        return rj.losses.mse(model.apply(p, x), y), {}

    return Forecaster(model, tx, rj.train.make_train_step(loss_fn, tx), jax.jit(model.apply))


def train_network(cfg: Config, s: ts.Series, net: Forecaster, name: str, run_dir: Path) -> tuple[np.ndarray, list]:
    """Trains one network on the training windows; returns its ``(origins, H)`` forecasts on the original scale
    and its training history."""
    L = cfg.input_windows * s.period
    z_all = transform(s.name, s.values)
    scaler = ts.Scaler.fit(z_all[: s.split])
    z = scaler.transform(z_all)
    inputs, targets = ts.windows(z[: s.split], L, s.horizon)
    xs, ys = jnp.asarray(features(inputs)), jnp.asarray((targets - inputs[:, -1:]).astype(np.float32))
    test_inputs, _ = ts.origin_windows(s, z, L)

    key = rj.experiment.key_for(jax.random.key(cfg.seed), name)
    params = net.model.init(jax.random.fold_in(key, 0), 1)
    batch_size = min(cfg.batch_size, len(xs))
    seed = cfg.seed * 1_000_003 + zlib.crc32(name.encode())  # batches follow the name too

    def data(step: int):
        idx = rj.data.batch_indices(len(xs), batch_size, step, seed)
        return xs[idx], ys[idx]

    state, history = rj.train.fit(
        rj.train.TrainState.create(params, net.tx), net.train_step, data, cfg.steps, key=jax.random.fold_in(key, 1),
        run_dir=run_dir / name, progress=cfg.progress, description=name, config=dataclasses.asdict(cfg),
        overwrite=True, model=net.model, probe={"xs": features(test_inputs[:PROBE])},
    )  # fmt: skip
    change = np.asarray(net.predict(state.params, jnp.asarray(features(test_inputs))), np.float64)
    return untransform(s.name, scaler.inverse(test_inputs[:, -1:] + change)), history


def buckets(H: int) -> dict[str, int]:
    """The horizons the table shows: h = 1, H/2 and H (0-based indices)."""
    return {"h=1": 0, f"h={max(1, H // 2)}": max(1, H // 2) - 1, f"h={H}": H - 1}


def main(cfg: Config) -> dict:
    """Fits baselines and networks on every series, writes the run folder, prints and returns the results table."""
    if cfg.tiny:
        cfg = dataclasses.replace(cfg, **TINY)
    start = time.perf_counter()
    run_dir = rj.experiment.start_run(cfg.name, cfg, root=cfg.root)
    results, headlines, names, curves, sections, nets = {}, [], [], {}, [], {}
    for sname in cfg.series:
        base = ts.load(sname)
        s = ts.load(sname, test_size=base.horizon + cfg.origins - 1)
        _, targets = ts.origin_windows(s, s.values, 1)
        preds = baselines(cfg, s)
        scores = {b: _scores(targets, p) for b, p in preds.items()}
        model_preds = {}
        for cell in cfg.cells:
            if (cell, s.horizon) not in nets:
                nets[cell, s.horizon] = make_forecaster(cfg, cell, s.horizon)
            runs = []
            for r in range(cfg.replicas):
                name = f"{sname}-{cell}-{r}"
                p, history = train_network(cfg, s, nets[cell, s.horizon], name, run_dir)
                runs.append(p)
                names.append(name)
                if r == 0:
                    curves[f"{sname} {cell}"] = rj.train.history_array(history, "loss")
            per_replica = [_scores(targets, p) for p in runs]
            label = cell.upper()
            scores[label] = {
                **{k: float(np.mean([q[k] for q in per_replica], 0)) for k in ("rmse", "mae")},
                "rmse_h": np.mean([q["rmse_h"] for q in per_replica], 0),
                "rmse_sd": float(np.std([q["rmse"] for q in per_replica])),
            }
            model_preds[label] = np.mean(runs, 0)
        results[sname] = {k: {m: (v.tolist() if isinstance(v, np.ndarray) else v) for m, v in d.items()}
                          for k, d in scores.items()}  # fmt: skip
        models = {m.upper(): scores[m.upper()]["rmse"] for m in cfg.cells}
        base_scores = {b: scores[b]["rmse"] for b in preds}
        headline = rj.experiment.Headline.best(
            f"{sname}, last {s.test_size} points, {len(s.origins)} origins, H={s.horizon}",
            "mean RMSE over the horizon (lower is better)", models, base_scores)  # fmt: skip
        if not headline.beats_baseline:
            gap = headline.score / headline.baseline_score - 1
            windows = len(ts.windows(s.values[: s.split], cfg.input_windows * s.period, s.horizon)[0])
            why = WHY_NOT[sname].format(train=s.split, windows=windows)
            headline = dataclasses.replace(headline, note=f"{gap:.0%} worse; {why}")
        headlines.append(headline)
        sections.append(_section(s, scores, list(preds), [m.upper() for m in cfg.cells], cfg))
        _figures(s, {**{m: model_preds[m] for m in model_preds}, **preds}, scores, run_dir)

    rj.experiment.merge_metrics(run_dir, names)
    rj.plots.loss_curves(curves, run_dir / "loss_curves.png", ylabel="training MSE (scaled)",
                         window=max(1, cfg.steps // 50), title="training loss, replica 0")  # fmt: skip
    table = "\n\n".join(sections)
    body = (
        f"Direct {cfg.origins}-origin rolling forecasts of each series' held-out tail; networks: ManyToOne "
        f"{'/'.join(c.upper() for c in cfg.cells)} with {cfg.hidden_size} units reading L = {cfg.input_windows} "
        f"periods, {cfg.steps} Adam steps (lr {cfg.learning_rate}, cosine, clip {cfg.clip_norm}, batch "
        f"{cfg.batch_size}), mean of {cfg.replicas} replicas (sd: spread of the mean RMSE over replicas). "
        "RMSE and MAE on the original scale; 'mean' is the mean over h = 1..H. There is no validation tail: the "
        "networks' input (each step's difference from the window's last value) was chosen among four variants by "
        "their scores on these test tails, so the networks' figures are mildly optimistic.\n\n"
        f"{table}\n\n" + _verdict(headlines) + "\n\n![training loss](loss_curves.png)"
    )
    rj.experiment.write_report(run_dir, "Time-series forecasting", body, seconds=time.perf_counter() - start,
                               headlines=headlines)  # fmt: skip
    print(table)
    return {"run_dir": run_dir, "results": results, "table": table, "headlines": headlines}


def _scores(targets: np.ndarray, predictions: np.ndarray) -> dict:
    rmse_h = forecast.rmse(targets, predictions)
    return {"rmse": float(rmse_h.mean()), "mae": float(forecast.mae(targets, predictions).mean()), "rmse_h": rmse_h}


def _section(s: ts.Series, scores: dict, baseline_names: list[str], model_names: list[str], cfg: Config) -> str:
    b = buckets(s.horizon)
    rows = []
    for m in [*model_names, *baseline_names]:
        sc = scores[m]
        sd = f"{sc['rmse_sd']:.3g}" if "rmse_sd" in sc else "-"
        rows.append([m, "model" if m in model_names else "baseline", *(float(sc["rmse_h"][i]) for i in b.values()),
                     sc["rmse"], sd, sc["mae"]])  # fmt: skip
    headers = ["forecaster", "kind", *(f"RMSE {k}" for k in b), "RMSE mean", "sd", "MAE mean"]
    title = (f"### {s.name} (train {s.t[0]:.0f}-{s.t[s.split - 1]:.2f}, {s.split} points; test tail "
             f"{s.test_size} points; H = {s.horizon}; L = {cfg.input_windows * s.period})")  # fmt: skip
    figures = f"![forecast {s.name}](forecast_{s.name}.png) ![RMSE by horizon {s.name}](rmse_{s.name}.png)"
    return f"{title}\n\n{rj.experiment.markdown_table(headers, rows)}\n\n{figures}"


def _figures(s: ts.Series, preds: dict[str, np.ndarray], scores: dict, run_dir) -> None:
    first = max(0, s.split - 4 * s.horizon)  # the last few seasons of training, then the tail
    rj.plots.forecasts(
        s.t[first:], s.values[first:], s.split - first, {m: p[0] for m, p in preds.items()},
        run_dir / f"forecast_{s.name}.png", ylabel=UNITS[s.name],
        title=f"{s.name}: forecasts from the end of training (networks: mean of replicas)",
    )  # fmt: skip
    rj.plots.lines(np.arange(1, s.horizon + 1), {m: np.asarray(scores[m]["rmse_h"]) for m in preds},
                   run_dir / f"rmse_{s.name}.png", xlabel="horizon h", ylabel=f"RMSE ({UNITS[s.name]})",
                   title=f"{s.name}: RMSE by horizon over {len(s.origins)} origins")  # fmt: skip


def _verdict(headlines: list[rj.experiment.Headline]) -> str:
    lines = []
    for h in headlines:
        series = h.task.split(",")[0]
        if h.beats_baseline:
            lines.append(f"- {series}: {h.model} ({h.score:.4g}) beats the best baseline, {h.baseline} "
                         f"({h.baseline_score:.4g}).")  # fmt: skip
        else:
            lines.append(f"- {series}: the best baseline, {h.baseline} ({h.baseline_score:.4g}), beats the best "
                         f"network, {h.model} ({h.score:.4g}).")  # fmt: skip
    return "**Verdict.**\n\n" + "\n".join(lines)


if __name__ == "__main__":
    rj.experiment.cli(main, Config)
