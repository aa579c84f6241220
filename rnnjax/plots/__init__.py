"""Figures shared by experiments and notebooks (matplotlib's object API, written to PNG).

One module a theme, each figure function taking its data and a ``path`` and returning the path it wrote:
:mod:`~rnnjax.plots.curves` (learning curves, heatmaps, spectra, sweeps, the applications' figures),
:mod:`~rnnjax.plots.dynamics` (fixed points on the trajectories' principal components),
:mod:`~rnnjax.plots.isometry` (singular-value spectra of the end-to-end Jacobian), :mod:`~rnnjax.plots.training`
(Lyapunov exponents against the loss), :mod:`~rnnjax.plots.runs` (the figures of ``python -m rnnjax.analyse``),
:mod:`~rnnjax.plots.pixels` (a digit as its pixel sequence).
"""

from rnnjax.plots import dynamics, isometry, pixels, runs, training
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
    "dynamics",
    "isometry",
    "pixels",
    "runs",
    "training",
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
