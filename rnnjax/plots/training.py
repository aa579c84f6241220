"""Figures of training dynamics: a loss against the Lyapunov exponents logged beside it, and flossing curves.

The exponents come from ``fit(..., monitor=rj.analysis.lyapunov_monitor(...))``, whose records hold
``lyapunov/1`` .. ``lyapunov/k`` at the monitored steps (Vogt et al. 2022; Engelken 2023).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from rnnjax.plots.curves import save, smooth

__all__ = ["exponents_in", "flossing_curves", "lyapunov_and_loss"]


def _curve(history: Sequence[Mapping[str, Any]], name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["step"], r[name]) for r in history if name in r]
    return (np.asarray([s for s, _ in rows], float), np.asarray([v for _, v in rows], float))


def exponents_in(history: Sequence[Mapping[str, Any]], prefix: str = "lyapunov/") -> int:
    """How many exponents the records of ``history`` hold: the largest ``k`` with ``f"{prefix}{k}"`` in one."""
    k = 0
    while any(f"{prefix}{k + 1}" in r for r in history):
        k += 1
    return k


def lyapunov_and_loss(
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    metric: str = "loss",
    ylabel: str | None = None,
    baseline: tuple[str, float] | None = None,
    window: int = 1,
    prefix: str = "lyapunov/",
    title: str = "",
    groups: Mapping[str, str] | None = None,
) -> Path:
    """Two panels over the training step, one colour per run (or per group of runs): ``metric`` (smoothed over
    ``window`` logged steps) above, the logged Lyapunov exponents below (``lambda_1`` solid and marked, the others
    thin), with the line ``lambda = 0`` that separates vanishing (below) from exploding (above) gradients.

    Args:
        histories: ``{run name: fit's log records}``.
        metric: the record key to plot above (``"loss"``, ``"eval/accuracy"``, ...).
        baseline: ``(label, level)`` drawn as a dashed line in the upper panel (chance).
        window: moving-average window of the upper curves, in logged points.
        prefix: the exponents' key prefix (``lyapunov/1`` ..).
        groups: ``{run name: group}``: the runs of a group (the seeds of one arm) share a colour and a label.

    Raises:
        ValueError: no run, or no run with ``metric`` or with exponents.
    """
    if not histories:
        raise ValueError("histories: expected at least one run's log records, got none")
    if not any(metric in r for h in histories.values() for r in h):
        raise ValueError(f"metric: no record of {sorted(histories)} holds {metric!r}")
    if not any(exponents_in(h, prefix) for h in histories.values()):
        raise ValueError(f"histories: no record holds {prefix}1 (train with fit(monitor=lyapunov_monitor(...)))")
    fig = Figure(figsize=(7.5, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True)
    groups = {name: (groups or {}).get(name, name) for name in histories}
    colors = {group: f"C{i % 10}" for i, group in enumerate(dict.fromkeys(groups.values()))}
    labelled = set()
    for name, history in histories.items():
        group = groups[name]
        color, label = colors[group], None if group in labelled else group
        labelled.add(group)
        steps, values = _curve(history, metric)
        top.plot(steps, smooth(values, window), color=color, lw=1.2, label=label)
        for j in range(exponents_in(history, prefix), 0, -1):
            s, lam = _curve(history, f"{prefix}{j}")
            if j == 1:
                bottom.plot(s, lam, color=color, lw=1.4, marker="o", ms=2.5,
                            label=None if label is None else f"{label}: $\\lambda_1$")  # fmt: skip
            else:
                bottom.plot(s, lam, color=color, lw=0.6, alpha=0.5)
    if baseline is not None:
        top.axhline(baseline[1], color="k", ls="--", lw=1.0, label=baseline[0])
    bottom.axhline(0.0, color="k", lw=0.8)
    top.set_ylabel(ylabel or metric)
    bottom.set_ylabel("Lyapunov exponent per step")
    bottom.set_xlabel("training step")
    top.set_title(title)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    return save(fig, path)


def flossing_curves(
    exponents: Mapping[str, np.ndarray], path: str | Path, *, losses: Mapping[str, np.ndarray] | None = None,
    title: str = "",
) -> Path:  # fmt: skip
    """The exponents during flossing (:func:`rnnjax.analysis.floss`'s ``exponents``, ``(steps + 1, k)``), one
    colour per run (``lambda_1`` solid, the others thin), and, when given, the flossing loss on a log scale.

    Raises:
        ValueError: no run, or an array that is not ``(steps + 1, k)``.
    """
    if not exponents:
        raise ValueError("exponents: expected at least one run's (steps + 1, k) exponents, got none")
    for name, lam in exponents.items():
        if np.ndim(lam) != 2:
            raise ValueError(f"exponents[{name!r}]: expected shape (steps + 1, k), got {np.shape(lam)}")
    fig = Figure(figsize=(7.5, 6.0 if losses else 4.0))
    axes = fig.subplots(2, 1, sharex=True) if losses else [fig.subplots()]
    ax = axes[-1]
    for i, (name, lam) in enumerate(exponents.items()):
        lam = np.asarray(lam, float)
        steps = np.arange(lam.shape[0])
        ax.plot(steps, lam[:, 1:], color=f"C{i % 10}", lw=0.6, alpha=0.5)
        ax.plot(steps, lam[:, 0], color=f"C{i % 10}", lw=1.5, label=f"{name}: $\\lambda_1$ (thin: $\\lambda_2$ ..)")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("flossing step")
    ax.set_ylabel("Lyapunov exponent per step")
    if losses:
        for i, (name, loss) in enumerate(losses.items()):
            axes[0].plot(np.arange(len(loss)), loss, color=f"C{i % 10}", lw=1.2, label=name)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("flossing loss $\\sum_i \\lambda_i^2$")
    axes[0].set_title(title)
    for a in axes:
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    return save(fig, path)
