"""Curves, heatmaps, spectra and the figures of the applications (matplotlib, written to PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "confusion_matrix",
    "forecasts",
    "gate_heatmaps",
    "heatmap",
    "image_captions",
    "lines",
    "loss_curves",
    "norms_by_lag",
    "piano_roll",
    "save",
    "smooth",
    "spectra",
    "surface",
    "sweep",
]

# Figures are built with matplotlib's object API, not pyplot: no backend or window is needed, so
# the same code writes PNGs from a headless script and displays inline in a notebook.


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start).

    Each mean is summed over its own window (not as a difference of running sums, which a spike of 1e14 would
    leave every later point rounded by)."""
    values = np.asarray(values, float)
    if window <= 1 or values.size == 0:
        return values
    padded = np.concatenate([np.zeros(window - 1), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return windows.sum(-1) / counts


def loss_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    title: str = "",
    ylabel: str = "loss",
    baselines: Mapping[str, float] | None = None,
    evals: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    window: int = 1,
    log_y: bool = True,
    clip_to_baselines: bool = False,
) -> Path:
    """One line per run: the training curve (smoothed over ``window`` steps), evaluation points
    as markers of the same colour, and one labelled horizontal line per baseline (``{label: value}``).

    ``clip_to_baselines`` cuts the y range at 1.25 times the worst baseline, leaving out the first steps'
    losses far above it (so that curves close to the baselines can be told apart)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    shown = []
    for i, (name, (steps, values)) in enumerate(curves.items()):
        color = f"C{i}"
        smoothed = smooth(values, window)
        ax.plot(steps, smoothed, color=color, lw=1.2, label=f"{name} (train)")
        shown.append(np.asarray(smoothed, float))
        if evals and name in evals:
            ax.plot(*evals[name], "o", color=color, ms=3.5, label=f"{name} (eval)")
            shown.append(np.asarray(evals[name][1], float))
    baselines = dict(baselines or {})
    styles = ["--", ":", "-.", (0, (5, 1, 1, 1))]
    for j, (label, value) in enumerate(sorted(baselines.items(), key=lambda kv: -kv[1])):
        ax.axhline(value, color="k" if j == 0 else f"0.{2 + 2 * (j % 3)}", ls=styles[j % 4], lw=1, label=label)
    if clip_to_baselines and baselines:
        values = np.concatenate([v[np.isfinite(v)] for v in shown] + [np.asarray(list(baselines.values()), float)])
        ax.set_ylim(0.95 * values.min(), min(values.max(), 1.25 * max(baselines.values())))
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return save(fig, path)


def save(fig: Figure, path: str | Path) -> Path:
    """Writes ``fig`` to ``path`` (PNG, 120 dpi, tight layout) and returns the path."""
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def norms_by_lag(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    bounds: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    title: str = "",
) -> Path:
    """``||da_t/da_{t-lag}||`` against the lag on a log scale, one line per cell; dashed: the bound."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for i, (name, (lags, norms)) in enumerate(curves.items()):
        ax.semilogy(lags, norms, color=f"C{i}", lw=1.5, label=name)
        if bounds and name in bounds:
            ax.semilogy(*bounds[name], color=f"C{i}", ls="--", lw=1, label=f"{name}: bound (sigma_max W)^lag")
    measured = np.concatenate([np.asarray(n, float).ravel() for _, n in curves.values()])
    measured = measured[np.isfinite(measured) & (measured > 0)]
    if measured.size:  # a loose bound may run to 1e30: keep the measurements readable, let it leave the frame
        ax.set_ylim(measured.min() / 10, measured.max() * 1e4)
    ax.set_xlabel("lag t - k")
    ax.set_ylabel("||da_t / da_k||  (largest singular value)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    return save(fig, path)


def heatmap(
    matrix: np.ndarray, path: str | Path, *, title: str = "", xlabel: str = "k", ylabel: str = "t", log: bool = True
) -> Path:
    """A matrix as an image (log10 of it by default), e.g. ``N[t, k] = ||da_t/da_k||``."""
    fig = Figure(figsize=(5.2, 4.4))
    ax = fig.subplots()
    values = np.asarray(matrix, float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log10(values)
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=ax, label="log10" if log else "")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save(fig, path)


def lines(
    x: np.ndarray,
    curves: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    hline: float | None = None,
    log_y: bool = False,
) -> Path:
    """Several curves over one x axis (e.g. the largest Lyapunov exponent against the gain)."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for i, (name, y) in enumerate(curves.items()):
        ax.plot(x, y, "o-", color=f"C{i}", ms=3.5, label=name)
    if hline is not None:
        ax.axhline(hline, color="k", lw=0.8)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def sweep(
    results: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    baselines: Mapping[str, float | tuple[np.ndarray, np.ndarray]] | None = None,
    log_x: bool = False,
    log_y: bool = False,
) -> Path:
    """A sweep: one final metric against a swept setting (the sequence length T) per model, each model's own
    ``(x, y)`` points, and the baselines as black lines: a number is a level, ``(x, y)`` a curve (the copy
    task's memoryless cross-entropy falls with T)."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for i, (name, (x, y)) in enumerate(results.items()):
        ax.plot(x, y, marker="o", color=f"C{i % 10}", ls="-" if i < 10 else "--", ms=3.5, label=name)
    for j, (name, level) in enumerate((baselines or {}).items()):
        style = ("-", "--", ":", "-.")[j % 4]
        if isinstance(level, tuple):
            ax.plot(*level, color="k", lw=1.0, ls=style, label=name)
        else:
            ax.axhline(float(level), color="k", lw=1.0, ls=style, label=name)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save(fig, path)


def gate_heatmaps(
    traces: Mapping[str, np.ndarray], path: str | Path, *, title: str = "", marks: np.ndarray | None = None
) -> Path:
    """One panel per gate: units (rows) against time (columns), values in [0, 1] or [-1, 1];
    ``marks`` draws vertical lines at chosen steps (e.g. the adding problem's markers)."""
    names = list(traces)
    fig = Figure(figsize=(8, 1.7 * len(names) + 0.6))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        values = np.asarray(traces[name]).T  # (hidden, time)
        top = max(1.0, float(np.abs(values).max()))  # gates lie in [0, 1] or [-1, 1]; a cell state may not
        signed = values.min() < 0
        image = ax.imshow(values, aspect="auto", cmap="coolwarm" if signed else "viridis",
                          vmin=-top if signed else 0.0, vmax=top)  # fmt: skip
        fig.colorbar(image, ax=ax, pad=0.01)
        ax.set_ylabel(name)
        for m in [] if marks is None else marks:
            ax.axvline(m, color="w", lw=1, ls=":")
    axes[-1].set_xlabel("time step")
    axes[0].set_title(title)
    return save(fig, path)


def surface(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, path: str | Path, *, xlabel: str, ylabel: str, zlabel: str, title: str
) -> Path:
    """A 3-D surface beside its heat map, e.g. a loss over two parameters."""
    fig = Figure(figsize=(11, 4.4))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    X, Y = np.meshgrid(x, y, indexing="ij")
    ax3.plot_surface(X, Y, z, cmap="viridis", linewidth=0, antialiased=True)
    ax3.set_xlabel(xlabel)
    ax3.set_ylabel(ylabel)
    ax3.set_zlabel(zlabel)
    ax3.set_title(title)
    ax2 = fig.add_subplot(1, 2, 2)
    image = ax2.imshow(z.T, origin="lower", aspect="auto", extent=(x[0], x[-1], y[0], y[-1]), cmap="viridis")
    fig.colorbar(image, ax=ax2, label=zlabel)
    ax2.set_xlabel(xlabel)
    ax2.set_ylabel(ylabel)
    return save(fig, path)


def spectra(
    values: Mapping[str, np.ndarray], path: str | Path, *, title: str = "", ylabel: str = "singular value"
) -> Path:
    """Sorted spectra (e.g. singular values of ``da_T/da_0``), each against its own index, log scale."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for i, (name, v) in enumerate(values.items()):
        v = np.sort(np.asarray(v))[::-1]
        ax.semilogy(np.arange(1, v.size + 1), v, "o-", color=f"C{i}", ms=3, label=name)
    ax.set_xlabel("index")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save(fig, path)


def confusion_matrix(
    labels: np.ndarray, predictions: np.ndarray, names: list[str], path: str | Path, *, title: str = ""
) -> Path:
    """The counts of (true class, predicted class), with each cell's count written in it.

    Args:
        labels, predictions: ``(n,)`` int class ids in ``[0, len(names))``.
        names: the class names.
    """
    k = len(names)
    counts = np.zeros((k, k), int)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    fig = Figure(figsize=(1.2 + 0.55 * k, 1.0 + 0.5 * k))
    ax = fig.subplots()
    im = ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            color = "white" if counts[i, j] > counts.max() / 2 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(k), names, rotation=45 if k > 4 else 0, fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {np.trace(counts) / max(counts.sum(), 1):.3f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return save(fig, path)


def forecasts(
    t: np.ndarray,
    series: np.ndarray,
    start: int,
    predictions: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    title: str = "",
    ylabel: str = "",
) -> Path:
    """A series with forecasts of its tail: ``series`` over ``t`` (the observed values, with a line where
    the forecasts start at index ``start``) and each ``predictions[name]`` over ``t[start:start + len]``."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    ax.plot(t, series, color="k", lw=1, label="observed")
    ax.axvline(t[start], color="0.5", ls=":", lw=1)
    for i, (name, pred) in enumerate(predictions.items()):
        ax.plot(t[start : start + len(pred)], pred, color=f"C{i}", lw=1.3, label=name)
    ax.set_xlabel("time")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return save(fig, path)


def image_captions(images: np.ndarray, captions: list[str], path: str | Path, *, columns: int = 8) -> Path:
    """Images in a grid, each with its caption (e.g. a model's output beside the true one) as its title.

    Args:
        images: ``(n, height, width)`` grey levels.
        captions: ``n`` strings (``\\n`` for a second line).
    """
    images = np.asarray(images)
    n = len(images)
    rows = -(-n // columns)
    fig = Figure(figsize=(1.4 * min(columns, n), 1.75 * rows))
    axes = np.atleast_1d(fig.subplots(rows, min(columns, n))).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, image, caption in zip(axes, images, captions, strict=False):
        ax.imshow(image, cmap="gray_r")
        ax.set_title(caption, fontsize=7)
    return save(fig, path)


def piano_roll(
    roll: np.ndarray, path: str | Path, *, lowest_pitch: int = 0, title: str = "", steps_per_beat: int = 4
) -> Path:
    """A piano roll: ``roll`` ``(time, pitches)`` of 0/1 (or probabilities), pitch ``lowest_pitch + j`` in
    column ``j``, time in beats along x."""
    roll = np.asarray(roll, float)
    fig = Figure(figsize=(min(12, 2 + roll.shape[0] / 16), 3.5))
    ax = fig.subplots()
    extent = (0, roll.shape[0] / steps_per_beat, lowest_pitch - 0.5, lowest_pitch + roll.shape[1] - 0.5)
    ax.imshow(roll.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest", extent=extent)
    ax.set_xlabel("beat")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    return save(fig, path)
