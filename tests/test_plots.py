"""rj.plots: every figure function writes a PNG, and the figures that count or place things do it right."""

from __future__ import annotations

import numpy as np
from matplotlib.image import imread

import rnnjax as rj


def _png(path):
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    return image


def test_confusion_matrix_counts_pairs_and_titles_the_accuracy(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    texts, titles = [], []
    monkeypatch.setattr(Axes, "text", lambda self, x, y, s, **kw: texts.append((y, x, s)))
    original = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda self, t, **kw: (titles.append(t), original(self, t, **kw)))
    labels, predictions = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0])
    _png(rj.plots.confusion_matrix(labels, predictions, ["a", "b", "c"], tmp_path / "c.png"))
    counts = {(i, j): int(s) for i, j, s in texts}
    assert counts[(0, 0)] == 1 and counts[(0, 1)] == 1 and counts[(2, 2)] == 2 and counts[(2, 0)] == 1
    assert sum(counts.values()) == 6 and titles == ["accuracy 0.667"]


def test_the_other_figures_write_pngs(tmp_path):
    t = np.arange(60)
    _png(rj.plots.forecasts(t, np.sin(t / 5), 48, {"a": np.zeros(12), "b": np.ones(6)}, tmp_path / "f.png"))
    _png(
        rj.plots.image_captions(
            np.random.default_rng(0).random((5, 8, 8)), list("abcde"), tmp_path / "i.png", columns=3
        )
    )
    _png(rj.plots.image_captions(np.zeros((1, 8, 8)), ["one"], tmp_path / "one.png"))
    _png(rj.plots.piano_roll(np.eye(32, 12), tmp_path / "p.png", lowest_pitch=48, title="roll"))
    curves = {"lstm": (np.arange(10), np.linspace(2, 1, 10))}
    _png(
        rj.plots.loss_curves(
            curves,
            tmp_path / "l.png",
            baselines={"a": 1.5, "b": 1.8},
            clip_to_baselines=True,
            evals={"lstm": (np.array([9]), np.array([1.1]))},
        )
    )
