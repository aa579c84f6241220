"""The markdown of an analysis: tables of the :class:`~rnnjax.analyse.measures.Measures` of every layer and
direction, and the figures beside them (:mod:`rnnjax.plots.runs`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnjax.analyse.measures import Measures, spectrum_lags
from rnnjax.experiment import markdown_table
from rnnjax.plots import dynamics, training
from rnnjax.plots import runs as figures

__all__ = ["body", "exponent_means", "lyapunov_during_training", "median", "number"]

REACH_LAGS = (1, 5, 10, 25, 50, 100)


def number(value: Any, digits: int = 3) -> str:
    """A float in ``digits`` significant digits; ``n/a`` for NaN or None."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{float(value):.{digits}g}"


def median(values: np.ndarray) -> float:
    """The median of the finite values (NaN if there are none)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def exponent_means(exponents: np.ndarray) -> np.ndarray:
    """The mean of each exponent over the sequences that have it (NaN: a sequence too short for the warmup); -inf
    stays -inf (a step Jacobian that maps a direction to 0, a dead ReLU unit: the products are exactly 0)."""
    exponents = np.asarray(exponents, float)
    seen = ~np.isnan(exponents)
    total = np.where(seen, exponents, 0.0).sum(0)
    return np.where(seen.any(0), total / np.maximum(seen.sum(0), 1), np.nan)


def _norm_section(measured: Sequence[Measures], out: Path) -> str:
    m = max(int(x.lags[-1]) for x in measured)
    shown = spectrum_lags(m)
    rows = []
    for x in measured:
        at = {int(lag): median(x.norms[:, i]) for i, lag in enumerate(x.lags)}
        rows.append([x.label, *(number(at.get(lag)) for lag in shown), f"{median(x.rate):.4f}",
                     number(float(np.exp(50 * median(x.rate)))), x.out_of_range])  # fmt: skip
    figures.lag_norms({x.label: (x.lags, x.norms) for x in measured}, out / "norms.png")
    table = markdown_table(["network", *(f"lag {lag}" for lag in shown), "fitted rate / step",
                            "exp(50 rate)", "products out of range"], rows)  # fmt: skip
    return (
        "## Jacobian products\n\n"
        "`||da_end/da_(end - lag)||`, the largest singular value of the product of the step Jacobians\n"
        "`J_t = da_t/da_(t-1)` over the last `lag` steps of each sequence (the matrix backpropagation through time\n"
        "multiplies the gradient by; `a_t` is the layer's whole state, `[h, C]` for an LSTM), the median over the\n"
        "sequences; the rate is the slope of `log ||.||` against the lag, and `exp(50 rate)` what of a gradient\n"
        "survives 50 steps at that rate (extrapolated where fewer lags were measured; Pascanu, Mikolov & Bengio\n"
        "2013). Products that left the float range (0, below the\n"
        "smallest normal number, or Inf) are left out of the rate and counted over the sequences and lags.\n\n"
        f"{table}\n\n![Jacobian products against the lag](norms.png)\n"
    )


def _spectra_section(measured: Sequence[Measures], out: Path) -> str:
    rows = []
    for x in measured:
        for lag, values in x.spectra.items():
            rows.append([x.label, lag, number(median(values[:, 0])), number(median(values[:, -1])),
                         int(np.round(median((values > 1e-3 * values[:, :1]).sum(-1))))])  # fmt: skip
    figures.singular_spectra({x.label: x.spectra for x in measured}, out / "singular_values.png")
    table = markdown_table(["network", "lag", "largest", "smallest", "above 1e-3 of the largest"], rows)
    return (
        "## Singular values of the products\n\n"
        "All singular values of `da_end/da_(end - lag)` (medians over the sequences): how many directions of the\n"
        "state a gradient can still travel along after `lag` steps.\n\n"
        f"{table}\n\n![singular values](singular_values.png)\n"
    )


def _lyapunov_section(measured: Sequence[Measures], out: Path) -> str:
    rows = []
    for x in measured:
        mean = exponent_means(x.lyapunov)
        rows.append([x.label, x.lyapunov.shape[-1], f"{x.state_size}", f"{mean[0]:.4f}", f"{np.sum(mean):.4f}",
                     int(np.sum(mean > 0)), x.warmup, x.steps - x.warmup])  # fmt: skip
    figures.lyapunov_spectra({x.label: x.lyapunov for x in measured}, out / "lyapunov.png")
    table = markdown_table(["network", "exponents", "state size", "largest", "sum", "positive", "warmup",
                            "steps averaged (longest sequence)"], rows)  # fmt: skip
    return (
        "## Lyapunov spectrum\n\n"
        "The largest Lyapunov exponents per step of the network driven by the probe (QR method: Benettin et al.\n"
        "1980; for RNNs Engelken, Wolf & Abbott 2020), the mean over the sequences: below 0 perturbations (and\n"
        "gradients) shrink at `exp(lambda)` a step, above 0 they grow. The warmup is left out of the average; it\n"
        "is at most half the shortest sequence, so a short probe gives rough exponents; -inf: a step Jacobian\n"
        "maps some direction to exactly 0 (dead ReLU units).\n\n"
        f"{table}\n\n![Lyapunov spectrum](lyapunov.png)\n"
    )


def _reach_section(measured: Sequence[Measures], out: Path) -> str:
    lags = [lag for lag in REACH_LAGS if lag < max(x.reach.size for x in measured)]
    rows = []
    for x in measured:
        first = x.reach[0]
        rows.append([x.label, *(number(x.reach[lag] / first) if lag < x.reach.size else "n/a" for lag in lags)])
    figures.gradient_reach({x.label: x.reach for x in measured}, out / "gradient_reach.png")
    table = markdown_table(["network", *(f"lag {lag}" for lag in lags)], rows)
    return (
        "## How far back the gradient reaches\n\n"
        "`||dL/da_(end - lag)|| / ||dL/da_end||` for `L = u . y_end`: a fixed random direction `u` of the network's\n"
        "output after the whole sequence (each direction's last step), the mean over the sequences (zero-\n"
        "perturbation trick, `rj.analysis.state_gradients`).\n\n"
        f"{table}\n\n![gradient reach](gradient_reach.png)\n"
    )


def _gate_section(measured: Sequence[Measures], out: Path) -> str:
    gated = [x for x in measured if x.gates]
    if not gated:
        return ""
    rows = []
    for x in gated:
        for name, g in x.gates.items():
            rows.append([x.label, name, g.bounds, f"{g.mean:.3f}", f"{g.std:.3f}", number(g.low), number(g.high)])
    figures.gate_histograms({x.label: {k: g.values for k, g in x.gates.items()} for x in gated}, out / "gates.png")
    table = markdown_table(["network", "gate", "range", "mean", "std", "low share", "high share"], rows)
    return (
        "## Gates\n\n"
        "Every gate's values over the probe's steps and units (`rj.analysis.gate_traces`). The range is read from\n"
        "the values: in `[0, 1]` a sigmoid gate (low: below 0.05, closed; high: above 0.95, open), in `[-1, 1]` a\n"
        "tanh candidate (below -0.95, above 0.95: saturated), otherwise unbounded (no saturation).\n\n"
        f"{table}\n\n![gate values](gates.png)\n"
    )


def _fixed_section(measured: Sequence[Measures], out: Path) -> str:
    rows, found, pictures = [], {}, []
    for x in measured:
        if isinstance(x.fixed, str):
            rows.append([x.label, x.fixed, "", "", "", "", "", ""])
            continue
        fp = x.fixed
        counts = fp.counts()
        search = f"{fp.converged} of {fp.starts} starts below q = {fp.tol:.2g} in {fp.iterations} Adam steps"
        speeds = np.asarray(fp.final_speeds, float)
        slowest = number(float(np.nanmin(speeds))) if np.isfinite(speeds).any() else "n/a"
        top = number(float(np.abs(fp.eigenvalues[:, 0]).max())) if len(fp.speeds) else "n/a"
        rows.append([x.label, search, counts["fixed points"], counts["stable"], counts["saddles"],
                     counts["more unstable"], slowest, top])  # fmt: skip
        if counts["fixed points"]:
            found[x.label] = (x.fixed.eigenvalues, x.fixed.stable)
            if x.state_size >= 2:
                name = f"fixed_points_{len(pictures)}.png"
                dynamics.fixed_points(x.fixed, x.states, out / name, components=2, title=f"{x.label}: fixed points")
                pictures.append(f"![{x.label}: fixed points on the trajectories]({name})")
    table = markdown_table(["network", "search", "fixed points", "stable", "saddles", "more unstable",
                            "slowest start's q", "largest abs(lambda)"], rows)  # fmt: skip
    text = (
        "## Fixed points\n\n"
        "Fixed points `a* = F(a*, 0)` of each layer at zero input (the autonomous network), found as the minima of\n"
        "the speed `q(a) = ||F(a) - a||^2 / 2` from states the probe visits (Sussillo & Barak 2013;\n"
        "`rj.analysis.fixed_points`); stable when every eigenvalue of `dF/da` there lies inside the unit circle. A\n"
        "search where no start fell below the tolerance found slow points at best (their q is the slowest's).\n\n"
        f"{table}\n"
    )
    if found:
        figures.fixed_point_eigenvalues(found, out / "fixed_points.png")
        text += "\n![eigenvalues at the fixed points](fixed_points.png)\n"
    if pictures:
        text += "\nOn the trajectories' first two principal components (stable: dots; saddles: crosses with their\n"
        text += "unstable mode; more unstable: triangles):\n\n" + "\n".join(pictures) + "\n"
    return text


def lyapunov_during_training(log: list[dict[str, Any]], out: Path) -> str:
    """The section on the exponents that training logged (``lyapunov/1``, ... in ``metrics.jsonl``), or ""."""
    names = sorted({k for r in log for k in r if k.startswith("lyapunov/")}, key=lambda k: (len(k), k))
    if not names:
        return ""
    from rnnjax.train import history_array

    series = {name: history_array(log, name) for name in names}
    figure = ""
    if any("loss" in r for r in log):
        training.lyapunov_and_loss({"training": log}, out / "training_lyapunov.png", title="loss and exponents")
        figure = "\n\n![Lyapunov exponents during training](training_lyapunov.png)"
    rows = [[name, int(steps[0]), f"{values[0]:.4f}", int(steps[-1]), f"{values[-1]:.4f}"]
            for name, (steps, values) in series.items()]  # fmt: skip
    table = markdown_table(["exponent", "first step", "value", "last step", "value"], rows)
    return (
        "## Lyapunov exponents during training\n\n"
        "The exponents that `fit` logged while the model trained (`metrics.jsonl`), against the training loss.\n\n"
        f"{table}{figure}\n"
    )


def body(
    intro: str, definition: dict[str, Any], inputs: list[list[Any]], measured: Sequence[Measures],
    refused: Sequence[str], log: list[dict[str, Any]], out: Path,
) -> str:  # fmt: skip
    """The report's markdown, every figure written into ``out``.

    Args:
        intro: the first paragraph (the run, the checkpoint, the probe).
        definition: the model's definition (``model.json``'s ``"model"``).
        inputs: rows of the table of what was analysed.
        measured: the measurements, one per layer and direction.
        refused: one line per network or part the analysis could not take, and why.
        log: the run's ``metrics.jsonl`` records.
    """
    parts = [intro, "## The model", "```json\n" + json.dumps(definition, indent=1) + "\n```"]
    if inputs:
        headers = ["network", "cell", "layers x directions", "state size", "sequences", "steps", "probe used"]
        parts += ["## What was analysed", markdown_table(headers, inputs)]
    if refused:
        parts += ["## Not analysed", "\n".join(f"- {line}" for line in refused)]
    if measured:
        sections = (_norm_section, _spectra_section, _lyapunov_section, _reach_section, _gate_section, _fixed_section)
        parts += [section(measured, out) for section in sections]
    parts.append(lyapunov_during_training(log, out))
    times = ", ".join(f"{x.label} {x.seconds:.1f} s" for x in measured)
    if times:
        parts.append(f"Time per network: {times}.")
    return "\n\n".join(p.strip() for p in parts if p.strip())
