"""The figures of ``python -m rnnjax.analyse``: a trained network's Jacobian products, spectra, Lyapunov
exponents, gradient reach, gates and the eigenvalues at its fixed points (matplotlib's object API, written to
PNG; the fixed points on the trajectories are :func:`rnnjax.plots.dynamics.fixed_points`, the exponents logged
in training :func:`rnnjax.plots.training.lyapunov_and_loss`).

Each function takes ``{label: data}`` with one entry per analysed layer and direction (``"rnn"``,
``"encoder, layer 1, backward"``) and a ``path``, and returns the path it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rnnjax.plots.curves import save

__all__ = ["fixed_point_eigenvalues", "gate_histograms", "gradient_reach", "lag_norms", "lyapunov_spectra",
           "singular_spectra"]  # fmt: skip


def _quantiles(values: np.ndarray, q: tuple[float, ...]) -> list[np.ndarray]:
    """Quantiles over the first axis that skip NaN, NaN where a column has no value (no warning)."""
    values = np.asarray(values, float)
    seen = np.isfinite(values).any(axis=0)
    filled = np.where(seen[None], values, 0.0)
    out = [np.nanquantile(filled, p, axis=0) for p in q]
    return [np.where(seen, o, np.nan) for o in out]


def _positive(values: list[np.ndarray]) -> np.ndarray:
    flat = np.concatenate([np.asarray(v, float).ravel() for v in values]) if values else np.zeros(0)
    return flat[np.isfinite(flat) & (flat > 0)]


def _grid(count: int, width: float = 4.2, height: float = 3.4) -> tuple[Figure, list]:
    cols = min(count, 3)
    rows = -(-count // cols)
    fig = Figure(figsize=(width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, list(axes[:count])


def lag_norms(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *, title: str = "") -> Path:
    """``||da_end/da_(end - lag)||`` against the lag on a log scale: the median over the sequences, and the band
    between their 25th and 75th percentiles.

    Args:
        curves: ``{label: (lags (L,), norms (batch, L))}``, NaN where a lag does not exist.
    """
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for i, (label, (lags, norms)) in enumerate(curves.items()):
        low, mid, high = _quantiles(norms, (0.25, 0.5, 0.75))
        ax.semilogy(lags, mid, color=f"C{i}", lw=1.5, marker=".", ms=3, label=label)
        ax.fill_between(lags, low, high, color=f"C{i}", alpha=0.2, lw=0)
    if _positive([n for _, n in curves.values()]).size == 0:
        ax.set_yscale("linear")  # nothing to draw on a log scale (every product underflowed)
    ax.set_xlabel("lag (steps back from the end of each sequence)")
    ax.set_ylabel("||da_end / da_(end - lag)||  (largest s.v.)")
    ax.set_title(title or "Jacobian products: median and 25-75% of the sequences")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save(fig, path)


def singular_spectra(spectra: Mapping[str, Mapping[int, np.ndarray]], path: str | Path) -> Path:
    """The singular values of ``da_end/da_(end - lag)``, largest first, one line per lag (median over the
    sequences), one panel per label.

    Args:
        spectra: ``{label: {lag: (batch, n)}}``.
    """
    fig, axes = _grid(len(spectra))
    for ax, (label, by_lag) in zip(axes, spectra.items(), strict=True):
        for i, (lag, values) in enumerate(by_lag.items()):
            (mid,) = _quantiles(values, (0.5,))
            if np.isfinite(mid).any():
                ax.plot(np.arange(1, mid.size + 1), mid, color=f"C{i}", lw=1.3, label=f"lag {lag}")
        if _positive([v for v in by_lag.values()]).size:
            ax.set_yscale("log")
        ax.set_xlabel("index i")
        ax.set_ylabel("sigma_i")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("singular values of the Jacobian products (median over the sequences)", fontsize=10)
    return save(fig, path)


def lyapunov_spectra(exponents: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """The Lyapunov exponents per step, largest first: the mean over the sequences, with their range as a band.

    Args:
        exponents: ``{label: (batch, k)}``.
    """
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for i, (label, values) in enumerate(exponents.items()):
        values = np.asarray(values, float)
        index = np.arange(1, values.shape[-1] + 1)
        ax.plot(index, np.nanmean(values, 0), color=f"C{i}", marker=".", lw=1.3, label=label)
        if values.shape[0] > 1:
            ax.fill_between(index, np.nanmin(values, 0), np.nanmax(values, 0), color=f"C{i}", alpha=0.2, lw=0)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("index i")
    ax.set_ylabel("lambda_i (per step)")
    ax.set_title("Lyapunov spectrum along the probe (mean and range over the sequences)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save(fig, path)


def gradient_reach(reach: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """``||dL/da_(end - lag)|| / ||dL/da_end||`` against the lag on a log scale, one line per label.

    Args:
        reach: ``{label: (max_lag + 1,)}``, the mean norm over the sequences at each lag (NaN where none).
    """
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    drawn = []
    for i, (label, values) in enumerate(reach.items()):
        values = np.asarray(values, float)
        relative = values / values[0] if np.isfinite(values[0]) and values[0] > 0 else values
        drawn.append(relative)
        ax.plot(np.arange(values.size), relative, color=f"C{i}", lw=1.5, label=label)
    if _positive(drawn).size:
        ax.set_yscale("log")
    ax.set_xlabel("lag (steps back from the end)")
    ax.set_ylabel("||dL/da_(end - lag)|| / ||dL/da_end||")
    ax.set_title("how far back the gradient of the last output reaches")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save(fig, path)


def gate_histograms(gates: Mapping[str, Mapping[str, np.ndarray]], path: str | Path) -> Path:
    """The distribution of every gate's values over the probe's steps and units, one panel per label.

    Args:
        gates: ``{label: {gate: values (any shape)}}``.
    """
    fig, axes = _grid(len(gates))
    for ax, (label, by_gate) in zip(axes, gates.items(), strict=True):
        for i, (gate, values) in enumerate(by_gate.items()):
            values = np.asarray(values, float).ravel()
            values = values[np.isfinite(values)]
            if values.size:
                ax.hist(values, bins=50, density=True, histtype="step", color=f"C{i}", lw=1.3, label=gate)
        ax.set_xlabel("value")
        ax.set_ylabel("density")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("gate values over the probe", fontsize=10)
    return save(fig, path)


def fixed_point_eigenvalues(eigenvalues: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """The eigenvalues of ``dF/da`` at each fixed point in the complex plane with the unit circle (outside it: an
    unstable direction), one panel per label; stable points in blue, unstable in red.

    Args:
        eigenvalues: ``{label: (eigenvalues (k, n) complex, stable (k,) bool)}``.
    """
    fig, axes = _grid(len(eigenvalues), 4.4, 4.2)
    angle = np.linspace(0, 2 * np.pi, 200)
    for ax, (label, (values, stable)) in zip(axes, eigenvalues.items(), strict=True):
        ax.plot(np.cos(angle), np.sin(angle), color="k", lw=0.8)
        values, stable = np.asarray(values), np.asarray(stable, bool)
        for kind, mask, colour in (("stable", stable, "C0"), ("unstable", ~stable, "C3")):
            points = values[mask].ravel()
            if points.size:
                ax.scatter(points.real, points.imag, s=6, color=colour, alpha=0.5, label=f"{kind} ({mask.sum()})")
        ax.set_aspect("equal")
        ax.set_xlabel("Re lambda")
        ax.set_ylabel("Im lambda")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
        if values.size:
            ax.legend(fontsize=7)
    fig.suptitle("fixed points at zero input: eigenvalues of dF/da", fontsize=10)
    return save(fig, path)
