"""rj.plots: every figure function writes a PNG, and the figures that count or place things do it right."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_smooth_is_a_trailing_mean_that_a_spike_does_not_round():
    values = np.r_[1e14, np.full(100, 0.18)]
    got = rj.plots.smooth(values, 10)
    want = [values[max(0, i - 9) : i + 1].mean() for i in range(values.size)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[-1] == pytest.approx(0.18, rel=1e-12)  # the running-sum form gave 0.1875 here
    np.testing.assert_array_equal(rj.plots.smooth(values, 1), values)


def test_sweep_draws_every_model_and_baseline(tmp_path):
    path = rj.plots.sweep(
        {"a": (np.array([100, 200]), np.array([0.1, 0.2]))},
        tmp_path / "s.png",
        xlabel="T",
        ylabel="MSE",
        baselines={"level": 1 / 6, "curve": (np.array([100, 200]), np.array([1, 2]))},
    )
    assert path.stat().st_size > 0
