"""Figures of dynamical isometry: distributions of the singular values of ``da_T/da_0``, and measured moments
beside their mean-field predictions (matplotlib's object API, written to PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rnnjax.plots.curves import save

__all__ = ["against_time", "log_singular_value_histograms"]


def log_singular_value_histograms(
    spectra: Mapping[str, Mapping[int, np.ndarray]],
    path: str | Path,
    *,
    floors: Mapping[str, Mapping[int, float]] | None = None,
    low: float = -8.0,
    high: float = 4.0,
    bins: int = 60,
    title: str = "",
) -> Path:
    """One panel per initialisation: the density of ``log10 sigma`` of ``da_T/da_0``, one step line per T.

    Args:
        spectra: ``{init: {T: singular values (any shape)}}``.
        floors: ``{init: {T: sigma}}``, the dtype's resolution (``eps * sigma_max``): a dotted line where the
            values below it are rounding, not spectrum.
        low, high: the range of ``log10 sigma`` shown; values outside are counted in the first or last bin
            (the legend gives the fraction below ``low``).
        bins: bins over ``[low, high]``.
    """
    names = list(spectra)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    edges = np.linspace(low, high, bins + 1)
    for ax, name in zip(axes, names, strict=False):
        for i, (T, values) in enumerate(spectra[name].items()):
            with np.errstate(divide="ignore"):
                logs = np.log10(np.asarray(values, float).ravel())
            below = float(np.mean(logs < low))
            density, _ = np.histogram(np.clip(logs, low, high), edges, density=True)
            label = f"T = {T}" + (f" ({below:.0%} < 1e{low:g})" if below else "")
            ax.stairs(density, edges, color=f"C{i}", lw=1.4, label=label)
            if floors and name in floors and T in floors[name] and np.log10(floors[name][T]) > low:
                ax.axvline(np.log10(floors[name][T]), color=f"C{i}", ls=":", lw=1)
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("log10 singular value of da_T/da_0")
        ax.set_ylabel("density")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path)


def against_time(
    times: np.ndarray,
    measured: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    predicted: Mapping[str, np.ndarray] | None = None,
    ylabel: str,
    title: str = "",
    log_y: bool = True,
    hline: float | None = None,
) -> Path:
    """A measured quantity against T (markers), one colour per initialisation, with the mean-field prediction
    of the same colour (dashed line, evaluated on ``times``) where ``predicted`` has one."""
    fig = Figure(figsize=(9.6, 4.4))
    ax = fig.subplots()
    times = np.asarray(times, float)
    for i, (name, values) in enumerate(measured.items()):
        ax.plot(times, values, "o-", color=f"C{i}", ms=4, lw=1.2, label=name)
        if predicted and name in predicted:
            ax.plot(times, predicted[name], "--", color=f"C{i}", lw=1.0, label=f"{name}: mean field")
    if hline is not None:
        ax.axhline(hline, color="k", lw=0.8)
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("T (steps)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save(fig, path)
