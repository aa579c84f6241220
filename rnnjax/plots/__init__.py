"""Figures shared by experiments and notebooks (matplotlib's object API, written to PNG).

One module a theme: :mod:`rnnjax.plots.curves` (learning curves, heatmaps, spectra, the applications' figures);
each figure function takes its data and a ``path`` and returns the path it wrote.
"""

from rnnjax.plots.curves import (
    confusion_matrix,
    forecasts,
    gate_heatmaps,
    heatmap,
    image_captions,
    lines,
    loss_curves,
    norms_by_lag,
    piano_roll,
    save,
    smooth,
    spectra,
    surface,
    sweep,
)

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
