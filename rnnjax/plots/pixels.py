"""Figures of pixel-by-pixel image classification (Le, Jaitly & Hinton 2015, "A Simple Way to Initialize
Recurrent Networks of Rectified Linear Units", sec. 4.2): a digit as the sequence a network reads, and the
accuracy curves of a run beside the levels a paper reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rnnjax.plots.curves import save

__all__ = ["accuracy_beside_published", "pixel_sequence"]


def pixel_sequence(image: np.ndarray, sequence: np.ndarray, path: str | Path, *, title: str = "") -> Path:
    """A digit beside the sequence a network reads from it, one pixel a step: ``x_t``, ``t = 1 .. T``.

    Args:
        image: ``(height, width)``, the picture as it is shown.
        sequence: ``(T,)`` or ``(T, 1)``, the inputs in the order they are read (scanline order, or a fixed
            permutation of it, as in Le et al.'s permuted MNIST).
        path: the PNG to write.
        title: the figure's title.

    Raises:
        ValueError: ``image`` not 2-D, ``sequence`` not one value a step.
    """
    image, sequence = np.asarray(image), np.asarray(sequence)
    if image.ndim != 2:
        raise ValueError(f"image: expected a (height, width) array, got shape {image.shape}")
    if sequence.ndim == 2 and sequence.shape[1] == 1:
        sequence = sequence[:, 0]
    if sequence.ndim != 1 or sequence.size == 0:
        raise ValueError(f"sequence: expected (T,) or (T, 1) inputs, got shape {sequence.shape}")
    fig = Figure(figsize=(9.5, 2.6))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 4.5]})
    left.imshow(image, cmap="gray_r", vmin=0.0, vmax=max(1.0, float(image.max())))
    left.set_xticks([])
    left.set_yticks([])
    steps = np.arange(1, sequence.size + 1)
    right.fill_between(steps, sequence, step="mid", color="C0", alpha=0.8, lw=0)
    right.set_xlim(1, sequence.size)
    right.set_xlabel("step t (one pixel a step)")
    right.set_ylabel("input x_t")
    right.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def accuracy_beside_published(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    published: Mapping[str, float] | None = None,
    baselines: Mapping[str, float] | None = None,
    xlabel: str = "training step",
    ylabel: str = "validation accuracy",
    title: str = "",
    source: str = "published",
) -> Path:
    """One line per model, ``(steps, accuracy)``; each model's published final accuracy as a dashed line of
    the same colour (models absent from ``curves`` get a colour of their own and a dashed line too), and each
    baseline (``{label: level}``) as a thin grey line.

    Raises:
        ValueError: a curve whose steps and values differ in length, or a level outside [0, 1].
    """
    published, baselines = dict(published or {}), dict(baselines or {})
    for label, level in {**published, **baselines}.items():
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"published, baselines: expected accuracies in [0, 1], got {label}: {level}")
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    colors = {name: f"C{i}" for i, name in enumerate([*curves, *(n for n in published if n not in curves)])}
    for name, (steps, values) in curves.items():
        steps, values = np.asarray(steps), np.asarray(values)
        if steps.shape != values.shape:
            raise ValueError(f"curves[{name!r}]: expected steps and values of one length, got {steps.shape} and "
                             f"{values.shape}")  # fmt: skip
        ax.plot(steps, values, "o-", color=colors[name], ms=3.5, lw=1.2, label=f"{name} (ours)")
    for name, level in published.items():
        ax.axhline(level, color=colors[name], ls="--", lw=1.0, label=f"{name}: {level:.2f} ({source})")
    for j, (label, level) in enumerate(sorted(baselines.items(), key=lambda kv: -kv[1])):
        ax.axhline(level, color="0.45", ls=(":", "-.")[j % 2], lw=0.9, label=f"{label}: {level:.2f}")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save(fig, path)
