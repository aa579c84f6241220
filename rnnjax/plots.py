"""Figures shared by experiments and notebooks (matplotlib, written to PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

# Figures are built with matplotlib's object API, not pyplot: no backend or window is needed, so
# the same code writes PNGs from a headless script and displays inline in a notebook.


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    values = np.asarray(values, float)
    if window <= 1 or values.size == 0:
        return values
    csum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, values.size + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def loss_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    title: str = "",
    ylabel: str = "loss",
    baseline: float | None = None,
    baseline_label: str = "baseline",
    evals: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    window: int = 1,
    log_y: bool = True,
) -> Path:
    """One line per run: the training curve (smoothed over ``window`` steps), evaluation points
    as markers of the same colour, and an optional horizontal baseline."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for i, (name, (steps, values)) in enumerate(curves.items()):
        color = f"C{i}"
        ax.plot(steps, smooth(values, window), color=color, lw=1.2, label=f"{name} (train)")
        if evals and name in evals:
            ax.plot(*evals[name], "o", color=color, ms=3.5, label=f"{name} (eval)")
    if baseline is not None:
        ax.axhline(baseline, color="k", ls="--", lw=1, label=baseline_label)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
