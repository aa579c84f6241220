"""Analyse any trained model with one command: ``python -m rnnjax.analyse RUN_DIR`` (or ``rnnjax-analyse RUN_DIR``).

``RUN_DIR`` is a run folder written by ``rj.train.fit(..., run_dir=d, model=model, probe=probe)`` (it holds
``model.json``, ``probe.npz`` and ``checkpoints/``), or an experiment's folder (``runs/sequential_images``):
then every model under it is analysed and ``index.md`` links their reports. For each model
(:func:`rnnjax.runs.load_run`: its definition, the latest checkpoint's params and the probe), the recurrent
networks it runs are rebuilt with what they read (:func:`rnnjax.analyse.networks.recurrent_networks`) and every
layer and direction is measured (:mod:`rnnjax.analyse.measures`): Jacobian products against the lag, their
singular values, the Lyapunov spectrum, how far back the gradient reaches, the gates, the fixed points. The
report, ``report.md`` with its PNG figures, goes to ``RUN_DIR/analysis/`` (``--out``)::

    python -m rnnjax.analyse runs/sequential_images/sklearn/lstm
    python -m rnnjax.analyse runs/sequential_images --max-lag 20 --no-fixed-points

The costs are bounded: a few probe sequences (``--max-sequences``), cut to ``--max-steps``, fewer where the
step Jacobians (``sequences x steps x n^2`` floats for a state of n entries) would pass ``--max-jacobian-mb``.
A network the analysis refuses (zoneout: its step is not its cell's) is a line in the report.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import jax
import numpy as np
import tyro

from rnnjax import experiment, runlog, runs
from rnnjax.analyse import report
from rnnjax.analyse.measures import Measures, Settings, label_of, measure
from rnnjax.analyse.networks import Network, limit, recurrent_networks
from rnnjax.analysis.systems import state_vector
from rnnjax.checkpoint import CheckpointError

__all__ = ["AnalyseError", "Config", "Summary", "analyse", "analyse_run", "check_config", "main"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Analyse the trained model(s) of a run folder: Jacobian products, spectra, Lyapunov exponents, gates."""

    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """A run folder: one model's (it holds model.json) or an experiment's (every model under it)."""
    out: str | None = None
    """Where the report and figures go (None: RUN_DIR/analysis)."""
    step: int | None = None
    """The checkpoint to analyse (None: the latest)."""
    max_sequences: int = 4
    """Probe sequences analysed at most."""
    max_steps: int = 500
    """Steps of each probe sequence analysed at most (the first ones)."""
    max_lag: int = 100
    """The longest lag of the Jacobian products and the gradient reach."""
    lag_points: int = 51
    """Lags at which the products' singular values are computed, spread evenly over 0..max_lag."""
    exponents: int = 32
    """Lyapunov exponents computed (the largest; at most the state size)."""
    warmup: int = 50
    """Steps left out of the Lyapunov average (at most half the shortest probe sequence)."""
    fixed_points: bool = True
    """Find the fixed points of the layers with small states."""
    max_fixed_point_state: int = 64
    """Fixed points only for states of at most this many entries."""
    fixed_point_starts: int = 64
    """Starting states of the fixed-point search, drawn from the states the probe visits."""
    fixed_point_steps: int = 5000
    """Adam iterations of the fixed-point search at most (FixedPointFinder's default)."""
    max_jacobian_mb: int = 256
    """Memory for the step Jacobians and their products: fewer sequences (then steps) where they would pass it."""


class AnalyseError(RuntimeError):
    """The run folder cannot be analysed (no model.json, no checkpoint, params that do not fit)."""


class Summary(NamedTuple):
    """One model's analysis: where its report is and one line per analysed layer for the index."""

    run_dir: Path
    report: Path
    model: str
    step: int
    measured: list[Measures]
    refused: list[str]
    seconds: float


def check_config(cfg: Config) -> None:
    """Raises an :class:`AnalyseError` naming the first setting out of its range."""
    low = {
        "max_sequences": 1,
        "max_steps": 1,
        "max_lag": 1,
        "lag_points": 2,
        "exponents": 1,
        "warmup": 0,
        "max_fixed_point_state": 1,
        "fixed_point_starts": 1,
        "fixed_point_steps": 1,
        "max_jacobian_mb": 1,
    }
    for name, least in low.items():
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise AnalyseError(f"--{name.replace('_', '-')}: expected an int >= {least}, got {value!r}")
    if cfg.step is not None and (not isinstance(cfg.step, int) or cfg.step < 0):
        raise AnalyseError(f"--step: expected a checkpoint's step (an int >= 0) or None, got {cfg.step!r}")


def _settings(cfg: Config) -> Settings:
    return Settings(**{name: getattr(cfg, name) for name in Settings._fields})


def _state_size(network: Network) -> int:
    cell = network.net.step_cell
    first = network.net.cell_params(network.params)[0][0]
    return int(state_vector(cell.initial_carry(first, ())).shape[-1])


def bound(network: Network, n: int, cfg: Config) -> tuple[Network, str]:
    """``network`` cut to ``max_sequences`` and ``max_steps``, then to what ``max_jacobian_mb`` holds: one
    sequence's step Jacobians, the window of the last ``m = min(max_lag, steps)`` of them, their ``m + 1``
    products and the ``lag_points`` kept take ``(steps + 2 m + 1 + lag_points) n^2`` floats."""
    network, note = limit(network, cfg.max_sequences, cfg.max_steps)
    budget = cfg.max_jacobian_mb * 2**20 / 4  # float32 entries
    batch, steps = network.xs.shape[:2]
    per_sequence = (steps + 2 * min(cfg.max_lag, steps) + 1 + cfg.lag_points) * n * n
    fits = int(budget // per_sequence)
    if fits >= batch:
        return network, note
    if fits >= 1:
        cut, extra = limit(network, fits, steps)
    else:  # one sequence, fewer steps: (3 steps + 1 + lag_points) n^2 at most
        cut, extra = limit(network, 1, max(1, int((budget / (n * n) - 1 - cfg.lag_points) // 3)))
    why = f"(--max-jacobian-mb {cfg.max_jacobian_mb} for a state of {n})"
    return cut, ", ".join(p for p in (note, extra, why) if p)


def _intro(run: runs.Run, out: Path, probe_note: str) -> str:
    kind = type(run.model).__name__
    return (
        f"Run folder `{run.run_dir}`: a `{kind}` at the checkpoint of step {run.step}, "
        f"{sum(int(np.size(x)) for x in jax.tree.leaves(run.params)):,} parameters. {probe_note}\n\n"
        f"Written by `python -m rnnjax.analyse {run.run_dir}` into `{out}`."
    )


def analyse_run(run_dir: str | Path, cfg: Config, out: str | Path | None = None) -> Summary:
    """Analyses one model's run folder and writes ``out/report.md`` and its figures (``out``: RUN_DIR/analysis).

    Raises:
        AnalyseError: no ``model.json`` there, no checkpoint, or params that do not fit the definition.
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    try:
        run = runs.load_run(run_dir, cfg.step)
    except (FileNotFoundError, CheckpointError, ValueError) as e:
        raise AnalyseError(str(e)) from None
    out = Path(out) if out is not None else run_dir / "analysis"
    experiment.start_run(out.name, cfg, root=out.parent)  # out/config.json: the analysis' settings
    definition = json.loads((run_dir / runs.DEFINITION).read_text())["model"]
    measured, refused, inputs = [], [], []
    if not run.probe:
        refused.append("the run saved no probe (probe.npz): fit(..., probe=...) keeps the inputs to drive it with")
        networks, note = [], "No probe."
    else:
        networks = recurrent_networks(run.model, run.params, run.probe)
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in run.probe.items())
        note = f"Probe (`probe.npz`): {shapes}."
        if not networks:
            refused.append(f"a {type(run.model).__name__} has no recurrent network")
    for network in networks:
        n = _state_size(network)
        try:
            bounded, cut = bound(network, n, cfg)
        except ValueError as e:
            refused.append(f"{network.name}: {e}")
            continue
        net = network.net
        inputs.append([network.name, net.step_cell.name, f"{net.num_layers} x {net.num_directions}", n,
                       bounded.xs.shape[0], bounded.xs.shape[1], cut or "all of it"])  # fmt: skip
        for layer in range(net.num_layers):
            for direction in range(net.num_directions):
                label = label_of(network, layer, direction)
                print(f"analysing {run_dir}: {label} ({net.step_cell.name}, n = {n})", file=sys.stderr)
                try:
                    measured.append(measure(bounded, layer, direction, _settings(cfg)))
                except ValueError as e:  # the analysis' refusal names its reason (zoneout, ...)
                    refused.append(f"{label}: {e}")
    log = runlog.read_log(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    text = report.body(_intro(run, out, note), definition, inputs, measured, refused, log, out)
    title = f"Analysis of {run_dir.name}: {type(run.model).__name__} at step {run.step}"
    path = experiment.write_report(out, title, text, seconds=time.perf_counter() - start)
    return Summary(run_dir, path, type(run.model).__name__, run.step, measured, refused,
                   time.perf_counter() - start)  # fmt: skip


def _index_row(root: Path, out: Path, summary: Summary | str, run_dir: Path) -> list[Any]:
    name = str(run_dir.relative_to(root)) or "."
    if isinstance(summary, str):
        return [name, "", "", "", "", f"not analysed: {summary}".replace("|", "/")]
    largest = [(m.label, float(report.exponent_means(m.lyapunov)[0])) for m in summary.measured]
    rates = [(m.label, report.median(m.rate)) for m in summary.measured]
    link = f"[report]({summary.report.relative_to(out)})"
    said = f"{link}" + (f"; not analysed: {'; '.join(summary.refused)}" if summary.refused else "")
    said = said.replace("|", "/")  # a message's bar would split the table's cell
    return [name, summary.model, summary.step, _per_network(largest), _per_network(rates), said]


def _per_network(values: list[tuple[str, float]]) -> str:
    """``-0.0123`` for one network, ``encoder: -0.0123; decoder: -0.0456`` for several; ``n/a`` for none."""
    if len(values) == 1:
        return f"{values[0][1]:.4f}"
    return "; ".join(f"{label}: {v:.4f}" for label, v in values) or "n/a"


def analyse(cfg: Config) -> Path:
    """Analyses ``cfg.run_dir`` (one model's folder, or every model under an experiment's) and returns the path
    of the report (``report.md``) or of the index (``index.md``).

    Raises:
        AnalyseError: no such folder, no model.json under it, or no model that could be analysed.
    """
    check_config(cfg)
    root = Path(cfg.run_dir)
    if not root.is_dir():
        what = "a file, not a run folder" if root.exists() else "no such folder"
        raise AnalyseError(f"{root}: {what}")
    if (root / runs.DEFINITION).is_file():
        return analyse_run(root, cfg, cfg.out).report
    found = [p for p in runs.find_runs(root)]
    if not found:
        raise AnalyseError(
            f"{root}: no model.json in it or under it (a run folder written by fit(..., run_dir=..., model=...))"
        )
    start = time.perf_counter()
    out = Path(cfg.out) if cfg.out is not None else root / "analysis"
    rows, done = [], 0
    for run_dir in found:
        try:
            summary = analyse_run(run_dir, cfg, out / run_dir.relative_to(root))
            done += 1
        except AnalyseError as e:
            summary = str(e)
        rows.append(_index_row(root, out, summary, run_dir))
    if not done:
        raise AnalyseError(f"{root}: none of its {len(found)} models could be analysed; the first: {rows[0][-1]}")
    table = experiment.markdown_table(
        ["model", "type", "step", "largest Lyapunov exponent", "median fitted rate of the products", "report"],
        rows,
    )
    env = {**experiment.environment(), "wall_time_s": f"{time.perf_counter() - start:.1f}"}
    text = [f"# Analysis of {root}", "", f"{done} of {len(found)} models analysed, each in its own folder.", "",
            table, "", "## Environment", "", *(f"- {k}: `{v}`" for k, v in env.items())]  # fmt: skip
    path = out / "index.md"
    path.write_text("\n".join(text) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: ``python -m rnnjax.analyse RUN_DIR [--options]`` (``--help`` lists them). An error
    ends it with one line (exit status 1), not a traceback."""
    cfg = experiment.parse_config(Config, argv)
    try:
        path = analyse(cfg)
    except AnalyseError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {path}")
