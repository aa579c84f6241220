"""Figures of a network's dynamics: its fixed points among its trajectories on their principal components, and
the trials of a task with several binary channels (the flip-flop of Sussillo & Barak 2013)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from rnnjax.plots.curves import save

__all__ = ["channel_trials", "fixed_points", "principal_components"]


def principal_components(states: Any, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``k`` principal components of ``states: (..., n)`` (rows with a NaN left out).

    Returns:
        ``(mean (n,), components (k, n), explained (k,))``: project with ``(a - mean) @ components.T``;
        ``explained`` is each component's share of the variance.
    """
    flat = np.asarray(states, np.float64).reshape(-1, np.shape(states)[-1])
    flat = flat[np.isfinite(flat).all(-1)]
    if flat.shape[0] < 2 or not 1 <= k <= flat.shape[1]:
        raise ValueError(f"states, k: expected at least 2 finite states and 1 <= k <= {flat.shape[1]}, got "
                         f"{flat.shape[0]} states and k = {k!r}")  # fmt: skip
    mean = flat.mean(0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return mean, vt[:k], (s[:k] ** 2) / max((s**2).sum(), np.finfo(float).tiny)


_KINDS = (  # (label, marker, colour, size), by the number of unstable directions: 0, 1, 2 or more
    ("stable", "o", "black", 40),
    ("saddle (1 unstable dim)", "x", "red", 45),
    ("2+ unstable dims", "^", "darkorange", 35),
)


def fixed_points(
    fixed: Any,
    trajectories: Any,
    path: str | Path,
    *,
    components: int = 3,
    shown: int = 10,
    mode_scale: float = 0.5,
    title: str = "",
) -> Path:
    """The fixed points (stable: black dots; one unstable direction: red crosses, their unstable modes as red
    segments; more: orange triangles) and ``shown`` trajectories (blue), on the top ``components`` (2 or 3)
    principal components of the trajectories' states, as in Sussillo & Barak 2013 and Golub & Sussillo 2018.

    Args:
        fixed: a :class:`~rnnjax.analysis.fixed_points.FixedPoints` (its ``states``, ``unstable_dims`` and
            ``jacobians``).
        trajectories: ``(batch, time, n)`` states along the network's runs (e.g.
            :func:`rnnjax.analysis.trajectory`), NaN at padded steps.
        mode_scale: the half-length of a drawn unstable mode, in state units (the eigenvector has norm 1).
    """
    if components not in (2, 3):
        raise ValueError(f"components: expected 2 or 3, got {components!r}")
    trajectories = np.asarray(trajectories, np.float64)
    states = np.asarray(fixed.states, np.float64).reshape(-1, trajectories.shape[-1])
    mean, pcs, explained = principal_components(trajectories, components)

    def project(a: np.ndarray) -> np.ndarray:
        return (a - mean) @ pcs.T

    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot(projection="3d" if components == 3 else None)
    for i, run in enumerate(trajectories[:shown]):
        p = project(run[np.isfinite(run).all(-1)])
        ax.plot(*p.T, color="tab:blue", lw=0.6, alpha=0.5, label="trajectories" if i == 0 else None)
    dims = np.asarray(fixed.unstable_dims)
    for j, (label, marker, colour, size) in enumerate(_KINDS):
        chosen = dims == j if j < 2 else dims >= 2
        if chosen.any():
            extra = {"depthshade": False} if components == 3 else {}
            p = project(states[chosen])
            ax.scatter(*p.T, marker=marker, color=colour, s=size, label=f"{label} ({chosen.sum()})", zorder=3, **extra)
    jacobians = np.asarray(fixed.jacobians, np.float64)
    for a, J, d in zip(states, jacobians, dims, strict=True):
        if d != 1:
            continue
        values, vectors = np.linalg.eig(J)
        v = np.real(vectors[:, np.argmax(np.abs(values))])
        v = v / max(np.linalg.norm(v), np.finfo(float).tiny)
        ax.plot(*project(np.stack([a - mode_scale * v, a + mode_scale * v])).T, color="red", lw=1.2)
    labels = [f"PC {i + 1} ({100 * e:.0f}%)" for i, e in enumerate(explained)]
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    if components == 3:
        ax.set_zlabel(labels[2])
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return save(fig, path)


def channel_trials(xs: Any, targets: Any, outputs: Any, path: str | Path, *, trials: int = 2, title: str = "") -> Path:
    """Inputs (grey), targets (cyan) and the network's outputs (purple, dashed) of a task with a few channels,
    one row per channel and trial (the flip-flop's pulses and held bits)."""
    xs, targets, outputs = (np.asarray(a, np.float64) for a in (xs, targets, outputs))
    if not xs.shape == targets.shape == outputs.shape or xs.ndim != 3:
        raise ValueError(f"xs, targets, outputs: expected one shape (batch, time, channels), got {xs.shape}, "
                         f"{targets.shape} and {outputs.shape}")  # fmt: skip
    trials = min(trials, xs.shape[0])
    channels = xs.shape[-1]
    fig = Figure(figsize=(8, 1.1 * channels * trials + 0.6))
    axes = np.atleast_1d(fig.subplots(channels * trials, 1, sharex=True))
    steps = np.arange(xs.shape[1])
    for b in range(trials):
        for j in range(channels):
            ax = axes[b * channels + j]
            ax.fill_between(steps, xs[b, :, j], step="mid", color="0.6", label="input pulses")
            ax.step(steps, targets[b, :, j], where="mid", color="c", lw=2, label="target")
            ax.step(steps, outputs[b, :, j], where="mid", color="purple", ls="--", lw=1.2, label="output")
            ax.set_ylim(-1.4, 1.4)
            ax.set_ylabel(f"trial {b + 1}\nbit {j + 1}", fontsize=8)
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("step")
    return save(fig, path)
